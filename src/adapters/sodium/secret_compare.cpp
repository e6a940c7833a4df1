#include "adapters/sodium/secret_compare.hpp"

#include <sodium.h>

#include <array>

namespace registrar::adapters::sodium {

bool same_secret(std::string_view presented, std::string_view secret) {
  std::array<unsigned char, crypto_generichash_BYTES> a{}, b{};
  crypto_generichash(a.data(), a.size(), reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), nullptr, 0);
  crypto_generichash(b.data(), b.size(), reinterpret_cast<const unsigned char*>(secret.data()), secret.size(), nullptr, 0);
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace registrar::adapters::sodium
