#include "adapters/http/server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <optional>
#include <random>

#include "adapters/http/framing.hpp"
#include "adapters/http/problem.hpp"

namespace registrar::adapters::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kAcceptRetryPause{100};

struct HttpServer::Connection {
  explicit Connection(tcp::socket socket) : stream(std::move(socket)) {}
  beast::tcp_stream stream;
  // True while waiting for the next request (nothing in flight): drain() may close it then.
  // Only touched on the connection's strand.
  bool idle = true;
  std::string remote;
};

namespace {

std::string new_request_id() {
  // Correlation only, not a secret: a fast per-thread PRNG is enough.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char hex[] = "0123456789abcdef";
  std::string id(24, '0');
  for (int half = 0; half < 2; ++half) {
    auto v = rng();
    for (int i = 0; i < 12; ++i, v >>= 4) id[half * 12 + i] = hex[v & 0xF];
  }
  return id;
}

Response too_large(const Request& req, const RequestContext& ctx, std::size_t limit) {
  return problem(req, ctx, {beast_http::status::payload_too_large, "payload_too_large", "Payload too large",
                            "The request body exceeds " + std::to_string(limit) + " bytes"});
}

}  // namespace

std::string request_id_for(const Request& req) {
  auto given = req["X-Request-Id"];
  if (!given.empty() && given.size() <= 64 &&
      std::all_of(given.begin(), given.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }))
    return std::string(given);
  return new_request_id();
}

HttpServer::HttpServer(asio::io_context& ioc, const Router& router, const logging::Logger& log, ServerOptions options)
    : ioc_(ioc), router_(router), log_(log), options_(options), acceptor_(asio::make_strand(ioc)) {}

HttpServer::~HttpServer() = default;

tcp::endpoint HttpServer::listen(const tcp::endpoint& endpoint) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), asio::detached);
  return acceptor_.local_endpoint();
}

asio::awaitable<void> HttpServer::accept_loop() {
  // Failed accepts in a row. EMFILE/ENFILE and friends leave the connection in the backlog, so an
  // immediate retry fails again at once: without a pause a flood that exhausts the descriptors
  // would turn this loop into a busy loop writing a log line per turn. So: pause between retries,
  // warn once per episode, and say when accepting works again (the OS recovers as connections close).
  std::uint64_t failed_accepts = 0;
  while (!draining_) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      if (failed_accepts++ == 0)
        log_.warn("accept failed; pausing new connections", {{"error", ec.message()}, {"retryInMs", kAcceptRetryPause.count()}});
      else
        log_.debug("accept still failing", {{"error", ec.message()}, {"failedAccepts", failed_accepts}});
      asio::steady_timer pause(acceptor_.get_executor(), kAcceptRetryPause);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (failed_accepts != 0) {
      log_.info("accepting connections again", {{"failedAccepts", failed_accepts}});
      failed_accepts = 0;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto conn = std::make_shared<Connection>(std::move(socket));
    {
      auto remote = conn->stream.socket().remote_endpoint(ec);
      if (!ec) conn->remote = remote.address().to_string() + ":" + std::to_string(remote.port());
      std::lock_guard lock(mutex_);
      connections_.emplace(conn.get(), conn);
    }
    asio::co_spawn(conn->stream.get_executor(), serve(conn), asio::detached);
  }
}

void HttpServer::forget(Connection* conn) {
  std::lock_guard lock(mutex_);
  connections_.erase(conn);
}

std::size_t HttpServer::connection_count() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

void HttpServer::drain() {
  draining_ = true;
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
  std::lock_guard lock(mutex_);
  for (auto& [raw, weak] : connections_) {
    if (auto conn = weak.lock()) {
      asio::post(conn->stream.get_executor(), [conn] {
        if (conn->idle) conn->stream.socket().close();
      });
    }
  }
}

void HttpServer::close_all() {
  std::lock_guard lock(mutex_);
  for (auto& [raw, weak] : connections_) {
    if (auto conn = weak.lock()) asio::post(conn->stream.get_executor(), [conn] { conn->stream.socket().close(); });
  }
}

asio::awaitable<void> HttpServer::serve(std::shared_ptr<Connection> conn) {
  struct Forget {
    HttpServer* self;
    Connection* conn;
    ~Forget() { self->forget(conn); }
  } forget_on_exit{this, conn.get()};

  auto& stream = conn->stream;
  beast::flat_buffer buffer;
  bool first = true;
  bool linger = false;  // the client may still be sending a body we refused: drain it before closing

  std::string method, path;  // of the request being answered, for the access log
  auto send = [&](Response& res, const RequestContext& ctx, bool keep_alive) -> asio::awaitable<bool> {
    res.keep_alive(keep_alive);
    res.set("X-Request-Id", ctx.request_id);
    stream.expires_after(options_.write_timeout);
    auto [ec, n] = co_await beast_http::async_write(stream, res, use_tuple);
    if (options_.access_log && log_.enabled(logging::Level::info)) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - ctx.started).count();
      // The path only: a query string may carry a token. Never headers or bodies.
      log_.info("request", {{"requestId", ctx.request_id},
                            {"method", method},
                            {"path", path},
                            {"status", res.result_int()},
                            {"durationUs", us},
                            {"remote", conn->remote}});
    }
    co_return !ec;
  };

  for (;;) {
    // Wait for the first byte of the next request: the connection is idle until then.
    conn->idle = true;
    if (draining_) break;
    if (buffer.size() == 0) {
      stream.expires_after(first ? options_.header_timeout : options_.idle_timeout);
      auto [ec, n] = co_await stream.async_read_some(buffer.prepare(4096), use_tuple);
      if (ec) break;  // closed by the peer, idle timeout, or drained
      buffer.commit(n);
    }
    conn->idle = false;
    first = false;

    RequestContext ctx{new_request_id(), conn->remote, std::chrono::steady_clock::now()};
    method.clear();
    path.clear();
    beast_http::request_parser<beast_http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
    parser.body_limit(options_.body_limit);
    Request head_only{};  // for answering before a request could be parsed

    // The whole head must arrive within header_timeout (slowloris gets cut off). On timeout
    // Beast's tcp_stream closes the socket, so a slow client is disconnected without an answer.
    stream.expires_after(options_.header_timeout);
    auto [hec, hn] = co_await beast_http::async_read_header(stream, buffer, parser, use_tuple);
    if (hec) {
      // Responses are named locals, never temporaries inside a co_await expression: GCC 12
      // destroys such temporaries twice when the coroutine suspends.
      std::optional<Response> answer;
      if (hec == beast_http::error::header_limit) {
        answer = problem(head_only, ctx, {beast_http::status::request_header_fields_too_large, "headers_too_large",
                                          "Request header fields too large", "The request head exceeds the limit"});
      } else if (hec == beast_http::error::body_limit) {
        // Beast checks Content-Length against the body limit while parsing the head.
        answer = too_large(head_only, ctx, options_.body_limit);
        linger = true;
      } else if (hec.category() == beast_http::make_error_code(beast_http::error::bad_target).category()) {
        answer = problem(head_only, ctx, {beast_http::status::bad_request, "bad_request", "Bad request",
                                          "The request is not valid HTTP/1.1"});
      }
      if (answer) co_await send(*answer, ctx, false);
      break;
    }
    const Request& head = parser.get();
    ctx.request_id = request_id_for(head);
    method = std::string(head.method_string().substr(0, 16));
    path = std::string(target_path(head.target()).substr(0, 256));

    if (auto bad_framing = framing_problem(head)) {
      // Ambiguous framing (request smuggling): answer and close before reading any body.
      Response answer = problem(head, ctx, std::move(*bad_framing));
      co_await send(answer, ctx, false);
      linger = true;
      break;
    }
    if (auto len = parser.content_length(); len && *len > options_.body_limit) {
      Response answer = too_large(head, ctx, options_.body_limit);
      co_await send(answer, ctx, false);
      linger = true;
      break;
    }
    if (beast::iequals(head[beast_http::field::expect], "100-continue")) {
      beast_http::response<beast_http::empty_body> cont{beast_http::status::continue_, head.version()};  // named: see above
      stream.expires_after(options_.write_timeout);
      auto [ec, n] = co_await beast_http::async_write(stream, cont, use_tuple);
      if (ec) break;
    }
    if (!parser.is_done()) {
      stream.expires_after(options_.body_timeout);
      auto [bec, bn] = co_await beast_http::async_read(stream, buffer, parser, use_tuple);
      if (bec) {
        std::optional<Response> answer;
        if (bec == beast_http::error::body_limit) {
          answer = too_large(head, ctx, options_.body_limit);
          linger = true;
        } else if (bec.category() == beast_http::make_error_code(beast_http::error::bad_target).category()) {
          answer = problem(head, ctx, {beast_http::status::bad_request, "bad_request", "Bad request",
                                       "The request body is not valid HTTP/1.1 framing"});
        }
        if (answer) co_await send(*answer, ctx, false);
        break;
      }
    }

    Response res = co_await router_.handle(parser.get(), ctx);
    if (parser.get().method() == beast_http::verb::head) {
      // HEAD: the GET answer's headers, with its Content-Length, and no body.
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    bool keep_alive = parser.get().keep_alive() && !draining_;
    if (!co_await send(res, ctx, keep_alive) || !keep_alive) break;
  }

  boost::system::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (linger && stream.socket().is_open()) {
    // Lingering close (as nginx does): read and discard what the client is still sending for a
    // moment, so that closing with unread data does not reset the connection and destroy the
    // error response before the client has read it.
    stream.expires_after(std::chrono::seconds(2));
    std::size_t discarded = 0;
    while (discarded < 64 * 1024 * 1024) {
      buffer.clear();
      auto [rec, n] = co_await stream.async_read_some(buffer.prepare(64 * 1024), use_tuple);
      if (rec) break;
      discarded += n;
    }
  }
  stream.socket().close(ec);
}

}  // namespace registrar::adapters::http
