#pragma once
// Hexadecimal through libsodium (sodium_bin2hex, which runs in constant time, so it is fine for
// secrets and digests alike).
#include <span>
#include <string>
#include <string_view>

namespace registrar::adapters::sodium {

// `bytes` as lower-case hexadecimal, two digits per byte.
std::string hex_encode(std::span<const unsigned char> bytes);
std::string hex_encode(std::string_view bytes);

}  // namespace registrar::adapters::sodium
