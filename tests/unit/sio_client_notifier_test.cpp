// The Socket.IO client notifier (client mode, --notify-url): its queue and back-off as pure logic,
// its URL reading, and the client itself against a fake notification server (a WebSocket server
// on the loopback that speaks Engine.IO 4 / Socket.IO 5 through the codecs, scripted per test).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/socketio/engineio_packet.hpp"
#include "adapters/socketio/socketio_packet.hpp"
#include "adapters/socketio_client/notify_queue.hpp"
#include "adapters/socketio_client/notify_url.hpp"
#include "adapters/socketio_client/sio_client_notifier.hpp"
#include "support/captured_log.hpp"
#include "support/loopback_server.hpp"

namespace {

using namespace std::chrono_literals;
using registrar::ports::Notification;
namespace sc = registrar::adapters::socketio_client;
namespace sio = registrar::adapters::socketio;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;

Notification note(const std::string& id, bool success = true, const std::string& message = "User created successfully") {
  return {.room = id, .id = id, .success = success, .message = message};
}

// ---- NotifyQueue ----

TEST(NotifyQueue, KeepsOrderAndTakesOutWhatWasWritten) {
  sc::NotifyQueue q(10);
  q.push(note("a"));
  q.push(note("b"));
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q.front().notification.id, "a");
  q.written(q.front().seq);
  EXPECT_EQ(q.front().notification.id, "b");
  q.written(q.front().seq);
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.dropped(), 0u);
}

TEST(NotifyQueue, WhenFullTheOldestGoesAndTheDropsAreCountedUntilTaken) {
  sc::NotifyQueue q(3);
  EXPECT_FALSE(q.push(note("1")));
  EXPECT_FALSE(q.push(note("2")));
  EXPECT_FALSE(q.push(note("3")));
  EXPECT_TRUE(q.push(note("4")));
  EXPECT_TRUE(q.push(note("5")));
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(q.front().notification.id, "3");
  EXPECT_EQ(q.take_dropped(), 2u);
  EXPECT_EQ(q.take_dropped(), 0u);  // one log line per episode
}

TEST(NotifyQueue, AnEntryDroppedWhileBeingWrittenDoesNotTakeOutItsSuccessor) {
  sc::NotifyQueue q(1);
  q.push(note("old"));
  const auto in_flight = q.front().seq;
  q.push(note("new"));  // drops "old" while the writer has it
  q.written(in_flight);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.front().notification.id, "new");
}

// ---- ReconnectBackoff ----

TEST(ReconnectBackoff, DoublesFromMinUpToMaxAndResets) {
  sc::ReconnectBackoff b(100ms, 1000ms);
  std::vector<long> waits;
  for (int i = 0; i < 6; ++i) waits.push_back(static_cast<long>(b.next(0.5).count()));  // 0.5: no jitter
  EXPECT_EQ(waits, (std::vector<long>{100, 200, 400, 800, 1000, 1000}));
  b.reset();
  EXPECT_EQ(b.next(0.5), 100ms);
}

TEST(ReconnectBackoff, JitterStaysWithinTwentyPercent) {
  sc::ReconnectBackoff low(1000ms, 1000ms), high(1000ms, 1000ms);
  EXPECT_EQ(low.next(0.0), 800ms);
  EXPECT_EQ(high.next(1.0), 1200ms);
}

// ---- the URL ----

TEST(NotifyUrl, ReadsTheFormsSocketIoClientAccepts) {
  auto u = sc::parse_notify_url("http://127.0.0.1:3101");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, "3101");
  EXPECT_EQ(u.nsp, "/");
  EXPECT_EQ(u.display, "http://127.0.0.1:3101");
  EXPECT_EQ(sc::parse_notify_url("ws://notify.internal/").port, "80");
  auto t = sc::parse_notify_url("wss://notify.example.com/users/?x=1");
  EXPECT_TRUE(t.tls);
  EXPECT_EQ(t.port, "443");
  EXPECT_EQ(t.nsp, "/users");
  EXPECT_EQ(t.query, "x=1");
  EXPECT_EQ(t.display, "wss://notify.example.com/users");  // never the query
  EXPECT_TRUE(sc::parse_notify_url("HTTPS://[::1]:8443").tls);
  EXPECT_EQ(sc::parse_notify_url("https://[::1]:8443").host, "::1");
}

TEST(NotifyUrl, RefusesWhatCannotWorkWithAReason) {
  for (const char* bad : {"ftp://h", "127.0.0.1:3101", "http://", "http://u:p@h", "http://h#x", "http://h:0", "http://h:70000", ""})
    EXPECT_THROW(sc::parse_notify_url(bad), std::invalid_argument) << bad;
  EXPECT_EQ(sc::normalize_engine_path("/sio"), "/sio/");
  EXPECT_EQ(sc::normalize_engine_path("/socket.io/"), "/socket.io/");
  EXPECT_THROW(sc::normalize_engine_path("socket.io"), std::invalid_argument);
  EXPECT_THROW(sc::normalize_engine_path("/a?b"), std::invalid_argument);
}

// ---- the client against a fake notification server ----

// Scripted Engine.IO/Socket.IO server: refuses connections (closes them at once) until `accepting`,
// answers CONNECT with `connect_error` when `refusal` is set, pings once after each CONNECT, and
// records what arrives.
class FakeNotifyServer {
 public:
  explicit FakeNotifyServer(std::string refusal = "") : refusal(std::move(refusal)) {}

  std::atomic<bool> accepting{true};
  std::atomic<bool> send_pings{true};  // false: a server that never pings (dead, for the client)
  const std::string refusal;           // non-empty: every CONNECT gets connect_error with it
  std::atomic<int> ping_interval_ms{25'000}, ping_timeout_ms{20'000};

  std::uint16_t port() const { return server_.port(); }

  struct Seen {
    std::vector<std::string> targets;        // the handshake request targets
    std::vector<std::string> connects;       // CONNECT payloads ("" for none)
    std::vector<std::string> namespaces;     // of each CONNECT and EVENT, in order
    std::vector<boost::json::value> events;  // every EVENT's array
    int pongs = 0;
    int sessions = 0;
    int refused = 0;      // connections closed at once (accepting false)
    int disconnects = 0;  // DISCONNECT packets from the client
  };

  // Waits (on the condition, never a fixed sleep) until `pred(seen)`; false after `timeout`.
  template <class Pred>
  bool wait(Pred pred, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return pred(seen_); });
  }
  Seen seen() {
    std::lock_guard lock(mutex_);
    return seen_;
  }
  std::vector<std::string> notified_ids() {
    std::lock_guard lock(mutex_);
    std::vector<std::string> ids;
    for (const auto& e : seen_.events) ids.emplace_back(e.as_array()[1].as_object().at("id").as_string());
    return ids;
  }

 private:
  template <class F>
  void update(F f) {
    {
      std::lock_guard lock(mutex_);
      f(seen_);
    }
    changed_.notify_all();
  }

  asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
    const auto tuple = asio::as_tuple(asio::use_awaitable);
    if (!accepting) {
      boost::system::error_code ignored;
      socket.close(ignored);
      update([](Seen& s) { ++s.refused; });
      co_return;
    }
    websocket::stream<asio::ip::tcp::socket> ws(std::move(socket));
    beast::flat_buffer buffer;
    beast::http::request<beast::http::string_body> req;
    auto [rec, read_n] = co_await beast::http::async_read(ws.next_layer(), buffer, req, tuple);
    if (rec) co_return;
    update([&](Seen& s) {
      s.targets.emplace_back(req.target());
      ++s.sessions;
    });
    auto [aec] = co_await ws.async_accept(req, tuple);
    if (aec) co_return;
    auto send = [&](const std::string& text) -> asio::awaitable<bool> {
      auto [wec, n] = co_await ws.async_write(asio::buffer(text), tuple);
      co_return !wec;
    };
    // Named frames, never temporaries inside a co_await expression (GCC 12 may destroy those twice).
    const std::string open = "0{\"sid\":\"fake\",\"upgrades\":[],\"pingInterval\":" + std::to_string(ping_interval_ms.load()) +
                             ",\"pingTimeout\":" + std::to_string(ping_timeout_ms.load()) + ",\"maxPayload\":1000000}";
    if (!co_await send(open)) co_return;
    for (;;) {
      beast::flat_buffer in;
      auto [ec, n] = co_await ws.async_read(in, tuple);
      if (ec) co_return;
      auto packet = sio::decode_ws_frame(beast::buffers_to_string(in.data()), !ws.got_text());
      if (!packet) co_return;
      if (packet->type == sio::EioType::pong) {
        update([](Seen& s) { ++s.pongs; });
        continue;
      }
      if (packet->type != sio::EioType::message) continue;
      auto p = sio::decode_sio(packet->data);
      if (!p) co_return;
      if (p->type == sio::SioType::connect) {
        update([&](Seen& s) {
          s.connects.push_back(p->data ? boost::json::serialize(*p->data) : "");
          s.namespaces.push_back(p->nsp);
        });
        if (!refusal.empty()) {
          const std::string connect_error = "44{\"message\":\"" + refusal + "\"}";
          if (!co_await send(connect_error)) co_return;
          continue;
        }
        sio::SioPacket ack;
        ack.type = sio::SioType::connect;
        ack.nsp = p->nsp;
        ack.data = boost::json::object{{"sid", "nsp-sid"}};
        const std::string connect_ack = sio::encode_ws_frame({sio::EioType::message, sio::encode_sio(ack), false});
        if (!co_await send(connect_ack)) co_return;
        const std::string ping = "2";
        if (send_pings && !co_await send(ping)) co_return;
      } else if (p->type == sio::SioType::event) {
        update([&](Seen& s) {
          s.events.push_back(*p->data);
          s.namespaces.push_back(p->nsp);
        });
      } else if (p->type == sio::SioType::disconnect) {
        update([](Seen& s) { ++s.disconnects; });
      }
    }
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  Seen seen_;
  registrar::testing::LoopbackServer server_{[this](asio::ip::tcp::socket s) { return serve(std::move(s)); }};
};

// For what only the client's log shows: polls it until `pred` holds; false after `timeout`.
template <class Pred>
bool log_shows(Pred pred, std::chrono::milliseconds timeout = 10s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

sc::SioClientOptions options_for(const FakeNotifyServer& server) {
  sc::SioClientOptions o;
  o.url = sc::parse_notify_url("http://127.0.0.1:" + std::to_string(server.port()));
  o.reconnect_min = 10ms;
  o.reconnect_max = 50ms;
  o.connect_timeout = 2s;
  return o;
}

TEST(SioClientNotifier, EmitsNotifyWithTheNodeWorkersObjectAfterConnectingWithTheAuthPayload) {
  FakeNotifyServer server;
  registrar::testing::CapturedLog log;
  auto o = options_for(server);
  o.auth = boost::json::object{{"token", "t0k"}};
  sc::SioClientNotifier client(o, log.logger);
  client.start();
  client.notify(note("session-1", false, "The verification code is incorrect"));
  ASSERT_TRUE(server.wait([](const auto& s) { return s.events.size() == 1 && s.pongs == 1; })) << log.text();
  const auto seen = server.seen();
  EXPECT_EQ(seen.targets.front(), "/socket.io/?EIO=4&transport=websocket");
  EXPECT_EQ(seen.connects.front(), R"({"token":"t0k"})");
  EXPECT_EQ(boost::json::serialize(seen.events.front()),
            R"(["notify",{"id":"session-1","success":false,"message":"The verification code is incorrect"}])");
  client.stop();
  EXPECT_TRUE(server.wait([](const auto& s) { return s.disconnects == 1; }));  // a polite goodbye
  EXPECT_EQ(log.count("notification server connected"), 1u);
}

TEST(SioClientNotifier, TheEngineIoPathTheUrlsNamespaceAndQueryAreThoseGiven) {
  FakeNotifyServer server;
  registrar::testing::CapturedLog log;
  auto o = options_for(server);
  o.url = sc::parse_notify_url("ws://127.0.0.1:" + std::to_string(server.port()) + "/users?tenant=a%20b");
  o.path = "/sio/";
  sc::SioClientNotifier client(o, log.logger);
  client.start();
  client.notify(note("s"));
  ASSERT_TRUE(server.wait([](const auto& s) { return s.events.size() == 1; })) << log.text();
  const auto seen = server.seen();
  EXPECT_EQ(seen.targets.front(), "/sio/?EIO=4&transport=websocket&tenant=a%20b");
  EXPECT_EQ(seen.connects.front(), "");  // no auth: CONNECT without a payload
  EXPECT_EQ(seen.namespaces, (std::vector<std::string>{"/users", "/users"}));
}

TEST(SioClientNotifier, WhileTheServerIsUnreachableNotificationsWaitAndGoOutInOrderAfterwards) {
  FakeNotifyServer server;
  server.accepting = false;
  registrar::testing::CapturedLog log(spdlog::level::debug);
  sc::SioClientNotifier client(options_for(server), log.logger);
  client.start();
  for (int i = 0; i < 5; ++i) client.notify(note("s" + std::to_string(i)));
  // Failed attempts, retried (back-off 10–50 ms): the first one logged as a warning, the next at debug.
  ASSERT_TRUE(server.wait([](const auto& s) { return s.refused >= 3; })) << log.text();
  ASSERT_TRUE(log_shows([&] { return log.count("still unreachable") >= 2; })) << log.text();
  EXPECT_EQ(log.count("cannot reach the notification server"), 1u);
  EXPECT_TRUE(server.seen().events.empty());
  server.accepting = true;
  ASSERT_TRUE(server.wait([](const auto& s) { return s.events.size() == 5; })) << log.text();
  EXPECT_EQ(server.notified_ids(), (std::vector<std::string>{"s0", "s1", "s2", "s3", "s4"}));
}

TEST(SioClientNotifier, AFullQueueDropsTheOldestAndSaysHowManyOnceConnected) {
  FakeNotifyServer server;
  server.accepting = false;
  registrar::testing::CapturedLog log;
  auto o = options_for(server);
  o.queue_limit = 3;
  sc::SioClientNotifier client(o, log.logger);
  client.start();
  for (int i = 0; i < 5; ++i) client.notify(note("s" + std::to_string(i)));
  ASSERT_TRUE(log_shows([&] { return log.count("notification queue full") == 1; })) << log.text();
  server.accepting = true;
  ASSERT_TRUE(server.wait([](const auto& s) { return s.events.size() == 3; })) << log.text();
  EXPECT_EQ(server.notified_ids(), (std::vector<std::string>{"s2", "s3", "s4"}));
  ASSERT_TRUE(log_shows([&] { return log.count("\"dropped\":2") == 1; })) << log.text();
}

TEST(SioClientNotifier, AServerThatStopsPingingIsDeadAndTheClientConnectsAgain) {
  FakeNotifyServer server;
  server.send_pings = false;
  server.ping_interval_ms = 100;
  server.ping_timeout_ms = 100;
  registrar::testing::CapturedLog log;
  sc::SioClientNotifier client(options_for(server), log.logger);
  client.start();
  ASSERT_TRUE(server.wait([](const auto& s) { return s.sessions >= 2; })) << log.text();
  EXPECT_GE(log.count("no ping from the server within 200 ms"), 1u) << log.text();
  server.send_pings = true;
  server.ping_interval_ms = 25'000;
  client.notify(note("after"));
  ASSERT_TRUE(server.wait([](const auto& s) { return !s.events.empty(); })) << log.text();
}

TEST(SioClientNotifier, ARefusedConnectIsLoggedWithTheServersMessageAndRetried) {
  FakeNotifyServer server("Authentication required");
  registrar::testing::CapturedLog log;
  sc::SioClientNotifier client(options_for(server), log.logger);
  client.start();
  ASSERT_TRUE(server.wait([](const auto& s) { return s.connects.size() >= 2; })) << log.text();
  EXPECT_EQ(log.count("namespace /: Authentication required"), 1u) << log.text();
}

TEST(SioClientNotifier, StopDeliversWhatWaitsWithinTheGrace) {
  FakeNotifyServer server;
  registrar::testing::CapturedLog log;
  sc::SioClientNotifier client(options_for(server), log.logger);
  client.start();
  for (int i = 0; i < 20; ++i) client.notify(note("s" + std::to_string(i)));
  client.stop();
  ASSERT_TRUE(server.wait([](const auto& s) { return s.events.size() == 20; }, 2s)) << log.text();
  EXPECT_EQ(log.count("not delivered at shutdown"), 0u);
}

TEST(SioClientNotifier, StopWithTheServerDownSaysHowManyWereNotDelivered) {
  FakeNotifyServer server;
  server.accepting = false;
  registrar::testing::CapturedLog log;
  auto o = options_for(server);
  o.stop_grace = 100ms;
  sc::SioClientNotifier client(o, log.logger);
  client.start();
  client.notify(note("lost"));
  client.stop();
  EXPECT_EQ(log.count("\"undelivered\":1"), 1u) << log.text();
}

}  // namespace
