#pragma once
// The wire format of events (DESIGN.md "Wire formats"): a contract other software relies on. Both
// directions live here: the body the sign-up writes, and how a consumer reads it back.
#include <optional>
#include <string>
#include <string_view>

#include "domain/event.hpp"
#include "domain/expected.hpp"
#include "domain/time.hpp"
#include "domain/user.hpp"

namespace registrar::app {

// {"event":"user.registered","pattern":"user.registered",
//  "data":{"id","email","username","createdAt"},"timestamp":"…"}; "email" is null for an account
// without one (a phone account). No phone number, in any form.
domain::EventEnvelope make_user_registered(const domain::User& user, std::string event_id, domain::Timestamp now);

// {"event":"user.email_verified","pattern":"user.email_verified",
//  "data":{"id","emailVerifiedAt"},"timestamp":"…"}: the envelope of user.registered. Only the
// user's id and when: no address (consumers that need it have it from user.registered, keyed by
// the same id), no code, no token.
domain::EventEnvelope make_user_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                                               std::string event_id, domain::Timestamp now);

// The body of a `user.registered` event, as a consumer reads it.
struct UserRegistered {
  std::string user_id;
  std::optional<std::string> email;  // none for a phone account (data.email null)
  std::string username;
  domain::Timestamp created_at{};
  domain::Timestamp timestamp{};
};

// Parses event.payload strictly: a JSON object; "event" and "pattern" equal to "user.registered";
// data.id/username non-empty strings, data.email a non-empty string or null; createdAt and timestamp ISO 8601. Extra fields are
// allowed (what the NestJS sign-up service or a later version of ours adds). A body that is not
// that format gives the first problem found, which never quotes the body (it holds PII).
domain::Expected<UserRegistered, std::string> parse_user_registered(const domain::EventEnvelope& event);

}  // namespace registrar::app
