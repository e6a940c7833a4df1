#include "domain/credentials.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

// Generated at build time by cmake/embed-passwords.js (build*/generated/common_passwords_data.cpp):
// newline-terminated, lower-cased, unique entries sorted by byte order.
namespace registrar::domain::data {
extern const std::size_t kCommonPasswordCount;
extern const char kCommonPasswords[];
extern const std::size_t kCommonPasswordsSize;
}  // namespace registrar::domain::data

namespace registrar::domain {

namespace {

constexpr std::size_t kEmailMaxLength = 254;  // RFC 5321 path limit minus the angle brackets
constexpr std::size_t kLocalPartMaxLength = 64;
constexpr std::size_t kLabelMaxLength = 63;
constexpr std::size_t kUsernameMin = 3;
constexpr std::size_t kUsernameMax = 32;

FieldError field_error(std::string_view field, std::string_view code, std::string_view message) {
  return FieldError{std::string(field), std::string(code), std::string(message)};
}

constexpr bool is_ascii_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
constexpr bool is_ascii_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
constexpr char to_ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_ascii_lower(c);
  return out;
}

std::string_view trim_ascii(std::string_view s) {
  while (!s.empty() && is_ascii_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_ascii_space(s.back())) s.remove_suffix(1);
  return s;
}

// Decodes the code point starting at s[i] and advances i past it. Strict UTF-8 (RFC 3629):
// no overlong forms, no surrogates, nothing above U+10FFFF, no truncated sequences.
// Returns nullopt (leaving i unspecified) on invalid input.
std::optional<char32_t> decode_utf8(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
  const std::uint8_t b0 = byte(i);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  std::size_t len;
  char32_t cp;
  char32_t min;
  if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F, min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F, min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return std::nullopt;  // a continuation byte or 0xF8..0xFF where a sequence should start
  }
  if (s.size() - i < len) return std::nullopt;
  for (std::size_t k = 1; k < len; ++k) {
    const std::uint8_t b = byte(i + k);
    if ((b & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  i += len;
  return cp;
}

// Unicode White_Space characters (ASCII ones included).
constexpr bool is_unicode_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
         c == 0x3000;
}

// C0 and C1 control characters and DEL.
constexpr bool is_control(char32_t c) { return c < 0x20 || (c >= 0x7F && c <= 0x9F); }

// A DNS label of letters, digits and hyphens, 1–63 long, not starting or ending with a hyphen.
bool valid_label(std::string_view label) {
  if (label.empty() || label.size() > kLabelMaxLength) return false;
  if (label.front() == '-' || label.back() == '-') return false;
  return std::all_of(label.begin(), label.end(),
                     [](char c) { return is_ascii_alpha(c) || is_ascii_digit(c) || c == '-'; });
}

bool valid_domain(std::string_view domain) {
  std::size_t labels = 0;
  std::string_view last;
  for (std::size_t start = 0;;) {
    const std::size_t dot = domain.find('.', start);
    const std::string_view label = domain.substr(start, dot == std::string_view::npos ? domain.npos : dot - start);
    if (!valid_label(label)) return false;  // also rejects empty labels: "a..b", ".a", "a."
    ++labels;
    last = label;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  // A dotted name whose top-level label is not all digits (so "1.2.3.4" is not a domain).
  return labels >= 2 && !std::all_of(last.begin(), last.end(), is_ascii_digit);
}

// Any valid UTF-8 except whitespace and control characters (internationalized local parts are
// accepted as they are; quoted local parts and comments are not).
bool valid_local_part(std::string_view local) {
  for (std::size_t i = 0; i < local.size();) {
    const auto cp = decode_utf8(local, i);
    if (!cp || is_unicode_space(*cp) || is_control(*cp)) return false;
  }
  return true;
}

bool is_username_char(char c) { return is_ascii_alpha(c) || is_ascii_digit(c) || c == '_' || c == '.' || c == '-'; }

// The embedded list, split once into views over the generated blob (a thread-safe static).
const std::vector<std::string_view>& common_passwords() {
  static const std::vector<std::string_view> index = [] {
    std::vector<std::string_view> v;
    v.reserve(data::kCommonPasswordCount);
    const std::string_view blob(data::kCommonPasswords, data::kCommonPasswordsSize);
    for (std::size_t start = 0; start < blob.size();) {
      const std::size_t nl = blob.find('\n', start);
      if (nl == std::string_view::npos) break;  // the blob is newline-terminated
      v.push_back(blob.substr(start, nl - start));
      start = nl + 1;
    }
    // The generator sorts by bytes; std::string_view compares as unsigned bytes too.
    return v;
  }();
  return index;
}

}  // namespace

std::optional<std::size_t> utf8_length(std::string_view s) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size(); ++count)
    if (!decode_utf8(s, i)) return std::nullopt;
  return count;
}

bool is_common_password(std::string_view password) {
  const auto& list = common_passwords();
  return std::binary_search(list.begin(), list.end(), std::string_view(ascii_lower(password)));
}

std::size_t common_password_count() { return common_passwords().size(); }

Expected<Email, FieldError> Email::parse(std::string_view raw) {
  constexpr std::string_view field = "email";
  const std::string_view s = trim_ascii(raw);
  if (s.empty()) return field_error(field, "required", "Email is required");
  if (s.size() > kEmailMaxLength) return field_error(field, "too_long", "Email must be at most 254 characters");

  const auto invalid = [&] { return field_error(field, "invalid_format", "Email must look like name@example.com"); };
  const std::size_t at = s.find('@');
  if (at == std::string_view::npos || s.find('@', at + 1) != std::string_view::npos) return invalid();
  const std::string_view local = s.substr(0, at);
  const std::string_view domain = s.substr(at + 1);
  if (local.empty() || !valid_local_part(local) || !valid_domain(domain)) return invalid();
  if (local.size() > kLocalPartMaxLength)
    return field_error(field, "too_long", "The part of the email before @ must be at most 64 characters");

  Email e;
  e.value_.reserve(s.size());
  e.value_.append(local).append(1, '@').append(ascii_lower(domain));
  e.canonical_ = ascii_lower(e.value_);
  return e;
}

Expected<Username, FieldError> Username::parse(std::string_view raw) {
  constexpr std::string_view field = "username";
  if (raw.empty()) return field_error(field, "required", "Username is required");
  if (!std::all_of(raw.begin(), raw.end(), is_username_char))
    return field_error(field, "invalid_characters",
                       "Username may contain only letters, digits, underscore, dot and hyphen");
  if (raw.size() < kUsernameMin) return field_error(field, "too_short", "Username must be at least 3 characters");
  if (raw.size() > kUsernameMax) return field_error(field, "too_long", "Username must be at most 32 characters");
  Username u;
  u.value_ = std::string(raw);
  u.canonical_ = ascii_lower(raw);
  return u;
}

Expected<Phone, FieldError> Phone::parse(std::string_view raw) {
  constexpr std::string_view field = "phone";
  const std::string_view given = trim_ascii(raw);
  if (given.empty()) return field_error(field, "required", "Phone number is required");
  const auto invalid = [&] {
    return field_error(field, "invalid_format",
                       "Phone number must be in international E.164 form: + and 8 to 15 digits, e.g. +33612345678");
  };
  if (given.front() != '+') return invalid();
  std::string e164 = "+";
  for (char c : given.substr(1)) {
    if (c >= '0' && c <= '9') {
      e164 += c;
    } else if (c != ' ' && c != '-' && c != '.' && c != '(' && c != ')') {
      return invalid();
    }
  }
  const std::size_t digits = e164.size() - 1;
  if (digits < 8 || digits > 15 || e164[1] == '0') return invalid();
  Phone p;
  p.value_ = e164;
  p.canonical_ = std::move(e164);
  return p;
}

std::string Phone::masked() const {
  // value_ is "+" and 8 to 15 digits (parse() guarantees it): 4 shown, at least 4 hidden.
  const std::string_view digits = std::string_view(value_).substr(1);
  std::string out = "+" + std::string(digits.substr(0, 2));
  for (std::size_t i = 2; i + 2 < digits.size(); ++i) out += "\u2022";
  return out + std::string(digits.substr(digits.size() - 2));
}

std::optional<FieldError> PasswordPolicy::check(std::string_view password) const {
  constexpr std::string_view field = "password";
  // Messages state the rule only: the password itself never appears in an error.
  const auto length = utf8_length(password);
  if (!length) return field_error(field, "invalid_encoding", "Password must be valid UTF-8 text");
  if (*length == 0) return field_error(field, "required", "Password is required");
  if (*length < min_length)
    return field_error(field, "too_short", "Password must be at least " + std::to_string(min_length) + " characters");
  if (*length > max_length)
    return field_error(field, "too_long", "Password must be at most " + std::to_string(max_length) + " characters");

  bool only_space = true;
  for (std::size_t i = 0; i < password.size() && only_space;) only_space = is_unicode_space(*decode_utf8(password, i));
  if (only_space) return field_error(field, "whitespace_only", "Password must not consist only of spaces");

  if (is_common_password(password))
    return field_error(field, "common_password", "This password is too common; choose a less guessable one");
  return std::nullopt;
}

}  // namespace registrar::domain
