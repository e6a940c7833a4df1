#include "adapters/socketio/sio_engine_bridge.hpp"

#include <utility>
#include <vector>

namespace registrar::adapters::socketio {

void serve_socketio(SioServer& sio, const std::shared_ptr<EngineSocket>& socket, boost::asio::any_io_executor executor) {
  // The session is the connection's link (held weakly: the session owns the connection).
  auto connection = sio.accept(socket, std::move(executor));
  // The session owns the connection (attach); its handlers, which never outlive it, point to it.
  SioConnection* c = connection.get();
  socket->attach(std::move(connection));
  socket->on_message([c](std::string data, bool binary) {
    if (binary) c->on_binary(std::move(data));
    else c->on_text(data);
  });
  socket->on_close([c](const std::string& reason) { c->on_close(reason); });
}

}  // namespace registrar::adapters::socketio
