// WebSocket frames as a client sends them → the server's frame reader (adapters/websocket/frames).
//
// Input: the first byte chooses where the bytes are split (the reader sees them in pieces, as
// reads deliver them); the rest is what the client sent.
//
// Invariants (FUZZ_CHECK):
//  - the events do not depend on how the bytes are split: whole, and in pieces, give the same;
//  - nothing follows a close or an error event, and the reader takes nothing more after it;
//  - text messages are valid UTF-8 and no message exceeds the limit;
//  - what the reader holds never exceeds the limit, a frame header and a control frame (a
//    too-large frame is refused from its header, never buffered), and nothing once it is done;
//  - messages sent back as client frames read back as the same messages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/websocket/frames.hpp"
#include "support/check.hpp"

namespace ws = registrar::adapters::websocket;

namespace {

constexpr std::size_t kMax = 4096;

bool same(const std::vector<ws::Event>& a, const std::vector<ws::Event>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].kind != b[i].kind || a[i].data != b[i].data || a[i].code != b[i].code) return false;
  return true;
}

// A masked client frame (the mask fixed: the reader must not care which).
std::string client_frame(ws::Opcode op, std::string_view payload) {
  std::string f = ws::encode_frame(op, payload);
  const std::size_t header = payload.size() < 126 ? 2 : payload.size() <= 0xFFFF ? 4 : 10;
  f[1] = static_cast<char>(f[1] | 0x80);
  const char key[4] = {'\x12', '\x34', '\x56', '\x78'};
  std::string out = f.substr(0, header) + std::string(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t step = 1 + data[0] % 64;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

  ws::FrameReader whole(kMax);
  std::vector<ws::Event> events;
  whole.feed(bytes, events);

  ws::FrameReader pieces(kMax);
  std::vector<ws::Event> split;
  for (std::size_t at = 0; at < bytes.size(); at += step) {
    pieces.feed(bytes.substr(at, step), split);
    // A message's fragments so far and the frame under way (≤ the limit together, with its
    // header), or a control frame between fragments (≤ 131 bytes).
    FUZZ_CHECK(pieces.buffered() <= kMax + 14 + 131, "the reader holds at most one message and one frame");
  }
  FUZZ_CHECK(same(events, split), "events do not depend on how the bytes are split");

  std::string echo;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = events[i];
    const bool last = i + 1 == events.size();
    if (e.kind == ws::Event::Kind::close || e.kind == ws::Event::Kind::error) {
      FUZZ_CHECK(last, "nothing follows a close or an error");
      FUZZ_CHECK(whole.finished() && whole.buffered() == 0, "a finished reader holds nothing");
    }
    if (e.kind == ws::Event::Kind::text) FUZZ_CHECK(ws::valid_utf8(e.data), "text is UTF-8");
    if (e.kind == ws::Event::Kind::text || e.kind == ws::Event::Kind::binary) {
      FUZZ_CHECK(e.data.size() <= kMax, "a message is within the limit");
      echo += client_frame(e.kind == ws::Event::Kind::text ? ws::Opcode::text : ws::Opcode::binary, e.data);
    }
  }
  if (whole.finished()) {
    std::vector<ws::Event> more;
    whole.feed("\x81\x80\x00\x00\x00\x00", more);
    FUZZ_CHECK(more.empty(), "a finished reader takes nothing more");
  }

  ws::FrameReader again(kMax);
  std::vector<ws::Event> reread;
  again.feed(echo, reread);
  std::vector<ws::Event> messages;
  for (const auto& e : events)
    if (e.kind == ws::Event::Kind::text || e.kind == ws::Event::Kind::binary) messages.push_back(e);
  FUZZ_CHECK(same(messages, reread), "messages sent back read back the same");
  FUZZ_CHECK(again.buffered() == 0, "whole frames leave nothing behind");
  return 0;
}
