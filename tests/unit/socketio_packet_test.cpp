// The Engine.IO and Socket.IO codecs against the examples of the protocols' own documents
// (engine.io-protocol and socket.io-protocol READMEs) and the refusals of npm socket.io-parser.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "adapters/socketio/engineio_packet.hpp"
#include "adapters/socketio/socketio_packet.hpp"

namespace {

using namespace registrar::adapters::socketio;
namespace json = boost::json;

TEST(EngineIoFrame, TextFramesCarryTheTypeDigitBinaryFramesAreMessagesAsTheyStand) {
  auto open = decode_ws_frame(R"(0{"sid":"lv_VI97HAXpY6yYWAAAC"})", false);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->type, EioType::open);
  EXPECT_EQ(open->data, R"({"sid":"lv_VI97HAXpY6yYWAAAC"})");
  auto probe = decode_ws_frame("2probe", false);
  ASSERT_TRUE(probe);
  EXPECT_EQ(probe->type, EioType::ping);
  EXPECT_EQ(probe->data, "probe");
  auto bin = decode_ws_frame(std::string("\x01\x02\x03", 3), true);
  ASSERT_TRUE(bin);
  EXPECT_EQ(*bin, (EioPacket{EioType::message, std::string("\x01\x02\x03", 3), true}));
  EXPECT_EQ(encode_ws_frame(*bin), std::string("\x01\x02\x03", 3));
  EXPECT_EQ(encode_ws_frame({EioType::message, "hello", false}), "4hello");
  EXPECT_EQ(encode_ws_frame({EioType::pong, "probe", false}), "3probe");
}

TEST(EngineIoFrame, EmptyOrUnknownTypesAreNotPackets) {
  EXPECT_FALSE(decode_ws_frame("", false));
  EXPECT_FALSE(decode_ws_frame("7", false));
  EXPECT_FALSE(decode_ws_frame("x", false));
  EXPECT_FALSE(decode_ws_frame("b AQID", false));  // base64 is for polling only
}

TEST(EngineIoPayload, PacketsAreJoinedByTheRecordSeparatorAndBinaryIsBase64) {
  // engine.io-protocol, "HTTP long-polling": "4hello\x1e4€\x1ebAQIDBA=="
  const std::string body = "4hello\x1e" "4\xE2\x82\xAC\x1e" "bAQIDBA==";
  auto packets = decode_payload(body);
  ASSERT_TRUE(packets);
  ASSERT_EQ(packets->size(), 3u);
  EXPECT_EQ((*packets)[0], (EioPacket{EioType::message, "hello", false}));
  EXPECT_EQ((*packets)[1], (EioPacket{EioType::message, "\xE2\x82\xAC", false}));
  EXPECT_EQ((*packets)[2], (EioPacket{EioType::message, std::string("\x01\x02\x03\x04", 4), true}));
  EXPECT_EQ(encode_payload(*packets), body);
  const EioPacket single[] = {{EioType::noop, "", false}};
  EXPECT_EQ(encode_payload(single), "6");
}

TEST(EngineIoPayload, MalformedPayloadsAreRefused) {
  EXPECT_FALSE(decode_payload(""));
  EXPECT_FALSE(decode_payload("4a\x1e"));         // an empty packet at the end
  EXPECT_FALSE(decode_payload("\x1e" "4a"));      // and at the start
  EXPECT_FALSE(decode_payload("4a\x1e\x1e" "4b"));
  EXPECT_FALSE(decode_payload("9a"));             // unknown type
  EXPECT_FALSE(decode_payload("b!!!"));           // not base64
  EXPECT_FALSE(decode_payload("bAQIDBB=="));      // non-canonical trailing bits
  std::string many;
  for (int i = 0; i < 4; ++i) many += (i ? "\x1e" : "") + std::string("2");
  EXPECT_TRUE(decode_payload(many, {.max_packets = 4}));
  EXPECT_FALSE(decode_payload(many, {.max_packets = 3}));
}

TEST(SocketIoPacket, TheProtocolsExamplesDecodeAndEncodeBack) {
  struct Case {
    std::string text;
    SioType type;
    std::string nsp;
    std::optional<std::uint64_t> id;
    std::optional<std::string> data;
  };
  const Case cases[] = {
      {"0", SioType::connect, "/", {}, {}},
      {R"(0/admin,{"token":"123"})", SioType::connect, "/admin", {}, R"({"token":"123"})"},
      {R"(0{"sid":"oSO0OpakMV_3jnilAAAA"})", SioType::connect, "/", {}, R"({"sid":"oSO0OpakMV_3jnilAAAA"})"},
      {R"(4{"message":"Not authorized"})", SioType::connect_error, "/", {}, R"({"message":"Not authorized"})"},
      {"1/admin,", SioType::disconnect, "/admin", {}, {}},
      {R"(2["foo"])", SioType::event, "/", {}, R"(["foo"])"},
      {R"(2/admin,["bar"])", SioType::event, "/admin", {}, R"(["bar"])"},
      {R"(212["foo"])", SioType::event, "/", 12, R"(["foo"])"},
      {R"(3/admin,13["bar"])", SioType::ack, "/admin", 13, R"(["bar"])"},
      {R"(2[1,"x"])", SioType::event, "/", {}, R"([1,"x"])"},  // a number as the event's name
  };
  for (const auto& c : cases) {
    auto p = decode_sio(c.text);
    ASSERT_TRUE(p) << c.text << ": " << p.error();
    EXPECT_EQ(p->type, c.type) << c.text;
    EXPECT_EQ(p->nsp, c.nsp) << c.text;
    EXPECT_EQ(p->id, c.id) << c.text;
    EXPECT_EQ(p->data.has_value(), c.data.has_value()) << c.text;
    if (c.data && p->data) {
      EXPECT_EQ(*p->data, json::parse(*c.data)) << c.text;
    }
    // The encoding drops what is implicit ("/" and the comma after it): decode it again instead.
    auto again = decode_sio(encode_sio(*p));
    ASSERT_TRUE(again) << c.text;
    EXPECT_EQ(again->nsp, p->nsp);
    EXPECT_EQ(again->id, p->id);
  }
  EXPECT_EQ(encode_sio(*decode_sio(R"(2/admin,["bar"])")), R"(2/admin,["bar"])");
  EXPECT_EQ(encode_sio(*decode_sio(R"(212["foo"])")), R"(212["foo"])");
}

TEST(SocketIoPacket, BinaryPacketsAnnounceTheirBuffersAndTheAssemblerWaitsForThem) {
  const std::string header = R"(51-["baz",{"_placeholder":true,"num":0}])";
  auto p = decode_sio(header);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, SioType::binary_event);
  EXPECT_EQ(p->attachments, 1u);

  SioAssembler assembler;
  EXPECT_EQ(assembler.on_text(header).step, SioAssembler::Step::need_more);
  auto done = assembler.on_binary(std::string("\x01\x02\x03", 3));
  ASSERT_EQ(done.step, SioAssembler::Step::packet);
  ASSERT_EQ(done.packet.buffers.size(), 1u);
  EXPECT_EQ(done.packet.buffers[0], std::string("\x01\x02\x03", 3));
  EXPECT_EQ(encode_sio(done.packet), header);
  EXPECT_EQ(assembler.on_binary("x").step, SioAssembler::Step::error);  // nothing announced it

  SioAssembler two;
  EXPECT_EQ(two.on_text(R"(62-/admin,7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}])").step,
            SioAssembler::Step::need_more);
  EXPECT_EQ(two.on_binary("a").step, SioAssembler::Step::need_more);
  EXPECT_EQ(two.on_text(R"(2["x"])").step, SioAssembler::Step::error);  // a packet between the buffers
}

TEST(SocketIoPacket, WhatSocketIoParserRefusesIsRefused) {
  for (const char* bad : {
           "",                                  // no type
           "7",                                 // unknown type
           "x",                                 //
           R"(0"not an object")",               // CONNECT with a string
           R"(0[])",                            // CONNECT with an array
           R"(1{})",                            // DISCONNECT with a payload
           R"(2{"a":1})",                       // EVENT not an array
           R"(2[])",                            // EVENT without a name
           R"(2[{"a":1}])",                     // EVENT named by an object
           R"(2["connect"])",                   // reserved names
           R"(2["disconnect"])",                //
           R"(2["removeListener"])",            //
           R"(3{"a":1})",                       // ACK not an array
           R"(4[])",                            // CONNECT_ERROR an array
           R"(2["a",)",                         // not JSON
           R"(5["a"])",                         // BINARY_EVENT without its attachment count
           R"(5-["a"])",                        //
           R"(50-["a"])",                       // zero attachments
           R"(5x-["a"])",                       //
           R"(511-["a"])",                      // over the limit (10)
           R"(51-["a",{"_placeholder":true,"num":1}])",  // a placeholder past the buffers
           "29007199254740992[\"a\"]",          // an ack id JavaScript cannot hold (2^53)
           R"(2["a",600360E366])",              // a number no double holds (found by the fuzzer)
       }) {
    EXPECT_FALSE(decode_sio(bad)) << bad;
  }
  EXPECT_TRUE(decode_sio("29007199254740991[\"a\"]"));  // 2^53 − 1
  std::string deep = "2[\"a\"," + std::string(40, '[') + std::string(40, ']') + "]";
  EXPECT_FALSE(decode_sio(deep));
  EXPECT_TRUE(decode_sio(deep, {.max_attachments = 10, .max_depth = 64}));
}

}  // namespace
