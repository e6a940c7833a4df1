#include "adapters/socketio_redis/adapter_protocol.hpp"

#include <algorithm>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace registrar::adapters::socketio_redis {

namespace json = boost::json;
using socketio::Broadcast;
using socketio::SioPacket;
using socketio::SioType;

Channels::Channels(std::string_view key, std::string_view nsp)
    : broadcast(std::string(key) + "#" + std::string(nsp) + "#"),
      request(std::string(key) + "-request#" + std::string(nsp) + "#"),
      response(std::string(key) + "-response#" + std::string(nsp) + "#") {}

std::string Channels::broadcast_for(const Broadcast& to) const {
  // The adapter counts distinct rooms (a Set): ["a", "a"] is one room.
  if (!to.rooms.empty() && std::all_of(to.rooms.begin(), to.rooms.end(), [&](const auto& r) { return r == to.rooms.front(); }))
    return broadcast + to.rooms.front() + "#";
  return broadcast;
}

namespace {

// A room name: a string, or a number (socket.io allows numeric rooms; JS keys them as strings).
std::string room_name(const json::value& v) {
  if (v.is_string()) return std::string(v.get_string());
  if (v.is_int64()) return std::to_string(v.get_int64());
  if (v.is_uint64()) return std::to_string(v.get_uint64());
  throw ProtocolError("a room that is neither a string nor an integer");
}

std::vector<std::string> room_list(const json::object& o, std::string_view name) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(name);
  if (v == nullptr || v->is_null()) return out;
  if (v->is_string()) return {std::string(v->get_string())};
  if (!v->is_array()) throw ProtocolError("`" + std::string(name) + "` is not a list of rooms");
  for (const auto& r : v->get_array()) {
    std::string room = room_name(r);
    if (std::find(out.begin(), out.end(), room) == out.end()) out.push_back(std::move(room));
  }
  return out;
}

json::array room_array(const std::vector<std::string>& rooms) {
  json::array a;
  for (const auto& r : rooms) a.emplace_back(json::string(r));
  return a;
}

}  // namespace

SioPacket packet_from_json(const json::value& packet, std::vector<std::string> buffers) {
  if (!packet.is_object()) throw ProtocolError("the packet is not an object");
  const json::object& p = packet.get_object();
  const json::value* type = p.if_contains("type");
  if (type == nullptr || !type->is_int64()) throw ProtocolError("the packet has no numeric type");
  const auto t = type->get_int64();
  if (t != static_cast<int>(SioType::event) && t != static_cast<int>(SioType::binary_event))
    throw ProtocolError("a packet of type " + std::to_string(t) + ": only events are broadcast");
  const json::value* data = p.if_contains("data");
  if (data == nullptr || !data->is_array() || data->get_array().empty())
    throw ProtocolError("the packet's data is not [event, ...args]");
  const json::value& name = data->get_array().front();
  if (!name.is_string() && !name.is_number()) throw ProtocolError("the packet's event name is not a string");
  SioPacket out;
  out.nsp = "/";  // the adapter: a packet without nsp is the main namespace's
  if (const json::value* nsp = p.if_contains("nsp"); nsp != nullptr && !nsp->is_null()) {
    if (!nsp->is_string()) throw ProtocolError("the packet's nsp is not a string");
    out.nsp = std::string(nsp->get_string());
  }
  out.type = buffers.empty() ? SioType::event : SioType::binary_event;
  out.data = *data;
  out.attachments = buffers.size();
  out.buffers = std::move(buffers);
  return out;
}

BroadcastMessage decode_broadcast(std::string_view bytes, const MsgpackLimits& limits) {
  JsonWithBuffers decoded = msgpack_to_json(bytes, limits);
  if (!decoded.value.is_array() || decoded.value.get_array().size() != 3)
    throw ProtocolError("a broadcast is not [uid, packet, opts]");
  const json::array& a = decoded.value.get_array();
  BroadcastMessage m;
  if (!a[0].is_string()) throw ProtocolError("the broadcast's uid is not a string");
  m.uid = std::string(a[0].get_string());
  m.packet = packet_from_json(a[1], std::move(decoded.buffers));
  if (!a[2].is_object()) throw ProtocolError("the broadcast's opts are not an object");
  const json::object& opts = a[2].get_object();
  m.to.rooms = room_list(opts, "rooms");
  m.to.except = room_list(opts, "except");
  if (const json::value* flags = opts.if_contains("flags"); flags != nullptr && flags->is_object())
    m.flags = flags->get_object();
  return m;
}

std::string encode_broadcast(const BroadcastMessage& message) {
  json::object packet;
  packet["type"] = static_cast<int>(SioType::event);
  packet["data"] = message.packet.data ? *message.packet.data : json::value(json::array{});
  packet["nsp"] = message.packet.nsp;
  json::object opts;
  opts["rooms"] = room_array(message.to.rooms);
  opts["except"] = room_array(message.to.except);
  opts["flags"] = message.flags;
  json::array whole;
  whole.emplace_back(json::string(message.uid));
  whole.emplace_back(std::move(packet));
  whole.emplace_back(std::move(opts));
  return json_to_msgpack(whole, message.packet.buffers);
}

Request decode_request(std::string_view bytes, const MsgpackLimits& limits) {
  if (bytes.empty()) throw ProtocolError("an empty request");
  Request r;
  if (bytes.front() == '{') {  // JSON, as the adapter tells them apart
    if (bytes.size() > limits.max_bytes) throw ProtocolError("a request larger than the limit");
    json::parse_options options;
    options.max_depth = limits.max_depth;
    std::error_code ec;
    json::value v = json::parse(bytes, ec, json::storage_ptr(), options);
    if (ec) throw ProtocolError("a request that is not JSON: " + ec.message());
    r.body = std::move(v.as_object());
    return r;
  }
  JsonWithBuffers decoded = msgpack_to_json(bytes, limits);
  if (!decoded.value.is_object()) throw ProtocolError("a request that is not an object");
  r.body = std::move(decoded.value.get_object());
  r.buffers = std::move(decoded.buffers);
  return r;
}

std::optional<RequestType> Request::type() const {
  const json::value* t = body.if_contains("type");
  if (t == nullptr || !t->is_int64()) return std::nullopt;
  const auto v = t->get_int64();
  if (v < 0 || v > static_cast<int>(RequestType::broadcast_ack)) return std::nullopt;
  return static_cast<RequestType>(v);
}

std::string Request::string_field(std::string_view name) const {
  const json::value* v = body.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

Broadcast Request::opts() const {
  Broadcast b;
  const json::value* o = body.if_contains("opts");
  if (o == nullptr || !o->is_object()) return b;
  b.rooms = room_list(o->get_object(), "rooms");
  b.except = room_list(o->get_object(), "except");
  return b;
}

std::vector<std::string> Request::rooms(std::string_view name) const { return room_list(body, name); }

}  // namespace registrar::adapters::socketio_redis
