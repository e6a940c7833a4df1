// RESP2 replies as a Redis server (or anything at its address) sends them → resp::Parser, fed in
// pieces as a socket delivers them. Small limits, so that the fuzzer meets them.
//
// Input (FuzzedDataProvider): a few bytes choosing the read sizes, then the bytes of the stream.
//
// Invariants (FUZZ_CHECK):
//  - split reads change nothing: the stream fed in pieces gives the same replies, and fails (or
//    not) at the same reply, as the stream fed at once;
//  - what parses respects the limits: no bulk string over max_bulk, no array over max_array
//    elements, no nesting over max_depth, no more than max_elements values in one reply;
//  - round trip: encode(reply) parses back to the same reply, and is the bytes it was parsed from
//    (the parser takes canonical RESP only), except that a nil array "*-1" comes back as "$-1".
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "adapters/redis/resp.hpp"
#include "support/check.hpp"

using registrar::adapters::redis::Reply;
namespace resp = registrar::adapters::redis::resp;

namespace {

resp::Limits fuzz_limits() {
  resp::Limits l;
  l.max_bulk = 4096;
  l.max_line = 256;
  l.max_depth = 6;
  l.max_array = 64;
  l.max_elements = 256;
  return l;
}

struct Outcome {
  std::vector<Reply> replies;
  bool failed = false;
};

// Counts values, checks the limits; returns the depth of arrays.
std::size_t check_limits(const Reply& r, const resp::Limits& l, std::size_t& values) {
  ++values;
  if (r.type == Reply::Type::bulk) FUZZ_CHECK(r.str.size() <= l.max_bulk, "a bulk string over max_bulk");
  if (r.type == Reply::Type::status || r.type == Reply::Type::error)
    FUZZ_CHECK(r.str.size() <= l.max_line, "a status or error line over max_line");
  if (r.type != Reply::Type::array) {
    FUZZ_CHECK(r.elements.empty(), "elements in a reply that is not an array");
    return 0;
  }
  FUZZ_CHECK(r.elements.size() <= l.max_array, "an array over max_array");
  std::size_t depth = 0;
  for (const auto& e : r.elements) depth = std::max(depth, check_limits(e, l, values));
  return depth + 1;
}

// The bytes equal, but where the original says "*-1\r\n" the encoding may say "$-1\r\n".
bool same_bytes_but_nil_arrays(std::string_view original, std::string_view encoded) {
  if (original.size() != encoded.size()) return false;
  for (std::size_t i = 0; i < original.size(); ++i) {
    if (original[i] == encoded[i]) continue;
    if (original.substr(i, 5) == "*-1\r\n" && encoded.substr(i, 5) == "$-1\r\n") {
      i += 4;
      continue;
    }
    return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  std::vector<std::size_t> cuts;
  const auto pieces = in.ConsumeIntegralInRange<int>(0, 8);
  for (int i = 0; i < pieces; ++i) cuts.push_back(in.ConsumeIntegralInRange<std::size_t>(1, 64));
  const std::string stream = in.ConsumeRemainingBytesAsString();
  const resp::Limits limits = fuzz_limits();

  // At once, remembering where each reply began and ended.
  Outcome whole;
  std::vector<std::size_t> ends;
  {
    resp::Parser p(limits);
    p.feed(stream);
    try {
      while (auto r = p.next()) {
        whole.replies.push_back(std::move(*r));
        ends.push_back(stream.size() - p.buffered());
      }
    } catch (const resp::ProtocolError&) {
      whole.failed = true;
      try {
        p.next();
        FUZZ_CHECK(false, "a failed parser parsed again");
      } catch (const resp::ProtocolError&) {
      }
    }
  }

  // In pieces of the chosen sizes (cycling), draining after each.
  Outcome split;
  {
    resp::Parser p(limits);
    std::size_t at = 0, k = 0;
    try {
      while (at < stream.size()) {
        const std::size_t n = cuts.empty() ? stream.size() : std::min(cuts[k++ % cuts.size()], stream.size() - at);
        p.feed(std::string_view(stream).substr(at, n));
        at += n;
        while (auto r = p.next()) split.replies.push_back(std::move(*r));
      }
    } catch (const resp::ProtocolError&) {
      split.failed = true;
    }
  }
  FUZZ_CHECK(split.replies == whole.replies, "split reads gave other replies than one read");
  // A stream that fails: split reads may fail before the last whole reply only if it fails too.
  FUZZ_CHECK(split.failed == whole.failed, "split reads failed where one read did not, or the other way");

  std::size_t begin = 0;
  for (std::size_t i = 0; i < whole.replies.size(); ++i) {
    const Reply& r = whole.replies[i];
    std::size_t values = 0;
    const std::size_t depth = check_limits(r, limits, values);
    FUZZ_CHECK(depth <= limits.max_depth, "arrays nested deeper than max_depth");
    FUZZ_CHECK(values <= limits.max_elements, "a reply with more values than max_elements");

    const std::string encoded = resp::encode_reply(r);
    FUZZ_CHECK(same_bytes_but_nil_arrays(std::string_view(stream).substr(begin, ends[i] - begin), encoded),
               "encode(parse(bytes)) is not the bytes");
    resp::Parser again(limits);
    again.feed(encoded);
    const auto back = again.next();
    FUZZ_CHECK(back && *back == r && again.idle(), "encode(reply) does not parse back to the reply");
    begin = ends[i];
  }
  return 0;
}
