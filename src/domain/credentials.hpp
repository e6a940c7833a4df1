#pragma once
// The rules for the values a user gives at sign-up. Pure functions: no I/O.
#include <optional>
#include <string>
#include <string_view>
#include "domain/errors.hpp"
#include "domain/expected.hpp"

namespace registrar::domain {

// A value as the user gave it (kept and shown) and its canonical form (what uniqueness compares).
class CanonicalValue {
 public:
  const std::string& value() const { return value_; }
  const std::string& canonical() const { return canonical_; }

 protected:
  std::string value_, canonical_;
};

// Email: trimmed (ASCII whitespace), domain lower-cased, at most 254 characters, exactly one '@',
// a non-empty local part, a dotted domain of valid labels. `canonical` (fully lower-cased) is the
// uniqueness/lookup key, so John@x.io and john@x.io are one account.
//  - local part: at most 64 bytes of valid UTF-8, no whitespace or control characters (non-ASCII
//    is accepted and kept as given; lower-casing is ASCII-only);
//  - domain: ≥ 2 labels of [A-Za-z0-9-], each 1–63 long without a leading or trailing hyphen, the
//    last not all digits (no address literals, no IP addresses; IDNs must be given as punycode).
// Lengths are in bytes, after trimming. Error codes (field "email"): required (empty after
// trimming), too_long (over 254, or local part over 64), invalid_format (anything else).
class Email : public CanonicalValue {
 public:
  static Expected<Email, FieldError> parse(std::string_view raw);
};

// Username: 3–32 characters of [A-Za-z0-9_.-]; the case chosen is kept, uniqueness is
// case-insensitive via `canonical` (lower-cased). Not trimmed. Error codes (field "username"):
// required (empty), invalid_characters (checked first), too_short, too_long.
class Username : public CanonicalValue {
 public:
  static Expected<Username, FieldError> parse(std::string_view raw);
};

// Phone: E.164 — '+', then 8 to 15 digits, the first not 0 (country codes never start with 0).
// Spaces, hyphens, dots and parentheses between the digits are accepted and dropped (people write
// "+33 6 12 34 56 78"); nothing else is. `value` and `canonical` are both the bare E.164 form
// ("+33612345678"), the only form registrar stores (sealed) or hashes. Error codes (field "phone"):
// required (empty after trimming), invalid_format.
class Phone : public CanonicalValue {
 public:
  static Expected<Phone, FieldError> parse(std::string_view raw);
  // For display to the account's owner (GET /users/me): '+', the first two digits, one '•' per
  // hidden digit, the last two ("+33••••••78"). Enough to recognise one's number, not to dial it.
  std::string masked() const;
};

// Password policy (NIST SP 800-63B style): 12–128 characters counted as Unicode code points, any
// characters, no composition rules, never truncated, and not in the embedded list of common
// passwords (compared case-insensitively). Input must be valid UTF-8.
// Error codes (field "password"), in the order checked: invalid_encoding (not valid UTF-8),
// required (empty), too_short, too_long, whitespace_only (only Unicode white space),
// common_password. Messages state the rule and never contain the password.
struct PasswordPolicy {
  std::size_t min_length = 12;
  std::size_t max_length = 128;
  std::optional<FieldError> check(std::string_view password) const;
};

// The embedded list of common passwords (from @zxcvbn-ts/language-common, lower-cased): true if
// the ASCII-lower-cased password is an entry, exactly (no trimming). Thread-safe.
bool is_common_password(std::string_view password);
std::size_t common_password_count();

// Number of Unicode code points in valid UTF-8, or nullopt if the bytes are not valid UTF-8.
std::optional<std::size_t> utf8_length(std::string_view s);

}  // namespace registrar::domain
