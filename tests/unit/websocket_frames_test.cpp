// The server side of RFC 6455 framing (adapters/websocket/frames.hpp), against the RFC's own
// examples (§5.7) and the refusals of §5 and §7.4.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adapters/websocket/frames.hpp"

namespace {

using namespace registrar::adapters::websocket;
using Kind = Event::Kind;

// A client frame: masked with `key`, FIN and opcode as given.
std::string client_frame(unsigned first_byte, std::string_view payload, std::string key = "\x37\xfa\x21\x3d") {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  const std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xFFFF) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) f.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
  }
  f += key;
  for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
  return f;
}

std::vector<Event> read_all(FrameReader& r, std::string_view bytes) {
  std::vector<Event> out;
  r.feed(bytes, out);
  return out;
}

TEST(WebSocketFrames, TheRfcsMaskedHelloIsOneTextMessage) {
  // RFC 6455 §5.7: "A single-frame masked text message".
  FrameReader r(1000);
  auto out = read_all(r, std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::text);
  EXPECT_EQ(out[0].data, "Hello");
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(WebSocketFrames, BytesMayArriveOneAtATimeAndNothingStaysBufferedAfter) {
  FrameReader r(100'000);
  const std::string big(70'000, 'x');  // a 64-bit length
  const std::string bytes = client_frame(0x82, big) + client_frame(0x81, "after");
  std::vector<Event> out;
  for (char c : bytes) r.feed(std::string_view(&c, 1), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, Kind::binary);
  EXPECT_EQ(out[0].data, big);
  EXPECT_EQ(out[1].data, "after");
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(WebSocketFrames, FragmentsMakeOneMessageWithControlFramesBetweenThem) {
  // §5.4: control frames may come in the middle of a fragmented message.
  FrameReader r(1000);
  auto out = read_all(r, client_frame(0x01, "Hel") + client_frame(0x89, "ping!") + client_frame(0x80, "lo"));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, Kind::ping);
  EXPECT_EQ(out[0].data, "ping!");
  EXPECT_EQ(out[1].kind, Kind::text);
  EXPECT_EQ(out[1].data, "Hello");
}

TEST(WebSocketFrames, EmptyFragmentsInOneReadAndAcrossReads) {
  FrameReader r(1000);
  std::vector<Event> out;
  r.feed(client_frame(0x01, ""), out);  // an empty first fragment: the message is still open
  r.feed(client_frame(0x00, ""), out);
  r.feed(client_frame(0x80, "end"), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::text);
  EXPECT_EQ(out[0].data, "end");
  EXPECT_EQ(r.buffered(), 0u);
}

TEST(WebSocketFrames, ACloseFrameGivesItsCodeAndReasonAndEndsReading) {
  FrameReader r(1000);
  auto out = read_all(r, client_frame(0x88, std::string("\x03\xe8", 2) + "bye") + client_frame(0x81, "late"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::close);
  EXPECT_EQ(out[0].code, 1000);
  EXPECT_EQ(out[0].data, "bye");
  EXPECT_TRUE(r.finished());

  FrameReader empty(1000);
  out = read_all(empty, client_frame(0x88, ""));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code, close_code::none);
}

struct Refusal {
  const char* what;
  std::string bytes;
  std::uint16_t code;
};

TEST(WebSocketFrames, EachViolationEndsReadingWithItsCloseCode) {
  const std::vector<Refusal> cases = {
      {"unmasked", std::string("\x81\x05Hello", 7), close_code::protocol_error},
      {"reserved bit", client_frame(0xC1, "x"), close_code::protocol_error},
      {"unknown opcode 3", client_frame(0x83, "x"), close_code::protocol_error},
      {"unknown opcode 11", client_frame(0x8B, "x"), close_code::protocol_error},
      {"fragmented ping", client_frame(0x09, "x"), close_code::protocol_error},
      {"ping over 125", client_frame(0x89, std::string(126, 'p')), close_code::protocol_error},
      {"continuation first", client_frame(0x80, "x"), close_code::protocol_error},
      {"text inside a message", client_frame(0x01, "a") + client_frame(0x81, "b"), close_code::protocol_error},
      {"16-bit length below 126", std::string("\x81\xFE\x00\x05", 4) + "\x37\xfa\x21\x3d" + "xxxxx", close_code::protocol_error},
      {"one-byte close", client_frame(0x88, "\x03"), close_code::protocol_error},
      {"close code 1005", client_frame(0x88, std::string("\x03\xed", 2)), close_code::protocol_error},
      {"close code 999", client_frame(0x88, std::string("\x03\xe7", 2)), close_code::protocol_error},
      {"close code 5000", client_frame(0x88, std::string("\x13\x88", 2)), close_code::protocol_error},
      {"close reason not UTF-8", client_frame(0x88, std::string("\x03\xe8\xff", 3)), close_code::invalid_payload},
      {"text not UTF-8", client_frame(0x81, "\xc0\xaf"), close_code::invalid_payload},
      {"text with a surrogate", client_frame(0x81, "\xed\xa0\x80"), close_code::invalid_payload},
      {"fragmented text not UTF-8 in the end", client_frame(0x01, "\xce") + client_frame(0x80, "x"), close_code::invalid_payload},
      {"message too big", client_frame(0x82, std::string(101, 'x')), close_code::too_big},
      {"fragments too big together", client_frame(0x02, std::string(60, 'x')) + client_frame(0x80, std::string(60, 'x')),
       close_code::too_big},
  };
  for (const auto& c : cases) {
    FrameReader r(100);
    auto out = read_all(r, c.bytes);
    ASSERT_FALSE(out.empty()) << c.what;
    EXPECT_EQ(out.back().kind, Kind::error) << c.what;
    EXPECT_EQ(out.back().code, c.code) << c.what;
    EXPECT_TRUE(r.finished()) << c.what;
    EXPECT_EQ(r.buffered(), 0u) << c.what;
  }
}

TEST(WebSocketFrames, ATooBigFrameIsRefusedFromItsHeaderBeforeThePayloadArrives) {
  FrameReader r(1000);
  std::string header = client_frame(0x82, std::string(70'000, 'x')).substr(0, 14);
  auto out = read_all(r, header);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].code, close_code::too_big);
}

TEST(WebSocketFrames, SplitUtf8AcrossFragmentsIsValid) {
  FrameReader r(1000);
  auto out = read_all(r, client_frame(0x01, "\xce") + client_frame(0x80, "\xba\xe1\xbd\xb9"));  // "κό"
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::text);
}

TEST(WebSocketFrames, Utf8Validation) {
  EXPECT_TRUE(valid_utf8(""));
  EXPECT_TRUE(valid_utf8("plain ascii"));
  EXPECT_TRUE(valid_utf8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));  // κόσμε
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));                              // U+10FFFF
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));                             // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));                                 // overlong
  EXPECT_FALSE(valid_utf8("\xed\xbf\xbf"));                                 // surrogate
  EXPECT_FALSE(valid_utf8("\xe1\xbd"));                                     // truncated
  EXPECT_FALSE(valid_utf8("\x80"));                                         // lone continuation
}

TEST(WebSocketFrames, ServerFramesAreUnmaskedWithTheShortestLength) {
  EXPECT_EQ(encode_frame(Opcode::text, "Hello"), std::string("\x81\x05Hello", 7));
  const std::string mid = encode_frame(Opcode::binary, std::string(256, 'x'));
  EXPECT_EQ(mid.substr(0, 4), std::string("\x82\x7E\x01\x00", 4));
  const std::string big = encode_frame(Opcode::binary, std::string(65536, 'x'));
  EXPECT_EQ(big.substr(0, 10), std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  EXPECT_EQ(big.size(), 65546u);
  EXPECT_EQ(encode_close(1000), std::string("\x88\x02\x03\xe8", 4));
}

}  // namespace
