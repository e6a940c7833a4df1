#include "adapters/sodium/sodium.hpp"

#include <sodium.h>

#include <stdexcept>

namespace registrar::adapters::sodium {

void ensure_sodium() {
  // sodium_init() is itself thread-safe and returns 1 when already initialized; the static
  // just avoids re-entering it on every call.
  static const bool ok = ::sodium_init() >= 0;
  if (!ok) throw std::runtime_error("libsodium failed to initialize");
}

}  // namespace registrar::adapters::sodium
