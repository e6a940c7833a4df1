#pragma once
// What the Socket.IO layer (sio_server.hpp) needs from one Engine.IO connection, whichever
// transport carries it now (polling, WebSocket, or the upgrade between them): send messages, close.
// The Engine.IO server (engineio_server.hpp) implements it and feeds the Socket.IO layer the
// messages it receives (SioConnection::on_text / on_binary / on_close).
#include <string>
#include <vector>

namespace registrar::adapters::socketio {

// One Engine.IO message: text, or binary bytes.
struct EngineMessage {
  std::string data;
  bool binary = false;
};

class EngineLink {
 public:
  virtual ~EngineLink() = default;
  // Queues `messages` to go out together and in order (a binary Socket.IO packet is a text header
  // and its buffers: nothing may come between them). Callable from any thread; never blocks: a
  // client whose queue is full is dropped by the Engine.IO layer, it never delays the caller.
  virtual void send(std::vector<EngineMessage> messages) = 0;
  // Closes the Engine.IO connection (any thread). The Socket.IO layer is told through on_close.
  virtual void close() = 0;
};

}  // namespace registrar::adapters::socketio
