#include "adapters/socketio/room_notifier.hpp"

#include <boost/json/parse.hpp>
#include <stdexcept>

namespace registrar::adapters::socketio {

SioMessage notification_message(const ports::Notification& n) {
  SioMessage m;
  m.args.push_back(boost::json::object{{"id", n.id}, {"success", n.success}, {"message", n.message}});
  return m;
}

void RoomNotifier::notify(const ports::Notification& n) {
  if (n.room.empty()) return;
  nsp_.emit(Broadcast{{n.room}, {}}, "notification", notification_message(n));
}

void RoomBroadcast::broadcast(const ports::RoomEvent& event) {
  boost::system::error_code ec;
  auto value = boost::json::parse(event.json, ec);
  if (ec) throw std::invalid_argument("RoomBroadcast: the payload of " + event.event + " is not JSON: " + ec.message());
  SioMessage m;
  m.args.push_back(std::move(value));
  nsp_.emit(Broadcast{event.rooms, {}}, event.event, m);
}

}  // namespace registrar::adapters::socketio
