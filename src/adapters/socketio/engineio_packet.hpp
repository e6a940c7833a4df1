#pragma once
// Engine.IO protocol 4 packets, as the reference implementation (npm `engine.io-parser` 5) writes
// and reads them; the protocol: https://github.com/socketio/engine.io-protocol ("Packet encoding").
//
//   packet types   0 open, 1 close, 2 ping, 3 pong, 4 message, 5 upgrade, 6 noop
//   WebSocket      one packet per frame: a text frame is "<type digit><data>"; a binary frame is
//                  a binary message as it stands (no type digit)
//   HTTP polling   a payload: packets joined by "\x1e" (record separator); a binary message is
//                  "b" + the base64 of its bytes
//
// Hand-written because nothing in Debian (or Boost) speaks Engine.IO; the format is small and its
// corner cases are pinned by tests/unit/engineio_packet_test.cpp and fuzz/fuzz_socketio.cpp.
// Pure functions, no I/O.
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace registrar::adapters::socketio {

enum class EioType : char {
  open = '0',
  close = '1',
  ping = '2',
  pong = '3',
  message = '4',
  upgrade = '5',
  noop = '6',
};

struct EioPacket {
  EioType type = EioType::message;
  std::string data;     // the text after the type digit, or a binary message's bytes
  bool binary = false;  // a binary message (type message only)

  friend bool operator==(const EioPacket&, const EioPacket&) = default;
};

// The packet a WebSocket frame carries: `binary_frame` says the frame's opcode. Nothing for an
// empty text frame or an unknown type digit (the protocol closes the session on either).
std::optional<EioPacket> decode_ws_frame(std::string_view frame, bool binary_frame);

// The frame of a packet (send it as a binary frame when packet.binary, else as text).
std::string encode_ws_frame(const EioPacket& packet);

struct PayloadLimits {
  std::size_t max_packets = 256;  // packets in one payload (a POST body)
};

// The packets of an HTTP long-polling payload. Nothing when it is malformed: empty, an empty
// packet, an unknown type, a "b" packet whose base64 is not canonical, or more than
// limits.max_packets packets. (The body's size is bounded before, by maxPayload.)
std::optional<std::vector<EioPacket>> decode_payload(std::string_view body, const PayloadLimits& limits = {});

// A payload of `packets` (at least one), binary messages in base64.
std::string encode_payload(std::span<const EioPacket> packets);

}  // namespace registrar::adapters::socketio
