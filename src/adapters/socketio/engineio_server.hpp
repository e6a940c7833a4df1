#pragma once
// An Engine.IO protocol 4 server (https://github.com/socketio/engine.io-protocol) inside the HTTP
// server: sessions over HTTP long-polling and WebSocket, the polling → WebSocket upgrade, the
// server's heartbeat, CORS, and the errors the Node `engine.io` server answers. The layer above
// (Socket.IO) gets one EngineSocket per session and never sees a transport.
//
// Behaviour follows the Node reference server (npm `engine.io` 6) where the protocol leaves room:
//  - errors: 400 {"code","message"} (application/json) for an unknown transport (0), an unknown sid
//    (1), a handshake that is not a GET (2), a bad request (3: a transport or protocol mismatch on a
//    known sid, a WebSocket handshake without the upgrade), and EIO other than 4 (5); a refused
//    WebSocket upgrade gets 400 text/html with the message, as `engine.io` writes it.
//  - a second GET while one is held: the session closes (the held GET gets the close packet
//    "1"), the newcomer a bare 400; a malformed payload (or a binary POST body, which protocol 4
//    never sends) closes it too. POST bodies are read whole by the HTTP server before they reach
//    the session, so two POSTs never overlap here.
//  - the client's close packet answers a held GET with a noop "6"; a close by the server (or a
//    ping timeout) with "1". A closed session is forgotten at once (its sid then gets code 1),
//    except that close() on polling without a held GET waits up to close_timeout for the GET that
//    carries the "1".
//  - once a WebSocket probe got "3probe", a held GET (and any GET until "5") gets the noop; after
//    "5", polling requests with the sid are a transport mismatch (400 code 3) and a second
//    WebSocket with the sid is accepted and closed at once. Packets queued for polling go over
//    the WebSocket, in order.
//  - not noticed: a client that drops its connection while its GET is held (the HTTP server does
//    not read a connection whose request is held); its session ends at the next ping timeout.
//
// Threads: each session keeps its state under its own mutex and runs its timers and the upper
// layer's handlers on its strand (a WebSocket session's is its connection's), so any thread may
// send to or close a socket. Heartbeat deadlines of every session are in one timer wheel
// (timer_wheel.hpp); the WebSocket frames are registrar's own (adapters/websocket).
#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>
#include "adapters/http/router.hpp"
#include "adapters/http/takeover.hpp"
#include "adapters/socketio/engine_link.hpp"
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::socketio {

// Which browser origins get Access-Control-Allow-Origin (with credentials). Requests without an
// Origin (non-browser clients) are served either way: CORS only tells browsers what they may read.
struct CorsPolicy {
  bool any_origin = false;           // every origin (socketio-echo, the protocol test suites)
  std::vector<std::string> origins{};  // exact "scheme://host[:port]" values
  bool allows(std::string_view origin) const;
};

struct EngineOptions {
  std::chrono::milliseconds ping_interval{25'000};
  std::chrono::milliseconds ping_timeout{20'000};
  std::chrono::milliseconds upgrade_timeout{10'000};  // a WebSocket probe must send "5" within this
  // A server-side close on polling waits this long for the client's next GET to carry "1".
  std::chrono::milliseconds close_timeout{30'000};
  std::size_t max_payload = 1'000'000;  // bytes of a POST body or a WebSocket message; also bounds a GET answer
  std::size_t max_packets_per_payload = 256;  // packets in one POST body (decode_payload)
  // Packets waiting for a slow client (unanswered polls, a WebSocket that does not read): past
  // this, the session is closed ("send queue full") instead of holding memory or anyone else.
  std::size_t send_queue_limit = 1024;
  CorsPolicy cors;
};

// What is kept of the request that opened a session (polling or WebSocket). Only the client's
// address: a session lives as long as its connection, and keeping every query parameter and
// header (~1.5 KB) for each of thousands of idle connections, for nobody to read, cost more than
// the rest of the session together.
struct Handshake {
  std::string client_ip;
};

// One Engine.IO session as the layer above sees it. Thread-safe: every call may come from any
// thread. The handlers run on the session's strand, one at a time, in the order of the packets.
// It is also the Socket.IO layer's EngineLink (engine_link.hpp): send() of several messages queues
// them together.
class EngineSocket : public EngineLink {
 public:
  virtual ~EngineSocket() = default;
  virtual const std::string& id() const = 0;
  virtual const Handshake& handshake() const = 0;
  // "polling" or "websocket" (after an upgrade: "websocket").
  virtual std::string transport() const = 0;

  // Queue a message packet. False when the socket is closed (or was just closed because its send
  // queue is full: a slow client is dropped, never waited for).
  virtual bool send_text(std::string data) = 0;
  virtual bool send_binary(std::string bytes) = 0;
  // Close the session (queued messages are sent first where the transport allows). The close
  // handler runs with "forced close". Idempotent.
  void close() override = 0;

  // Set both in on_connection: the first message is delivered after it returns (earlier ones
  // would be dropped). `binary` says the message was binary (a WebSocket binary frame, a "b"
  // packet on polling).
  using MessageHandler = std::function<void(std::string data, bool binary)>;
  // Runs once with the reason ("transport close", "transport error", "ping timeout", "forced
  // close", "parse error", "send queue full", "server shutting down", "server error": a handler
  // threw, which is logged). Handlers must not block: they run on the I/O threads.
  using CloseHandler = std::function<void(const std::string& reason)>;
  virtual void on_message(MessageHandler handler) = 0;
  virtual void on_close(CloseHandler handler) = 0;
  // Keeps `owner` alive as long as the session (until its close handler ran): what the handlers
  // point to, so that they can hold a plain pointer (which std::function stores in place, where a
  // captured shared_ptr costs an allocation per handler and connection).
  virtual void attach(std::shared_ptr<void> owner) = 0;
};

class EngineSession;
class TimerWheel;

class EngineServer {
 public:
  using ConnectionHandler = std::function<void(std::shared_ptr<EngineSocket>)>;

  // `executor`: where sessions make their strands (the server's io_context). `log` must outlive
  // the server. `on_connection` runs on the new session's strand once its open packet is on its way.
  EngineServer(boost::asio::any_io_executor executor, const logging::Logger& log, EngineOptions options,
               ConnectionHandler on_connection);
  ~EngineServer();
  EngineServer(const EngineServer&) = delete;
  EngineServer& operator=(const EngineServer&) = delete;

  // Serves Engine.IO at `path` (e.g. "/engine.io/"): GET, POST and OPTIONS on `path*`.
  void add_routes(http::Router& router, std::string_view path);

  // The request handler behind those routes (for tests, and for a route table of its own).
  boost::asio::awaitable<http::Response> handle(const http::Request& req, http::RequestContext& ctx);

  // Closes every session ("server shutting down"): held polls answered, WebSockets sent a close frame.
  void close_all();
  std::size_t session_count() const;
  const EngineOptions& options() const { return options_; }

 private:
  friend class EngineSession;
  void forget(const std::string& sid);
  std::shared_ptr<EngineSession> find(const std::string& sid) const;
  // A WebSocket session runs on its connection's strand (`websocket_strand`); a polling session
  // (no executor given) gets a strand of its own.
  std::shared_ptr<EngineSession> open_session(Handshake handshake, boost::asio::any_io_executor websocket_strand);
  // Runs a taken-over WebSocket: a new session's transport, or a probe of `session`'s upgrade.
  boost::asio::awaitable<void> run_websocket(http::Takeover& t, std::shared_ptr<EngineSession> session, Handshake handshake);

  boost::asio::any_io_executor executor_;
  const logging::Logger& log_;
  EngineOptions options_;
  ConnectionHandler on_connection_;
  mutable std::mutex mutex_;
  // By sid; the key views the session's own id (the entry holds the session, so it stays valid).
  std::map<std::string_view, std::shared_ptr<EngineSession>, std::less<>> sessions_;
  std::unique_ptr<TimerWheel> heartbeats_;  // every session's next ping or pong deadline
};

// The CORS answer headers for `origin` under `policy` (empty when it gets none).
std::vector<std::pair<std::string, std::string>> cors_headers(const CorsPolicy& policy, std::string_view origin);

}  // namespace registrar::adapters::socketio
