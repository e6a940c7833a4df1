#pragma once
// Pushes an event to live clients: the sockets in any of a set of rooms (the Socket.IO hub, and
// through it the other processes' hubs). For events of the domain that a user or an admin watches
// live (`user.registered`); the Create_User outcome has its own port (notifier.hpp). Best effort:
// a socket that is gone or too slow misses it; nothing is kept for later.
#include <string>
#include <vector>

namespace registrar::ports {

// The room of the clients that connected with the admin token: they watch every account.
inline constexpr const char* kAdminsRoom = "admins";

struct RoomEvent {
  std::vector<std::string> rooms;  // the sockets in any of them (each socket once)
  std::string event;               // the event's name
  std::string json;                // its one argument, a JSON text
};

class RoomBroadcaster {
 public:
  virtual ~RoomBroadcaster() = default;
  // Never blocks for long (callers are event consumers and job workers). Throws
  // std::invalid_argument if `json` is not JSON.
  virtual void broadcast(const RoomEvent& event) = 0;
};

}  // namespace registrar::ports
