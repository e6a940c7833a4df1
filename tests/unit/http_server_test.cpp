// The HTTP adapter's parts: routes (parameters, prefixes, 404/405), the middleware seam (request
// id, client address with trusted proxies, exception mapping), the problem catalog, the Host rule,
// and the server over real loopback sockets with the two ways a route keeps a connection: a
// WebSocket echo route that takes the stream over, and a held long-poll answered from another
// thread. Both obey their own timeouts and are ended by the shutdown drain.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "adapters/http/framing.hpp"
#include "adapters/http/middleware.hpp"
#include "adapters/http/problem.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/server.hpp"
#include "adapters/http/takeover.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"

namespace registrar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = adapters::http;
namespace bh = beast::http;
using asio::ip::tcp;
using namespace std::chrono_literals;

// ---- running coroutines to completion in a test ----

// Runs `a` on a fresh io_context until it completes (every client operation has a deadline).
template <class T>
T run(asio::awaitable<T> a) {
  asio::io_context ioc;
  auto f = asio::co_spawn(ioc, std::move(a), asio::use_future);
  ioc.run();
  return f.get();
}

http::Response call(const http::Router& router, bh::verb method, std::string target) {
  http::Request req{method, target, 11};
  http::RequestContext ctx;
  return run(router.handle(req, ctx));
}

http::Response call(const http::Pipeline& pipeline, http::Request req, http::RequestContext& ctx) {
  return run(pipeline.handle(req, ctx));
}

http::Handler answer(std::string body) {
  return [body](const http::Request& req, http::RequestContext& ctx) -> asio::awaitable<http::Response> {
    std::string out = body;
    for (const auto& [k, v] : ctx.params) out += " " + k + "=" + v;
    co_return http::json_response(req, bh::status::ok, out);
  };
}

std::string code_of(const http::Response& res) {
  return std::string(boost::json::parse(res.body()).as_object().at("code").as_string());
}

// ---- routes ----

TEST(Router, LiteralParameterAndPrefixRoutes) {
  http::Router r;
  r.add(bh::verb::get, "/jobs/{id}", answer("job"));
  r.add(bh::verb::get, "/jobs/latest", answer("latest"));
  r.add(bh::verb::get, "/socket.io/*", answer("sio"));
  r.add(bh::verb::get, "/admin/*", answer("admin"));
  r.add(bh::verb::get, "/admin/users/{id}/sessions", answer("sessions"));

  EXPECT_EQ(call(r, bh::verb::get, "/jobs/42").body(), "job id=42");
  EXPECT_EQ(call(r, bh::verb::get, "/jobs/a%20b?x=1").body(), "job id=a b") << "percent-decoded, query dropped";
  EXPECT_EQ(call(r, bh::verb::get, "/jobs/latest").body(), "latest") << "a literal beats a parameter";
  EXPECT_EQ(call(r, bh::verb::get, "/socket.io/?EIO=4&transport=polling").body(), "sio *=");
  EXPECT_EQ(call(r, bh::verb::get, "/socket.io/x/y").body(), "sio *=x/y");
  EXPECT_EQ(call(r, bh::verb::get, "/admin/users/7/sessions").body(), "sessions id=7") << "literal beats prefix";
  EXPECT_EQ(call(r, bh::verb::get, "/admin/anything").body(), "admin *=anything");

  EXPECT_EQ(call(r, bh::verb::get, "/jobs/").result(), bh::status::not_found) << "a parameter is never empty";
  EXPECT_EQ(call(r, bh::verb::get, "/jobs/1/2").result(), bh::status::not_found);
  EXPECT_EQ(call(r, bh::verb::get, "/socket.io").result(), bh::status::not_found) << "a prefix needs its '/'";
  EXPECT_EQ(call(r, bh::verb::get, "/jobs/%zz").result(), bh::status::not_found) << "invalid percent-encoding";
  auto missing = call(r, bh::verb::get, "/nope");
  EXPECT_EQ(missing.result(), bh::status::not_found);
  EXPECT_EQ(code_of(missing), "not_found");
}

TEST(Router, WrongMethodIs405WithAllowAndHeadIsServedByGet) {
  http::Router r;
  r.add(bh::verb::get, "/jobs/{id}", answer("get"));
  r.add(bh::verb::delete_, "/jobs/{id}", answer("delete"));
  auto res = call(r, bh::verb::post, "/jobs/1");
  EXPECT_EQ(res.result(), bh::status::method_not_allowed);
  EXPECT_EQ(res[bh::field::allow], "GET, DELETE");
  EXPECT_EQ(code_of(res), "method_not_allowed");
  EXPECT_EQ(call(r, bh::verb::head, "/jobs/1").body(), "get id=1");
  EXPECT_EQ(call(r, bh::verb::delete_, "/jobs/1").body(), "delete id=1");
}

TEST(Router, PatternsAreChecked) {
  http::Router r;
  EXPECT_THROW(r.add(bh::verb::get, "jobs", answer("x")), std::invalid_argument);
  EXPECT_THROW(r.add(bh::verb::get, "/a/*/b", answer("x")), std::invalid_argument);
}

// ---- problem catalog ----

TEST(ProblemCatalog, CodesAreUniqueAndErrorStatuses) {
  std::set<std::string_view> codes;
  for (const auto& t : http::problems::all) {
    EXPECT_TRUE(codes.insert(t.code).second) << "duplicate code " << t.code;
    EXPECT_GE(static_cast<int>(t.status), 400) << t.code;
    EXPECT_FALSE(t.title.empty()) << t.code;
  }
}

TEST(ProblemCatalog, ExceptionsMapToTheirTypes) {
  EXPECT_EQ(&http::problem_type_of(std::make_exception_ptr(ports::Overloaded("x"))), &http::problems::overloaded);
  EXPECT_EQ(&http::problem_type_of(std::make_exception_ptr(ports::BackendUnavailable("x"))),
            &http::problems::backend_unavailable);
  EXPECT_EQ(&http::problem_type_of(std::make_exception_ptr(std::runtime_error("x"))), &http::problems::internal_error);
}

TEST(ProblemCatalog, RateLimitedIs429WithRetryAfterInTheHeaderAndTheBody) {
  http::Request req{bh::verb::post, "/auth/verification-codes", 11};
  http::RequestContext ctx;
  ctx.request_id = "req-1";
  domain::DomainError e{domain::ErrorKind::rate_limited, "wait", {}};
  e.retry_after = std::chrono::seconds{42};
  auto res = http::problem(req, ctx, e);
  EXPECT_EQ(res.result(), bh::status::too_many_requests);
  EXPECT_EQ(res[bh::field::retry_after], "42");
  const auto body = boost::json::parse(res.body()).as_object();
  EXPECT_EQ(body.at("code").as_string(), "rate_limited");
  EXPECT_EQ(body.at("status").as_int64(), 429);
  EXPECT_EQ(body.at("retryAfter").as_int64(), 42);
  // A 503 still says 1 second; other problems say nothing.
  EXPECT_EQ(http::problem(req, ctx, std::make_exception_ptr(ports::BackendUnavailable("x")))[bh::field::retry_after], "1");
  EXPECT_EQ(http::problem(req, ctx, {http::problems::bad_request, "x"})[bh::field::retry_after], "");
}

// ---- Host (RFC 9112 §3.2) ----

int host_status(std::vector<std::string> hosts, unsigned version = 11) {
  http::Request r{bh::verb::get, "/", version};
  for (const auto& h : hosts) r.insert(bh::field::host, h);
  auto p = http::host_problem(r);
  return p ? static_cast<int>(p->type.status) : 0;
}

TEST(HostField, ExactlyOneValidHostOnHttp11) {
  EXPECT_EQ(host_status({"example.com"}), 0);
  EXPECT_EQ(host_status({"127.0.0.1:8080"}), 0);
  EXPECT_EQ(host_status({"[::1]:8080"}), 0);
  EXPECT_EQ(host_status({""}), 0) << "empty: a target without authority";
  EXPECT_EQ(host_status({}), 400);
  EXPECT_EQ(host_status({"a.example", "b.example"}), 400);
  EXPECT_EQ(host_status({"user@example.com"}), 400);
  EXPECT_EQ(host_status({"exa mple.com"}), 400);
  EXPECT_EQ(host_status({"example.com:port"}), 400);
  EXPECT_EQ(host_status({}, 10), 0) << "HTTP/1.0 may omit it";
  EXPECT_EQ(host_status({"a", "b"}, 10), 400);
}

// ---- client address ----

TEST(ClientAddress, CidrParsing) {
  EXPECT_TRUE(http::Cidr::parse("10.0.0.0/8"));
  EXPECT_TRUE(http::Cidr::parse(" 192.168.1.7 "));
  EXPECT_TRUE(http::Cidr::parse("::1"));
  EXPECT_TRUE(http::Cidr::parse("fd00::/8"));
  EXPECT_FALSE(http::Cidr::parse("10.0.0.1/8")) << "host bits past the prefix";
  EXPECT_FALSE(http::Cidr::parse("10.0.0.0/33"));
  EXPECT_FALSE(http::Cidr::parse("10.0.0.0/"));
  EXPECT_FALSE(http::Cidr::parse("example.com"));
  EXPECT_FALSE(http::TrustedProxies::parse("10.0.0.0/8,nope"));
  EXPECT_TRUE(http::TrustedProxies::parse("")->empty());
  auto cidr = http::Cidr::parse("10.1.0.0/16");
  EXPECT_TRUE(cidr->contains(asio::ip::make_address("10.1.255.3")));
  EXPECT_FALSE(cidr->contains(asio::ip::make_address("10.2.0.1")));
  EXPECT_TRUE(cidr->contains(asio::ip::make_address("::ffff:10.1.0.9"))) << "IPv4-mapped IPv6 is IPv4";
  EXPECT_FALSE(cidr->contains(asio::ip::make_address("::1")));
}

TEST(ClientAddress, XForwardedForIsBelievedOnlyFromTrustedProxies) {
  auto trusted = *http::TrustedProxies::parse("10.0.0.0/8, ::1");
  auto ip = [](const char* a) { return asio::ip::make_address(a); };
  EXPECT_EQ(trusted.client_ip(ip("203.0.113.5"), "198.51.100.1"), "203.0.113.5") << "untrusted peer: header ignored";
  EXPECT_EQ(trusted.client_ip(ip("10.0.0.2"), "198.51.100.1"), "198.51.100.1");
  EXPECT_EQ(trusted.client_ip(ip("10.0.0.2"), "6.6.6.6, 198.51.100.1, 10.0.0.9"), "198.51.100.1")
      << "the rightmost untrusted entry; what the client wrote before it is not believed";
  EXPECT_EQ(trusted.client_ip(ip("10.0.0.2"), ""), "10.0.0.2");
  EXPECT_EQ(trusted.client_ip(ip("10.0.0.2"), "10.0.0.3, 10.0.0.4"), "10.0.0.3") << "all trusted: the farthest";
  EXPECT_EQ(trusted.client_ip(ip("10.0.0.2"), "198.51.100.1, garbage"), "10.0.0.2") << "garbage stops the walk";
  EXPECT_EQ(trusted.client_ip(ip("::ffff:10.0.0.2"), "2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(http::TrustedProxies{}.client_ip(ip("::ffff:127.0.0.1"), "1.2.3.4"), "127.0.0.1");
}

// ---- middleware ----

struct PipelineWorld {
  testing::CapturedLog log{spdlog::level::debug};
  http::Router router;
  http::Pipeline pipeline{router};
  explicit PipelineWorld(std::string_view trusted = "") {
    http::middleware::use_standard(pipeline, log.logger, {.trusted_proxies = *http::TrustedProxies::parse(trusted)});
    router.add(bh::verb::get, "/whoami", [](const http::Request& req, http::RequestContext& ctx) -> asio::awaitable<http::Response> {
      co_return http::json_response(req, bh::status::ok, ctx.client_ip);
    });
    router.add(bh::verb::get, "/down", [](const http::Request&, http::RequestContext&) -> asio::awaitable<http::Response> {
      throw ports::BackendUnavailable("database gone: secret internal detail");
      co_return http::Response{};
    });
  }
  http::Response get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {},
                     std::string peer = "127.0.0.1") {
    http::Request req{bh::verb::get, target, 11};
    for (auto& [k, v] : headers) req.insert(k, v);
    http::RequestContext ctx{.peer_ip = peer};
    return call(pipeline, req, ctx);
  }
};

TEST(Middleware, ClientAddressIsThePeerUnlessATrustedProxyForwards) {
  PipelineWorld none;
  EXPECT_EQ(none.get("/whoami", {{"X-Forwarded-For", "1.2.3.4"}}).body(), "127.0.0.1");
  PipelineWorld proxied("127.0.0.1/32");
  EXPECT_EQ(proxied.get("/whoami", {{"X-Forwarded-For", "9.9.9.9"}, {"X-Forwarded-For", "1.2.3.4"}}).body(), "1.2.3.4")
      << "several fields are one list, in order";
  EXPECT_EQ(proxied.get("/whoami", {{"X-Forwarded-For", "1.2.3.4"}}, "192.0.2.1").body(), "192.0.2.1");
}

TEST(Middleware, RequestIdIsEchoedAndLoggedWithTheClientAddress) {
  PipelineWorld w;
  auto res = w.get("/whoami", {{"X-Request-Id", "abc-123"}});
  EXPECT_EQ(res["X-Request-Id"], "abc-123");
  EXPECT_EQ(w.log.count(R"("requestId":"abc-123")"), 1u);
  EXPECT_EQ(w.log.count(R"("client":"127.0.0.1")"), 1u) << w.log.text();
  auto fresh = w.get("/whoami", {{"X-Request-Id", "not ok!"}});
  EXPECT_EQ(fresh["X-Request-Id"].size(), 24u) << "a bad id is replaced";
}

TEST(Middleware, ExceptionsBecomeProblemsAndTheInternalMessageIsOnlyLogged) {
  PipelineWorld w;
  auto res = w.get("/down", {{"X-Request-Id", "req-down"}});
  EXPECT_EQ(res.result(), bh::status::service_unavailable);
  EXPECT_EQ(code_of(res), "backend_unavailable");
  EXPECT_EQ(res.body().find("secret internal detail"), std::string::npos);
  EXPECT_EQ(w.log.count("secret internal detail"), 1u);
  EXPECT_EQ(w.log.count(R"("requestId":"req-down")"), 2u) << "the failure and the access-log line";
}

TEST(Middleware, RunInOrderOutermostFirst) {
  http::Router router;
  router.add(bh::verb::get, "/", answer("end"));
  http::Pipeline p(router);
  std::vector<std::string> seen;
  auto tag = [&seen](std::string name) {
    return [&seen, name](const http::Request& req, http::RequestContext& ctx, http::Next next) -> asio::awaitable<http::Response> {
      seen.push_back(name + ">");
      auto res = co_await next(req, ctx);
      seen.push_back("<" + name);
      co_return res;
    };
  };
  p.use(tag("a")).use(tag("b"));
  http::RequestContext ctx;
  EXPECT_EQ(call(p, http::Request{bh::verb::get, "/", 11}, ctx).body(), "end");
  EXPECT_EQ(seen, (std::vector<std::string>{"a>", "b>", "<b", "<a"}));
}

// ---- the server over loopback ----

// A server on 127.0.0.1:0 with `io_threads` I/O threads, test routes and the standard middleware.
class ServerWorld {
 public:
  explicit ServerWorld(unsigned io_threads = 2, std::chrono::milliseconds ws_idle = 5s) : ws_idle_(ws_idle) {
    http::middleware::use_standard(pipeline_, log.logger, {});
    router_.add(bh::verb::get, "/hello", answer("hello"));
    router_.add_stream(bh::verb::get, "/test/ws", [this](http::Takeover& t) { return echo(t); });
    router_.add_stream(bh::verb::get, "/test/throws", [](http::Takeover&) -> asio::awaitable<void> {
      throw std::runtime_error("stream handler failed");
      co_return;
    });
    router_.add_held(bh::verb::get, "/test/poll", [this](const http::Request&, http::RequestContext&, std::shared_ptr<http::HeldReply> r) {
      std::lock_guard lock(mutex_);
      held_ = std::move(r);
      held_cv_.notify_all();
    });
    server_ = std::make_unique<http::HttpServer>(ioc_, pipeline_, log.logger, http::ServerOptions{});
    port_ = server_->listen({asio::ip::make_address("127.0.0.1"), 0}).port();
    for (unsigned i = 0; i < io_threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
  }
  ~ServerWorld() {
    server_->drain();
    server_->close_all();
    ioc_.stop();
    for (auto& t : threads_) t.join();
  }

  unsigned short port() const { return port_; }
  http::HttpServer& server() { return *server_; }

  // The held request's reply, once the route has it.
  std::shared_ptr<http::HeldReply> wait_held() {
    std::unique_lock lock(mutex_);
    held_cv_.wait_for(lock, 10s, [this] { return held_ != nullptr; });
    return held_;
  }
  bool wait_connections(std::size_t n, std::chrono::milliseconds within = 10s) {
    auto until = std::chrono::steady_clock::now() + within;
    while (server_->connection_count() != n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

  testing::CapturedLog log{spdlog::level::debug};

 private:
  // The test WebSocket route: echoes every message (text or binary) until the peer closes, the
  // route's idle timeout passes, or the server drains (then: a going-away close frame).
  asio::awaitable<void> echo(http::Takeover& t) {
    // By reference: the session keeps the stream, so the hard stop can still close it.
    websocket::stream<http::HttpStream&> ws(t.stream);
    t.stream.expires_never();  // the WebSocket timeouts below take over
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = 5s;
    timeouts.idle_timeout = ws_idle_;
    timeouts.keep_alive_pings = false;
    ws.set_option(timeouts);
    t.connection.on_drain([&ws] { ws.async_close(websocket::close_code::going_away, [](beast::error_code) {}); });
    co_await ws.async_accept(t.request, asio::use_awaitable);
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, n] = co_await ws.async_read(buffer, asio::as_tuple(asio::use_awaitable));
      if (ec) break;
      ws.text(ws.got_text());
      auto [wec, wn] = co_await ws.async_write(buffer.data(), asio::as_tuple(asio::use_awaitable));
      if (wec) break;
      buffer.consume(buffer.size());
    }
    t.connection.on_drain({});
  }

  asio::io_context ioc_;
  http::Router router_;
  http::Pipeline pipeline_{router_};
  std::unique_ptr<http::HttpServer> server_;
  unsigned short port_ = 0;
  std::chrono::milliseconds ws_idle_;
  std::mutex mutex_;
  std::condition_variable held_cv_;
  std::shared_ptr<http::HeldReply> held_;
  std::vector<std::thread> threads_;
};

// A client connection with its own io_context; every operation has a deadline.
class Client {
 public:
  explicit Client(unsigned short port) : stream_(ioc_) {
    stream_.expires_after(5s);
    stream_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  // Runs the coroutine `f()` makes on this client's io_context until it completes.
  template <class F>
  auto go(F f) {
    auto fut = asio::co_spawn(ioc_, f(), asio::use_future);
    ioc_.restart();
    ioc_.run();
    return fut.get();
  }
  // Sends raw bytes, reads one response (or the error that ended the connection).
  std::pair<beast::error_code, http::Response> raw(std::string bytes, std::chrono::milliseconds deadline = 10s) {
    return go([&]() -> asio::awaitable<std::pair<beast::error_code, http::Response>> {
      stream_.expires_after(deadline);
      auto [wec, wn] = co_await asio::async_write(stream_, asio::buffer(bytes), asio::as_tuple(asio::use_awaitable));
      http::Response res;
      if (wec) co_return std::pair{wec, res};
      auto [ec, n] = co_await bh::async_read(stream_, buffer_, res, asio::as_tuple(asio::use_awaitable));
      co_return std::pair{ec, std::move(res)};
    });
  }
  http::Response get(std::string target, std::chrono::milliseconds deadline = 10s) {
    auto [ec, res] = raw("GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n", deadline);
    EXPECT_FALSE(ec) << ec.message();
    return res;
  }
  // Sends the request without waiting for the answer.
  void send(std::string bytes) {
    go([&]() -> asio::awaitable<int> {
      stream_.expires_after(5s);
      co_await asio::async_write(stream_, asio::buffer(bytes), asio::use_awaitable);
      co_return 0;
    });
  }
  // Reads one response (after send()).
  std::pair<beast::error_code, http::Response> read(std::chrono::milliseconds deadline = 10s) {
    return go([&]() -> asio::awaitable<std::pair<beast::error_code, http::Response>> {
      stream_.expires_after(deadline);
      http::Response res;
      auto [ec, n] = co_await bh::async_read(stream_, buffer_, res, asio::as_tuple(asio::use_awaitable));
      co_return std::pair{ec, std::move(res)};
    });
  }
  // Whether the server closed the connection (a read ends with EOF) within `deadline`.
  bool closed_by_server(std::chrono::milliseconds deadline = 10s) {
    return go([&]() -> asio::awaitable<bool> {
      stream_.expires_after(deadline);
      char byte;
      auto [ec, n] = co_await stream_.async_read_some(asio::buffer(&byte, 1), asio::as_tuple(asio::use_awaitable));
      co_return ec == asio::error::eof || ec == asio::error::connection_reset;
    });
  }

  beast::tcp_stream& stream() { return stream_; }
  asio::io_context& ioc() { return ioc_; }

 private:
  asio::io_context ioc_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
};

// A WebSocket client of the test echo route.
class WsClient {
 public:
  explicit WsClient(unsigned short port) : client_(port), ws_(client_.stream()) {
    client_.go([&]() -> asio::awaitable<int> {
      client_.stream().expires_after(5s);
      co_await ws_.async_handshake("test", "/test/ws", asio::use_awaitable);
      client_.stream().expires_never();
      co_return 0;
    });
  }
  // Sends `text` and returns what comes back (or the error).
  std::pair<beast::error_code, std::string> echo(std::string text, bool binary = false) {
    return client_.go([&]() -> asio::awaitable<std::pair<beast::error_code, std::string>> {
      client_.stream().expires_after(5s);
      ws_.binary(binary);
      auto [wec, wn] = co_await ws_.async_write(asio::buffer(text), asio::as_tuple(asio::use_awaitable));
      if (wec) co_return std::pair{wec, std::string()};
      beast::flat_buffer buffer;
      auto [ec, n] = co_await ws_.async_read(buffer, asio::as_tuple(asio::use_awaitable));
      EXPECT_EQ(ws_.got_binary(), binary);
      co_return std::pair{ec, beast::buffers_to_string(buffer.data())};
    });
  }
  // Waits (reading) until the connection ends; the error that ended it.
  beast::error_code wait_end(std::chrono::milliseconds deadline) {
    return client_.go([&]() -> asio::awaitable<beast::error_code> {
      client_.stream().expires_after(deadline);
      beast::flat_buffer buffer;
      auto [ec, n] = co_await ws_.async_read(buffer, asio::as_tuple(asio::use_awaitable));
      co_return ec;
    });
  }
  websocket::close_reason reason() const { return ws_.reason(); }

 private:
  Client client_;
  websocket::stream<beast::tcp_stream&> ws_;
};

TEST(HttpServer, AnswersPlainRequestsAndRefusesAMissingOrDoubledHost) {
  ServerWorld w;
  Client c(w.port());
  EXPECT_EQ(c.get("/hello").body(), "hello");
  auto [ec, res] = Client(w.port()).raw("GET /hello HTTP/1.1\r\n\r\n");
  EXPECT_EQ(res.result(), bh::status::bad_request);
  EXPECT_NE(res.body().find("without a Host"), std::string::npos) << res.body();
  EXPECT_FALSE(res.keep_alive());
  auto [ec2, res2] = Client(w.port()).raw("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(res2.result(), bh::status::bad_request);
  auto [ec3, res3] = Client(w.port()).raw("GET /hello HTTP/1.0\r\n\r\n");
  EXPECT_EQ(res3.result(), bh::status::ok) << "HTTP/1.0 may omit Host";
  EXPECT_EQ(w.log.count(R"("status":400)"), 2u) << "refusals go through the access log too";
}

TEST(HttpServer, WebSocketRouteEchoesNextToNormalRequests) {
  ServerWorld w;
  WsClient ws(w.port());
  EXPECT_EQ(ws.echo("hello").second, "hello");
  EXPECT_EQ(ws.echo(std::string("\x00\x01\xff", 3), true).second, std::string("\x00\x01\xff", 3));
  Client c(w.port());
  EXPECT_EQ(c.get("/hello").body(), "hello") << "a plain request while the WebSocket is open";
  EXPECT_EQ(ws.echo("again").second, "again");
  EXPECT_EQ(w.server().connection_count(), 2u) << "the taken-over connection stays registered";
  EXPECT_EQ(w.log.count(R"("status":101)"), 1u) << "the upgrade passed the middleware (access log)";
}

TEST(HttpServer, WebSocketRouteObeysItsIdleTimeout) {
  ServerWorld w(2, 300ms);
  WsClient ws(w.port());
  EXPECT_EQ(ws.echo("ping").second, "ping");
  auto started = std::chrono::steady_clock::now();
  auto ec = ws.wait_end(10s);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(ec) << "the server ends an idle WebSocket";
  EXPECT_NE(ec, beast::error::timeout) << "ended by the server, not by the client's deadline";
  EXPECT_LT(took, 5s);
  EXPECT_TRUE(w.wait_connections(0));
}

TEST(HttpServer, DrainClosesAWebSocketWithGoingAway) {
  ServerWorld w;
  WsClient ws(w.port());
  EXPECT_EQ(ws.echo("before").second, "before");
  auto started = std::chrono::steady_clock::now();
  w.server().drain();
  auto ec = ws.wait_end(10s);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::going_away);
  EXPECT_TRUE(w.wait_connections(0, 2s)) << "within the drain time";
  EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(HttpServer, HeldRequestIsAnsweredFromAnotherThreadWithoutHoldingAnIoThread) {
  ServerWorld w(1);  // one I/O thread: a held request must not occupy it
  Client poll(w.port());
  poll.send("GET /test/poll HTTP/1.1\r\nHost: test\r\n\r\n");
  auto reply = w.wait_held();
  ASSERT_TRUE(reply);
  Client other(w.port());
  EXPECT_EQ(other.get("/hello").body(), "hello") << "served while the poll is held";
  std::thread answerer([reply] {
    http::Response res{bh::status::ok, 11};
    res.body() = "event";
    res.prepare_payload();
    EXPECT_TRUE(reply->answer(std::move(res)));
    EXPECT_FALSE(reply->answer(http::Response{bh::status::ok, 11})) << "the first answer wins";
  });
  answerer.join();
  auto [ec, res] = poll.read();
  EXPECT_FALSE(ec);
  EXPECT_EQ(res.body(), "event");
  EXPECT_TRUE(res.keep_alive()) << "the connection goes on after a held answer";
  EXPECT_EQ(poll.get("/hello").body(), "hello");
}

TEST(HttpServer, DrainAnswersAHeldRequestAndClosesIt) {
  ServerWorld w;
  Client poll(w.port());
  poll.send("GET /test/poll HTTP/1.1\r\nHost: test\r\nX-Request-Id: held-1\r\n\r\n");
  ASSERT_TRUE(w.wait_held());
  Client idle(w.port());
  EXPECT_EQ(idle.get("/hello").body(), "hello");
  w.server().drain();
  auto [ec, res] = poll.read(2s);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(res.result(), bh::status::service_unavailable);
  EXPECT_EQ(code_of(res), "shutting_down");
  EXPECT_EQ(res["X-Request-Id"], "held-1");
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(poll.closed_by_server(2s));
  EXPECT_TRUE(idle.closed_by_server(2s)) << "idle keep-alive connections are closed by the drain";
  EXPECT_TRUE(w.wait_connections(0, 2s));
}

TEST(HttpServer, AnExceptionThatEscapesASessionIsLoggedWithItsRequestId) {
  ServerWorld w;
  Client c(w.port());
  auto [ec, res] = c.raw("GET /test/throws HTTP/1.1\r\nHost: test\r\nX-Request-Id: boom-1\r\n\r\n", 5s);
  EXPECT_TRUE(ec) << "the connection ends without an answer";
  EXPECT_TRUE(w.wait_connections(0));
  EXPECT_EQ(w.log.count(R"("msg":"connection failed")"), 1u) << w.log.text();
  EXPECT_EQ(w.log.count(R"("requestId":"boom-1","error":"stream handler failed")"), 1u) << w.log.text();
}

}  // namespace
}  // namespace registrar
