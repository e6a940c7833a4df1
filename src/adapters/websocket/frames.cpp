#include "adapters/websocket/frames.hpp"

namespace registrar::adapters::websocket {

namespace {

std::uint64_t big_endian(std::string_view bytes) {
  std::uint64_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

// Codes a peer may put in a close frame (RFC 6455 §7.4.1/§7.4.2 and the IANA registry: 1012–1014
// are registered; 1004–1006 and 1015 must never be sent; 3000–4999 belong to libraries and apps).
bool valid_close_code(std::uint16_t code) {
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

}  // namespace

bool valid_utf8(std::string_view s) {
  // RFC 3629: no overlong forms, no surrogates (U+D800–DFFF), nothing above U+10FFFF.
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c == 0xE0) n = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) n = 2;
    else if (c == 0xED) n = 2, hi = 0x9F;
    else if (c == 0xF0) n = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) n = 3;
    else if (c == 0xF4) n = 3, hi = 0x8F;
    else return false;
    if (static_cast<std::size_t>(end - p) <= n) return false;
    if (p[1] < lo || p[1] > hi) return false;
    for (std::size_t i = 2; i <= n; ++i)
      if ((p[i] & 0xC0) != 0x80) return false;
    p += n + 1;
  }
  return true;
}

FrameReader::Held& FrameReader::held() {
  if (!held_) held_ = std::make_unique<Held>();
  return *held_;
}

void FrameReader::release_if_empty() {
  // Not inside a fragmented message, even one whose fragments so far were empty.
  if (held_ && !in_message_ && held_->partial.empty()) held_.reset();
}

void FrameReader::fail(std::uint16_t code, std::string why, std::vector<Event>& out) {
  out.push_back(Event{Event::Kind::error, std::move(why), code});
  finished_ = true;
  held_.reset();
}

void FrameReader::feed(std::string_view bytes, std::vector<Event>& out) {
  if (finished_) return;
  if (!held_ || held_->partial.empty()) {
    // The usual case: whole frames in what was just read, parsed where they lie.
    while (!finished_ && !bytes.empty()) {
      const std::size_t n = parse_one(bytes, out);
      if (n == 0) break;
      bytes.remove_prefix(n);
    }
    if (!finished_ && !bytes.empty()) held().partial.assign(bytes);
    release_if_empty();
    return;
  }
  std::string& partial = held_->partial;
  partial.append(bytes);
  std::string_view rest(partial);
  while (!finished_ && !rest.empty()) {
    const std::size_t n = parse_one(rest, out);
    if (n == 0) break;
    rest.remove_prefix(n);
  }
  if (finished_) {
    held_.reset();  // `rest` viewed it: not used again
    return;
  }
  if (rest.empty()) std::string().swap(partial);  // its memory goes with it
  else partial.erase(0, partial.size() - rest.size());
  release_if_empty();
}

std::size_t FrameReader::parse_one(std::string_view bytes, std::vector<Event>& out) {
  if (bytes.size() < 2) return 0;
  const auto b0 = static_cast<unsigned char>(bytes[0]);
  const auto b1 = static_cast<unsigned char>(bytes[1]);
  const bool fin = b0 & 0x80;
  const unsigned op = b0 & 0x0F;
  if (b0 & 0x70) return fail(close_code::protocol_error, "reserved bits set", out), 0;
  if (!(op <= 2 || (op >= 8 && op <= 10))) return fail(close_code::protocol_error, "unknown opcode", out), 0;
  if (!(b1 & 0x80)) return fail(close_code::protocol_error, "unmasked client frame", out), 0;
  const auto opcode = static_cast<Opcode>(op);
  const bool control = op >= 8;
  std::uint64_t length = b1 & 0x7F;
  std::size_t header = 2;
  if (control && (!fin || length > 125)) return fail(close_code::protocol_error, "bad control frame", out), 0;
  if (length == 126) {
    if (bytes.size() < 4) return 0;
    length = big_endian(bytes.substr(2, 2));
    header = 4;
    if (length < 126) return fail(close_code::protocol_error, "length not in its shortest form", out), 0;
  } else if (length == 127) {
    if (bytes.size() < 10) return 0;
    length = big_endian(bytes.substr(2, 8));
    header = 10;
    if (length >> 63) return fail(close_code::protocol_error, "length too large", out), 0;
    if (length < 65536) return fail(close_code::protocol_error, "length not in its shortest form", out), 0;
  }
  if (!control) {
    if (opcode == Opcode::continuation && !in_message_)
      return fail(close_code::protocol_error, "continuation without a message", out), 0;
    if (opcode != Opcode::continuation && in_message_)
      return fail(close_code::protocol_error, "new message inside a fragmented one", out), 0;
    // Checked before the payload is waited for: a too-large frame is never buffered.
    const std::uint64_t total = (in_message_ ? held_->message.size() : 0) + length;
    if (length > max_message_ || total > max_message_) return fail(close_code::too_big, "message too big", out), 0;
  }
  header += 4;  // the masking key
  if (bytes.size() < header || bytes.size() - header < length) return 0;

  const auto* key = reinterpret_cast<const unsigned char*>(bytes.data() + header - 4);
  std::string payload(bytes.substr(header, static_cast<std::size_t>(length)));
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(payload[i] ^ key[i & 3]);
  const std::size_t size = header + static_cast<std::size_t>(length);

  switch (opcode) {
    case Opcode::ping: out.push_back(Event{Event::Kind::ping, std::move(payload)}); return size;
    case Opcode::pong: out.push_back(Event{Event::Kind::pong, std::move(payload)}); return size;
    case Opcode::close: {
      if (payload.size() == 1) return fail(close_code::protocol_error, "close frame of one byte", out), 0;
      std::uint16_t code = close_code::none;
      if (payload.size() >= 2) {
        code = static_cast<std::uint16_t>(big_endian(std::string_view(payload).substr(0, 2)));
        if (!valid_close_code(code)) return fail(close_code::protocol_error, "invalid close code", out), 0;
        payload.erase(0, 2);
        if (!valid_utf8(payload)) return fail(close_code::invalid_payload, "close reason is not UTF-8", out), 0;
      }
      out.push_back(Event{Event::Kind::close, std::move(payload), code});
      finished_ = true;
      in_message_ = false;  // a message cut short by the close is dropped; feed() frees held_ (`bytes` may be in it)
      return size;
    }
    default: break;
  }
  if (opcode != Opcode::continuation) {
    message_opcode_ = opcode;
    if (!fin) {
      in_message_ = true;
      held().message = std::move(payload);
      return size;
    }
  } else {
    std::string& message = held_->message;  // in_message_: held_ has it
    message.append(payload);
    if (!fin) return size;
    in_message_ = false;
    payload = std::move(message);
    std::string().swap(message);
  }
  const bool text = message_opcode_ == Opcode::text;
  if (text && !valid_utf8(payload)) return fail(close_code::invalid_payload, "text message is not UTF-8", out), 0;
  out.push_back(Event{text ? Event::Kind::text : Event::Kind::binary, std::move(payload)});
  return size;
}

std::string encode_frame(Opcode opcode, std::string_view payload) {
  std::string frame;
  const std::size_t n = payload.size();
  const std::size_t header = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
  frame.reserve(header + n);
  frame.push_back(static_cast<char>(0x80 | static_cast<unsigned>(opcode)));
  if (n < 126) {
    frame.push_back(static_cast<char>(n));
  } else if (n <= 0xFFFF) {
    frame.push_back(static_cast<char>(126));
    for (int shift = 8; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((n >> shift) & 0xFF));
  } else {
    frame.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) frame.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
  }
  frame.append(payload);
  return frame;
}

std::string encode_close(std::uint16_t code) {
  const char payload[2] = {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
  return encode_frame(Opcode::close, std::string_view(payload, 2));
}

}  // namespace registrar::adapters::websocket
