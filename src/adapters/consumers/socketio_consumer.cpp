#include "adapters/consumers/socketio_consumer.hpp"

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "app/events.hpp"
#include "domain/time.hpp"

namespace registrar::adapters::consumers {

void SocketIoConsumer::handle(const domain::EventEnvelope& event) {
  if (is_other_event_type(event)) return;
  const auto user = app::parse_user_registered(event);
  if (!user) throw MalformedEvent(user.error());
  boost::json::object data{{"id", user->user_id},
                           {"email", user->email ? boost::json::value(*user->email) : boost::json::value(nullptr)},
                           {"username", user->username},
                           {"createdAt", domain::to_iso8601(user->created_at)}};
  hub_.broadcast({.rooms = {user->user_id, ports::kAdminsRoom}, .event = "user.registered", .json = boost::json::serialize(data)});
}

}  // namespace registrar::adapters::consumers
