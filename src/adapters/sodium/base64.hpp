#pragma once
// Base64 through libsodium: encoding, and decoding that is strict about the alphabet.
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace registrar::adapters::sodium {

// `bytes` in the libsodium base64 `variant` (sodium_base64_VARIANT_*: padded or not, standard or
// URL-safe alphabet).
std::string base64_encode(std::span<const unsigned char> bytes, int variant);
std::string base64_encode(std::string_view bytes, int variant);

// The bytes `text` encodes in the libsodium base64 `variant` (sodium_base64_VARIANT_*), or nothing
// when it is not exactly that: a byte outside the variant's alphabet ('=' only in the padded
// variants), or anything sodium_base642bin refuses (bad padding, non-canonical trailing bits,
// input left over). No character is skipped. The alphabet is checked here, before libsodium:
// 1.0.18 (Debian 12) decodes every byte 0x80–0xFF as if it were the alphabet's last character
// ('/' or '_'), so the same bytes could be spelled many ways — a JWT signature re-spelled that way
// still verified (found by fuzz/fuzz_jwt).
std::optional<std::string> base64_decode(std::string_view text, int variant);

}  // namespace registrar::adapters::sodium
