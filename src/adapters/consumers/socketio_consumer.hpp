#pragma once
// The built-in "socketio" consumer: each `user.registered` is pushed live over Socket.IO, as event
// `user.registered`, to the account's own sockets (the room of its id: clients connected with one
// of its access tokens) and to the `admins` room (clients connected with the admin token) — the
// "notify the admin of a new user" that sign-up services are built with.
//
// Its payload is the event's `data`: {"id","email","username","createdAt"} (email null for a phone
// account; no phone number, ever: the event has none).
//
// At least once, like every consumer: a redelivered event (after a failure elsewhere in a batch or
// a crash before the ack) is pushed again; a client that must not see one twice keys on `id`.
// Nothing is recorded in ProcessedEvents: a live push to whoever is connected now is not an effect
// worth a database write per sign-up.
#include <string>

#include "adapters/consumers/builtin.hpp"
#include "ports/event_bus.hpp"
#include "ports/room_broadcaster.hpp"

namespace registrar::adapters::consumers {

class SocketIoConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "socketio";

  explicit SocketIoConsumer(ports::RoomBroadcaster& hub) : hub_(hub) {}

  std::string name() const override { return kName; }
  void handle(const domain::EventEnvelope& event) override;

 private:
  ports::RoomBroadcaster& hub_;
};

}  // namespace registrar::adapters::consumers
