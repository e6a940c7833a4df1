#pragma once
// One server-side WebSocket connection after its opening handshake, handed off by the HTTP
// session for good (takeover.hpp: detach), so that nothing of the HTTP request stays behind it.
// Built for many idle connections (frames.hpp says why not Beast's stream): while idle it holds the
// socket, one pending readiness wait and a few flags; no read buffer, no write buffer, no timer.
//  - reading: over plain TCP it waits for readability and then reads what is there into a
//    per-thread buffer; over TLS (whose records must be read through OpenSSL) it keeps one read
//    pending with a small buffer of its own: a TLS connection carries OpenSSL's ~35 KB anyway;
//  - writing: frames queued by any thread go out in order, several per write;
//  - pings are answered with pongs; the close handshake either way (ours: queued frames, then the
//    close frame, then the client's close or close_timeout; theirs: echoed, then the TCP close);
//    a protocol violation sends its close code and ends the connection;
//  - it is in the server's connection registry until it ends: drain tells its handler, the grace
//    period's hard stop closes its socket.
// All I/O and every handler call run on the connection's strand (the socket's executor).
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>
#include "adapters/http/connection_registry.hpp"
#include "adapters/http/stream.hpp"
#include "adapters/websocket/frames.hpp"

namespace registrar::adapters::websocket {

class ServerConnection;

// The owner of connections (e.g. an Engine.IO session): told on the connection's strand.
class ConnectionHandler {
 public:
  virtual ~ConnectionHandler() = default;
  virtual void on_ws_message(ServerConnection& connection, std::string data, bool binary) = 0;
  // Once per connection: the client closed it, it failed, or it was closed (after end()).
  virtual void on_ws_end(ServerConnection& connection) = 0;
  // The server drains: end what runs over the connection (the connection is ended after it).
  virtual void on_ws_drain(ServerConnection& connection) = 0;
};

struct ConnectionOptions {
  std::size_t max_message = 1'000'000;  // bytes of one message (larger: close 1009)
  std::chrono::milliseconds close_timeout{5'000};  // from end() to the client's close frame, at most
};

class ServerConnection final : public http::RegisteredConnection,
                               public std::enable_shared_from_this<ServerConnection> {
 public:
  // `stream`: the connection after the 101 answer went out.
  ServerConnection(http::HttpStream stream, ConnectionOptions options);
  ~ServerConnection() override;

  // On the connection's strand: registers it (a connection that starts while the server drains is
  // drained at once) and reads, beginning with `pending` (bytes read past the handshake request).
  // `handler` may be empty: messages are then dropped (a connection that is only to be closed).
  void start(http::ConnectionRegistry& registry, std::string_view pending, std::weak_ptr<ConnectionHandler> handler);

  // Any thread. Queues one message; false once the connection is ending.
  bool send(std::string_view payload, bool binary);
  // The connection's strand (the socket's executor).
  boost::asio::any_io_executor executor() { return tls_ ? tls_->get_executor() : socket_.get_executor(); }
  // Frames queued or being written.
  std::size_t queued() const;
  // Any thread: what is queued, then a close frame with `code`; the connection closes when the
  // client answers it, or close_timeout after this call at the latest (also when the client reads
  // nothing and the frames never go out). Idempotent.
  void end(std::uint16_t code = close_code::normal);

  // The registry's (any thread).
  void drain() override;
  void close() override;

 private:
  void read_next();
  void on_readable();
  void on_bytes(std::string_view bytes);
  void write_next();
  void written(boost::system::error_code ec, bool sent_close);
  void queue_locked(std::string frame);
  void notify_end();
  void finish();  // the connection is over: its handler is told (once), then it closes
  void stop_sending();  // nothing more is queued or written, the close timer stops
  void teardown();   // closes the TCP connection (TLS: close_notify first)
  void hard_close();

  const std::chrono::milliseconds close_timeout_;
  // Plain TCP: the bare socket, taken out of the HTTP stream (whose timers it no longer needs).
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<http::HttpStream> tls_;  // TLS: reads and writes go through OpenSSL (null: plain)
  http::ConnectionRegistry::Registration registration_;
  std::weak_ptr<ConnectionHandler> handler_;

  // On the strand only:
  FrameReader reader_;
  std::unique_ptr<char[]> tls_buffer_;   // TLS only
  std::vector<std::string> batch_;       // frames being written
  std::unique_ptr<boost::asio::steady_timer> close_timer_;  // only while waiting for the client's close
  bool close_sent_ = false;
  bool close_received_ = false;  // or reading ended: nothing more to wait for
  bool torn_down_ = false;
  bool end_notified_ = false;

  mutable std::mutex mutex_;  // what send() and end() touch from any thread
  std::vector<std::string> out_;
  std::size_t in_flight_ = 0;
  bool writing_ = false;      // a write or a posted write_next() is under way
  bool ending_ = false;       // end() was called: nothing more is queued
  bool close_queued_ = false;  // the close frame is in out_
};

}  // namespace registrar::adapters::websocket
