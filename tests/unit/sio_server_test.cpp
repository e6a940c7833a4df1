// The Socket.IO server side (adapters/socketio/sio_server.hpp) on a recording Engine.IO link: the
// packets it answers, in socket.io-parser's text form, for what socket.io's own server does —
// namespaces, refusals, events and acks both ways, binary arguments, rooms, the invalid-state and
// parse-error closes, the connect timeout.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "adapters/socketio/sio_server.hpp"
#include "support/recording_link.hpp"

namespace registrar {
namespace {

namespace sio = adapters::socketio;
namespace json = boost::json;
using namespace std::chrono_literals;

using testing::RecordingLink;

struct SioServerTest : ::testing::Test {
  boost::asio::io_context ioc;
  adapters::logging::Logger log{"error"};
  sio::SioServer server{log, sio::SioOptions{.connect_timeout = 100ms}};
  std::shared_ptr<RecordingLink> link = std::make_shared<RecordingLink>();
  std::shared_ptr<sio::SioConnection> conn;

  void SetUp() override { conn = server.accept(link, ioc.get_executor()); }

  // The sid of a CONNECT answer ("0{\"sid\":…}" or "0/custom,{…}").
  static std::string sid_of(const std::string& packet) {
    const auto brace = packet.find('{');
    return std::string(json::parse(packet.substr(brace)).at("sid").as_string());
  }
};

TEST_F(SioServerTest, ConnectToTheMainNamespaceIsAnsweredWithTheSocketIdAndRunsOnConnection) {
  std::shared_ptr<sio::SioSocket> seen;
  std::string auth;
  server.of("/").on_connection([&](const auto& s) {
    seen = s;
    auth = json::serialize(s->auth());
  });
  conn->on_text(R"(0{"token":"abc"})");
  ASSERT_TRUE(seen);
  const auto answer = link->last();
  ASSERT_EQ(answer.rfind("0{", 0), 0u) << answer;
  EXPECT_EQ(sid_of(answer), seen->id());
  EXPECT_EQ(seen->id().size(), 20u);
  EXPECT_EQ(auth, R"({"token":"abc"})");
  EXPECT_TRUE(seen->auth().is_null());  // not kept past on_connection (the token stays out of memory)
  EXPECT_EQ(seen->rooms(), std::set<std::string>{seen->id()});  // the room of its own id
  EXPECT_EQ(server.of("/").size(), 1u);
}

TEST_F(SioServerTest, ACustomNamespaceWithoutPayloadHasAnEmptyAuth) {
  std::shared_ptr<sio::SioSocket> seen;
  std::string auth;
  server.of("/custom").on_connection([&](const auto& s) {
    seen = s;
    auth = json::serialize(s->auth());
  });
  conn->on_text("0/custom,");
  ASSERT_TRUE(seen);
  EXPECT_EQ(auth, "{}");
  EXPECT_EQ(link->last().rfind("0/custom,{\"sid\":", 0), 0u) << link->last();
}

TEST_F(SioServerTest, AnUnknownNamespaceIsRefusedWithInvalidNamespaceAndTheConnectionStays) {
  server.of("/");
  conn->on_text("0/random,");
  EXPECT_EQ(link->last(), R"(4/random,{"message":"Invalid namespace"})");
  EXPECT_FALSE(link->closed);
  conn->on_text("0");  // the main namespace still can be joined
  EXPECT_EQ(link->last().rfind("0{\"sid\":", 0), 0u);
}

TEST_F(SioServerTest, ARefusalIsAConnectErrorWithMessageAndData) {
  bool connected = false;
  auto& nsp = server.of("/");
  nsp.set_authorize([](sio::SioSocket& s) -> std::optional<sio::ConnectRefusal> {
    if (s.auth().is_object() && s.auth().as_object().contains("token")) return std::nullopt;
    return sio::ConnectRefusal{"Authentication required", json::object{{"code", "unauthenticated"}}};
  });
  nsp.on_connection([&](const auto&) { connected = true; });
  conn->on_text("0{}");
  EXPECT_EQ(link->last(), R"(4{"message":"Authentication required","data":{"code":"unauthenticated"}})");
  EXPECT_FALSE(connected);
  EXPECT_EQ(nsp.size(), 0u);
  // Refused, not joined: an event for it is an invalid state.
  conn->on_text(R"(2["x"])");
  EXPECT_TRUE(link->closed);
}

TEST_F(SioServerTest, EventsReachTheirHandlerAndAnAckAnswersWithTheSameId) {
  server.of("/").on_connection([](const std::shared_ptr<sio::SioSocket>& s) {
    s->on("message-with-ack", [](sio::SioMessage m, std::optional<sio::Ack> ack) {
      ASSERT_TRUE(ack);
      (*ack)(m);
      (*ack)(m);  // a second answer is not sent
    });
    s->on("message", [w = std::weak_ptr(s)](sio::SioMessage m, std::optional<sio::Ack> ack) {
      EXPECT_FALSE(ack);
      w.lock()->emit("message-back", std::move(m));  // weak: a handler holding its socket would never free it
    });
  });
  conn->on_text("0");
  conn->on_text(R"(2["message",1,"2",{"3":[true]}])");
  EXPECT_EQ(link->last(), R"(2["message-back",1,"2",{"3":[true]}])");
  const auto before = link->sent().size();
  conn->on_text(R"(2456["message-with-ack",1,"2"])");
  EXPECT_EQ(link->last(), R"(3456[1,"2"])");
  EXPECT_EQ(link->sent().size(), before + 1);
  conn->on_text(R"(2["nobody-listens"])");  // dropped, the connection stays
  EXPECT_FALSE(link->closed);
}

TEST_F(SioServerTest, BinaryArgumentsArriveWithTheirBuffersAndGoBackAsABinaryPacket) {
  server.of("/custom").on_connection([](const std::shared_ptr<sio::SioSocket>& s) {
    s->on("message", [w = std::weak_ptr(s)](sio::SioMessage m, std::optional<sio::Ack>) {
      EXPECT_EQ(m.buffers, std::vector<std::string>{std::string("\x01\x02\x03", 3)});
      w.lock()->emit("message-back", std::move(m));
    });
  });
  conn->on_text("0/custom,");
  const auto batches = link->batches();
  conn->on_text(R"(51-/custom,["message",{"_placeholder":true,"num":0}])");
  EXPECT_EQ(link->batches(), batches);  // waits for its buffer
  conn->on_binary(std::string("\x01\x02\x03", 3));
  const auto sent = link->sent();
  ASSERT_GE(sent.size(), 2u);
  EXPECT_EQ(sent[sent.size() - 2], R"(51-/custom,["message-back",{"_placeholder":true,"num":0}])");
  EXPECT_EQ(sent.back(), "<bin:\x01\x02\x03>");
  EXPECT_EQ(link->batches(), batches + 1);  // header and buffer in one batch
}

TEST_F(SioServerTest, TheServersEmitWithAckIsCalledBackByTheClientsAck) {
  std::shared_ptr<sio::SioSocket> socket;
  server.of("/").on_connection([&](const auto& s) { socket = s; });
  conn->on_text("0");
  ASSERT_TRUE(socket);
  std::vector<std::string> answers;
  socket->emit_with_ack("ping", {json::array{1}, {}}, [&](sio::SioMessage m) { answers.push_back(json::serialize(m.args)); });
  EXPECT_EQ(link->last(), R"(20["ping",1])");
  conn->on_text(R"(30["pong",2])");
  conn->on_text(R"(30["again"])");  // answered already: ignored
  conn->on_text(R"(37["unknown"])");
  EXPECT_EQ(answers, std::vector<std::string>{R"(["pong",2])"});
  EXPECT_FALSE(link->closed);
}

TEST_F(SioServerTest, RoomsSelectTheSocketsOfAnEmitAndExceptLeavesSomeOut) {
  auto& nsp = server.of("/");
  std::vector<std::shared_ptr<sio::SioSocket>> sockets;
  nsp.on_connection([&](const auto& s) { sockets.push_back(s); });
  std::vector<std::shared_ptr<RecordingLink>> links;
  std::vector<std::shared_ptr<sio::SioConnection>> conns;
  for (int i = 0; i < 3; ++i) {
    links.push_back(std::make_shared<RecordingLink>());
    conns.push_back(server.accept(links.back(), ioc.get_executor()));
    conns.back()->on_text("0");
  }
  ASSERT_EQ(sockets.size(), 3u);
  sockets[0]->join("user-1");
  sockets[1]->join("user-1");
  sockets[2]->join("admins");
  EXPECT_EQ(nsp.emit({{"user-1"}, {}}, "notification", {json::array{json::object{{"success", true}}}, {}}), 2u);
  EXPECT_EQ(links[0]->last(), R"(2["notification",{"success":true}])");
  EXPECT_EQ(links[1]->last(), R"(2["notification",{"success":true}])");
  EXPECT_EQ(links[2]->last().rfind("0{", 0), 0u);  // only its CONNECT answer
  EXPECT_EQ(nsp.emit({{"user-1", "admins"}, {sockets[1]->id()}}, "x", {}), 2u);
  EXPECT_EQ(links[1]->last(), R"(2["notification",{"success":true}])");
  EXPECT_EQ(nsp.emit({}, "all", {}), 3u);
  sockets[0]->leave("user-1");
  EXPECT_EQ(nsp.emit({{"user-1"}, {}}, "y", {}), 1u);
  conns[1]->on_close("transport close");
  EXPECT_EQ(nsp.emit({{"user-1"}, {}}, "z", {}), 0u);
  EXPECT_EQ(nsp.size(), 2u);
}

TEST_F(SioServerTest, AClientDisconnectLeavesTheNamespaceAndTellsTheHandler) {
  std::shared_ptr<sio::SioSocket> socket;
  std::string reason;
  server.of("/").on_connection([&](const auto& s) {
    socket = s;
    s->on_disconnect([&](std::string_view r) { reason = r; });
  });
  conn->on_text("0");
  socket->join("room");
  conn->on_text("1");
  EXPECT_EQ(reason, "client namespace disconnect");
  EXPECT_FALSE(socket->connected());
  EXPECT_EQ(server.of("/").size(), 0u);
  EXPECT_EQ(server.of("/").emit({{"room"}, {}}, "x", {}), 0u);
  EXPECT_FALSE(link->closed);
  conn->on_text("0");  // it may join again
  EXPECT_EQ(server.of("/").size(), 1u);
}

TEST_F(SioServerTest, AServerDisconnectSendsDisconnectForThatNamespace) {
  std::shared_ptr<sio::SioSocket> socket;
  std::string reason;
  server.of("/custom").on_connection([&](const auto& s) {
    socket = s;
    s->on_disconnect([&](std::string_view r) { reason = r; });
  });
  conn->on_text("0/custom,");
  socket->disconnect();
  EXPECT_EQ(link->last(), "1/custom,");
  EXPECT_EQ(reason, "server namespace disconnect");
  socket->emit("late");  // nothing goes out after it
  EXPECT_EQ(link->last(), "1/custom,");
}

TEST_F(SioServerTest, TheTransportClosingDisconnectsEverySocketWithItsReason) {
  std::vector<std::string> reasons;
  for (const char* name : {"/", "/custom"}) {
    server.of(name).on_connection([&](const auto& s) { s->on_disconnect([&](std::string_view r) { reasons.emplace_back(r); }); });
  }
  conn->on_text("0");
  conn->on_text("0/custom,");
  conn->on_close("ping timeout");
  EXPECT_EQ(reasons, (std::vector<std::string>{"ping timeout", "ping timeout"}));
  EXPECT_EQ(server.of("/").size() + server.of("/custom").size(), 0u);
}

TEST_F(SioServerTest, InvalidStatesAndUndecodablePacketsCloseTheConnection) {
  server.of("/");
  for (const char* bad : {R"(2["event before connect"])", "0\n0", R"(2[{"not":"an event"}])", "9", R"(3["ack before connect"])"}) {
    SCOPED_TRACE(bad);
    auto l = std::make_shared<RecordingLink>();
    auto c = server.accept(l, ioc.get_executor());
    c->on_text(bad);
    EXPECT_TRUE(l->closed);
  }
  // A second CONNECT for a namespace already joined.
  conn->on_text("0");
  conn->on_text("0");
  EXPECT_TRUE(link->closed);
}

TEST_F(SioServerTest, AConnectionThatJoinsNoNamespaceWithinTheTimeoutIsClosed) {
  server.of("/");
  auto joined_link = std::make_shared<RecordingLink>();
  auto joined = server.accept(joined_link, ioc.get_executor());
  joined->on_text("0");
  ioc.run_for(300ms);
  EXPECT_TRUE(link->closed);           // never sent CONNECT
  EXPECT_FALSE(joined_link->closed);   // joined in time
}

}  // namespace
}  // namespace registrar
