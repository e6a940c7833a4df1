// The Socket.IO Redis adapter's format (adapters/socketio_redis): the msgpack codec against golden
// bytes that npm notepack.io 3.0.1 (the msgpack of @socket.io/redis-adapter 8.3.0 and
// @socket.io/redis-emitter 5.1.0) wrote — generated once with node from tests/node/node_modules,
// e.g. require('notepack.io').encode([...]).toString('hex'), the JS value beside each — and the
// adapter's logic over a recording publisher and recording Engine.IO links: what it publishes
// for a local emit, what it delivers of other processes' broadcasts, how it answers requests.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "adapters/socketio/room_notifier.hpp"
#include "adapters/socketio/sio_server.hpp"
#include "adapters/socketio_redis/adapter_protocol.hpp"
#include "adapters/socketio_redis/msgpack_json.hpp"
#include "adapters/socketio_redis/redis_adapter.hpp"
#include "adapters/socketio_redis/redis_emitter.hpp"

namespace registrar {
namespace {

namespace sio = adapters::socketio;
namespace sr = adapters::socketio_redis;
namespace json = boost::json;

std::string unhex(std::string_view hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::string tohex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// ["emitter", {type: 2, data: ["notification", {id: "j1", success: true, message: "User created
// successfully"}], nsp: "/"}, {rooms: ["room-1"], flags: {}, except: []}] — as the emitter writes it.
constexpr std::string_view kEmitterRoom =
    "93a7656d697474657283a47479706502a46461746192ac6e6f74696669636174696f6e83a26964a26a31a773756363657373c3a76d657373"
    "616765b9557365722063726561746564207375636365737366756c6c79a36e7370a12f83a5726f6f6d7391a6726f6f6d2d31a5666c616773"
    "80a665786365707490";
// ["AbC123", {type: 2, data: ["file", Buffer.from([1,2,3]), {nested: Buffer.from("hi")}], nsp: "/"},
//  {rooms: ["a","b"], except: ["c"], flags: {}}]
constexpr std::string_view kAdapterBinary =
    "93a641624331323383a47479706502a46461746193a466696c65c40301020381a66e6573746564c4026869a36e7370a12f83a5726f6f6d73"
    "92a161a162a665786365707491a163a5666c61677380";
// [0, 127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296, -1, -32, -33, -128, -129, -32768,
//  -32769, -2147483648, -2147483649, 1.5, "x".repeat(40), "é"]
constexpr std::string_view kScalars =
    "dc0015007fcc80ccffcd0100cdffffce00010000ceffffffffcf0000000100000000ffe0d0dfd080d1ff7fd18000d2ffff7fffd280000000"
    "d3ffffffff7fffffffcb3ff8000000000000d92878787878787878787878787878787878787878787878787878787878787878787878787878"
    "787878a2c3a9";
// [new Date(0), new Date(1700000000123), new Date(-1), new Date(Date.UTC(20000, 0, 1))]: timestamp
// 32, 64 and 96 (JSON.stringify: ["1970-01-01T00:00:00.000Z","2023-11-14T22:13:20.123Z",
// "1969-12-31T23:59:59.999Z","+020000-01-01T00:00:00.000Z"])
constexpr std::string_view kDates =
    "94d6ff00000000d7ff1d5353006553f100c70cff3b8b87c0ffffffffffffffffc70cff0000000000000084795cff00";
// notepack's legacy undefined (fixext 1 type 0) in [undefined, {a: undefined}, "b"]: decoded and
// stringified by notepack as [null,{},"b"] (hand-assembled; notepack 3 writes undefined as nil).
constexpr std::string_view kUndefinedLegacy = "93d4000081a161d40000a162";
// ["uid1", {type: 2, data: ["notification", {id: "7", success: false, message: "m"}], nsp: "/"},
//  {rooms: ["r"], except: [], flags: {}}] — what the Node adapter writes for that broadcast.
constexpr std::string_view kOurs =
    "93a47569643183a47479706502a46461746192ac6e6f74696669636174696f6e83a26964a137a773756363657373c2a76d657373616765a1"
    "6da36e7370a12f83a5726f6f6d7391a172a665786365707490a5666c61677380";

TEST(MsgpackJson, DecodesTheEmittersBroadcast) {
  auto m = sr::decode_broadcast(unhex(kEmitterRoom));
  EXPECT_EQ(m.uid, "emitter");
  EXPECT_EQ(m.packet.nsp, "/");
  EXPECT_EQ(m.packet.type, sio::SioType::event);
  EXPECT_EQ(json::serialize(*m.packet.data),
            R"(["notification",{"id":"j1","success":true,"message":"User created successfully"}])");
  EXPECT_EQ(m.to.rooms, std::vector<std::string>{"room-1"});
  EXPECT_TRUE(m.to.except.empty());
}

TEST(MsgpackJson, BinariesBecomePlaceholdersAndBack) {
  auto m = sr::decode_broadcast(unhex(kAdapterBinary));
  EXPECT_EQ(m.uid, "AbC123");
  EXPECT_EQ(m.packet.type, sio::SioType::binary_event);
  EXPECT_EQ(json::serialize(*m.packet.data),
            R"(["file",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}])");
  ASSERT_EQ(m.packet.buffers.size(), 2u);
  EXPECT_EQ(m.packet.buffers[0], std::string("\x01\x02\x03"));
  EXPECT_EQ(m.packet.buffers[1], "hi");
  EXPECT_EQ(m.to.rooms, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(m.to.except, std::vector<std::string>{"c"});
  EXPECT_EQ(tohex(sr::encode_broadcast(m)), kAdapterBinary);  // byte for byte what notepack writes
}

TEST(MsgpackJson, ScalarsRoundTripByteForByte) {
  auto d = sr::msgpack_to_json(unhex(kScalars));
  EXPECT_EQ(json::serialize(d.value).substr(0, 40), "[0,127,128,255,256,65535,65536,429496729");
  EXPECT_EQ(d.value.at(18).as_double(), 1.5);
  EXPECT_EQ(d.value.at(20).as_string(), "\xc3\xa9");
  EXPECT_EQ(tohex(sr::json_to_msgpack(d.value)), kScalars);
  // A JS number is one type: an integral double goes out as notepack writes the integer.
  EXPECT_EQ(tohex(sr::json_to_msgpack(json::parse("[1.0, -33.0, 4294967296.0]"))), "9301d0dfcf0000000100000000");
}

TEST(MsgpackJson, DatesAsJsonStringifyWritesThem) {
  auto d = sr::msgpack_to_json(unhex(kDates));
  EXPECT_EQ(json::serialize(d.value),
            R"(["1970-01-01T00:00:00.000Z","2023-11-14T22:13:20.123Z","1969-12-31T23:59:59.999Z","+020000-01-01T00:00:00.000Z"])");
  EXPECT_EQ(sr::iso_date(-62198755200000LL), "-000001-01-01T00:00:00.000Z");
  EXPECT_TRUE(sr::iso_date(8'640'000'000'000'001LL).is_null());
}

TEST(MsgpackJson, UndefinedAndOtherExtensions) {
  EXPECT_EQ(json::serialize(sr::msgpack_to_json(unhex(kUndefinedLegacy)).value), R"([null,{},"b"])");
  // ext 8 of type 5, 2 bytes: notepack's [type, Buffer]
  auto d = sr::msgpack_to_json(unhex("c7020561ff"));
  EXPECT_EQ(json::serialize(d.value), R"([5,{"_placeholder":true,"num":0}])");
  EXPECT_EQ(d.buffers.at(0), std::string("a\xff"));
  // fixext 8 type 0: notepack's old Date (milliseconds)
  EXPECT_EQ(json::serialize(sr::msgpack_to_json(unhex("d700000000000000000a")).value), R"("1970-01-01T00:00:00.010Z")");
}

TEST(MsgpackJson, RefusesMalformedInput) {
  const std::vector<std::string> bad = {
      "",                   // empty
      "92a161",             // truncated array
      "a16100",             // trailing byte
      "dd7fffffff",         // an array claiming 2^31 elements in 5 bytes
      "81c0c0",             // a nil map key
      "a2c328",             // invalid UTF-8
      "c1",                 // never used
  };
  for (const auto& hex : bad) EXPECT_THROW(sr::msgpack_to_json(unhex(hex)), sr::MsgpackError) << hex;
  std::string deep(40, '\x91');
  deep.push_back('\xc0');
  EXPECT_THROW(sr::msgpack_to_json(deep), sr::MsgpackError);
  sr::MsgpackLimits two{.max_binaries = 2};
  EXPECT_THROW(sr::msgpack_to_json(unhex("93c40161c40162c40163"), two), sr::MsgpackError);
  // Not a broadcast: too few elements, a packet other than an event, a bad room.
  EXPECT_THROW(sr::decode_broadcast(unhex("92a16180")), sr::ProtocolError);
  EXPECT_THROW(sr::decode_broadcast(sr::json_to_msgpack(json::parse(R"(["u",{"type":1,"data":["x"]},{}])"))), sr::ProtocolError);
  EXPECT_THROW(sr::decode_broadcast(sr::json_to_msgpack(json::parse(R"(["u",{"type":2,"data":["x"]},{"rooms":[true]}])"))),
               sr::ProtocolError);
}

TEST(AdapterProtocol, ChannelsAsTheNodeAdapterNamesThem) {
  sr::Channels c("socket.io", "/");
  EXPECT_EQ(c.broadcast, "socket.io#/#");
  EXPECT_EQ(c.request, "socket.io-request#/#");
  EXPECT_EQ(c.response, "socket.io-response#/#");
  EXPECT_EQ(c.broadcast_for({{"r"}, {}}), "socket.io#/#r#");
  EXPECT_EQ(c.broadcast_for({{"r", "s"}, {}}), "socket.io#/#");
  EXPECT_EQ(c.broadcast_for({}), "socket.io#/#");
}

// ------------------------------------------------------------------------------- the adapter

class RecordingLink final : public sio::EngineLink {
 public:
  void send(std::vector<sio::EngineMessage> messages) override {
    std::lock_guard lock(mutex_);
    for (auto& m : messages) sent_.push_back(m.binary ? "<bin:" + m.data + ">" : m.data);
  }
  void close() override { closed = true; }
  std::vector<std::string> sent() const {
    std::lock_guard lock(mutex_);
    return sent_;
  }
  bool closed = false;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> sent_;
};

class RecordingPublisher final : public sr::Publisher {
 public:
  void publish(const std::string& channel, const std::string& message) override { published.emplace_back(channel, message); }
  std::vector<std::pair<std::string, std::string>> published;
};

struct RedisAdapterTest : ::testing::Test {
  boost::asio::io_context ioc;
  adapters::logging::Logger log{"error"};
  sio::SioServer server{log};
  sio::SioNamespace& nsp = server.of("/");
  RecordingPublisher publisher;
  sr::RedisAdapter adapter{nsp, publisher, log, {.uid = "me"}};

  struct Client {
    std::shared_ptr<RecordingLink> link;
    std::shared_ptr<sio::SioConnection> conn;
    std::shared_ptr<sio::SioSocket> socket;
  };
  std::deque<Client> clients;  // references to earlier clients stay valid

  // A client connected to "/" and joined to `rooms`.
  Client& connect(std::vector<std::string> rooms) {
    Client c;
    c.link = std::make_shared<RecordingLink>();
    c.conn = server.accept(c.link, ioc.get_executor());
    nsp.on_connection([&c](const std::shared_ptr<sio::SioSocket>& s) { c.socket = s; });
    c.conn->on_text("0");
    for (const auto& r : rooms) c.socket->join(r);
    clients.push_back(std::move(c));
    return clients.back();
  }
  static std::size_t count(const Client& c, std::string_view text) {
    std::size_t n = 0;
    for (const auto& s : c.link->sent()) n += s.find(text) != std::string::npos;
    return n;
  }
};

TEST_F(RedisAdapterTest, PublishesLocalEmitsInTheAdaptersFormat) {
  auto& a = connect({"r"});
  sio::RoomNotifier hub(nsp);
  hub.notify({"r", "7", false, "m"});
  EXPECT_EQ(count(a, R"(["notification",{"id":"7","success":false,"message":"m"}])"), 1u);  // delivered here
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].first, "socket.io#/#r#");
  // What the Node adapter (uid "uid1") writes for the same broadcast, but for the uid.
  std::string expected = unhex(kOurs);
  expected.replace(1, 5, std::string("\xa2me", 3));
  EXPECT_EQ(tohex(publisher.published[0].second), tohex(expected));
  // A room nobody here is in is still published (other processes may have it).
  nsp.emit({{"x", "y"}, {"r"}}, "e", {});
  ASSERT_EQ(publisher.published.size(), 2u);
  EXPECT_EQ(publisher.published[1].first, "socket.io#/#");
}

TEST_F(RedisAdapterTest, DeliversOtherProcessesBroadcastsByRoomsAndExcept) {
  auto& in_room = connect({"room-1"});
  auto& other = connect({"room-2"});
  adapter.on_broadcast_message("socket.io#/#room-1#", unhex(kEmitterRoom));
  EXPECT_EQ(count(in_room, "User created successfully"), 1u);
  EXPECT_EQ(count(other, "User created successfully"), 0u);
  // Binary arguments reach the client as a BINARY_EVENT and its buffers; `except` is honoured.
  auto& a = connect({"a"});
  auto& c = connect({"b", "c"});
  adapter.on_broadcast_message("socket.io#/#", unhex(kAdapterBinary));
  EXPECT_EQ(count(a, R"(52-["file",{"_placeholder":true,"num":0},{"nested":{"_placeholder":true,"num":1}}])"), 1u);
  EXPECT_EQ(count(a, "<bin:hi>"), 1u);
  EXPECT_EQ(count(c, "file"), 0u);
  // Its own messages (uid "me"), other namespaces', garbage and unknown rooms are dropped quietly.
  auto mine = sr::encode_broadcast({"me", sr::decode_broadcast(unhex(kEmitterRoom)).packet, {{"room-1"}, {}}, {}});
  adapter.on_broadcast_message("socket.io#/#room-1#", mine);
  auto elsewhere = sr::decode_broadcast(unhex(kEmitterRoom));
  elsewhere.packet.nsp = "/admin";
  adapter.on_broadcast_message("socket.io#/#room-1#", sr::encode_broadcast(elsewhere));
  adapter.on_broadcast_message("socket.io#/#room-1#", "\x93garbage");
  adapter.on_broadcast_message("socket.io#/#nobody#", unhex(kEmitterRoom));
  EXPECT_EQ(count(in_room, "User created successfully"), 1u);
  EXPECT_TRUE(publisher.published.empty());  // never re-published
}

TEST_F(RedisAdapterTest, AnswersFetchSocketsAllRoomsAndSockets) {
  auto& a = connect({"r"});
  connect({"s"});
  adapter.on_request_message("socket.io-request#/#",
                             R"({"uid":"node","requestId":"q1","type":5,"opts":{"rooms":["r"],"except":[]}})");
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].first, "socket.io-response#/#");
  auto fetched = json::parse(publisher.published[0].second);
  EXPECT_EQ(fetched.at("requestId"), "q1");
  ASSERT_EQ(fetched.at("sockets").as_array().size(), 1u);
  EXPECT_EQ(std::string(fetched.at("sockets").at(0).at("id").as_string()), a.socket->id());
  EXPECT_EQ(fetched.at("sockets").at(0).at("handshake").at("auth"), json::object{});
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node","requestId":"q2","type":1})");
  auto rooms = json::parse(publisher.published.at(1).second).at("rooms").as_array();
  EXPECT_EQ(rooms.size(), 4u);  // r, s and the two sockets' own rooms
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node","requestId":"q3","type":0,"rooms":["s"]})");
  EXPECT_EQ(json::parse(publisher.published.at(2).second).at("sockets").as_array().size(), 1u);
  // Its own requests and garbage: no answer.
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"me","requestId":"q4","type":1})");
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node",)");
  EXPECT_EQ(publisher.published.size(), 3u);
}

TEST_F(RedisAdapterTest, JoinsLeavesAndDisconnectsOnRequest) {
  auto& a = connect({"r"});
  auto& b = connect({});
  // io.in("r").socketsJoin(["x", "y"]): no answer
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node","type":2,"opts":{"rooms":["r"],"except":[]},"rooms":["x","y"]})");
  EXPECT_TRUE(a.socket->rooms().contains("x"));
  EXPECT_TRUE(a.socket->rooms().contains("y"));
  EXPECT_FALSE(b.socket->rooms().contains("x"));
  adapter.on_request_message("socket.io-request#/#", R"({"type":3,"opts":{"rooms":[],"except":[]},"rooms":["y"]})");
  EXPECT_FALSE(a.socket->rooms().contains("y"));
  // the older form, one socket by id: answered
  adapter.on_request_message("socket.io-request#/#",
                             R"({"uid":"node","requestId":"j1","type":2,"sid":")" + b.socket->id() + R"(","room":"z"})");
  EXPECT_TRUE(b.socket->rooms().contains("z"));
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].second, R"({"requestId":"j1"})");
  // io.in("x").disconnectSockets(true)
  adapter.on_request_message("socket.io-request#/#", R"({"type":4,"opts":{"rooms":["x"],"except":[]},"close":true})");
  EXPECT_FALSE(a.socket->connected());
  EXPECT_TRUE(a.link->closed);
  EXPECT_TRUE(b.socket->connected());
}

TEST_F(RedisAdapterTest, ServerSideEmitAndBroadcastWithAcks) {
  json::array got;
  adapter.on_server_side_emit("hello", [&](json::array args, std::optional<std::function<void(json::value)>> ack) {
    got = args;
    if (ack) (*ack)("hi back");
  });
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node","type":6,"data":["hello",1,2]})");
  EXPECT_EQ(json::serialize(got), "[1,2]");
  EXPECT_TRUE(publisher.published.empty());
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node","requestId":"s1","type":6,"data":["hello"]})");
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].second, R"({"type":6,"requestId":"s1","data":"hi back"})");
  adapter.on_request_message("socket.io-request#/#", R"({"uid":"node","requestId":"s2","type":6,"data":["nobody"]})");
  EXPECT_EQ(publisher.published.size(), 1u);  // no handler: as socket.io without a listener

  // io.timeout(…).emit("ping", 1, cb) from Node: the client count, then each client's ack (msgpack).
  auto& a = connect({"r"});
  json::object request{{"uid", "node"}, {"requestId", "b1"}, {"type", 7},
                       {"packet", {{"type", 2}, {"data", {"ping", 1}}, {"nsp", "/"}}},
                       {"opts", {{"rooms", json::array{"r"}}, {"except", json::array{}}}}};
  adapter.on_request_message("socket.io-request#/#", sr::json_to_msgpack(request));
  ASSERT_EQ(publisher.published.size(), 2u);
  EXPECT_EQ(publisher.published[1].second, R"({"type":8,"requestId":"b1","clientCount":1})");
  EXPECT_EQ(count(a, R"(20["ping",1])"), 1u);
  a.conn->on_text(R"(30["pong"])");
  ASSERT_EQ(publisher.published.size(), 3u);
  auto ack = sr::msgpack_to_json(publisher.published[2].second).value;
  EXPECT_EQ(json::serialize(ack), R"({"type":9,"requestId":"b1","packet":"pong"})");
}

TEST(RedisEmitter, WritesWhatTheNodeEmitterWrites) {
  RecordingPublisher publisher;
  sr::RedisEmitter emitter(publisher);
  sio::SioMessage m;
  m.args.push_back(json::object{{"id", "j1"}, {"success", true}, {"message", "User created successfully"}});
  emitter.emit({{"room-1"}, {}}, "notification", m);
  ASSERT_EQ(publisher.published.size(), 1u);
  EXPECT_EQ(publisher.published[0].first, "socket.io#/#room-1#");
  // The Node emitter writes opts as {rooms, flags, except}; registrar as the adapter, {rooms, except, flags}.
  auto decoded = sr::decode_broadcast(publisher.published[0].second);
  auto golden = sr::decode_broadcast(unhex(kEmitterRoom));
  EXPECT_EQ(decoded.uid, "emitter");
  EXPECT_EQ(*decoded.packet.data, *golden.packet.data);
  EXPECT_EQ(decoded.to.rooms, golden.to.rooms);
}

}  // namespace
}  // namespace registrar
