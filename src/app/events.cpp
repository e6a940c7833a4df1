#include "app/events.hpp"
#include <boost/json.hpp>

namespace registrar::app {

domain::EventEnvelope make_user_registered(const domain::User& user, std::string event_id, domain::Timestamp now) {
  namespace json = boost::json;
  json::object data;
  data["id"] = user.id;
  data["email"] = user.email;
  data["username"] = user.username;
  data["createdAt"] = domain::to_iso8601(user.created_at);
  json::object body;
  body["event"] = domain::kUserRegistered;
  body["pattern"] = domain::kUserRegistered;
  body["data"] = std::move(data);
  body["timestamp"] = domain::to_iso8601(now);
  domain::EventEnvelope e;
  e.id = std::move(event_id);
  e.type = std::string(domain::kUserRegistered);
  e.aggregate_id = user.id;
  e.payload = json::serialize(body);
  e.occurred_at = now;
  return e;
}

}  // namespace registrar::app
