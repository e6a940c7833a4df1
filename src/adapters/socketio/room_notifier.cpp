#include "adapters/socketio/room_notifier.hpp"

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

}  // namespace registrar::adapters::socketio
