#pragma once
// The Notifier of the Socket.IO hub: a Create_User outcome goes to the sockets in the room of its
// verification session as event `notification` {"id","success","message"} (DESIGN.md,
// "Notifications over Socket.IO"), on this process's sockets of the namespace. Never blocks: each
// socket's Engine.IO queue is bounded and a slow client is dropped.
#include "adapters/socketio/sio_server.hpp"
#include "ports/notifier.hpp"
#include "ports/room_broadcaster.hpp"

namespace registrar::adapters::socketio {

// The event's argument: {"id","success","message"} (also what the Redis emitter publishes).
SioMessage notification_message(const ports::Notification& n);

class RoomNotifier final : public ports::Notifier {
 public:
  explicit RoomNotifier(SioNamespace& nsp) : nsp_(nsp) {}
  void notify(const ports::Notification& n) override;

 private:
  SioNamespace& nsp_;
};

// The RoomBroadcaster of the Socket.IO hub: the event to the namespace's sockets in its rooms (each
// once), its JSON as the one argument.
class RoomBroadcast final : public ports::RoomBroadcaster {
 public:
  explicit RoomBroadcast(SioNamespace& nsp) : nsp_(nsp) {}
  void broadcast(const ports::RoomEvent& event) override;

 private:
  SioNamespace& nsp_;
};

}  // namespace registrar::adapters::socketio
