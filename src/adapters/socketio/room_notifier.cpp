#include "adapters/socketio/room_notifier.hpp"

namespace registrar::adapters::socketio {

void RoomNotifier::notify(const ports::Notification& n) {
  if (n.room.empty()) return;
  SioMessage m;
  m.args.push_back(boost::json::object{{"id", n.id}, {"success", n.success}, {"message", n.message}});
  nsp_.emit(Broadcast{{n.room}, {}}, "notification", m);
}

}  // namespace registrar::adapters::socketio
