#pragma once
// msgpack ⇄ JSON values, as npm `notepack.io` 3 (the msgpack of @socket.io/redis-adapter and
// @socket.io/redis-emitter) writes and reads them, for Socket.IO packets that travel through Redis.
//
// Binary values (msgpack bin; notepack writes a Buffer so) become Socket.IO placeholders
// {"_placeholder":true,"num":i} with their bytes in `buffers[i]`, the form SioPacket carries them
// in; encoding turns such placeholders back into bin. notepack's extension types are read as
// notepack reads them (its decode.js), then as JSON.stringify would write the result for a client:
//   fixext 1 type 0      undefined: omitted in a map, null in an array
//   ext type -1 (4/8/12) timestamp (a Date): its ISO-8601 string (Date.prototype.toJSON), null when
//                        out of a Date's range
//   fixext 8 type 0      notepack's old Date (milliseconds as int64): as a timestamp
//   ext type 0 (other)   notepack's old ArrayBuffer: a binary value
//   other ext types      [type, <binary>]
// msgpack-c does not say whether an ext of 1 or 8 bytes came as fixext or ext 8; both are read as
// the fixext (notepack would read an `ext 8` of type 0 as an ArrayBuffer: nobody writes one).
//
// Decoding refuses (MsgpackError) what notepack could not read and what registrar bounds: trailing
// bytes, truncation, map keys other than strings and integers, invalid UTF-8 in strings, nesting
// deeper than `max_depth`, containers/strings/binaries beyond the limits; the sizes are also
// bounded by the input's own length before anything is allocated. Encoding writes what notepack
// writes for the same JS value (integral numbers as the smallest integer, others as float 64).
// Hand-written on top of msgpack-c's parser: no msgpack library maps to Boost.JSON.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

namespace registrar::adapters::socketio_redis {

struct MsgpackError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct MsgpackLimits {
  std::size_t max_bytes = 1 << 20;          // the whole message (socket.io's maxHttpBufferSize is 1 MB)
  std::size_t max_depth = 32;               // nested arrays / maps (a binary's placeholder adds one
                                            // level to the JSON, an unknown ext's [type, bin] two)
  std::size_t max_elements = 100000;        // per array or map
  std::size_t max_binaries = 10;            // binary values in one message (socket.io-parser's attachments)
};

// A JSON value with its binary values taken out (placeholders refer to `buffers` by index).
struct JsonWithBuffers {
  boost::json::value value;
  std::vector<std::string> buffers;
};

// Throws MsgpackError saying what is wrong.
JsonWithBuffers msgpack_to_json(std::string_view bytes, const MsgpackLimits& limits = {});

// Appends the msgpack of `value` to `out`, placeholders {"_placeholder":true,"num":i} with
// i < buffers.size() written as bin buffers[i].
void json_to_msgpack(const boost::json::value& value, const std::vector<std::string>& buffers, std::string& out);
std::string json_to_msgpack(const boost::json::value& value, const std::vector<std::string>& buffers = {});

// Date.prototype.toJSON of the instant `ms` milliseconds after 1970 (e.g. "2024-01-02T03:04:05.006Z",
// "+275760-09-13T00:00:00.000Z"); null when beyond a Date's range (±8.64e15 ms).
boost::json::value iso_date(long long ms);

}  // namespace registrar::adapters::socketio_redis
