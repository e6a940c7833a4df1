// Engine.IO payloads and frames, and Socket.IO packets, as a client (or anything reaching
// /socket.io/) sends them → the decoders of adapters/socketio.
//
// Input: the first byte chooses the path (polling payload, WebSocket text frame, WebSocket binary
// frame); the rest is the body or the frame.
//
// Invariants (FUZZ_CHECK):
//  - a decoded payload has 1 to max_packets packets, and encodes back to bytes that decode to the
//    same packets (base64 is canonical, so to the very same bytes);
//  - a decoded frame encodes back to the same frame;
//  - every Engine.IO message that is text and decodes as a Socket.IO packet respects the limits
//    (attachments ≤ max_attachments, ack id ≤ 2^53 − 1), and its encoding decodes to an equal packet;
//  - the assembler never yields a binary packet before all its buffers, nor more buffers than it
//    announced.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "adapters/socketio/engineio_packet.hpp"
#include "adapters/socketio/socketio_packet.hpp"
#include "support/check.hpp"

namespace sio = registrar::adapters::socketio;

namespace {

// JSON equality where two doubles may differ in their last bits: Boost.JSON 1.81 parses numbers
// with a fast, imprecise algorithm (a precise mode came in 1.83), so a double written back and read
// again can come back one ulp away (found by this target: 36660000000000000000002086282699.3).
bool same_json(const boost::json::value& a, const boost::json::value& b) {
  if (a.is_double() && b.is_double()) {
    const double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 1e-14 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return a == b;
  if (a.is_array()) {
    const auto &u = a.get_array(), &v = b.get_array();
    if (u.size() != v.size()) return false;
    for (std::size_t i = 0; i < u.size(); ++i)
      if (!same_json(u[i], v[i])) return false;
    return true;
  }
  if (a.is_object()) {
    const auto &u = a.get_object(), &v = b.get_object();
    if (u.size() != v.size()) return false;
    for (const auto& [k, x] : u) {
      const auto* y = v.if_contains(k);
      if (y == nullptr || !same_json(x, *y)) return false;
    }
    return true;
  }
  return a == b;
}

void check_socketio(std::string_view text, const sio::SioLimits& limits) {
  auto p = sio::decode_sio(text, limits);
  if (!p) return;
  FUZZ_CHECK(p->attachments <= limits.max_attachments, "more attachments than the limit");
  FUZZ_CHECK(!p->id || *p->id <= (std::uint64_t{1} << 53) - 1, "an ack id JavaScript cannot hold");
  sio::SioPacket with_buffers = *p;
  with_buffers.buffers.assign(p->attachments, std::string("x"));
  auto again = sio::decode_sio(sio::encode_sio(with_buffers), limits);
  FUZZ_CHECK(again.has_value(), "an encoded packet does not decode");
  FUZZ_CHECK(again->type == p->type && again->nsp == p->nsp && again->id == p->id &&
                 again->attachments == p->attachments && again->data.has_value() == p->data.has_value() &&
                 (!p->data || same_json(*again->data, *p->data)),
             "a packet's encoding decodes to another packet");

  sio::SioAssembler assembler(limits);
  auto r = assembler.on_text(text);
  if (p->attachments == 0) {
    FUZZ_CHECK(r.step == sio::SioAssembler::Step::packet, "a packet without attachments is not complete");
    return;
  }
  for (std::size_t i = 0; i < p->attachments; ++i) {
    FUZZ_CHECK(r.step == sio::SioAssembler::Step::need_more, "a binary packet completed before its buffers");
    r = assembler.on_binary("b");
  }
  FUZZ_CHECK(r.step == sio::SioAssembler::Step::packet && r.packet.buffers.size() == p->attachments,
             "a binary packet not complete with all its buffers");
  FUZZ_CHECK(assembler.on_binary("extra").step == sio::SioAssembler::Step::error, "a buffer nobody announced");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const sio::PayloadLimits payload_limits{.max_packets = 16};
  const sio::SioLimits sio_limits{.max_attachments = 4, .max_depth = 8};
  switch (data[0] % 3) {
    case 0: {
      auto packets = sio::decode_payload(input, payload_limits);
      if (!packets) return 0;
      FUZZ_CHECK(!packets->empty() && packets->size() <= payload_limits.max_packets, "a payload over the limit");
      const std::string encoded = sio::encode_payload(*packets);
      FUZZ_CHECK(encoded == input, "a payload does not encode back to its bytes");
      for (const auto& p : *packets)
        if (p.type == sio::EioType::message && !p.binary) check_socketio(p.data, sio_limits);
      break;
    }
    case 1:
    case 2: {
      const bool binary = data[0] % 3 == 2;
      auto p = sio::decode_ws_frame(input, binary);
      if (!p) return 0;
      FUZZ_CHECK(sio::encode_ws_frame(*p) == input, "a frame does not encode back to its bytes");
      if (p->type == sio::EioType::message && !p->binary) check_socketio(p->data, sio_limits);
      break;
    }
  }
  return 0;
}
