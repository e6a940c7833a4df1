#include "adapters/socketio/engineio_server.hpp"

#include <algorithm>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/parse.hpp>
#include <optional>
#include <span>
#include "adapters/http/held_reply.hpp"
#include "adapters/http/takeover.hpp"
#include "adapters/socketio/engineio_packet.hpp"
#include "adapters/socketio/timer_wheel.hpp"
#include "adapters/sodium/random_ids.hpp"
#include "adapters/websocket/server_connection.hpp"

namespace registrar::adapters::socketio {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace beast_ws = beast::websocket;
namespace ws = registrar::adapters::websocket;
using WsLink = ws::ServerConnection;  // one WebSocket: the session's transport, or an upgrade probe
using http::beast_http::field;
using http::beast_http::status;
using http::beast_http::verb;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// The error codes and messages of the Node `engine.io` server (Server.errors, Server.errorMessages).
enum class EioError { unknown_transport = 0, unknown_sid = 1, bad_handshake_method = 2, bad_request = 3, forbidden = 4,
                      unsupported_protocol = 5 };

std::string_view error_message(EioError e) {
  switch (e) {
    case EioError::unknown_transport: return "Transport unknown";
    case EioError::unknown_sid: return "Session ID unknown";
    case EioError::bad_handshake_method: return "Bad handshake method";
    case EioError::bad_request: return "Bad request";
    case EioError::forbidden: return "Forbidden";
    case EioError::unsupported_protocol: return "Unsupported protocol version";
  }
  return "Bad request";
}

// What `engine.io` answers a refused request (abortRequest): 403 for forbidden, else 400.
http::Response error_response(const http::Request& req, EioError e) {
  http::Response res{e == EioError::forbidden ? status::forbidden : status::bad_request, req.version()};
  res.set(field::content_type, "application/json");
  boost::json::object body{{"code", static_cast<int>(e)}, {"message", error_message(e)}};
  res.body() = boost::json::serialize(body);
  res.prepare_payload();
  return res;
}

// A refused WebSocket upgrade, as `engine.io` writes it (abortUpgrade): 400, the message as text/html.
http::Response upgrade_error_response(const http::Request& req, EioError e) {
  http::Response res{status::bad_request, req.version()};
  res.set(field::content_type, "text/html");
  res.body() = std::string(error_message(e));
  res.prepare_payload();
  res.keep_alive(false);
  return res;
}

http::Response empty_response(const http::Request& req, status s) {
  http::Response res{s, req.version()};
  res.prepare_payload();
  return res;
}

// A polling answer: a payload of packets (text/plain as `engine.io` writes it).
http::Response payload_response(unsigned version, std::string body) {
  http::Response res{status::ok, version};
  res.set(field::content_type, "text/plain; charset=UTF-8");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

EioPacket packet(EioType type, std::string data = {}) { return EioPacket{type, std::move(data), false}; }

void add_cors(http::Response& res, const CorsPolicy& policy, std::string_view origin) {
  for (auto& [name, value] : cors_headers(policy, origin)) res.set(name, value);
}

}  // namespace

bool CorsPolicy::allows(std::string_view origin) const {
  if (origin.empty()) return false;
  if (any_origin) return true;
  for (const auto& o : origins)
    if (o == origin) return true;
  return false;
}

std::vector<std::pair<std::string, std::string>> cors_headers(const CorsPolicy& policy, std::string_view origin) {
  if (!policy.allows(origin)) return {};
  // The origin itself, never "*": credentials (cookies of a sticky-session load balancer) are
  // allowed, and browsers refuse "*" with credentials.
  return {{"Access-Control-Allow-Origin", std::string(origin)},
          {"Access-Control-Allow-Credentials", "true"},
          {"Vary", "Origin"}};
}

// ---------------------------------------------------------------------------------------------

class EngineSession final : public EngineSocket,
                            public ws::ConnectionHandler,
                            public WheelTarget,
                            public std::enable_shared_from_this<EngineSession> {
 public:
  // `strand`: where the session's timers and handlers run (a WebSocket session shares its
  // connection's strand; a polling session gets one of its own).
  EngineSession(EngineServer& server, std::string id, Handshake handshake, bool websocket, asio::any_io_executor strand)
      : server_(server),
        options_(server.options_),
        id_(std::move(id)),
        handshake_(std::move(handshake)),
        strand_(std::move(strand)),
        websocket_(websocket) {}

  const std::string& id() const override { return id_; }
  const Handshake& handshake() const override { return handshake_; }
  std::string transport() const override {
    std::lock_guard lock(mutex_);
    return websocket_ ? "websocket" : "polling";
  }
  bool send_text(std::string data) override { return send(packet(EioType::message, std::move(data))); }
  // EngineLink (the Socket.IO layer): a packet's header and its attachments, together.
  void send(std::vector<EngineMessage> messages) override {
    std::vector<EioPacket> packets;
    packets.reserve(messages.size());
    for (auto& m : messages) packets.push_back(EioPacket{EioType::message, std::move(m.data), m.binary});
    send_all(packets);
  }
  bool send_binary(std::string bytes) override { return send(EioPacket{EioType::message, std::move(bytes), true}); }
  void on_message(MessageHandler handler) override {
    std::lock_guard lock(mutex_);
    on_message_ = std::move(handler);
  }
  void on_close(CloseHandler handler) override {
    std::lock_guard lock(mutex_);
    on_close_ = std::move(handler);
  }
  void attach(std::shared_ptr<void> owner) override {
    std::lock_guard lock(mutex_);
    attached_ = std::move(owner);
  }

  void close() override {
    std::unique_lock lock(mutex_);
    if (closed_ || closing_) return;
    if (websocket_ || poll_) {
      // Queued packets go first (the WebSocket's writer sends them before the close frame; a
      // held poll carries them with the close packet).
      queue_.push_back(packet(EioType::close));
      lock.unlock();
      terminate("forced close", std::nullopt);
      return;
    }
    // Polling without a held GET: the client's next GET carries the close packet (or it never
    // comes, and close_timeout ends the session).
    closing_ = true;
    queue_.push_back(packet(EioType::close));
    lock.unlock();
    asio::post(strand_, [self = shared_from_this()] {
      auto& timer = self->timer(self->close_timer_);
      timer.expires_after(self->options_.close_timeout);
      timer.async_wait([self](boost::system::error_code ec) {
        if (!ec) self->terminate("forced close", std::nullopt);
      });
    });
  }

  // Starts the heartbeat and hands the socket to the layer above (after the open packet is out).
  void start() {
    schedule_ping();
    asio::post(strand_, [self = shared_from_this()] {
      if (self->server_.on_connection_) self->guarded("connection", [&] { self->server_.on_connection_(self); });
    });
  }

  std::string open_packet() const {
    boost::json::object open{{"sid", id_},
                             {"upgrades", websocket_ ? boost::json::array{} : boost::json::array{"websocket"}},
                             {"pingInterval", options_.ping_interval.count()},
                             {"pingTimeout", options_.ping_timeout.count()},
                             {"maxPayload", options_.max_payload}};
    return boost::json::serialize(open);
  }

  // --- polling ------------------------------------------------------------------------------

  // A GET with this sid. Answers at once (queued packets, a noop during an upgrade, an error) or
  // holds the request until there is something to send.
  asio::awaitable<http::Response> poll(const http::Request& req, http::RequestContext& ctx) {
    const std::string origin(req[field::origin]);
    auto reply = std::make_shared<http::HeldReply>(co_await asio::this_coro::executor);
    {
      std::unique_lock lock(mutex_);
      if (closed_) co_return error_response(req, EioError::unknown_sid);
      if (websocket_) co_return error_response(req, EioError::bad_request);
      if (poll_) {
        // Two GETs at once: the protocol's "overlap" error. The held one gets the close packet.
        lock.unlock();
        terminate("transport error", packet(EioType::close));
        co_return empty_response(req, status::bad_request);
      }
      if (!queue_.empty()) {
        auto res = take_payload_locked(req.version());
        const bool end = closing_ && queue_.empty();
        lock.unlock();
        if (end) terminate("forced close", std::nullopt);
        add_cors(res, options_.cors, origin);
        co_return res;
      }
      if (probed_) {
        auto res = payload_response(req.version(), "6");
        add_cors(res, options_.cors, origin);
        co_return res;
      }
      poll_ = std::make_unique<HeldPoll>(HeldPoll{reply, origin, req.version()});
    }
    // The server drains: this session ends and its held GET gets the close packet.
    if (ctx.connection)
      ctx.connection->on_drain([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->terminate("server shutting down", packet(EioType::close));
      });
    http::Response res = co_await reply->wait();
    if (ctx.connection) ctx.connection->on_drain({});
    co_return res;
  }

  // A POST with this sid: a payload of packets.
  http::Response post(const http::Request& req) {
    if (req[field::content_type] == "application/octet-stream") {
      // Protocol 4 sends binary as base64 text; `engine.io` refuses a binary body ("invalid content").
      terminate("transport error", packet(EioType::close));
      return empty_response(req, status::bad_request);
    }
    if (req.body().size() > options_.max_payload) return empty_response(req, status::payload_too_large);
    auto packets = decode_payload(req.body(), {.max_packets = options_.max_packets_per_payload});
    if (!packets) {
      terminate("parse error", packet(EioType::close));
      return empty_response(req, status::bad_request);
    }
    for (auto& p : *packets) {
      if (!on_packet(std::move(p), false)) break;
    }
    http::Response res{status::ok, req.version()};
    // text/html, as `engine.io` answers: text/plain made some user agents offer a download.
    res.set(field::content_type, "text/html");
    res.body() = "ok";
    res.prepare_payload();
    return res;
  }

  // --- WebSocket ----------------------------------------------------------------------------

  // The session's own WebSocket (a session opened over WebSocket).
  void attach_ws(std::shared_ptr<WsLink> link) {
    std::lock_guard lock(mutex_);
    ws_ = link;
    link->send("0" + open_packet(), false);
  }

  // A WebSocket with this sid: a probe for the upgrade. False when it must be refused (an upgrade
  // already under way or done, or the session closed).
  bool attach_probe(std::shared_ptr<WsLink> link) {
    {
      std::lock_guard lock(mutex_);
      if (closed_ || closing_ || websocket_ || probe_) return false;
      probe_ = link;
    }
    asio::post(strand_, [self = shared_from_this(), weak = std::weak_ptr<WsLink>(link)] {
      auto& timer = self->timer(self->upgrade_timer_);
      timer.expires_after(self->options_.upgrade_timeout);
      timer.async_wait([self, weak](boost::system::error_code ec) {
        if (ec) return;
        std::shared_ptr<WsLink> probe;
        {
          std::lock_guard lock(self->mutex_);
          if (!self->probe_ || self->probe_ != weak.lock()) return;
          probe = std::move(self->probe_);
          self->probed_ = false;
        }
        probe->end();  // the probe never completed: it ends, the polling session goes on
      });
    });
    return true;
  }

  void on_ws_message(WsLink& connection, std::string frame, bool binary) override {
    auto p = decode_ws_frame(frame, binary);
    std::unique_lock lock(mutex_);
    if (closed_) return;
    if (probe_ && &connection == probe_.get()) {
      auto link = probe_;
      if (p && p->type == EioType::ping && p->data == "probe") {
        probed_ = true;
        link->send("3probe", false);
        // The pending GET returns (noop) so that the client can pause polling and send "5".
        if (poll_) answer_poll_locked(std::string("6"));  // a noop
        return;
      }
      if (p && p->type == EioType::upgrade) {
        probe_.reset();
        probed_ = false;
        websocket_ = true;
        ws_ = link;
        if (poll_) answer_poll_locked(std::string("6"));  // a noop
        // Whatever waited for the next GET now goes over the WebSocket, in order.
        std::vector<EioPacket> queued;
        queued.swap(queue_);
        const bool closing = closing_;
        for (auto& q : queued) link->send(encode_ws_frame(q), q.binary);
        lock.unlock();
        asio::post(strand_, [self = shared_from_this()] {
          if (self->upgrade_timer_) self->upgrade_timer_->cancel();
        });
        if (closing) terminate("forced close", std::nullopt);
        return;
      }
      // Anything else on a probe ends the probe (not the session), as `engine.io` does.
      probe_.reset();
      probed_ = false;
      lock.unlock();
      link->end();
      return;
    }
    if (&connection != ws_.get()) return;  // a probe that was replaced or timed out
    lock.unlock();
    if (!p) {
      terminate("parse error", std::nullopt);
      return;
    }
    on_packet(std::move(*p), true);
  }

  // A WebSocket of this session ended (closed by the peer, an error, or our close).
  void on_ws_end(WsLink& connection) override {
    std::unique_lock lock(mutex_);
    if (probe_ && &connection == probe_.get()) {
      probe_.reset();
      probed_ = false;
      return;
    }
    if (&connection != ws_.get() || closed_) return;
    lock.unlock();
    terminate("transport close", std::nullopt);
  }

  // The server drains: the session ends (its WebSocket then gets its close frame).
  void on_ws_drain(WsLink&) override { terminate("server shutting down", std::nullopt); }

  // Ends the session: forgotten by the server, timers stopped, a held GET answered (queued
  // packets, then `last` if given), WebSockets closed, the close handler told `reason`.
  void terminate(const std::string& reason, std::optional<EioPacket> last) {
    std::shared_ptr<http::HeldReply> poll;
    std::shared_ptr<WsLink> ws, probe;
    std::string origin;
    unsigned version = 11;
    std::vector<EioPacket> queued;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return;
      closed_ = true;
      if (poll_) {
        poll = std::move(poll_->reply);
        origin = std::move(poll_->origin);
        version = poll_->version;
        poll_.reset();
      }
      ws = std::move(ws_);
      probe = std::move(probe_);
      queued.swap(queue_);
    }
    server_.forget(id_);
    asio::post(strand_, [self = shared_from_this(), reason] {
      ++self->heartbeat_generation_;  // its deadline in the wheel is stale now
      if (self->upgrade_timer_) self->upgrade_timer_->cancel();
      if (self->close_timer_) self->close_timer_->cancel();
      CloseHandler on_close;
      std::shared_ptr<void> attached;
      {
        std::lock_guard lock(self->mutex_);
        on_close = std::move(self->on_close_);
        self->on_message_ = {};  // the handlers may hold the socket: no cycle outlives the session
        attached = std::move(self->attached_);  // released after the close handler, which may use it
      }
      if (on_close) self->guarded("close", [&] { on_close(reason); });
    });
    if (poll) {
      std::vector<EioPacket> packets = std::move(queued);
      if (last) packets.push_back(std::move(*last));
      if (packets.empty()) packets.push_back(packet(EioType::noop));
      auto res = payload_response(version, encode_payload(packets));
      add_cors(res, options_.cors, origin);
      poll->answer(std::move(res));
    }
    if (ws) ws->end();  // after the frames already queued on it
    if (probe) probe->end();
    server_.log_.debug("engine.io session closed", {{"sid", id_}, {"reason", reason}});
  }

 private:
  // Runs a handler of the layer above. An exception from it must not unwind the I/O thread (it
  // would end the server): it closes this session and is logged.
  template <class F>
  void guarded(const char* what, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      server_.log_.error("engine.io handler failed", {{"sid", id_}, {"handler", what}, {"error", e.what()}});
      terminate("server error", packet(EioType::close));
    }
  }

  bool send(EioPacket p) { return send_all(std::span(&p, 1)); }

  // Queues `packets` together: nothing another thread sends comes between them.
  bool send_all(std::span<EioPacket> packets) {
    std::unique_lock lock(mutex_);
    if (closed_ || closing_) return false;
    for (auto& p : packets) {
      const std::size_t waiting = websocket_ ? (ws_ ? ws_->queued() : 0) : queue_.size();
      if (waiting >= options_.send_queue_limit) {
        lock.unlock();
        terminate("send queue full", std::nullopt);
        return false;
      }
      if (!websocket_) queue_.push_back(std::move(p));
      else if (ws_) ws_->send(encode_ws_frame(p), p.binary);
    }
    if (!websocket_ && poll_) answer_poll_locked(take_payload_locked(poll_->version));
    return true;
  }

  // A packet from the client. False when the session ended with it.
  bool on_packet(EioPacket p, bool over_websocket) {
    switch (p.type) {
      case EioType::message: {
        asio::post(strand_, [self = shared_from_this(), p = std::move(p)]() mutable {
          MessageHandler handler;
          {
            std::lock_guard lock(self->mutex_);
            if (self->closed_) return;
            handler = self->on_message_;
          }
          if (handler) self->guarded("message", [&] { handler(std::move(p.data), p.binary); });
        });
        return true;
      }
      case EioType::pong:
        asio::post(strand_, [self = shared_from_this()] { self->schedule_ping_on_strand(); });
        return true;
      case EioType::ping:
        // In protocol 4 only the server pings; `engine.io` closes on a client's ping
        // ("invalid heartbeat direction").
        terminate("transport error", packet(EioType::close));
        return false;
      case EioType::close:
        // The client leaves: a held GET returns with a noop (the client is not waiting for a close).
        terminate("transport close", over_websocket ? std::nullopt : std::optional(packet(EioType::noop)));
        return false;
      default:
        return true;  // open, upgrade and noop mean nothing here
    }
  }

  // Queued packets for one GET answer: as many as fit in max_payload (at least one).
  http::Response take_payload_locked(unsigned version) {
    std::size_t size = 0, count = 0;
    for (const auto& next : queue_) {
      // base64 grows binary by a third; +1 for the separator.
      const std::size_t cost = (next.binary ? 1 + (next.data.size() + 2) / 3 * 4 : 1 + next.data.size()) + 1;
      if (count != 0 && size + cost > options_.max_payload) break;
      size += cost;
      ++count;
    }
    std::vector<EioPacket> packets(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + count));
    queue_.erase(queue_.begin(), queue_.begin() + count);
    if (queue_.empty()) std::vector<EioPacket>().swap(queue_);  // an idle session keeps no queue memory
    return payload_response(version, encode_payload(packets));
  }

  // A timer of the strand's, made when first needed (most sessions never upgrade or close on polling).
  asio::steady_timer& timer(std::unique_ptr<asio::steady_timer>& slot) {
    if (!slot) slot = std::make_unique<asio::steady_timer>(strand_);
    return *slot;
  }

  void answer_poll_locked(http::Response res) {
    add_cors(res, options_.cors, poll_->origin);
    poll_->reply->answer(std::move(res));
    poll_.reset();
  }
  void answer_poll_locked(std::string payload) { answer_poll_locked(payload_response(poll_->version, std::move(payload))); }

  // The heartbeat, on the strand: ping every ping_interval; no pong within ping_timeout → close.
  void schedule_ping() {
    asio::post(strand_, [self = shared_from_this()] { self->schedule_ping_on_strand(); });
  }
  // Its deadlines are in the server's wheel (timer_wheel.hpp: one timer for every session), each
  // with the generation it was set in: a pong or the end moves the generation on, and the
  // deadline set before is ignored when it comes.
  void schedule_ping_on_strand() {
    awaiting_pong_ = false;
    server_.heartbeats_->schedule(weak_from_this(), ++heartbeat_generation_, options_.ping_interval);
  }
  void on_due(std::uint64_t generation) override {
    asio::post(strand_, [self = shared_from_this(), generation] {
      if (generation != self->heartbeat_generation_) return;
      if (self->awaiting_pong_) {
        self->terminate("ping timeout", packet(EioType::close));
        return;
      }
      if (!self->send(packet(EioType::ping))) return;
      self->awaiting_pong_ = true;
      self->server_.heartbeats_->schedule(self->weak_from_this(), ++self->heartbeat_generation_, self->options_.ping_timeout);
    });
  }

  EngineServer& server_;
  const EngineOptions& options_;
  const std::string id_;
  const Handshake handshake_;
  const asio::any_io_executor strand_;
  // On the strand only:
  std::unique_ptr<asio::steady_timer> upgrade_timer_;
  std::unique_ptr<asio::steady_timer> close_timer_;
  std::uint64_t heartbeat_generation_ = 0;  // a deadline of an older schedule is stale
  bool awaiting_pong_ = false;              // the last deadline is the pong's, not the next ping's

  mutable std::mutex mutex_;  // everything below
  bool websocket_;
  bool closed_ = false;
  bool closing_ = false;  // close() on polling: waiting for the GET that carries "1"
  bool probed_ = false;   // an upgrade probe answered: GETs get a noop until "5"
  std::vector<EioPacket> queue_;  // polling: packets for the next GET (few: a vector, empty without memory)
  // A GET held until there is something to send, with what its answer needs (allocated only then:
  // a WebSocket session, or a polling one between requests, keeps a null pointer here).
  struct HeldPoll {
    std::shared_ptr<http::HeldReply> reply;
    std::string origin;
    unsigned version;
  };
  std::unique_ptr<HeldPoll> poll_;
  std::shared_ptr<WsLink> ws_;     // the WebSocket transport
  std::shared_ptr<WsLink> probe_;  // a WebSocket probing for the upgrade
  MessageHandler on_message_;
  CloseHandler on_close_;
  std::shared_ptr<void> attached_;
};

// ---------------------------------------------------------------------------------------------

EngineServer::EngineServer(asio::any_io_executor executor, const logging::Logger& log, EngineOptions options,
                           ConnectionHandler on_connection)
    : executor_(std::move(executor)),
      log_(log),
      options_(std::move(options)),
      on_connection_(std::move(on_connection)),
      // A tick of a tenth of the shorter heartbeat period (at most 250 ms: 25 s / 20 s by
      // default), so a ping or a timeout comes at most that much late.
      heartbeats_(std::make_unique<TimerWheel>(
          executor_,
          std::clamp(std::min(options_.ping_interval, options_.ping_timeout) / 10, std::chrono::milliseconds(5),
                     std::chrono::milliseconds(250)),
          std::max(options_.ping_interval, options_.ping_timeout))) {}

EngineServer::~EngineServer() { close_all(); }

void EngineServer::add_routes(http::Router& router, std::string_view path) {
  std::string pattern(path);
  if (pattern.empty() || pattern.back() != '/') pattern += '/';
  pattern += '*';
  // Every method: a handshake with another one gets the protocol's error (code 2), not 405.
  for (verb method : {verb::get, verb::post, verb::options, verb::put, verb::delete_, verb::patch})
    router.add(method, pattern, [this](const http::Request& req, http::RequestContext& ctx) { return handle(req, ctx); });
}

void EngineServer::forget(const std::string& sid) {
  std::lock_guard lock(mutex_);
  sessions_.erase(std::string_view(sid));
}

std::shared_ptr<EngineSession> EngineServer::find(const std::string& sid) const {
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(std::string_view(sid));
  return it == sessions_.end() ? nullptr : it->second;
}

std::shared_ptr<EngineSession> EngineServer::open_session(Handshake handshake, asio::any_io_executor websocket_strand) {
  const bool websocket = static_cast<bool>(websocket_strand);
  asio::any_io_executor strand = websocket ? std::move(websocket_strand) : asio::make_strand(executor_);
  // 15 bytes of the CSPRNG → 20 URL-safe characters (the length of `engine.io`'s base64id).
  auto session = std::make_shared<EngineSession>(*this, sodium::random_secret_base64url(15), std::move(handshake), websocket,
                                                 std::move(strand));
  {
    std::lock_guard lock(mutex_);
    sessions_.emplace(session->id(), session);
  }
  log_.debug("engine.io session opened", {{"sid", session->id()}, {"transport", websocket ? "websocket" : "polling"}});
  return session;
}

void EngineServer::close_all() {
  std::vector<std::shared_ptr<EngineSession>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [id, s] : sessions_) all.push_back(s);
  }
  for (auto& s : all) s->terminate("server shutting down", packet(EioType::close));
  heartbeats_->clear();  // their deadlines are stale now, and would keep the io_context busy
}

std::size_t EngineServer::session_count() const {
  std::lock_guard lock(mutex_);
  return sessions_.size();
}

namespace {

Handshake handshake_of(const http::RequestContext& ctx) { return Handshake{ctx.client_ip}; }

}  // namespace

asio::awaitable<http::Response> EngineServer::handle(const http::Request& req, http::RequestContext& ctx) {
  const std::string origin(req[field::origin]);
  if (req.method() == verb::options) {
    // CORS preflight (what the `cors` package answers for `engine.io`).
    http::Response res{status::no_content, req.version()};
    add_cors(res, options_.cors, origin);
    if (options_.cors.allows(origin)) {
      res.set(field::access_control_allow_methods, "GET,POST");
      if (auto asked = req[field::access_control_request_headers]; !asked.empty())
        res.set(field::access_control_allow_headers, asked);
    }
    co_return res;
  }
  const bool upgrade = beast_ws::is_upgrade(req);
  auto refuse = [&](EioError e) {
    auto res = upgrade ? upgrade_error_response(req, e) : error_response(req, e);
    add_cors(res, options_.cors, origin);
    return res;
  };

  std::map<std::string, std::string> query;
  auto target = boost::urls::parse_origin_form(req.target());
  if (!target) co_return refuse(EioError::bad_request);
  for (auto param : target->params()) query[param.key] = param.value;
  auto value = [&query](const char* key) {
    auto it = query.find(key);
    return it == query.end() ? std::string() : it->second;
  };
  const std::string transport = value("transport");
  const std::string sid = value("sid");
  const bool eio4 = value("EIO") == "4";

  // The checks of `engine.io`'s verify() and handshake(), in their order.
  if (transport != "polling" && transport != "websocket") co_return refuse(EioError::unknown_transport);
  std::shared_ptr<EngineSession> session;
  if (!sid.empty()) {
    session = find(sid);
    if (!session) co_return refuse(EioError::unknown_sid);
    if (!upgrade && session->transport() != transport) co_return refuse(EioError::bad_request);
    if (!eio4) co_return refuse(EioError::bad_request);
  } else {
    if (req.method() != verb::get) co_return refuse(EioError::bad_handshake_method);
    if (transport == "websocket" && !upgrade) co_return refuse(EioError::bad_request);
    if (!eio4) co_return refuse(EioError::unsupported_protocol);
  }

  if (upgrade) {
    if (transport != "websocket") co_return refuse(EioError::bad_request);
    auto handshake = handshake_of(ctx);
    co_return http::take_over(req, ctx,
                              [this, session, handshake = std::move(handshake)](http::Takeover& t) -> asio::awaitable<void> {
                                co_await run_websocket(t, session, handshake);
                              });
  }

  if (!session) {
    // A polling handshake: the answer is the open packet.
    session = open_session(handshake_of(ctx), {});
    auto res = payload_response(req.version(), encode_payload(std::vector{packet(EioType::open, session->open_packet())}));
    add_cors(res, options_.cors, origin);
    session->start();
    co_return res;
  }
  if (req.method() == verb::get) co_return co_await session->poll(req, ctx);
  if (req.method() == verb::post) {
    auto res = session->post(req);
    add_cors(res, options_.cors, origin);
    co_return res;
  }
  // `engine.io`'s polling transport answers other methods with a bare 500.
  co_return empty_response(req, status::internal_server_error);
}

asio::awaitable<void> EngineServer::run_websocket(http::Takeover& t, std::shared_ptr<EngineSession> session,
                                                  Handshake handshake) {
  {
    // The opening handshake by Beast (its checks of the upgrade request, its 400/426 answers and
    // the 101 with Sec-WebSocket-Accept), within the write timeout; its stream is only for this:
    // the frames are ours (websocket/frames.hpp says why).
    t.stream.expires_after(std::chrono::seconds(10));
    beast_ws::stream<http::HttpStream&> opening(t.stream);
    auto [ec] = co_await opening.async_accept(t.request, use_tuple);
    if (ec) co_return;
  }
  // Handed off for good: the HTTP session ends now, and the connection is the WebSocket's. The
  // client sends no frame before our 101, but whatever was read past the request goes with it.
  std::string pending = beast::buffers_to_string(t.buffer.data());
  auto& registry = t.owner.registry();
  auto link = std::make_shared<WsLink>(t.detach(), ws::ConnectionOptions{.max_message = options_.max_payload});
  if (!session) {
    session = open_session(std::move(handshake), link->executor());
    session->attach_ws(link);
    link->start(registry, pending, session);
    session->start();
  } else if (session->attach_probe(link)) {
    link->start(registry, pending, session);
  } else {
    // A second WebSocket for a session already upgrading or upgraded: accepted and closed, as
    // `engine.io` does.
    link->start(registry, pending, {});
    link->end();
  }
}

}  // namespace registrar::adapters::socketio
