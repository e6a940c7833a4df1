#pragma once
// RESP2, the Redis wire protocol (https://redis.io/docs/reference/protocol-spec/): the encoder of
// commands (an array of bulk strings, which is all a client sends) and an incremental parser of
// replies. Internal to the Redis adapter; the fuzz target fuzz/fuzz_resp.cpp and the unit tests use
// it directly.
//
// The parser reads what a server sends, which may be broken or hostile: every size it is told is
// checked against Limits before anything is allocated for it, so a reply can make it hold at most
// about max_bulk bytes of payload plus max_elements values, whatever the server claims. It accepts
// the canonical spelling only (what Redis writes): no leading '+' or zeros in numbers, no "-0".
// So encode(parse(bytes)) gives the bytes back, except that a nil array ("*-1") and a nil bulk
// ("$-1") are one Reply (nil) and encode as "$-1".
#include <cstddef>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis/client.hpp"

namespace registrar::adapters::redis::resp {

struct Limits {
  std::size_t max_bulk = std::size_t{512} << 20;  // 512 MiB: Redis's own proto-max-bulk-len default
  std::size_t max_line = 64 * 1024;               // a status, error or integer line, without CRLF
  std::size_t max_depth = 32;                     // arrays inside arrays (a top-level array is 1)
  std::size_t max_array = std::size_t{1} << 20;   // elements of one array
  std::size_t max_elements = std::size_t{1} << 21;  // values in one reply, at every level
};

// The bytes are not RESP2, or exceed a limit. The connection they came on cannot be trusted any
// more: the parser stays failed (every later call throws again).
struct ProtocolError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Appends one command, `*N CRLF` then `$len CRLF bytes CRLF` per argument (binary-safe).
void append_command(std::string& out, std::span<const std::string_view> args);
void append_command(std::string& out, std::span<const std::string> args);

// Appends a reply as a server writes it (nil as "$-1"). For tests and the fuzz target's round trip.
// Status and error texts must not contain CR LF (a server's never do; parsed ones cannot).
void append_reply(std::string& out, const Reply& reply);
std::string encode_reply(const Reply& reply);

class Parser {
 public:
  explicit Parser(Limits limits = {});

  // Hands over the next bytes read from the connection (copied).
  void feed(std::string_view bytes);
  // The next complete reply, or nullopt until more bytes are fed. Throws ProtocolError.
  std::optional<Reply> next();
  // Bytes fed and not yet part of a returned reply or of the elements of the one being read.
  std::size_t buffered() const { return buf_.size() - pos_; }
  // True between replies: nothing of a reply read so far.
  bool idle() const { return stack_.empty() && buffered() == 0; }

 private:
  struct Frame {
    Reply array;
    std::size_t expected = 0;
  };
  // Reads one line (without CRLF) at pos_; nullopt if its CRLF has not arrived yet.
  std::optional<std::string_view> line_at(std::size_t from);
  [[noreturn]] void fail(const std::string& why);

  Limits limits_;
  std::string buf_;
  std::size_t pos_ = 0;   // first byte not yet consumed
  std::size_t scan_ = 0;  // where the search for the pending line's CRLF resumes (no rescans)
  std::vector<Frame> stack_;
  std::size_t elements_ = 0;  // values of the current reply so far
  std::string failed_;        // non-empty once a ProtocolError was thrown
};

}  // namespace registrar::adapters::redis::resp
