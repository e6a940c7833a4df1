#pragma once
// The Idempotency-Key request header (draft-ietf-httpapi-idempotency-key-header, §2): its value is
// a Structured Field String (RFC 8941 §3.3.3: "…" with \" and \\ the only escapes), e.g.
//   Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"
// The bare form many clients send (Stripe's, Idempotency-Key: 8e03978e-…) is accepted too, as
// the same key: printable ASCII without spaces or quotes. Either way the key is 1–255 characters
// of printable ASCII (0x20–0x7E). Hand-written: Boost 1.81 has no Structured Fields parser, and a
// String item is these few lines.
#include <optional>
#include <string>
#include <variant>

#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

inline constexpr std::size_t kIdempotencyKeyMaxLength = 255;

struct NoIdempotencyKey {};
struct InvalidIdempotencyKey {
  std::string detail;  // for the problem body; never quotes the value
};

// The key of `req`: none when the header is absent; invalid when it is empty, too long, not
// printable, a malformed string, or present more than once.
std::variant<NoIdempotencyKey, std::string, InvalidIdempotencyKey> idempotency_key(const Request& req);

}  // namespace registrar::adapters::http
