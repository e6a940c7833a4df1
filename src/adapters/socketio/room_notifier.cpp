#include "adapters/socketio/room_notifier.hpp"

#include <boost/json/parse.hpp>
#include <stdexcept>

namespace registrar::adapters::socketio {

void RoomNotifier::notify(const ports::Notification& n) {
  if (n.room.empty()) return;
  SioMessage m;
  m.args.push_back(boost::json::object{{"id", n.id}, {"success", n.success}, {"message", n.message}});
  nsp_.emit(Broadcast{{n.room}, {}}, "notification", m);
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
