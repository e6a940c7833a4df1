#include "adapters/http/http_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include "adapters/http/framing.hpp"
#include "adapters/http/takeover.hpp"

namespace registrar::adapters::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

bool is_http_syntax_error(const beast::error_code& ec) {
  return ec.category() == beast_http::make_error_code(beast_http::error::bad_target).category();
}

ProblemSpec too_large(std::size_t limit) {
  return {problems::payload_too_large, "The request body exceeds " + std::to_string(limit) + " bytes"};
}

}  // namespace

HttpSession::HttpSession(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls, const Pipeline& pipeline,
                         const ServerOptions& options, ConnectionRegistry& registry, const logging::Logger& log)
    : stream_(std::move(socket), std::move(tls)),
      executor_(stream_.get_executor()),
      pipeline_(pipeline),
      options_(options),
      registry_(registry),
      log_(log) {
  boost::system::error_code ec;
  stream_.socket().set_option(tcp::no_delay(true), ec);
  auto remote = stream_.socket().remote_endpoint(ec);
  if (!ec) peer_ip_ = remote.address().to_string();
}

void HttpSession::start() {
  registration_ = registry_.add(shared_from_this());
  // Not asio::detached: an exception that escapes the session is logged (run() logs it with the
  // request id; this is the backstop for one thrown while logging).
  asio::co_spawn(executor_, [self = shared_from_this()] { return self->run(); },
                 [&log = log_](std::exception_ptr e) {
                   if (e) log.error("connection failed with an unlogged exception");
                 });
}

void HttpSession::drain() {
  asio::post(executor_, [self = shared_from_this()] {
    if (self->released_) return;  // its new owner is registered itself
    if (self->idle_) {
      boost::system::error_code ec;
      self->stream_.socket().close(ec);
    } else if (self->drain_hook_) {
      auto hook = self->drain_hook_;
      hook();
    }
    // Otherwise a request is in flight: it finishes, and its answer carries Connection: close.
  });
}

void HttpSession::close() {
  asio::post(executor_, [self = shared_from_this()] {
    if (self->released_) return;
    boost::system::error_code ec;
    self->stream_.socket().close(ec);
  });
}

void HttpSession::on_drain(std::function<void()> hook) {
  drain_hook_ = std::move(hook);
  if (drain_hook_ && registry_.draining()) {
    auto now = drain_hook_;
    now();
  }
}

HttpStream HttpSession::release_stream() {
  released_ = true;
  drain_hook_ = {};
  return std::move(stream_);
}

void HttpSession::log_failure(std::exception_ptr error) const {
  log_.error("connection failed", {{"requestId", ctx_.request_id}, {"error", internal_message(error)}});
}

asio::awaitable<void> HttpSession::run() {
  std::exception_ptr failure;
  try {
    co_await serve();
  } catch (...) {
    failure = std::current_exception();
  }
  if (failure) log_failure(failure);
  drain_hook_ = {};
  if (released_) co_return;  // handed off: the new owner closes it
  co_await close_gracefully();
}

asio::awaitable<void> HttpSession::serve() {
  if (auto* tls = stream_.tls()) {
    // The handshake within the head timeout. A client that speaks plain HTTP (or TLS below 1.2)
    // fails here and is closed: OpenSSL answers with an alert at most, never with HTTP.
    stream_.expires_after(options_.header_timeout);
    auto [ec] = co_await tls->async_handshake(asio::ssl::stream_base::server, use_tuple);
    if (ec) {
      log_.debug("TLS handshake failed", {{"peer", peer_ip_}, {"error", ec.message()}});
      co_return;
    }
    secured_ = true;
  }
  for (bool first = true;; first = false) {
    std::optional<Request> req = co_await read_request(first);
    if (!req) co_return;

    Response res = co_await pipeline_.handle(*req, ctx_);
    if (ctx_.take_over && res.result() == beast_http::status::switching_protocols) {
      // The connection is the route's now; it stays registered until the handler returns.
      StreamHandler handler = std::move(ctx_.take_over);
      Takeover takeover{stream_, buffer_, *req, ctx_, *this, *this};
      co_await handler(takeover);
      co_return;
    }
    if (req->method() == beast_http::verb::head) {
      // HEAD: the GET answer's headers, with its Content-Length, and no body.
      auto length = res.body().size();
      res.body().clear();
      res.content_length(length);
    }
    bool keep_alive = req->keep_alive() && !registry_.draining();
    if (!co_await write(res, keep_alive) || !keep_alive) co_return;
  }
}

asio::awaitable<std::optional<Request>> HttpSession::read_request(bool first) {
  // Wait for the first byte of the next request: the connection is idle until then.
  idle_ = true;
  if (registry_.draining()) co_return std::nullopt;
  if (buffer_.size() == 0) {
    stream_.expires_after(first ? options_.header_timeout : options_.idle_timeout);
    auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), use_tuple);
    if (ec) co_return std::nullopt;  // closed by the peer, idle timeout, or drained
    buffer_.commit(n);
  }
  idle_ = false;
  ctx_ = RequestContext{};
  ctx_.peer_ip = peer_ip_;
  ctx_.client_ip = peer_ip_;
  ctx_.connection = this;

  beast_http::request_parser<beast_http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options_.header_limit));
  parser.body_limit(options_.body_limit);

  // The whole head must arrive within header_timeout (slowloris gets cut off with a 408).
  const beast::error_code hec = co_await read_head(parser);
  if (hec) {
    // Problems and requests are named locals, never temporaries in a co_await expression (GCC 12, see write()).
    const Request unparsed{};
    std::optional<ProblemSpec> refused;
    bool linger = false;
    if (hec == beast::error::timeout) {
      // Part of a request came, not all of its head: 408 and close (RFC 9110 §15.5.9). Lingering,
      // since the client may still be sending its head.
      refused = ProblemSpec{problems::request_timeout,
                            "The request head did not arrive within " +
                                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(options_.header_timeout).count()) +
                                " seconds"};
      linger = true;
    } else if (hec == beast_http::error::header_limit) {
      refused = ProblemSpec{problems::headers_too_large, "The request head exceeds the limit"};
    } else if (hec == beast_http::error::body_limit) {
      // Beast checks Content-Length against the body limit while parsing the head.
      refused = too_large(options_.body_limit);
      linger = true;
    } else if (is_http_syntax_error(hec)) {
      refused = ProblemSpec{problems::bad_request, "The request is not valid HTTP/1.1"};
    }
    if (refused) co_await refuse(unparsed, *refused, linger);
    co_return std::nullopt;
  }
  const Request& head = parser.get();
  std::optional<ProblemSpec> refused = framing_problem(head);  // ambiguous framing (request smuggling)
  if (!refused) refused = host_problem(head);
  if (!refused) {
    if (auto len = parser.content_length(); len && *len > options_.body_limit) refused = too_large(options_.body_limit);
  }
  if (refused) {
    // Answer and close before reading any body.
    co_await refuse(head, *refused, true);
    co_return std::nullopt;
  }
  if (beast::iequals(head[beast_http::field::expect], "100-continue")) {
    beast_http::response<beast_http::empty_body> cont{beast_http::status::continue_, head.version()};  // named: see write()
    stream_.expires_after(options_.write_timeout);
    auto [ec, n] = co_await beast_http::async_write(stream_, cont, use_tuple);
    if (ec) co_return std::nullopt;
  }
  if (!parser.is_done()) {
    stream_.expires_after(options_.body_timeout);
    auto [bec, bn] = co_await beast_http::async_read(stream_, buffer_, parser, use_tuple);
    if (bec) {
      std::optional<ProblemSpec> refused;
      bool linger = false;
      if (bec == beast_http::error::body_limit) {
        refused = too_large(options_.body_limit);
        linger = true;
      } else if (is_http_syntax_error(bec)) {
        refused = ProblemSpec{problems::bad_request, "The request body is not valid HTTP/1.1 framing"};
      }
      if (refused) co_await refuse(parser.get(), *refused, linger);
      co_return std::nullopt;
    }
  }
  co_return parser.release();
}

asio::awaitable<beast::error_code> HttpSession::read_head(beast_http::request_parser<beast_http::string_body>& parser) {
  using namespace asio::experimental::awaitable_operators;
  // Not the tcp_stream's own timeout: on expiry it closes the socket, and a 408 needs it open. This
  // timer cancels the read instead (socket.cancel(): the read ends with operation_aborted, the TLS
  // state is left whole, nothing was written), and it lives only in this coroutine's frame while a
  // head is being read: an idle connection carries no timer of its own.
  stream_.expires_never();
  asio::steady_timer deadline(stream_.get_executor(), options_.header_timeout);
  bool expired = false;
  auto expire = [&]() -> asio::awaitable<void> {
    auto [ec] = co_await deadline.async_wait(use_tuple);
    if (ec) co_return;  // the head came first: `||` cancelled the wait
    expired = true;
    boost::system::error_code ignored;
    stream_.socket().cancel(ignored);
  };
  auto read = [&]() -> asio::awaitable<beast::error_code> {
    auto [ec, n] = co_await beast_http::async_read_header(stream_, buffer_, parser, use_tuple);
    co_return ec;
  };
  auto outcome = co_await (read() || expire());
  if (expired) co_return beast::error::timeout;
  if (outcome.index() == 0) co_return std::get<0>(outcome);
  co_return beast::error_code(asio::error::operation_aborted);
}

asio::awaitable<void> HttpSession::refuse(const Request& req, const ProblemSpec& spec, bool linger) {
  // Through the pipeline like any answer (request id, access log), to a handler that only refuses.
  const Handler refusal = [&spec](const Request& r, RequestContext& c) -> asio::awaitable<Response> {
    co_return problem(r, c, spec);
  };
  Response res = co_await pipeline_.handle(req, ctx_, refusal);
  co_await write(res, false);
  linger_ = linger;
}

asio::awaitable<bool> HttpSession::write(Response& res, bool keep_alive) {
  // Responses are named lvalues, never temporaries inside a co_await expression: GCC 12
  // destroys such temporaries twice when the coroutine suspends.
  res.keep_alive(keep_alive);
  stream_.expires_after(options_.write_timeout);
  auto [ec, n] = co_await beast_http::async_write(stream_, res, use_tuple);
  co_return !ec;
}

asio::awaitable<void> HttpSession::close_gracefully() {
  boost::system::error_code ec;
  if (auto* tls = stream_.tls(); tls && secured_ && stream_.socket().is_open()) {
    if (linger_) co_await linger(std::chrono::seconds(2));
    // close_notify, so the client can tell the end from a truncation. Asio's shutdown then waits
    // for the client's close_notify or its close: briefly, a client that does neither is cut off.
    stream_.expires_after(std::chrono::seconds(2));
    co_await tls->async_shutdown(use_tuple);
    stream_.socket().close(ec);
    co_return;
  }
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (linger_ && stream_.socket().is_open()) co_await linger(std::chrono::seconds(2));
  stream_.socket().close(ec);
}

asio::awaitable<void> HttpSession::linger(std::chrono::seconds at_most) {
  // Lingering close (as nginx does): read and discard what the client is still sending for a
  // moment, so that closing with unread data does not reset the connection and destroy the
  // error response before the client has read it.
  stream_.expires_after(at_most);
  std::size_t discarded = 0;
  while (discarded < 64 * 1024 * 1024) {
    buffer_.clear();
    auto [rec, n] = co_await stream_.async_read_some(buffer_.prepare(64 * 1024), use_tuple);
    if (rec) break;
    discarded += n;
  }
}

}  // namespace registrar::adapters::http
