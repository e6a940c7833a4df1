#pragma once
// A publish-only Socket.IO emitter, as npm `@socket.io/redis-emitter` 5: a process without Socket.IO
// clients of its own (`registrar worker`) emits to the rooms of every process that shares the
// namespace through Redis (registrar `serve` with --redis-url, Node servers with
// @socket.io/redis-adapter). Its messages carry uid "emitter", as the Node emitter's.
#include <memory>
#include <string>
#include <string_view>

#include "adapters/logging/json_logger.hpp"
#include "adapters/redis/client.hpp"
#include "adapters/socketio/sio_server.hpp"
#include "adapters/socketio_redis/adapter_protocol.hpp"
#include "adapters/socketio_redis/redis_adapter.hpp"
#include "ports/notifier.hpp"

namespace registrar::adapters::socketio_redis {

class RedisEmitter {
 public:
  explicit RedisEmitter(Publisher& publisher, std::string nsp = "/", std::string key = "socket.io")
      : publisher_(publisher), nsp_(std::move(nsp)), channels_(key, nsp_) {}

  // Publishes event `event` with `message` to the sockets `to` selects, in every process.
  void emit(const socketio::Broadcast& to, std::string_view event, const socketio::SioMessage& message);

 private:
  Publisher& publisher_;
  const std::string nsp_;
  const Channels channels_;
};

// The worker's Notifier with --redis-url: Create_User outcomes as `notification` to the room of the
// verification session (as RoomNotifier does in `serve`), through Redis, on its own connection.
class RedisEmitterNotifier final : public ports::Notifier {
 public:
  RedisEmitterNotifier(const redis::Url& url, const logging::Logger& log);
  void notify(const ports::Notification& n) override;

 private:
  redis::Client client_;
  RedisPublisher publisher_;
  RedisEmitter emitter_;
};

}  // namespace registrar::adapters::socketio_redis
