#pragma once
// The byte stream under one HTTP connection: plain TCP, or TLS over TCP when the server has a
// certificate (--tls-cert). One type for both, chosen per connection at accept, so that the session,
// the take-over and what a route runs over a taken-over connection (Beast's WebSocket) are compiled
// once and read the same whichever it is. A std::variant rather than a template on the stream type:
// a template would double the session and the Socket.IO WebSocket code and make the take-over
// handler's type depend on it; the variant costs one branch per operation, and a plain connection
// carries no TLS state (the variant is the size of its larger alternative, a few pointers; TLS's
// own memory is OpenSSL's, allocated only for a TLS connection).
//
// It models Beast's AsyncReadStream and AsyncWriteStream (what http::async_read/async_write and
// websocket::stream<HttpStream&> need), its next_layer() is the TCP stream whatever the variant
// holds (so beast::get_lowest_layer() finds the socket and its timeouts), and the teardown hooks
// below tell a WebSocket how to close it (TLS: close_notify first).
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <memory>
#include <utility>
#include <variant>

namespace registrar::adapters::http {

class HttpStream {
 public:
  using Tcp = boost::beast::tcp_stream;
  using Tls = boost::beast::ssl_stream<Tcp>;
  using executor_type = Tcp::executor_type;

  // TLS when `tls` is given (its certificate, as loaded when the connection was accepted: a reload
  // changes only later connections), plain TCP otherwise.
  HttpStream(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> tls)
      : stream_(open(std::move(socket), std::move(tls))) {}
  HttpStream(const HttpStream&) = delete;
  HttpStream& operator=(const HttpStream&) = delete;
  // Moved when a taken-over connection is handed off for good (takeover.hpp: Takeover::detach).
  HttpStream(HttpStream&&) = default;

  // The TLS layer, or null for a plain connection (its handshake and shutdown are the session's).
  Tls* tls() noexcept {
    auto* secure = std::get_if<Secure>(&stream_);
    return secure ? &secure->stream : nullptr;
  }
  // The TCP layer (timeouts, the socket) whatever runs over it.
  Tcp& tcp() noexcept {
    auto* secure = std::get_if<Secure>(&stream_);
    return secure ? secure->stream.next_layer() : std::get<Tcp>(stream_);
  }
  Tcp& next_layer() noexcept { return tcp(); }
  boost::asio::ip::tcp::socket& socket() noexcept { return tcp().socket(); }
  executor_type get_executor() noexcept { return tcp().get_executor(); }
  template <class Duration>
  void expires_after(Duration d) {
    tcp().expires_after(d);
  }
  void expires_never() { tcp().expires_never(); }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    if (auto* secure = std::get_if<Secure>(&stream_))
      return secure->stream.async_read_some(buffers, std::forward<ReadToken>(token));
    return std::get<Tcp>(stream_).async_read_some(buffers, std::forward<ReadToken>(token));
  }
  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    if (auto* secure = std::get_if<Secure>(&stream_))
      return secure->stream.async_write_some(buffers, std::forward<WriteToken>(token));
    return std::get<Tcp>(stream_).async_write_some(buffers, std::forward<WriteToken>(token));
  }

  // WebSocket's hooks (found by argument-dependent lookup): a TLS connection sends close_notify.
  friend void teardown(boost::beast::role_type role, HttpStream& s, boost::system::error_code& ec) {
    using boost::beast::websocket::teardown;
    if (auto* tls = s.tls())
      teardown(role, *tls, ec);
    else
      teardown(role, s.tcp(), ec);
  }
  template <class TeardownHandler>
  friend void async_teardown(boost::beast::role_type role, HttpStream& s, TeardownHandler&& handler) {
    using boost::beast::websocket::async_teardown;
    if (auto* tls = s.tls())
      async_teardown(role, *tls, std::forward<TeardownHandler>(handler));
    else
      async_teardown(role, s.tcp(), std::forward<TeardownHandler>(handler));
  }

 private:
  struct Secure {
    Secure(std::shared_ptr<boost::asio::ssl::context> c, boost::asio::ip::tcp::socket socket)
        : context(std::move(c)), stream(Tcp(std::move(socket)), *context) {}
    // Held so that a reload (which replaces the server's context) never frees this one under the
    // connection; declared first, destroyed last.
    std::shared_ptr<boost::asio::ssl::context> context;
    Tls stream;
  };
  using Variant = std::variant<Tcp, Secure>;
  static Variant open(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> tls) {
    if (tls) return Variant(std::in_place_type<Secure>, std::move(tls), std::move(socket));
    return Variant(std::in_place_type<Tcp>, std::move(socket));
  }
  Variant stream_;
};

}  // namespace registrar::adapters::http
