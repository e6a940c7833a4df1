#include "adapters/sodium/hex.hpp"

#include <sodium.h>

namespace registrar::adapters::sodium {

std::string hex_encode(std::span<const unsigned char> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');  // sodium_bin2hex writes a terminating NUL
  static constexpr unsigned char kNothing = 0;  // its pointer arguments are declared nonnull
  sodium_bin2hex(out.data(), out.size(), bytes.empty() ? &kNothing : bytes.data(), bytes.size());
  out.pop_back();
  return out;
}

std::string hex_encode(std::string_view bytes) {
  return hex_encode(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()));
}

}  // namespace registrar::adapters::sodium
