#pragma once
// The messages of npm `@socket.io/redis-adapter` 8 (classic pub/sub, its dist/index.js) and
// `@socket.io/redis-emitter` 5, between the processes that share a namespace through Redis:
//
//  - Broadcasts, on `<key>#<nsp>#` or, for exactly one room, `<key>#<nsp>#<room>#` (psubscribed
//    as `<key>#<nsp>#*`): msgpack (notepack.io) of [uid, packet, {rooms, except, flags}], packet
//    being {type: 2 (EVENT), data: [event, ...args], nsp} with binary arguments as bin. A process
//    ignores its own uid (the emitter's is "emitter").
//  - Requests, on `<key>-request#<nsp>#`: JSON {uid, type, requestId?, ...} (BROADCAST with acks
//    is msgpack, as its packet may hold binaries); a reader tells them apart by a leading '{'.
//  - Responses, on `<key>-response#<nsp>#` (or `…#<uid>#` with publishOnSpecificResponseChannel):
//    JSON {requestId, ...} (BROADCAST_ACK is msgpack).
// The number of processes that answer a request is PUBSUB NUMSUB of the request channel, so a
// process that subscribes to it must answer what it is asked (adapter.hpp says which).
// Pure functions; errors are ProtocolError (or MsgpackError) with what is wrong.
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "adapters/socketio/sio_server.hpp"
#include "adapters/socketio_redis/msgpack_json.hpp"

namespace registrar::adapters::socketio_redis {

struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The adapter's request types (RequestType in its dist/index.js).
enum class RequestType : int {
  sockets = 0,
  all_rooms = 1,
  remote_join = 2,
  remote_leave = 3,
  remote_disconnect = 4,
  remote_fetch = 5,
  server_side_emit = 6,
  broadcast = 7,
  broadcast_client_count = 8,
  broadcast_ack = 9,
};

struct Channels {
  std::string broadcast;  // "<key>#<nsp>#": a room's channel adds "<room>#"
  std::string request;    // "<key>-request#<nsp>#"
  std::string response;   // "<key>-response#<nsp>#"
  Channels(std::string_view key, std::string_view nsp);
  // Where a broadcast to `to` is published: the room's channel for exactly one room.
  std::string broadcast_for(const socketio::Broadcast& to) const;
};

// One broadcast message: [uid, packet, opts].
struct BroadcastMessage {
  std::string uid;
  socketio::SioPacket packet;  // EVENT or BINARY_EVENT (with its buffers), packet.nsp its namespace
  socketio::Broadcast to;      // opts.rooms / opts.except
  boost::json::object flags;   // opts.flags (volatile, compress, local, …), as they came
};

// Throws MsgpackError / ProtocolError: not [string, {type, data, nsp?}, {rooms?, except?, flags?}],
// a packet other than an event, rooms other than strings and numbers.
BroadcastMessage decode_broadcast(std::string_view bytes, const MsgpackLimits& limits = {});
// As @socket.io/redis-adapter writes it: packet {type: 2, data, nsp} (type 2 with binaries too: the
// receiving socket.io encodes them), opts {rooms, except, flags}.
std::string encode_broadcast(const BroadcastMessage& message);

// A request (or a response): its JSON object, and the binaries of a msgpack one.
struct Request {
  boost::json::object body;
  std::vector<std::string> buffers;

  std::optional<RequestType> type() const;  // nullopt: no or an unknown type
  std::string string_field(std::string_view name) const;  // "" when absent or not a string
  // opts {rooms, except} of a request (empty rooms: every socket).
  socketio::Broadcast opts() const;
  // A list of room names (REMOTE_JOIN/LEAVE's `rooms`); a single string is one room.
  std::vector<std::string> rooms(std::string_view name) const;
};

// Throws MsgpackError / ProtocolError (not a JSON or msgpack object).
Request decode_request(std::string_view bytes, const MsgpackLimits& limits = {});

// A packet of a message or a request (an object {type, data, nsp?, id?}) as a SioPacket of `buffers`.
socketio::SioPacket packet_from_json(const boost::json::value& packet, std::vector<std::string> buffers);

}  // namespace registrar::adapters::socketio_redis
