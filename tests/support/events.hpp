#pragma once
// Events for tests that consume or carry them: user.registered envelopes built by the real
// app::make_user_registered, with fixed times.
#include <chrono>
#include <string>

#include "app/events.hpp"
#include "domain/event.hpp"
#include "domain/user.hpp"

namespace registrar::testing {

// The event `event_id` for the user `username` (email <username>@example.com, id `user_id`)
// created at 2025-10-19T16:37:15.123Z and registered 333 ms later.
inline domain::EventEnvelope user_registered(const std::string& event_id, const std::string& username = "newuser",
                                             const std::string& user_id = "0192a3b4-0000-7000-8000-000000000001") {
  domain::User u;
  u.id = user_id;
  u.email = username + "@example.com";
  u.username = username;
  u.created_at = domain::Timestamp{std::chrono::milliseconds{1'760'891'835'123}};
  return app::make_user_registered(u, event_id, u.created_at + std::chrono::milliseconds{333});
}

// The same for a user whose id is its name too (`user`: one of its own per event in a test).
inline domain::EventEnvelope make_event(const std::string& event_id, const std::string& user) {
  return user_registered(event_id, user, user);
}

}  // namespace registrar::testing
