// The Engine.IO server at its request handler (no sockets): the order of engine.io's checks and
// the error each one answers, CORS, and a polling session through the EngineSocket interface the
// Socket.IO layer uses (sends from other threads, close, the bounded send queue, maxPayload per
// GET, the heartbeat). The WebSocket transport and the upgrade are covered end to end by
// tests/blackbox/engineio.test.js.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "adapters/socketio/engineio_server.hpp"
#include "support/captured_log.hpp"

namespace registrar {
namespace {

namespace asio = boost::asio;
namespace http = adapters::http;
namespace bh = boost::beast::http;
using adapters::socketio::CorsPolicy;
using adapters::socketio::EngineOptions;
using adapters::socketio::EngineServer;
using adapters::socketio::EngineSocket;
using namespace std::chrono_literals;

TEST(EngineIoCors, OnlyConfiguredOriginsGetTheHeadersWithCredentials) {
  CorsPolicy list{.any_origin = false, .origins = {"https://app.example"}};
  EXPECT_TRUE(list.allows("https://app.example"));
  EXPECT_FALSE(list.allows("https://app.example.evil"));
  EXPECT_FALSE(list.allows("http://app.example"));
  EXPECT_FALSE(list.allows(""));
  CorsPolicy any{.any_origin = true, .origins = {}};
  EXPECT_TRUE(any.allows("null"));
  EXPECT_FALSE(any.allows(""));  // no Origin: not a browser, nothing to allow

  auto headers = adapters::socketio::cors_headers(list, "https://app.example");
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"Access-Control-Allow-Origin", "https://app.example"},
      {"Access-Control-Allow-Credentials", "true"},
      {"Vary", "Origin"}};
  EXPECT_EQ(headers, expected);
  EXPECT_TRUE(adapters::socketio::cors_headers(list, "https://other.example").empty());
}

// An EngineServer on an io_context with two threads (sends come from other threads), and its
// requests run as the HTTP server would run them.
class EngineIoServer : public ::testing::Test {
 protected:
  void start(EngineOptions options) {
    server_ = std::make_unique<EngineServer>(ioc_.get_executor(), log_.logger, std::move(options),
                                             [this](std::shared_ptr<EngineSocket> socket) {
                                               socket->on_message([this](std::string data, bool binary) {
                                                 if (data == "boom") throw std::runtime_error("handler bug");
                                                 std::lock_guard lock(mutex_);
                                                 messages_.emplace_back(std::move(data), binary);
                                                 changed_.notify_all();
                                               });
                                               socket->on_close([this](const std::string& reason) {
                                                 std::lock_guard lock(mutex_);
                                                 close_reason_ = reason;
                                                 changed_.notify_all();
                                               });
                                               std::lock_guard lock(mutex_);
                                               socket_ = std::move(socket);
                                               changed_.notify_all();
                                             });
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  void TearDown() override {
    if (server_) server_->close_all();
    work_.reset();
    for (auto& t : threads_) t.join();
  }

  // Starts a request; the future completes with the answer (a held GET: when it is answered).
  std::future<http::Response> request(bh::verb method, std::string target, std::string body = {},
                                      std::string origin = {}) {
    auto req = std::make_shared<http::Request>(method, target, 11);
    if (!origin.empty()) req->set(bh::field::origin, origin);
    req->body() = std::move(body);
    req->prepare_payload();
    auto ctx = std::make_shared<http::RequestContext>();
    return asio::co_spawn(asio::make_strand(ioc_),
                          [this, req, ctx]() -> asio::awaitable<http::Response> { co_return co_await server_->handle(*req, *ctx); },
                          asio::use_future);
  }
  http::Response answer(std::future<http::Response> f, std::chrono::milliseconds limit = 5s) {
    if (f.wait_for(limit) != std::future_status::ready) throw std::runtime_error("no answer in time");
    return f.get();
  }
  http::Response get(const std::string& query) { return answer(request(bh::verb::get, "/engine.io/?" + query)); }

  // A polling handshake: the sid, and the socket once on_connection has run.
  std::string open() {
    auto res = get("EIO=4&transport=polling");
    EXPECT_EQ(res.result(), bh::status::ok);
    EXPECT_EQ(res.body().front(), '0');
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(changed_.wait_for(lock, 5s, [&] { return socket_ != nullptr; }));
    return std::string(boost::json::parse(res.body().substr(1)).as_object().at("sid").as_string());
  }
  std::string wait_closed() {
    std::unique_lock lock(mutex_);
    EXPECT_TRUE(changed_.wait_for(lock, 5s, [&] { return !close_reason_.empty(); }));
    return close_reason_;
  }

  static int code_of(const http::Response& res) {
    return static_cast<int>(boost::json::parse(res.body()).as_object().at("code").as_int64());
  }

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  testing::CapturedLog log_{spdlog::level::info, 1000};
  std::unique_ptr<EngineServer> server_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::shared_ptr<EngineSocket> socket_;
  std::vector<std::pair<std::string, bool>> messages_;
  std::string close_reason_;
};

EngineOptions quiet() {
  EngineOptions o;
  o.ping_interval = 60s;  // no ping unless a test wants one
  o.ping_timeout = 60s;
  return o;
}

TEST_F(EngineIoServer, ChecksRunInEngineIosOrderAndAnswerItsCodes) {
  start(quiet());
  const std::string sid = open();
  struct Case {
    bh::verb method;
    std::string query;
    int code;
  };
  const Case cases[] = {
      {bh::verb::get, "EIO=4", 0},                             // no transport
      {bh::verb::post, "EIO=4&transport=flash", 0},            // transport before method
      {bh::verb::get, "EIO=4&transport=polling&sid=nope", 1},  // unknown sid
      {bh::verb::post, "transport=polling", 2},                // method before protocol
      {bh::verb::put, "EIO=4&transport=polling", 2},
      {bh::verb::get, "EIO=4&transport=websocket", 3},         // websocket without the upgrade
      {bh::verb::get, "EIO=4&transport=websocket&sid=" + sid, 3},  // transport mismatch on a sid
      {bh::verb::get, "EIO=3&transport=polling&sid=" + sid, 3},    // protocol mismatch on a sid
      {bh::verb::get, "transport=polling", 5},
      {bh::verb::get, "EIO=3&transport=polling", 5},
  };
  for (const auto& c : cases) {
    auto res = answer(request(c.method, "/engine.io/?" + c.query, c.method == bh::verb::get ? "" : "4x"));
    EXPECT_EQ(res.result(), bh::status::bad_request) << c.query;
    EXPECT_EQ(res[bh::field::content_type], "application/json") << c.query;
    EXPECT_EQ(code_of(res), c.code) << c.query;
  }
  // None of those touched the session.
  EXPECT_EQ(server_->session_count(), 1u);
}

TEST_F(EngineIoServer, CorsHeadersOnAnswersAndThePreflight) {
  auto o = quiet();
  o.cors = {.any_origin = false, .origins = {"https://app.example"}};
  start(o);
  auto res = answer(request(bh::verb::get, "/engine.io/?EIO=4&transport=polling", "", "https://app.example"));
  EXPECT_EQ(res["Access-Control-Allow-Origin"], "https://app.example");
  EXPECT_EQ(res["Access-Control-Allow-Credentials"], "true");
  res = answer(request(bh::verb::get, "/engine.io/?EIO=4&transport=polling", "", "https://evil.example"));
  EXPECT_EQ(res.result(), bh::status::ok);  // served, but the browser may not read it
  EXPECT_EQ(res.count("Access-Control-Allow-Origin"), 0u);
  res = answer(request(bh::verb::options, "/engine.io/?EIO=4&transport=polling", "", "https://app.example"));
  EXPECT_EQ(res.result(), bh::status::no_content);
  EXPECT_EQ(res["Access-Control-Allow-Origin"], "https://app.example");
  res = answer(request(bh::verb::options, "/engine.io/", "", "https://evil.example"));
  EXPECT_EQ(res.result(), bh::status::no_content);
  EXPECT_EQ(res.count("Access-Control-Allow-Origin"), 0u);
}

TEST_F(EngineIoServer, MessagesBothWaysThroughTheSocketFromOtherThreads) {
  start(quiet());
  const std::string sid = open();
  const std::string q = "EIO=4&transport=polling&sid=" + sid;
  EXPECT_EQ(socket_->id(), sid);
  EXPECT_EQ(socket_->transport(), "polling");

  auto posted = answer(request(bh::verb::post, "/engine.io/?" + q, "4hello\x1e" "bAQID"));
  EXPECT_EQ(posted.body(), "ok");
  EXPECT_EQ(posted[bh::field::content_type], "text/html");
  {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(changed_.wait_for(lock, 5s, [&] { return messages_.size() == 2; }));
    EXPECT_EQ(messages_[0], std::make_pair(std::string("hello"), false));
    EXPECT_EQ(messages_[1], std::make_pair(std::string("\x01\x02\x03"), true));
  }

  auto held = request(bh::verb::get, "/engine.io/?" + q);
  EXPECT_EQ(held.wait_for(100ms), std::future_status::timeout);  // nothing to send: held
  std::thread([s = socket_] {
    EXPECT_TRUE(s->send_text("one"));
    EXPECT_TRUE(s->send_binary(std::string("\xff\x00", 2)));
  }).join();
  auto res = answer(std::move(held));
  EXPECT_EQ(res[bh::field::content_type], "text/plain; charset=UTF-8");
  // The first send answers the held GET; the second waits for the next one.
  EXPECT_EQ(res.body(), "4one");
  EXPECT_EQ(get(q).body(), "b/wA=");
}

TEST_F(EngineIoServer, CloseWithoutAHeldGetWaitsForTheNextOneToCarryTheClosePacket) {
  start(quiet());
  const std::string sid = open();
  const std::string q = "EIO=4&transport=polling&sid=" + sid;
  socket_->send_text("last");
  socket_->close();
  EXPECT_FALSE(socket_->send_text("too late"));
  EXPECT_EQ(get(q).body(), "4last\x1e" "1");
  EXPECT_EQ(wait_closed(), "forced close");
  EXPECT_EQ(code_of(get(q)), 1);
  EXPECT_EQ(server_->session_count(), 0u);
}

TEST_F(EngineIoServer, ASlowClientIsDroppedWhenItsSendQueueIsFull) {
  auto o = quiet();
  o.send_queue_limit = 3;
  start(o);
  const std::string sid = open();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(socket_->send_text("m"));
  EXPECT_FALSE(socket_->send_text("one too many"));
  EXPECT_EQ(wait_closed(), "send queue full");
  EXPECT_EQ(code_of(get("EIO=4&transport=polling&sid=" + sid)), 1);
}

TEST_F(EngineIoServer, AGetAnswerIsBoundedByMaxPayload) {
  auto o = quiet();
  o.max_payload = 16;
  start(o);
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  for (const char* m : {"aaaaa", "bbbbb", "ccccc"}) socket_->send_text(m);
  EXPECT_EQ(get(q).body(), "4aaaaa\x1e" "4bbbbb");
  EXPECT_EQ(get(q).body(), "4ccccc");
  // One packet larger than maxPayload still goes, alone.
  socket_->send_text(std::string(40, 'x'));
  EXPECT_EQ(get(q).body(), "4" + std::string(40, 'x'));
}

TEST_F(EngineIoServer, APostOverMaxPayloadIs413AndTheSessionStays) {
  auto o = quiet();
  o.max_payload = 16;
  start(o);
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  auto res = answer(request(bh::verb::post, "/engine.io/?" + q, "4" + std::string(20, 'x')));
  EXPECT_EQ(res.result(), bh::status::payload_too_large);
  EXPECT_EQ(answer(request(bh::verb::post, "/engine.io/?" + q, "4ok")).body(), "ok");
}

TEST_F(EngineIoServer, TooManyPacketsInOnePayloadCloseTheSession) {
  auto o = quiet();
  o.max_packets_per_payload = 4;
  start(o);
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  auto res = answer(request(bh::verb::post, "/engine.io/?" + q, "4a\x1e" "4b\x1e" "4c\x1e" "4d\x1e" "4e"));
  EXPECT_EQ(res.result(), bh::status::bad_request);
  EXPECT_EQ(wait_closed(), "parse error");
}

TEST_F(EngineIoServer, PingsEveryIntervalAndClosesWithoutAPong) {
  auto o = quiet();
  o.ping_interval = 50ms;
  o.ping_timeout = 50ms;
  start(o);
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  const auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(get(q).body(), "2");
  EXPECT_GE(std::chrono::steady_clock::now() - started, 45ms);
  // A pong starts the next interval.
  EXPECT_EQ(answer(request(bh::verb::post, "/engine.io/?" + q, "3")).body(), "ok");
  EXPECT_EQ(get(q).body(), "2");
  // No pong: the held GET gets the close packet when the timeout ends the session.
  EXPECT_EQ(get(q).body(), "1");
  EXPECT_EQ(wait_closed(), "ping timeout");
}

TEST_F(EngineIoServer, TwoConcurrentGetsCloseTheSession) {
  start(quiet());
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  auto first = request(bh::verb::get, "/engine.io/?" + q);
  EXPECT_EQ(first.wait_for(100ms), std::future_status::timeout);
  auto second = answer(request(bh::verb::get, "/engine.io/?" + q));
  EXPECT_EQ(second.result(), bh::status::bad_request);
  EXPECT_EQ(answer(std::move(first)).body(), "1");
  EXPECT_EQ(wait_closed(), "transport error");
}

TEST_F(EngineIoServer, CloseAllAnswersHeldGetsWithTheClosePacket) {
  start(quiet());
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  auto held = request(bh::verb::get, "/engine.io/?" + q);
  EXPECT_EQ(held.wait_for(100ms), std::future_status::timeout);
  server_->close_all();
  EXPECT_EQ(answer(std::move(held)).body(), "1");
  EXPECT_EQ(wait_closed(), "server shutting down");
  EXPECT_EQ(server_->session_count(), 0u);
}

TEST_F(EngineIoServer, AHandlerThatThrowsClosesItsSessionNotTheServer) {
  start(quiet());
  const std::string q = "EIO=4&transport=polling&sid=" + open();
  EXPECT_EQ(answer(request(bh::verb::post, "/engine.io/?" + q, "4boom")).body(), "ok");
  EXPECT_EQ(wait_closed(), "server error");
  EXPECT_EQ(log_.count("engine.io handler failed"), 1u);
  EXPECT_EQ(log_.count("handler bug"), 1u);
  // The I/O threads go on serving.
  EXPECT_EQ(get("EIO=4&transport=polling").result(), bh::status::ok);
}

}  // namespace
}  // namespace registrar
