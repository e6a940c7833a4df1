#include "adapters/redis/link.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <exception>
#include <random>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <system_error>
#include <utility>
#include <vector>

#include "adapters/redis/resp.hpp"
#include "adapters/tls/peer_name.hpp"

namespace registrar::adapters::redis::detail {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

const auto kAwait = asio::as_tuple(asio::use_awaitable);  // errors as values, not exceptions

// An attempt that failed; the message says at which step and why (never the password).
struct AttemptFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

// One connection (one attempt, then its life while up). The handlers of its operations hold it, so
// it outlives a drop() until they have all run; they compare it with conn_ to know they are stale.
struct Link::Conn {
  Conn(asio::io_context& ioc, ssl::context* tls_context) {
    if (tls_context != nullptr)
      tls.emplace(ioc, *tls_context);
    else
      plain.emplace(ioc);
  }
  tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
  template <class Buffers, class Token>
  auto async_read_some(const Buffers& buffers, Token&& token) {
    if (tls) return tls->async_read_some(buffers, std::forward<Token>(token));
    return plain->async_read_some(buffers, std::forward<Token>(token));
  }
  template <class Buffers, class Token>
  auto async_write(const Buffers& buffers, Token&& token) {
    if (tls) return asio::async_write(*tls, buffers, std::forward<Token>(token));
    return asio::async_write(*plain, buffers, std::forward<Token>(token));
  }
  void close() {
    error_code ignored;
    socket().close(ignored);
  }

  std::optional<ssl::stream<tcp::socket>> tls;
  std::optional<tcp::socket> plain;
  std::array<char, 16 * 1024> read_buf{};
  resp::Parser parser;
  std::string out, sending;  // bytes to send next; bytes being sent
  bool writing = false;
  bool timed_out = false;    // the attempt timer closed it
  bool established = false;  // the handshake completed (the attempt timer no longer applies)
};

Link::Link(asio::io_context& ioc, Url url, ClientOptions options, Hooks hooks)
    : ioc_(ioc),
      url_(std::move(url)),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      where_(url_.redacted()),
      resolver_(ioc),
      attempt_timer_(ioc),
      wait_timer_(ioc),
      random_(std::random_device{}()) {
  if (options_.reconnect_min.count() <= 0 || options_.reconnect_max < options_.reconnect_min)
    throw std::invalid_argument("redis: reconnect back-off must satisfy 0 < min <= max");
  if (options_.client_name.find_first_of(" \r\n") != std::string::npos)
    throw std::invalid_argument("redis: the client name must not contain spaces or line breaks");
  if (!url_.tls) return;
  // TLS 1.2 or later; the server's certificate checked against the CA file, else the system's
  // trusted roots, and (in connect_once) against the host name or IP address of the URL.
  tls_context_.emplace(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls_context_->native_handle(), TLS1_2_VERSION);
  if (!url_.verify_peer) {
    tls_context_->set_verify_mode(ssl::verify_none);
    return;
  }
  tls_context_->set_verify_mode(ssl::verify_peer);
  error_code ec;
  if (!url_.ca_file.empty()) {
    tls_context_->load_verify_file(url_.ca_file, ec);
    if (ec) throw std::invalid_argument("redis: cannot load the CA file " + url_.ca_file + ": " + ec.message());
  } else {
    tls_context_->set_default_verify_paths(ec);
    if (ec) throw std::invalid_argument("redis: cannot load the system's trusted CAs: " + ec.message());
  }
}

Link::~Link() = default;

void Link::start() {
  asio::co_spawn(ioc_, supervise(), [](std::exception_ptr e) {
    // Only a bug gets here (a hook that threw): loud, not a client that silently stops reconnecting.
    if (e) std::rethrow_exception(e);
  });
}

void Link::stop() {
  stopped_ = true;
  up_ = false;
  if (conn_) conn_->close();
  conn_.reset();
  resolver_.cancel();
  attempt_timer_.cancel();
  wait_timer_.cancel();
}

void Link::drop(const std::string& why) {
  if (!up_) return;
  up_ = false;
  conn_->close();
  conn_.reset();
  hooks_.down(why);
  wait_timer_.cancel();  // supervise() goes on to reconnect
}

void Link::write(std::string_view bytes) {
  if (!up_) return;
  conn_->out.append(bytes);
  if (!conn_->writing) flush(conn_);
}

void Link::flush(const std::shared_ptr<Conn>& conn) {
  conn->writing = true;
  std::swap(conn->out, conn->sending);
  conn->out.clear();
  conn->async_write(asio::buffer(conn->sending), [this, conn](const error_code& ec, std::size_t) {
    conn->writing = false;
    conn->sending.clear();
    if (conn != conn_ || !up_) return;
    if (ec) {
      drop("write failed: " + ec.message());
      return;
    }
    if (!conn->out.empty()) flush(conn);
  });
}

void Link::start_read(const std::shared_ptr<Conn>& conn) {
  conn->async_read_some(asio::buffer(conn->read_buf), [this, conn](const error_code& ec, std::size_t n) {
    if (conn != conn_ || !up_) return;
    if (ec) {
      drop(ec == asio::error::eof || ec == ssl::error::stream_truncated ? std::string("the server closed the connection")
                                                                         : "read failed: " + ec.message());
      return;
    }
    try {
      conn->parser.feed(std::string_view(conn->read_buf.data(), n));
      while (auto reply = conn->parser.next()) {
        hooks_.reply(std::move(*reply));
        if (conn != conn_ || !up_) return;  // the hook dropped the connection
      }
    } catch (const resp::ProtocolError& e) {
      drop(e.what());
      return;
    }
    start_read(conn);
  });
}

asio::awaitable<void> Link::supervise() {
  auto backoff = options_.reconnect_min;
  while (!stopped_) {
    hooks_.connecting();
    auto conn = std::make_shared<Conn>(ioc_, tls_context_ ? &*tls_context_ : nullptr);
    conn_ = conn;
    std::string failure;
    try {
      co_await connect_once(conn);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (stopped_) co_return;
    if (failure.empty()) {
      up_ = true;
      backoff = options_.reconnect_min;
      start_read(conn);
      hooks_.up();
      if (up_ && !stopped_) {  // until drop() or stop() cancels the wait
        wait_timer_.expires_at(asio::steady_timer::time_point::max());
        co_await wait_timer_.async_wait(kAwait);
      }
      if (stopped_) co_return;
    } else {
      conn->close();
      conn_.reset();
      hooks_.down(failure);
      if (stopped_) co_return;
    }
    // ±20 %: processes that lost the same server do not all come back in the same millisecond.
    std::uniform_real_distribution<double> jitter(0.8, 1.2);
    wait_timer_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(backoff * jitter(random_)));
    co_await wait_timer_.async_wait(kAwait);
    backoff = std::min(backoff * 2, options_.reconnect_max);
  }
}

asio::awaitable<void> Link::connect_once(std::shared_ptr<Conn> conn) {
  // The whole attempt (resolve, connect, TLS, handshake) within connect_timeout: when the timer
  // fires, it closes the socket, which ends whichever operation is under way.
  attempt_timer_.expires_after(options_.connect_timeout);
  attempt_timer_.async_wait([this, conn](const error_code& ec) {
    if (ec || conn->established) return;
    conn->timed_out = true;
    resolver_.cancel();
    conn->close();
  });
  struct Disarm {
    asio::steady_timer& timer;
    ~Disarm() { timer.cancel(); }
  } disarm{attempt_timer_};
  auto failed = [&](const std::string& step, const error_code& ec) {
    if (conn->timed_out)
      return AttemptFailed("no connection within " + std::to_string(options_.connect_timeout.count()) + " ms (" +
                           step + ")");
    return AttemptFailed(step + ": " + ec.message());
  };

  auto [resolve_ec, endpoints] =
      co_await resolver_.async_resolve(url_.host, std::to_string(url_.port), kAwait);
  if (resolve_ec) throw failed("cannot resolve " + url_.host, resolve_ec);
  if (conn->timed_out) throw failed("resolve", resolve_ec);
  auto [connect_ec, endpoint] = co_await asio::async_connect(conn->socket(), endpoints, kAwait);
  if (connect_ec) throw failed("cannot connect", connect_ec);
  error_code ignored;
  conn->socket().set_option(tcp::no_delay(true), ignored);
  conn->socket().set_option(asio::socket_base::keep_alive(true), ignored);

  if (conn->tls) {
    SSL* ssl_handle = conn->tls->native_handle();
    // Refused names fail the attempt: a host check that did not take would accept any trusted certificate.
    if (!tls::send_sni(ssl_handle, url_.host) ||
        (url_.verify_peer && !tls::verify_peer_name(SSL_get0_param(ssl_handle), url_.host)))
      throw AttemptFailed("TLS: OpenSSL refused the host name " + url_.host);
    auto [tls_ec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kAwait);
    if (tls_ec) {
      std::string reason = tls_ec.message();
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      if (conn->timed_out) throw failed("TLS handshake", tls_ec);
      throw AttemptFailed("TLS handshake failed: " + reason);
    }
  }

  // AUTH, SELECT, CLIENT SETNAME in one write; then their replies, in order.
  std::string out;
  std::vector<std::string> steps;
  auto add = [&](std::initializer_list<std::string_view> args, std::string step) {
    resp::append_command(out, std::span<const std::string_view>(args.begin(), args.size()));
    steps.push_back(std::move(step));
  };
  if (!url_.password.empty()) {
    if (!url_.username.empty())
      add({"AUTH", url_.username, url_.password}, "AUTH");
    else
      add({"AUTH", url_.password}, "AUTH");
  }
  const std::string db = std::to_string(url_.db);
  if (url_.db != 0) add({"SELECT", db}, "SELECT " + db);
  if (!options_.client_name.empty()) add({"CLIENT", "SETNAME", options_.client_name}, "CLIENT SETNAME");
  if (steps.empty()) add({"PING"}, "PING");
  auto [write_ec, written] = co_await conn->async_write(asio::buffer(out), kAwait);
  if (write_ec) throw failed("cannot send the handshake", write_ec);

  std::vector<Reply> replies;
  while (replies.size() < steps.size()) {
    auto [read_ec, n] = co_await conn->async_read_some(asio::buffer(conn->read_buf), kAwait);
    if (read_ec == asio::error::eof || read_ec == asio::error::connection_reset ||
        read_ec == ssl::error::stream_truncated) {
      if (conn->timed_out) throw failed("handshake", read_ec);
      throw AttemptFailed(std::string("the server closed the connection during the handshake") +
                          (url_.tls ? "" : " (a TLS-only port? use rediss://)"));
    }
    if (read_ec) throw failed("handshake", read_ec);
    try {
      conn->parser.feed(std::string_view(conn->read_buf.data(), n));
      while (replies.size() < steps.size()) {
        auto reply = conn->parser.next();
        if (!reply) break;
        replies.push_back(std::move(*reply));
      }
    } catch (const resp::ProtocolError& e) {
      throw AttemptFailed(std::string("not a Redis server? ") + e.what());
    }
  }
  for (std::size_t i = 0; i < steps.size(); ++i)
    if (replies[i].is_error()) throw AttemptFailed(steps[i] + " refused: " + replies[i].str);
  conn->established = true;
}

}  // namespace registrar::adapters::redis::detail
