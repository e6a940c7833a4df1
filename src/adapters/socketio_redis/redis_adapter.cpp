#include "adapters/socketio_redis/redis_adapter.hpp"

#include <atomic>

#include <boost/json/serialize.hpp>

#include "adapters/sodium/random_ids.hpp"

namespace registrar::adapters::socketio_redis {

namespace json = boost::json;
using socketio::Broadcast;
using socketio::SioMessage;
using socketio::SioPacket;
using socketio::SioSocket;

void RedisPublisher::publish(const std::string& channel, const std::string& message) {
  try {
    client_.command({"PUBLISH", channel, message}).throw_if_error();
  } catch (const std::exception& e) {
    log_.warn("socket.io redis publish failed", {{"channel", channel}, {"error", e.what()}});
  }
}

RedisAdapter::RedisAdapter(socketio::SioNamespace& nsp, Publisher& publisher, const logging::Logger& log,
                           RedisAdapterOptions options)
    : nsp_(nsp),
      publisher_(publisher),
      log_(log),
      options_(std::move(options)),
      uid_(options_.uid.empty() ? sodium::random_secret_base64url(6) : options_.uid),
      channels_(options_.key, nsp.name()) {
  nsp_.set_adapter(this);
}

RedisAdapter::~RedisAdapter() { nsp_.set_adapter(nullptr); }

void RedisAdapter::subscribe(redis::Subscriber& subscriber) {
  subscriber.psubscribe(channels_.broadcast + "*", [this](std::string_view channel, std::string_view message) {
    on_broadcast_message(channel, message);
  });
  subscriber.subscribe(channels_.request, [this](std::string_view channel, std::string_view message) {
    on_request_message(channel, message);
  });
}

void RedisAdapter::broadcast(const Broadcast& to, const SioPacket& packet) {
  try {
    publisher_.publish(channels_.broadcast_for(to), encode_broadcast({uid_, packet, to, {}}));
  } catch (const std::exception& e) {
    log_.warn("socket.io redis broadcast not published", {{"error", e.what()}});
  }
}

void RedisAdapter::on_broadcast_message(std::string_view channel, std::string_view bytes) {
  if (!channel.starts_with(channels_.broadcast) || channel.size() < channels_.broadcast.size()) return;
  // `<prefix><room>#`: a room none of this process's sockets is in is skipped before decoding.
  std::string_view rest = channel.substr(channels_.broadcast.size());
  if (!rest.empty()) {
    if (!rest.ends_with('#')) return;
    if (!nsp_.has_room(std::string(rest.substr(0, rest.size() - 1)))) return;
  }
  try {
    BroadcastMessage m = decode_broadcast(bytes, options_.limits);
    if (m.uid == uid_) return;                  // our own, already delivered here
    if (m.packet.nsp != nsp_.name()) return;  // another namespace's (the Node adapter ignores those too)
    nsp_.emit_local(m.to, m.packet);
  } catch (const std::exception& e) {
    log_.debug("socket.io redis broadcast ignored", {{"channel", channel}, {"error", e.what()}});
  }
}

void RedisAdapter::on_request_message(std::string_view channel, std::string_view bytes) {
  if (channel != channels_.request) return;
  try {
    handle(decode_request(bytes, options_.limits));
  } catch (const std::exception& e) {
    log_.debug("socket.io redis request ignored", {{"error", e.what()}});
  }
}

void RedisAdapter::on_server_side_emit(std::string event, ServerSideHandler handler) {
  std::lock_guard lock(mutex_);
  server_side_[std::move(event)] = std::move(handler);
}

void RedisAdapter::respond(const json::object& response) {
  publisher_.publish(channels_.response, json::serialize(response));
}

std::shared_ptr<SioSocket> RedisAdapter::socket_by_id(const std::string& id) const {
  for (auto& s : nsp_.sockets(Broadcast{{id}, {}}))  // a socket is in the room of its own id
    if (s->id() == id) return s;
  return nullptr;
}

json::object RedisAdapter::socket_details(const SioSocket& socket) const {
  json::array rooms;
  for (const auto& r : socket.rooms()) rooms.emplace_back(json::string(r));
  // socket.io's handshake, without what registrar does not keep or must not spread: the CONNECT's
  // auth and the request's headers/query carry tokens.
  json::object handshake{{"headers", json::object{}}, {"time", ""},        {"address", ""},
                         {"xdomain", false},          {"secure", false},   {"issued", 0},
                         {"url", ""},                 {"query", json::object{}}, {"auth", json::object{}}};
  return {{"id", socket.id()}, {"handshake", std::move(handshake)}, {"rooms", std::move(rooms)}, {"data", json::object{}}};
}

void RedisAdapter::handle(const Request& request) {
  const auto type = request.type();
  if (!type) return;  // unknown to this version: the Node adapter ignores those too
  const std::string request_id = request.string_field("requestId");
  const bool from_us = request.string_field("uid") == uid_;
  switch (*type) {
    case RequestType::sockets: {
      if (from_us) return;
      json::array ids;
      for (const auto& s : nsp_.sockets(Broadcast{request.rooms("rooms"), {}})) ids.emplace_back(json::string(s->id()));
      respond({{"requestId", request_id}, {"sockets", std::move(ids)}});
      return;
    }
    case RequestType::all_rooms: {
      if (from_us) return;
      json::array rooms;
      for (const auto& r : nsp_.rooms()) rooms.emplace_back(json::string(r));
      respond({{"requestId", request_id}, {"rooms", std::move(rooms)}});
      return;
    }
    case RequestType::remote_fetch: {
      if (from_us) return;
      json::array sockets;
      for (const auto& s : nsp_.sockets(request.opts())) sockets.emplace_back(socket_details(*s));
      respond({{"requestId", request_id}, {"sockets", std::move(sockets)}});
      return;
    }
    case RequestType::remote_join:
    case RequestType::remote_leave: {
      const bool join = *type == RequestType::remote_join;
      if (request.body.contains("opts")) {  // io.socketsJoin / socketsLeave: no answer
        const auto rooms = request.rooms("rooms");
        for (const auto& s : nsp_.sockets(request.opts()))
          for (const auto& r : rooms) join ? s->join(r) : s->leave(r);
        return;
      }
      // The older form, one socket by id: answered by the process that has it.
      auto s = socket_by_id(request.string_field("sid"));
      if (!s) return;
      const std::string room = request.string_field("room");
      join ? s->join(room) : s->leave(room);
      respond({{"requestId", request_id}});
      return;
    }
    case RequestType::remote_disconnect: {
      const json::value* close_v = request.body.if_contains("close");
      const bool close = close_v != nullptr && close_v->is_bool() && close_v->get_bool();
      if (request.body.contains("opts")) {
        for (const auto& s : nsp_.sockets(request.opts())) s->disconnect(close);
        return;
      }
      auto s = socket_by_id(request.string_field("sid"));
      if (!s) return;
      s->disconnect(close);
      respond({{"requestId", request_id}});
      return;
    }
    case RequestType::server_side_emit: {
      if (from_us) return;
      const json::value* data = request.body.if_contains("data");
      if (data == nullptr || !data->is_array() || data->get_array().empty() || !data->get_array().front().is_string())
        throw ProtocolError("SERVER_SIDE_EMIT without [event, ...args]");
      json::array args = data->get_array();
      const std::string event(args.front().get_string());
      args.erase(args.begin());
      ServerSideHandler handler;
      {
        std::lock_guard lock(mutex_);
        if (auto it = server_side_.find(event); it != server_side_.end()) handler = it->second;
      }
      if (!handler) return;
      std::optional<std::function<void(json::value)>> ack;
      if (request.body.contains("requestId")) {
        auto sent = std::make_shared<std::atomic<bool>>(false);
        ack = [this, sent, request_id](json::value reply) {
          if (sent->exchange(true)) return;  // one answer, as the Node adapter
          respond({{"type", static_cast<int>(RequestType::server_side_emit)}, {"requestId", request_id}, {"data", std::move(reply)}});
        };
      }
      handler(std::move(args), std::move(ack));
      return;
    }
    case RequestType::broadcast: {
      if (from_us) return;
      const json::value* packet_json = request.body.if_contains("packet");
      if (packet_json == nullptr) throw ProtocolError("BROADCAST without a packet");
      SioPacket packet = packet_from_json(*packet_json, request.buffers);
      if (packet.nsp != nsp_.name()) return;
      auto event = socketio::event_of(packet);
      if (!event) throw ProtocolError("BROADCAST of a packet that is not an event");
      const auto targets = nsp_.sockets(request.opts());
      respond({{"type", static_cast<int>(RequestType::broadcast_client_count)},
               {"requestId", request_id},
               {"clientCount", targets.size()}});
      for (const auto& s : targets) {
        s->emit_with_ack(event->first, event->second, [this, request_id](SioMessage reply) {
          // The Node adapter forwards the ack's first argument (msgpack: it may hold binaries).
          json::object ack{{"type", static_cast<int>(RequestType::broadcast_ack)}, {"requestId", request_id}};
          ack["packet"] = reply.args.empty() ? json::value(nullptr) : reply.args.front();
          publisher_.publish(channels_.response, json_to_msgpack(ack, reply.buffers));
        });
      }
      return;
    }
    case RequestType::broadcast_client_count:
    case RequestType::broadcast_ack:
      return;  // responses: registrar sends no requests
  }
}

RedisAdapterLink::RedisAdapterLink(const redis::Url& url, socketio::SioNamespace& nsp, const logging::Logger& log,
                                   RedisAdapterOptions options)
    : client_(url, redis::ClientOptions{.client_name = "registrar-socketio"}),
      publisher_(client_, log),
      adapter_(nsp, publisher_, log, std::move(options)),
      subscriber_(url, redis::ClientOptions{.client_name = "registrar-socketio-sub"}) {
  adapter_.subscribe(subscriber_);
  subscriber_.on_connected([&log, nsp_name = nsp.name()] {
    log.info("socket.io redis adapter subscribed", {{"nsp", nsp_name}});
  });
}

}  // namespace registrar::adapters::socketio_redis
