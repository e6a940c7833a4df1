#include "app/events.hpp"

#include <boost/json.hpp>

namespace registrar::app {

namespace json = boost::json;

namespace {

// The envelope every event shares (the NestJS sign-up service's message structure, DESIGN.md):
// {"event": type, "pattern": type, "data": data, "timestamp": now}, keyed by its aggregate.
domain::EventEnvelope envelope(std::string_view type, std::string_view aggregate_id, json::object data,
                               std::string event_id, domain::Timestamp now) {
  json::object body;
  body["event"] = type;
  body["pattern"] = type;
  body["data"] = std::move(data);
  body["timestamp"] = domain::to_iso8601(now);
  domain::EventEnvelope e;
  e.id = std::move(event_id);
  e.type = std::string(type);
  e.aggregate_id = std::string(aggregate_id);
  e.payload = json::serialize(body);
  e.occurred_at = now;
  return e;
}

}  // namespace

domain::EventEnvelope make_user_registered(const domain::User& user, std::string event_id, domain::Timestamp now) {
  json::object data;
  data["id"] = user.id;
  // null for an account without email (a phone account); the phone itself never goes into an
  // event (DESIGN.md: events hold no phone number).
  if (user.email) data["email"] = *user.email;
  else data["email"] = nullptr;
  data["username"] = user.username;
  data["createdAt"] = domain::to_iso8601(user.created_at);
  return envelope(domain::kUserRegistered, user.id, std::move(data), std::move(event_id), now);
}

domain::EventEnvelope make_user_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                                               std::string event_id, domain::Timestamp now) {
  json::object data;
  data["id"] = user_id;
  data["emailVerifiedAt"] = domain::to_iso8601(verified_at);
  return envelope(domain::kUserEmailVerified, user_id, std::move(data), std::move(event_id), now);
}

namespace {

// The first problem found in a body; parse_user_registered() turns it into its error value.
struct Malformed {
  std::string reason;
};

const json::string& required_string(const json::object& o, std::string_view key, std::string_view where) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) throw Malformed{"missing " + std::string(where) + std::string(key)};
  const json::string* s = v->if_string();
  if (s == nullptr || s->empty()) throw Malformed{std::string(where) + std::string(key) + " is not a non-empty string"};
  return *s;
}

domain::Timestamp required_time(const json::object& o, std::string_view key, std::string_view where) {
  const json::string& s = required_string(o, key, where);
  auto t = domain::parse_iso8601(std::string_view(s.data(), s.size()));
  if (!t) throw Malformed{std::string(where) + std::string(key) + " is not an ISO 8601 time"};
  return *t;
}

UserRegistered parse(std::string_view payload) {
  std::error_code ec;
  json::value body = json::parse(payload, ec);
  if (ec) throw Malformed{"the body is not JSON"};
  const json::object* o = body.if_object();
  if (o == nullptr) throw Malformed{"the body is not a JSON object"};
  if (required_string(*o, "event", "") != domain::kUserRegistered) throw Malformed{R"("event" is not "user.registered")"};
  if (required_string(*o, "pattern", "") != domain::kUserRegistered)
    throw Malformed{R"("pattern" is not "user.registered")"};
  const json::value* data_value = o->if_contains("data");
  const json::object* data = data_value ? data_value->if_object() : nullptr;
  if (data == nullptr) throw Malformed{R"("data" is missing or not an object)"};
  UserRegistered u;
  u.user_id = std::string(required_string(*data, "id", "data."));
  // data.email: a non-empty string, or null for an account without email (phone accounts).
  const json::value* email = data->if_contains("email");
  if (email == nullptr) throw Malformed{"missing data.email"};
  if (!email->is_null()) u.email = std::string(required_string(*data, "email", "data."));
  u.username = std::string(required_string(*data, "username", "data."));
  u.created_at = required_time(*data, "createdAt", "data.");
  u.timestamp = required_time(*o, "timestamp", "");
  return u;
}

}  // namespace

domain::Expected<UserRegistered, std::string> parse_user_registered(const domain::EventEnvelope& event) {
  try {
    return parse(event.payload);
  } catch (const Malformed& m) {
    return domain::make_error<UserRegistered>("user.registered: " + m.reason);
  }
}

}  // namespace registrar::app
