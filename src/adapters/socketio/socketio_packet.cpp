#include "adapters/socketio/socketio_packet.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace registrar::adapters::socketio {

namespace json = boost::json;

namespace {

// Event names a client may not emit (socket.io-parser's RESERVED_EVENTS).
constexpr std::array<std::string_view, 6> kReserved = {"connect",       "connect_error",  "disconnect",
                                                       "disconnecting", "newListener", "removeListener"};
// Numbers JavaScript holds exactly: an ack id beyond it would not come back as sent.
constexpr std::uint64_t kMaxSafeInteger = (std::uint64_t{1} << 53) - 1;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool binary(SioType t) { return t == SioType::binary_event || t == SioType::binary_ack; }

domain::Expected<SioPacket, std::string> fail(std::string why) { return domain::make_error<SioPacket>(std::move(why)); }

// socket.io-parser's Decoder.isPayloadValid.
bool payload_valid(SioType type, const json::value& v) {
  switch (type) {
    case SioType::connect: return v.is_object();
    case SioType::disconnect: return false;  // no payload at all
    case SioType::connect_error: return v.is_string() || v.is_object();
    case SioType::event:
    case SioType::binary_event: {
      const auto* a = v.if_array();
      if (a == nullptr || a->empty()) return false;
      const auto& name = a->front();
      if (name.is_number()) return true;
      if (!name.is_string()) return false;
      const std::string_view s = name.get_string();
      return std::find(kReserved.begin(), kReserved.end(), s) == kReserved.end();
    }
    case SioType::ack:
    case SioType::binary_ack: return v.is_array();
  }
  return false;
}

// Whether every {"_placeholder":true,"num":i} in `v` names a buffer that exists (the values stay
// placeholders; the buffers travel beside them, in SioPacket::buffers).
bool placeholders_in_range(const json::value& v, std::size_t buffers, std::size_t depth) {
  if (depth == 0) return false;
  if (const auto* o = v.if_object()) {
    const auto* ph = o->if_contains("_placeholder");
    if (ph != nullptr && ph->is_bool() && ph->get_bool()) {
      const auto* num = o->if_contains("num");
      return num != nullptr && num->is_int64() && num->get_int64() >= 0 &&
             static_cast<std::uint64_t>(num->get_int64()) < buffers;
    }
    for (const auto& [k, child] : *o)
      if (!placeholders_in_range(child, buffers, depth - 1)) return false;
  } else if (const auto* a = v.if_array()) {
    for (const auto& child : *a)
      if (!placeholders_in_range(child, buffers, depth - 1)) return false;
  }
  return true;
}

// Whether every number in `v` is finite. Boost.JSON reads a number too large for a double (1e400)
// as infinity, which no JSON can write back (socket.io's JSON.stringify would send null): such a
// packet is refused. The depth is bounded by the parser's max_depth.
bool numbers_finite(const json::value& v) {
  if (v.is_double()) return std::isfinite(v.get_double());
  if (const auto* o = v.if_object()) {
    for (const auto& [k, child] : *o)
      if (!numbers_finite(child)) return false;
  } else if (const auto* a = v.if_array()) {
    for (const auto& child : *a)
      if (!numbers_finite(child)) return false;
  }
  return true;
}

}  // namespace

domain::Expected<SioPacket, std::string> decode_sio(std::string_view text, const SioLimits& limits) {
  if (text.empty() || text.front() < '0' || text.front() > '6') return fail("unknown packet type");
  SioPacket p;
  p.type = static_cast<SioType>(text.front() - '0');
  std::size_t i = 1;
  if (binary(p.type)) {
    const std::size_t dash = text.find('-', i);
    if (dash == std::string_view::npos || dash == i || dash - i > 3) return fail("illegal attachments");
    std::size_t n = 0;
    for (std::size_t k = i; k < dash; ++k) {
      if (!is_digit(text[k])) return fail("illegal attachments");
      n = n * 10 + static_cast<std::size_t>(text[k] - '0');
    }
    if (n < 1) return fail("illegal attachments");
    if (n > limits.max_attachments) return fail("too many attachments");
    p.attachments = n;
    i = dash + 1;
  }
  if (i < text.size() && text[i] == '/') {
    const std::size_t comma = text.find(',', i);
    p.nsp = std::string(text.substr(i, comma == std::string_view::npos ? std::string_view::npos : comma - i));
    i = comma == std::string_view::npos ? text.size() : comma + 1;
  }
  if (i < text.size() && is_digit(text[i])) {
    std::uint64_t id = 0;
    while (i < text.size() && is_digit(text[i])) {
      id = id * 10 + static_cast<std::uint64_t>(text[i] - '0');
      if (id > kMaxSafeInteger) return fail("ack id out of range");
      ++i;
    }
    p.id = id;
  }
  if (i < text.size()) {
    json::parse_options options;
    options.max_depth = limits.max_depth;
    boost::system::error_code ec;
    json::value v = json::parse(text.substr(i), ec, json::storage_ptr(), options);
    if (ec || !payload_valid(p.type, v)) return fail("invalid payload");
    if (!numbers_finite(v)) return fail("a number out of range");
    if (binary(p.type) && !placeholders_in_range(v, p.attachments, limits.max_depth + 1))
      return fail("a placeholder names no attachment");
    p.data = std::move(v);
  }
  // As socket.io-parser: a packet without JSON decodes (an EVENT then has no arguments at all;
  // what to do with it is the session's business).
  return p;
}

std::string encode_sio(const SioPacket& p) {
  std::string out(1, static_cast<char>('0' + static_cast<int>(p.type)));
  if (binary(p.type)) out += std::to_string(p.buffers.size()) + "-";
  if (p.nsp != "/") out += p.nsp + ",";
  if (p.id) out += std::to_string(*p.id);
  if (p.data) out += json::serialize(*p.data);
  return out;
}

SioAssembler::Result SioAssembler::on_text(std::string_view text) {
  Result r;
  if (pending_) {
    r.step = Step::error;
    r.error = "a packet arrived before the attachments of the previous one";
    return r;
  }
  auto decoded = decode_sio(text, limits_);
  if (!decoded) {
    r.step = Step::error;
    r.error = decoded.error();
    return r;
  }
  if (binary(decoded->type)) {
    pending_ = std::move(*decoded);
    return r;  // need_more
  }
  r.step = Step::packet;
  r.packet = std::move(*decoded);
  return r;
}

SioAssembler::Result SioAssembler::on_binary(std::string data) {
  Result r;
  if (!pending_) {
    r.step = Step::error;
    r.error = "a binary message without a packet announcing it";
    return r;
  }
  pending_->buffers.push_back(std::move(data));
  if (pending_->buffers.size() < pending_->attachments) return r;  // need_more
  r.step = Step::packet;
  r.packet = std::move(*pending_);
  pending_.reset();
  return r;
}

}  // namespace registrar::adapters::socketio
