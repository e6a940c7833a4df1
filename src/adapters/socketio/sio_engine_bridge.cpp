#include "adapters/socketio/sio_engine_bridge.hpp"

#include <mutex>
#include <utility>
#include <vector>

namespace registrar::adapters::socketio {

namespace {

// The Socket.IO side's view of an Engine.IO socket. Weak: the Engine.IO session owns its socket
// (and, through its handlers, the SioConnection that owns this link).
class SocketLink final : public EngineLink {
 public:
  explicit SocketLink(std::weak_ptr<EngineSocket> socket) : socket_(std::move(socket)) {}

  void send(std::vector<EngineMessage> messages) override {
    auto s = socket_.lock();
    if (!s) return;
    // One packet's header and buffers queue one after the other, whatever other threads send.
    std::lock_guard lock(mutex_);
    for (auto& m : messages) {
      const bool queued = m.binary ? s->send_binary(std::move(m.data)) : s->send_text(std::move(m.data));
      if (!queued) return;  // closed (or dropped: its queue was full)
    }
  }
  void close() override {
    if (auto s = socket_.lock()) s->close();
  }

 private:
  std::weak_ptr<EngineSocket> socket_;
  std::mutex mutex_;
};

}  // namespace

void serve_socketio(SioServer& sio, const std::shared_ptr<EngineSocket>& socket, boost::asio::any_io_executor executor) {
  auto connection = sio.accept(std::make_shared<SocketLink>(socket), std::move(executor));
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
