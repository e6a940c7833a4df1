// Messages of the Socket.IO Redis adapter as they arrive from Redis (any process may publish on
// the channels) → the decoders of adapters/socketio_redis (msgpack with notepack's extension types,
// the broadcast [uid, packet, opts], the JSON-or-msgpack requests).
//
// Input: the first byte chooses the path (0: a broadcast, 1: a request, 2: msgpack alone); the
// rest is the message.
//
// Invariants (FUZZ_CHECK):
//  - the decoders throw nothing but MsgpackError / ProtocolError (anything else escapes and crashes);
//  - a decoded value respects the limits (depth: max_depth containers, plus the levels a binary's
//    placeholder adds; binaries) and its placeholders refer to buffers;
//  - what is decoded encodes to msgpack that decodes to the same value (binaries compared by bytes);
//  - a broadcast's packet is an event ([name, ...args]), BINARY_EVENT exactly when it has buffers,
//    and encode_broadcast → decode_broadcast gives the same uid, namespace, rooms, except and data.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

#include "adapters/socketio_redis/adapter_protocol.hpp"
#include "adapters/socketio_redis/msgpack_json.hpp"
#include "support/check.hpp"

namespace sr = registrar::adapters::socketio_redis;
namespace json = boost::json;

namespace {

const sr::MsgpackLimits kLimits{.max_bytes = 1 << 16, .max_depth = 8, .max_elements = 1000, .max_binaries = 4};
// For decoding again what was encoded: a literal {"_placeholder":true,"num":i} map becomes a bin on
// the way back, so there may be more binaries than the first time.
const sr::MsgpackLimits kRelaxed{.max_bytes = 1 << 20, .max_depth = 16, .max_elements = 100000, .max_binaries = 1 << 16};

std::size_t depth(const json::value& v) {
  std::size_t d = 0;
  if (v.is_array())
    for (const auto& e : v.get_array()) d = std::max(d, depth(e));
  else if (v.is_object())
    for (const auto& kv : v.get_object()) d = std::max(d, depth(kv.value()));
  else
    return 0;
  return d + 1;
}

bool placeholders_in_range(const json::value& v, std::size_t buffers) {
  if (v.is_array()) {
    for (const auto& e : v.get_array())
      if (!placeholders_in_range(e, buffers)) return false;
  } else if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.size() == 2 && o.contains("_placeholder") && o.contains("num") && o.at("_placeholder") == true &&
        o.at("num").is_int64())
      return true;  // a literal one may be out of range; those the decoder makes are checked below
    for (const auto& kv : o)
      if (!placeholders_in_range(kv.value(), buffers)) return false;
  }
  return true;
}

// The value with each placeholder that refers to a buffer replaced by {"$bin": bytes}: equal for
// the same data, whichever order the buffers were numbered in. Numbers compare as JS numbers.
json::value resolved(const json::value& v, const std::vector<std::string>& buffers) {
  if (v.is_array()) {
    json::array a;
    for (const auto& e : v.get_array()) a.push_back(resolved(e, buffers));
    return a;
  }
  if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.size() == 2 && o.contains("_placeholder") && o.contains("num") && o.at("_placeholder") == true) {
      const auto& n = o.at("num");
      std::size_t i = buffers.size();
      if (n.is_int64() && n.get_int64() >= 0) i = static_cast<std::size_t>(n.get_int64());
      else if (n.is_uint64()) i = static_cast<std::size_t>(n.get_uint64());
      else if (n.is_double() && n.get_double() >= 0 && n.get_double() < 1e9 && n.get_double() == static_cast<double>(static_cast<std::size_t>(n.get_double())))
        i = static_cast<std::size_t>(n.get_double());
      if (i < buffers.size()) return json::object{{"$bin", json::string(buffers[i])}};
    }
    json::object out;
    for (const auto& kv : o) out[kv.key()] = resolved(kv.value(), buffers);
    return out;
  }
  if (v.is_number()) return v.to_number<double>();  // 1.0 goes out as the integer 1, as notepack
  return v;
}

void check_roundtrip(const sr::JsonWithBuffers& d) {
  FUZZ_CHECK(d.buffers.size() <= kLimits.max_binaries, "more binaries than the limit");
  // msgpack-c bounds the containers (max_depth); a binary becomes a placeholder object one level
  // deeper, an unknown ext [type, placeholder] two (the first run checked +1: its finding).
  FUZZ_CHECK(depth(d.value) <= kLimits.max_depth + 2, "nested deeper than the limit");
  FUZZ_CHECK(placeholders_in_range(d.value, d.buffers.size()), "a placeholder without its buffer");
  const std::string again = sr::json_to_msgpack(d.value, d.buffers);
  sr::JsonWithBuffers e;
  try {
    e = sr::msgpack_to_json(again, kRelaxed);
  } catch (const sr::MsgpackError&) {
    FUZZ_CHECK(false, "what was decoded does not encode to readable msgpack");
  }
  FUZZ_CHECK(resolved(d.value, d.buffers) == resolved(e.value, e.buffers), "msgpack does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    switch (data[0] % 3) {
      case 0: {
        sr::BroadcastMessage m = sr::decode_broadcast(input, kLimits);
        FUZZ_CHECK(m.packet.data && m.packet.data->is_array() && !m.packet.data->get_array().empty(),
                   "a broadcast packet without [event, ...args]");
        FUZZ_CHECK((m.packet.type == registrar::adapters::socketio::SioType::binary_event) == !m.packet.buffers.empty(),
                   "BINARY_EVENT not exactly when there are buffers");
        check_roundtrip({*m.packet.data, m.packet.buffers});
        sr::BroadcastMessage n;
        try {
          n = sr::decode_broadcast(sr::encode_broadcast(m), kRelaxed);
        } catch (const std::exception&) {
          FUZZ_CHECK(false, "an encoded broadcast does not decode");
        }
        FUZZ_CHECK(n.uid == m.uid && n.packet.nsp == m.packet.nsp && n.to.rooms == m.to.rooms && n.to.except == m.to.except,
                   "a broadcast does not round-trip");
        FUZZ_CHECK(resolved(*n.packet.data, n.packet.buffers) == resolved(*m.packet.data, m.packet.buffers),
                   "a broadcast's data does not round-trip");
        break;
      }
      case 1: {
        sr::Request r = sr::decode_request(input, kLimits);
        (void)r.type();
        (void)r.opts();
        break;
      }
      default:
        check_roundtrip(sr::msgpack_to_json(input, kLimits));
    }
  } catch (const sr::MsgpackError&) {
  } catch (const sr::ProtocolError&) {
  }
  return 0;
}
