#include "adapters/socketio_redis/redis_emitter.hpp"

#include "adapters/socketio/room_notifier.hpp"

namespace registrar::adapters::socketio_redis {

namespace json = boost::json;

void RedisEmitter::emit(const socketio::Broadcast& to, std::string_view event, const socketio::SioMessage& message) {
  json::array data;
  data.reserve(message.args.size() + 1);
  data.emplace_back(json::string(event));
  for (const auto& a : message.args) data.push_back(a);
  BroadcastMessage m;
  m.uid = "emitter";
  m.packet.nsp = nsp_;
  m.packet.data = json::value(std::move(data));
  m.packet.buffers = message.buffers;
  m.to = to;
  publisher_.publish(channels_.broadcast_for(to), encode_broadcast(m));
}

RedisEmitterNotifier::RedisEmitterNotifier(const redis::Url& url, const logging::Logger& log)
    : client_(url, redis::ClientOptions{.client_name = "registrar-socketio-emitter"}), publisher_(client_, log), emitter_(publisher_) {}

void RedisEmitterNotifier::notify(const ports::Notification& n) {
  if (n.room.empty()) return;
  emitter_.emit(socketio::Broadcast{{n.room}, {}}, "notification", socketio::notification_message(n));
}

}  // namespace registrar::adapters::socketio_redis
