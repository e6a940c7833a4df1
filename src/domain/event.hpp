#pragma once
#include <string>
#include "domain/time.hpp"

namespace registrar::domain {

inline constexpr std::string_view kUserRegistered = "user.registered";
// An email account proved its address (POST /auth/email-verification).
inline constexpr std::string_view kUserEmailVerified = "user.email_verified";

// An event as kept in the outbox and carried by any event bus. `payload` is the exact wire body
// (JSON, format in DESIGN.md) so every relay and consumer sees the same bytes.
struct EventEnvelope {
  std::string id;            // unique event id (consumers deduplicate on it; AMQP message_id)
  std::string type;          // event name, e.g. "user.registered"
  std::string aggregate_id;  // the user id: order is kept per aggregate
  std::string payload;       // wire JSON
  Timestamp occurred_at{};
  int attempts = 0;          // delivery attempts so far (outbox bookkeeping)
};

}  // namespace registrar::domain
