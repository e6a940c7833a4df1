#pragma once
// Socket.IO across processes through Redis, in the format of npm `@socket.io/redis-adapter` 8
// (classic pub/sub; adapter_protocol.hpp has the messages): registrar `serve` processes, Node
// socket.io servers with that adapter and `@socket.io/redis-emitter` publishers share rooms.
//
// RedisAdapter is one namespace's adapter (SioAdapter): the namespace's emits are published too
// (on the room's channel for exactly one room, as the Node adapter does); broadcasts published by
// the other processes are delivered to this process's sockets that their rooms/except select (its
// own, by uid, are skipped); and requests on the request channel are answered, since every
// subscriber of that channel counts in the Node adapter's PUBSUB NUMSUB and is waited for:
//   SOCKETS, ALL_ROOMS, REMOTE_FETCH        answered with this process's sockets / rooms
//                                           (REMOTE_FETCH's handshake withholds headers, query
//                                           and auth: they hold tokens)
//   REMOTE_JOIN / LEAVE / DISCONNECT        done on the selected sockets (answered for one sid)
//   SERVER_SIDE_EMIT                        to the handler of its event, if any (none: ignored,
//                                           as a socket.io server without a listener does)
//   BROADCAST (emit with acks)              client count, then each client's ack
// Publishing waits for Redis (on the emitting thread, at most the client's command timeout);
// while Redis is down, a publish fails and is logged: pub/sub keeps nothing for later anyway.
// Subscriptions are renewed by the Subscriber on every reconnect.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/array.hpp>

#include "adapters/logging/json_logger.hpp"
#include "adapters/redis/client.hpp"
#include "adapters/socketio/sio_server.hpp"
#include "adapters/socketio_redis/adapter_protocol.hpp"

namespace registrar::adapters::socketio_redis {

// Where the adapter's messages go (Redis PUBLISH; a fake in the tests). Must not throw.
class Publisher {
 public:
  virtual ~Publisher() = default;
  virtual void publish(const std::string& channel, const std::string& message) = 0;
};

// PUBLISH on a Redis client; a failure is logged (warn) and dropped.
class RedisPublisher final : public Publisher {
 public:
  RedisPublisher(redis::Client& client, const logging::Logger& log) : client_(client), log_(log) {}
  void publish(const std::string& channel, const std::string& message) override;

 private:
  redis::Client& client_;
  const logging::Logger& log_;
};

struct RedisAdapterOptions {
  std::string key = "socket.io";  // the Node adapter's `key` option (channel prefix)
  std::string uid;                // empty: a random one (the Node adapter's uid2(6))
  MsgpackLimits limits{};
};

class RedisAdapter final : public socketio::SioAdapter {
 public:
  // An event another process sent with io.serverSideEmit(event, ...args[, ack]): `ack` (when it
  // asked for one) answers with one value.
  using ServerSideHandler = std::function<void(boost::json::array args, std::optional<std::function<void(boost::json::value)>> ack)>;

  // Becomes `nsp`'s adapter until destroyed. `nsp`, `publisher` and `log` must outlive it.
  RedisAdapter(socketio::SioNamespace& nsp, Publisher& publisher, const logging::Logger& log, RedisAdapterOptions options = {});
  ~RedisAdapter() override;
  RedisAdapter(const RedisAdapter&) = delete;
  RedisAdapter& operator=(const RedisAdapter&) = delete;

  // PSUBSCRIBE `<key>#<nsp>#*` and SUBSCRIBE `<key>-request#<nsp>#` on `subscriber`, which must
  // not outlive this adapter's use (destroy it first).
  void subscribe(redis::Subscriber& subscriber);

  void broadcast(const socketio::Broadcast& to, const socketio::SioPacket& packet) override;

  // What arrives on the subscriptions (public for the tests). Malformed input is logged (debug)
  // and dropped; never throws.
  void on_broadcast_message(std::string_view channel, std::string_view bytes);
  void on_request_message(std::string_view channel, std::string_view bytes);

  void on_server_side_emit(std::string event, ServerSideHandler handler);

  const std::string& uid() const { return uid_; }
  const Channels& channels() const { return channels_; }

 private:
  void handle(const Request& request);
  void respond(const boost::json::object& response);
  boost::json::object socket_details(const socketio::SioSocket& socket) const;
  std::shared_ptr<socketio::SioSocket> socket_by_id(const std::string& id) const;

  socketio::SioNamespace& nsp_;
  Publisher& publisher_;
  const logging::Logger& log_;
  const RedisAdapterOptions options_;
  const std::string uid_;
  const Channels channels_;
  std::mutex mutex_;
  std::map<std::string, ServerSideHandler, std::less<>> server_side_;
};

// A namespace's RedisAdapter with its own Redis connections (one to publish, one subscribed), in
// the order that lets it stop safely: the subscriber (whose thread calls the adapter) goes first.
class RedisAdapterLink {
 public:
  RedisAdapterLink(const redis::Url& url, socketio::SioNamespace& nsp, const logging::Logger& log,
                   RedisAdapterOptions options = {});
  RedisAdapter& adapter() { return adapter_; }

 private:
  redis::Client client_;
  RedisPublisher publisher_;
  RedisAdapter adapter_;
  redis::Subscriber subscriber_;
};

}  // namespace registrar::adapters::socketio_redis
