#pragma once
// RFC 6455 framing for the server side of a WebSocket, without I/O: a reader that turns the
// client's bytes into messages and control frames, and the encoder of the server's frames.
//
// Written here rather than taken from Beast's websocket::stream because of memory: an idle
// Socket.IO connection must cost a few hundred bytes (issue 13: ≤ 1/6 of the Node server's 16 KB),
// and Beast's stream holds ~2.5 KB per connection for good (its 1.5 KB read buffer is inside the
// stream object, plus its timer, its operation slots and the tcp_stream's timers under it).
// This reader holds no buffer while a connection is idle: bytes of an unfinished frame or message
// are kept only until it is complete. Beast still does the opening handshake (websocket.cpp).
//
// What it enforces (RFC 6455 §5): client frames are masked; RSV bits are zero (no extension is
// negotiated); opcodes are known; control frames are final and ≤ 125 bytes; continuation frames
// belong to a message and a new message never starts inside one; a message is at most
// `max_message` bytes (1009); text messages and close reasons are valid UTF-8 (1007); close
// codes are ones an endpoint may send (§7.4). The first violation ends the reading with an
// `error` event that names the close code to send.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace registrar::adapters::websocket {

enum class Opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

// Close codes (RFC 6455 §7.4.1) the server sends.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t invalid_payload = 1007;  // text that is not UTF-8
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t none = 1005;  // a close frame without a code (never sent)
}  // namespace close_code

struct Event {
  enum class Kind { text, binary, ping, pong, close, error } kind;
  std::string data;     // the message, the ping/pong payload, the close reason, or what was wrong
  std::uint16_t code = 0;  // close: the peer's code (1005 when it gave none); error: the code to send
};

class FrameReader {
 public:
  explicit FrameReader(std::size_t max_message) : max_message_(max_message) {}

  // Takes the next bytes from the client; appends what they complete to `out`. After a close or
  // an error event it takes nothing more (`finished()`).
  void feed(std::string_view bytes, std::vector<Event>& out);
  bool finished() const { return finished_; }
  // Bytes held for an unfinished frame or message (0 on an idle connection).
  std::size_t buffered() const { return held_ ? held_->partial.size() + held_->message.size() : 0; }

 private:
  // Parses one frame at the start of `bytes`: its size when complete (events appended), 0 when more
  // bytes are needed; sets finished_ on an error.
  std::size_t parse_one(std::string_view bytes, std::vector<Event>& out);
  void fail(std::uint16_t code, std::string why, std::vector<Event>& out);

  // What waits for more bytes; allocated only then (a reader per idle connection holds nothing).
  struct Held {
    std::string partial;  // an unfinished frame's bytes
    std::string message;  // a fragmented message's payload so far
  };
  Held& held();
  void release_if_empty();

  std::size_t max_message_;
  std::unique_ptr<Held> held_;
  Opcode message_opcode_ = Opcode::continuation;  // text/binary while a fragmented message is open
  bool in_message_ = false;
  bool finished_ = false;
};

// One unmasked server frame (FIN set): the header, then `payload`.
std::string encode_frame(Opcode opcode, std::string_view payload);
// A close frame with `code` (and no reason).
std::string encode_close(std::uint16_t code);

bool valid_utf8(std::string_view s);

}  // namespace registrar::adapters::websocket
