#pragma once
// Serves Socket.IO on an Engine.IO connection: the Engine.IO socket's messages go to a
// SioConnection (sio_server.hpp), whose packets go out on that socket.
#include <boost/asio/any_io_executor.hpp>
#include <memory>

#include "adapters/socketio/engineio_server.hpp"
#include "adapters/socketio/sio_server.hpp"

namespace registrar::adapters::socketio {

// Call from the EngineServer's on_connection (the socket's handlers are set here). `executor`
// runs the Socket.IO connect timer.
void serve_socketio(SioServer& sio, const std::shared_ptr<EngineSocket>& socket, boost::asio::any_io_executor executor);

}  // namespace registrar::adapters::socketio
