#include "adapters/http/idempotency_key.hpp"

namespace registrar::adapters::http {

namespace {

constexpr std::string_view kFieldName = "Idempotency-Key";

bool printable(char c) { return c >= 0x20 && c <= 0x7e; }

// RFC 8941 §4.2.5 (Parsing a String), for a whole field value.
std::optional<std::string> sf_string(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::nullopt;
  v = v.substr(1, v.size() - 2);
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\') {
      if (i + 1 == v.size() || (v[i + 1] != '"' && v[i + 1] != '\\')) return std::nullopt;
      c = v[++i];
    } else if (c == '"' || !printable(c)) {
      return std::nullopt;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::variant<NoIdempotencyKey, std::string, InvalidIdempotencyKey> idempotency_key(const Request& req) {
  auto fields = req.equal_range(kFieldName);
  if (fields.first == fields.second) return NoIdempotencyKey{};
  if (std::next(fields.first) != fields.second)
    return InvalidIdempotencyKey{"Send one Idempotency-Key header, not several"};
  const std::string_view value = fields.first->value();
  std::string key;
  if (!value.empty() && value.front() == '"') {
    auto parsed = sf_string(value);
    if (!parsed) return InvalidIdempotencyKey{"The Idempotency-Key is not a valid quoted string (RFC 8941 sf-string)"};
    key = std::move(*parsed);
  } else {
    for (char c : value)
      if (!printable(c) || c == ' ' || c == '"')
        return InvalidIdempotencyKey{"The Idempotency-Key must be printable ASCII without spaces, or a quoted string"};
    key = std::string(value);
  }
  if (key.empty()) return InvalidIdempotencyKey{"The Idempotency-Key is empty"};
  if (key.size() > kIdempotencyKeyMaxLength)
    return InvalidIdempotencyKey{"The Idempotency-Key is longer than 255 characters"};
  return key;
}

}  // namespace registrar::adapters::http
