#include "adapters/sodium/base64.hpp"

#include <sodium.h>

#include <algorithm>

namespace registrar::adapters::sodium {

std::string base64_encode(std::span<const unsigned char> bytes, int variant) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  // libsodium declares its pointer arguments nonnull; an empty span may carry a null data().
  static constexpr unsigned char kNothing = 0;
  sodium_bin2base64(out.data(), out.size(), bytes.empty() ? &kNothing : bytes.data(), bytes.size(), variant);
  out.resize(out.size() - 1);  // the encoded length counts the terminating NUL
  return out;
}

std::string base64_encode(std::string_view bytes, int variant) {
  return base64_encode(std::span(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()), variant);
}

std::optional<std::string> base64_decode(std::string_view text, int variant) {
  const bool url_safe = variant == sodium_base64_VARIANT_URLSAFE || variant == sodium_base64_VARIANT_URLSAFE_NO_PADDING;
  const bool padded = variant == sodium_base64_VARIANT_ORIGINAL || variant == sodium_base64_VARIANT_URLSAFE;
  const auto in_alphabet = [&](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == (url_safe ? '-' : '+') || c == (url_safe ? '_' : '/') || (padded && c == '=');
  };
  if (!std::all_of(text.begin(), text.end(), in_alphabet)) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 3, '\0');
  std::size_t length = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr,
                        &length, nullptr, variant) != 0)
    return std::nullopt;
  out.resize(length);
  return out;
}

}  // namespace registrar::adapters::sodium
