#pragma once
// Socket.IO protocol 5 packets inside Engine.IO message packets, as npm `socket.io-parser` 4
// writes and reads them (https://github.com/socketio/socket.io-protocol, "Packet encoding"):
//
//   <type>[<attachments>-][<namespace>,][<ack id>][<JSON>]
//
//   types  0 CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT, 6 BINARY_ACK
//   the namespace is written only when it is not "/"; a binary packet's buffers follow it as that
//   many binary Engine.IO messages, and its JSON holds {"_placeholder":true,"num":<i>} where
//   buffer i goes.
//
// Decoding refuses what socket.io-parser refuses (its Decoder.isPayloadValid): CONNECT's payload
// must be an object (or absent), DISCONNECT has none, CONNECT_ERROR a string or an object, EVENT an
// array whose first element is a number or a string other than the reserved event names, ACK an
// array. And what registrar bounds besides: attachments, JSON depth, ack ids beyond 2^53 − 1.
// Pure functions, no I/O (hand-written: nothing in Debian speaks Socket.IO).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "domain/expected.hpp"

namespace registrar::adapters::socketio {

enum class SioType : int {
  connect = 0,
  disconnect = 1,
  event = 2,
  ack = 3,
  connect_error = 4,
  binary_event = 5,
  binary_ack = 6,
};

struct SioPacket {
  SioType type = SioType::event;
  std::string nsp = "/";
  std::optional<std::uint64_t> id;         // the ack id
  std::optional<boost::json::value> data;  // absent: no JSON after the header
  std::size_t attachments = 0;             // binary types: how many buffers follow
  std::vector<std::string> buffers;        // binary types, once they have all arrived
};

struct SioLimits {
  std::size_t max_attachments = 10;  // buffers per packet (socket.io-parser's default is 10)
  std::size_t max_depth = 32;        // JSON nesting
};

// The header and JSON of a packet (its buffers, for a binary one, come after: SioAssembler).
// The error says what is wrong, for the log.
domain::Expected<SioPacket, std::string> decode_sio(std::string_view text, const SioLimits& limits = {});

// The text of a packet (without its buffers: send packet.buffers after it, in order, as binary
// messages). For binary types, `attachments` is written as packet.buffers.size().
std::string encode_sio(const SioPacket& packet);

// Reassembles binary packets: a BINARY_EVENT / BINARY_ACK header, then its buffers one by one.
class SioAssembler {
 public:
  explicit SioAssembler(SioLimits limits = {}) : limits_(limits) {}

  enum class Step { packet, need_more, error };
  struct Result {
    Step step = Step::need_more;
    SioPacket packet;   // Step::packet
    std::string error;  // Step::error: the connection is to be closed
  };
  // A text message from Engine.IO.
  Result on_text(std::string_view text);
  // A binary message from Engine.IO: the next buffer of the pending packet (an error without one).
  Result on_binary(std::string data);
  // No packet waits for its attachments.
  bool idle() const { return !pending_; }

 private:
  SioLimits limits_;
  std::optional<SioPacket> pending_;
};

}  // namespace registrar::adapters::socketio
