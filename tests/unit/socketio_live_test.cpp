// Who joins which room of serve's main namespace (adapters/socketio/token_auth.hpp), and the live
// pushes through it: the socketio consumer's `user.registered` to the account's room and `admins`
// (adapters/consumers/socketio_consumer.hpp), over RoomBroadcast onto recorded Engine.IO links.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <memory>
#include <string>
#include <vector>

#include "adapters/consumers/builtin.hpp"
#include "adapters/consumers/socketio_consumer.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/socketio/room_notifier.hpp"
#include "adapters/socketio/sio_server.hpp"
#include "adapters/socketio/token_auth.hpp"
#include "support/events.hpp"
#include "support/fakes.hpp"
#include "support/recording_link.hpp"

namespace registrar {
namespace {

namespace sio = adapters::socketio;
namespace json = boost::json;
using testing::FakeTokenService;
using testing::RecordingLink;

constexpr const char* kAdminToken = "admin-token-admin-token-admin-token-0123";

struct SocketIoLiveTest : ::testing::Test {
  boost::asio::io_context ioc;
  adapters::logging::Logger log{"error"};
  FakeTokenService tokens;
  sio::SioServer server{log};
  sio::SioNamespace& nsp = server.of("/");
  sio::RoomBroadcast live{nsp};

  struct Client {
    std::shared_ptr<RecordingLink> link = std::make_shared<RecordingLink>();
    std::shared_ptr<sio::SioConnection> conn;
  };
  std::vector<Client> clients;

  void SetUp() override { nsp.set_authorize(sio::token_authorize(tokens, kAdminToken)); }

  // A client that sent CONNECT with `auth`; returns its index.
  RecordingLink& connect(const std::string& auth) {
    Client c;
    c.conn = server.accept(c.link, ioc.get_executor());
    c.conn->on_text("0" + auth);
    clients.push_back(c);
    return *clients.back().link;
  }
  static bool accepted(const RecordingLink& link) { return link.sent().size() == 1 && link.sent()[0].rfind("0{\"sid\":", 0) == 0; }
};

TEST_F(SocketIoLiveTest, VerificationAndAccessTokensJoinTheRoomOfTheirSubject) {
  auto& session = connect(R"({"token":")" + FakeTokenService::make("session-1", ports::TokenType::verification) + R"("})");
  auto& account = connect(R"({"token":")" + FakeTokenService::make("user-1", ports::TokenType::access) + R"("})");
  ASSERT_TRUE(accepted(session)) << session.last();
  ASSERT_TRUE(accepted(account)) << account.last();
  EXPECT_EQ(nsp.sockets({{"session-1"}, {}}).size(), 1u);
  EXPECT_EQ(nsp.sockets({{"user-1"}, {}}).size(), 1u);
  EXPECT_TRUE(nsp.sockets({{ports::kAdminsRoom}, {}}).empty());
}

TEST_F(SocketIoLiveTest, TheAdminTokenJoinsAdminsOnly) {
  auto& admin = connect(std::string(R"({"token":")") + kAdminToken + R"("})");
  ASSERT_TRUE(accepted(admin)) << admin.last();
  auto sockets = nsp.sockets({{ports::kAdminsRoom}, {}});
  ASSERT_EQ(sockets.size(), 1u);
  EXPECT_EQ(sockets[0]->rooms().size(), 2u);  // its own id and admins
}

TEST_F(SocketIoLiveTest, RefusalsAreConnectErrorsWithTheirMessage) {
  auto& none = connect("");
  auto& empty = connect(R"({"token":""})");
  auto& bad = connect(R"({"token":"nonsense"})");
  auto& near_admin = connect(std::string(R"({"token":")") + std::string(kAdminToken).substr(1) + R"("})");
  EXPECT_EQ(none.last(), R"(4{"message":"Authentication required"})");
  EXPECT_EQ(empty.last(), R"(4{"message":"Authentication required"})");
  EXPECT_EQ(bad.last(), R"(4{"message":"Invalid or expired token"})");
  EXPECT_EQ(near_admin.last(), R"(4{"message":"Invalid or expired token"})");
  EXPECT_EQ(nsp.size(), 0u);
}

TEST_F(SocketIoLiveTest, WithoutAnAdminTokenNobodyIsAdmin) {
  nsp.set_authorize(sio::token_authorize(tokens, ""));
  auto& empty_admin = connect(R"({"token":""})");
  EXPECT_EQ(empty_admin.last(), R"(4{"message":"Authentication required"})");
  EXPECT_TRUE(nsp.sockets({{ports::kAdminsRoom}, {}}).empty());
}

TEST_F(SocketIoLiveTest, UserRegisteredReachesTheAccountsSocketsAndAdminsAndNoOther) {
  const std::string user_id = "0192a3b4-0000-7000-8000-000000000001";
  auto& own = connect(R"({"token":")" + FakeTokenService::make(user_id, ports::TokenType::access) + R"("})");
  auto& admin = connect(std::string(R"({"token":")") + kAdminToken + R"("})");
  auto& other = connect(R"({"token":")" + FakeTokenService::make("someone-else", ports::TokenType::access) + R"("})");
  auto& session = connect(R"({"token":")" + FakeTokenService::make("session-1", ports::TokenType::verification) + R"("})");

  adapters::consumers::SocketIoConsumer consumer(live);
  consumer.handle(testing::user_registered("evt-1", "newuser", user_id));

  const std::string expected =
      R"(2["user.registered",{"id":"0192a3b4-0000-7000-8000-000000000001","email":"newuser@example.com",)"
      R"("username":"newuser","createdAt":"2025-10-19T16:37:15.123Z"}])";
  EXPECT_EQ(own.last(), expected);
  EXPECT_EQ(admin.last(), expected);
  EXPECT_EQ(other.sent().size(), 1u);    // its CONNECT answer only
  EXPECT_EQ(session.sent().size(), 1u);
}

TEST_F(SocketIoLiveTest, APhoneAccountsEventHasANullEmailAndAMalformedOneIsRefused) {
  auto& admin = connect(std::string(R"({"token":")") + kAdminToken + R"("})");
  adapters::consumers::SocketIoConsumer consumer(live);
  auto event = testing::user_registered("evt-2", "phoneuser", "user-2");
  auto body = json::parse(event.payload).as_object();
  body["data"].as_object()["email"] = nullptr;
  event.payload = json::serialize(body);
  consumer.handle(event);
  EXPECT_EQ(json::parse(admin.last().substr(1)).as_array()[1].at("email"), nullptr);

  event.payload = "{}";
  EXPECT_THROW(consumer.handle(event), adapters::consumers::MalformedEvent);
  domain::EventEnvelope other_type = testing::user_registered("evt-3");
  other_type.type = "user.email_verified";
  const auto before = admin.sent().size();
  consumer.handle(other_type);  // not ours: ignored
  EXPECT_EQ(admin.sent().size(), before);
}

TEST_F(SocketIoLiveTest, RoomBroadcastRefusesAPayloadThatIsNotJson) {
  EXPECT_THROW(live.broadcast({.rooms = {"r"}, .event = "e", .json = "{"}), std::invalid_argument);
}

}  // namespace
}  // namespace registrar
