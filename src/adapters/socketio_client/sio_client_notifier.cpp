#include "adapters/socketio_client/sio_client_notifier.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>

#include <atomic>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

#include "adapters/socketio/engineio_packet.hpp"
#include "adapters/socketio/socketio_packet.hpp"
#include "adapters/socketio_client/notify_queue.hpp"
#include "adapters/tls/peer_name.hpp"

namespace registrar::adapters::socketio_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using socketio::EioPacket;
using socketio::EioType;
using socketio::SioPacket;
using socketio::SioType;

namespace {

const auto kAwait = asio::as_tuple(asio::use_awaitable);  // errors as values, not exceptions

// Why a connection ended (or an attempt failed): the message of the log line.
struct SessionEnded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::chrono::milliseconds ms_field(const boost::json::object& o, std::string_view key, std::chrono::milliseconds fallback) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return fallback;
  if (v->is_int64() && v->as_int64() > 0) return std::chrono::milliseconds(v->as_int64());
  if (v->is_uint64() && v->as_uint64() > 0) return std::chrono::milliseconds(static_cast<std::int64_t>(v->as_uint64()));
  if (v->is_double() && v->as_double() > 0) return std::chrono::milliseconds(static_cast<std::int64_t>(v->as_double()));
  return fallback;
}

}  // namespace

// What the client's thread owns: the queue, the back-off, the current connection. Everything in
// here runs on that thread (a one-thread io_context); notify() and stop() reach it through post().
struct SioClientNotifier::Impl {
  struct ConnBase {
    virtual ~ConnBase() = default;
    virtual void kick() = 0;      // write what is waiting, if idle
    virtual void shutdown() = 0;  // a Socket.IO DISCONNECT if connected, then the socket closes
  };
  template <class WS>
  struct Conn;

  Impl(SioClientOptions o, const logging::Logger& l)
      : options(std::move(o)),
        log(l),
        retry(ioc),
        queue(options.queue_limit),
        backoff(options.reconnect_min, options.reconnect_max),
        random(std::random_device{}()) {
    if (!options.url.tls) return;
    // TLS 1.2 or later; the chain against the CA file or the system's roots, the name against the
    // URL's host (in attempt()), as the Redis and HTTP client adapters do.
    tls.emplace(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
    tls->set_verify_mode(ssl::verify_peer);
    error_code ec;
    if (!options.ca_file.empty()) {
      tls->load_verify_file(options.ca_file, ec);
      if (ec) throw std::invalid_argument("cannot load the CA file " + options.ca_file + ": " + ec.message());
    } else {
      tls->set_default_verify_paths(ec);
      if (ec) throw std::invalid_argument("cannot load the system's trusted CAs: " + ec.message());
    }
  }

  // ---- the client's thread ----

  asio::awaitable<void> supervise();
  template <class WS>
  asio::awaitable<void> attempt(std::shared_ptr<Conn<WS>> conn);
  // One connection, plain or TLS, from the attempt to its end: it becomes `conn`; when it fails
  // (an exception, passed on) it is closed, and `was_connected` says whether it had got as far as
  // the namespace's CONNECT.
  template <class WS>
  asio::awaitable<void> run_connection(std::shared_ptr<Conn<WS>> c, bool& was_connected);
  asio::awaitable<void> drain_and_close(std::shared_ptr<std::promise<void>> done);

  void on_notify(ports::Notification n) {
    if (queue.push(std::move(n)) && !dropping) {
      dropping = true;
      log.warn("notification queue full; dropping the oldest notifications until the server takes them",
               {{"url", options.url.display}, {"limit", queue.limit()}});
    }
    if (conn) conn->kick();
  }

  void on_connected(const std::string& sid) {
    backoff.reset();
    boost::json::object fields{{"url", options.url.display}, {"namespace", options.url.nsp}, {"pending", queue.size()}};
    if (!sid.empty()) fields["sid"] = sid;
    if (failures > 0) fields["failedAttempts"] = failures;
    log.info("notification server connected", std::move(fields));
    failures = 0;
    report_drops();
  }

  void report_drops() {
    if (const auto n = queue.take_dropped(); n > 0)
      log.warn("notifications dropped: the queue was full while the notification server was unreachable",
               {{"url", options.url.display}, {"dropped", n}, {"limit", queue.limit()}});
    dropping = false;
  }

  SioClientOptions options;
  const logging::Logger& log;
  std::optional<ssl::context> tls;  // before the io_context: streams that outlive it hold its SSL_CTX
  asio::io_context ioc{1};
  asio::steady_timer retry;  // the back-off wait between attempts
  NotifyQueue queue;
  ReconnectBackoff backoff;
  std::minstd_rand random;
  std::shared_ptr<ConnBase> conn;  // the connection being made or up
  bool dropping = false;           // an episode of drops is under way (logged once)
  bool stopping = false;           // stop() began: reconnect at once, while draining
  bool closing = false;            // stop()'s grace is over: no more attempts
  bool supervising = false;
  std::uint64_t failures = 0;      // attempts failed since the last connection

  // ---- any thread ----
  std::thread thread;
  std::mutex lifecycle;
  bool started = false, stopped = false;
};

// One connection: the WebSocket, the Engine.IO session on it, the Socket.IO namespace. The reader
// (Impl::attempt) and the writer's handlers hold it, so it outlives the end of either.
template <class WS>
struct SioClientNotifier::Impl::Conn final : ConnBase, std::enable_shared_from_this<Conn<WS>> {
  template <class... Args>
  Conn(Impl& impl, Args&&... args)
      : impl(impl), ws(std::forward<Args>(args)...), attempt_timer(impl.ioc), watchdog(impl.ioc) {}

  tcp::socket& socket() { return beast::get_lowest_layer(ws).socket(); }

  void close() {
    closed = true;
    error_code ignored;
    socket().shutdown(tcp::socket::shutdown_both, ignored);
    socket().close(ignored);
    attempt_timer.cancel();
    watchdog.cancel();
  }

  void send_control(std::string frame) {
    control.push_back(std::move(frame));
    kick();
  }

  void kick() override {
    if (writing || closed || !ws.is_open()) return;
    std::uint64_t seq = 0;
    if (!control.empty()) {
      out = std::move(control.front());
      control.pop_front();
    } else if (connected && !shutting_down && !impl.queue.empty()) {
      const auto& entry = impl.queue.front();
      seq = entry.seq;
      out = notify_frame(entry.notification);
    } else {
      if (shutting_down) close();  // DISCONNECT written: done
      return;
    }
    writing = true;
    ws.text(true);
    ws.async_write(asio::buffer(out), [self = this->shared_from_this(), seq](const error_code& ec, std::size_t) {
      self->writing = false;
      if (ec) {
        if (!self->closed) {
          self->failure = "write failed: " + ec.message();
          self->close();
        }
        return;
      }
      if (seq != 0) self->impl.queue.written(seq);
      self->kick();
    });
  }

  void shutdown() override {
    shutting_down = true;
    if (!connected) {
      close();
      return;
    }
    SioPacket disconnect;
    disconnect.type = SioType::disconnect;
    disconnect.nsp = impl.options.url.nsp;
    send_control(socketio::encode_ws_frame({EioType::message, socketio::encode_sio(disconnect), false}));
  }

  // `emit(event, {id, success, message})`: the Node worker's object, field for field. The room is
  // not sent: the notification server routes by `id` (the verification session id).
  std::string notify_frame(const ports::Notification& n) const {
    SioPacket event;
    event.type = SioType::event;
    event.nsp = impl.options.url.nsp;
    event.data = boost::json::array{boost::json::string(impl.options.event),
                                    boost::json::object{{"id", n.id}, {"success", n.success}, {"message", n.message}}};
    return socketio::encode_ws_frame({EioType::message, socketio::encode_sio(event), false});
  }

  // No ping within pingInterval + pingTimeout: the server (or the path to it) is gone, whatever TCP says.
  void arm_watchdog() {
    watchdog.expires_after(ping_interval + ping_timeout);
    watchdog.async_wait([self = this->shared_from_this()](const error_code& ec) {
      if (ec || self->closed) return;
      self->failure = "no ping from the server within " + std::to_string((self->ping_interval + self->ping_timeout).count()) + " ms";
      self->close();
    });
  }

  Impl& impl;
  WS ws;
  asio::steady_timer attempt_timer;  // bounds the attempt (connect … CONNECT ack) by connect_timeout
  asio::steady_timer watchdog;       // the heartbeat
  std::chrono::milliseconds ping_interval{25'000}, ping_timeout{20'000};
  std::deque<std::string> control;   // pongs, CONNECT, DISCONNECT: before any notification
  std::string out;                   // the frame being written
  std::string failure;               // set by whoever closed it, for the log
  bool writing = false;
  bool connected = false;            // the namespace's CONNECT was acknowledged
  bool closed = false;
  bool shutting_down = false;        // stop(): nothing after the DISCONNECT
};

template <class WS>
asio::awaitable<void> SioClientNotifier::Impl::attempt(std::shared_ptr<Conn<WS>> c) {
  const auto& url = options.url;
  const auto timeout = options.connect_timeout;
  std::string step = "resolve";
  c->attempt_timer.expires_after(timeout);
  c->attempt_timer.async_wait([c, &step](const error_code& ec) {
    if (ec || c->connected || c->closed) return;
    c->failure = "no Socket.IO connection within " + std::to_string(c->impl.options.connect_timeout.count()) + " ms (" + step + ")";
    c->close();
  });
  auto fail = [&](const std::string& what, const error_code& ec) -> SessionEnded {
    if (!c->failure.empty()) return SessionEnded(c->failure);
    return SessionEnded(what + ": " + ec.message());
  };

  tcp::resolver resolver(ioc);
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(url.host, url.port, kAwait);
  if (resolve_ec) throw fail("cannot resolve " + url.host, resolve_ec);
  if (c->closed) throw fail("resolve", resolve_ec);
  step = "connect";
  auto& tcp_layer = beast::get_lowest_layer(c->ws);
  tcp_layer.expires_after(timeout);
  auto [connect_ec, endpoint] = co_await tcp_layer.async_connect(endpoints, kAwait);
  if (connect_ec) throw fail("cannot connect to " + url.host_header, connect_ec);
  if (c->closed) throw fail("connect", connect_ec);
  error_code ignored;
  c->socket().set_option(tcp::no_delay(true), ignored);

  if constexpr (!std::is_same_v<WS, websocket::stream<beast::tcp_stream>>) {
    step = "TLS handshake";
    auto& stream = c->ws.next_layer();
    SSL* handle = stream.native_handle();
    // SNI; the certificate must name the URL's host (checked by OpenSSL's verification: a
    // mismatch has its own verify result for the message below).
    // A host check that did not take would accept any trusted certificate: refused, not ignored.
    if (!tls::send_sni(handle, url.host) || !tls::verify_peer_name(SSL_get0_param(handle), url.host))
      throw SessionEnded("TLS with " + url.host_header + ": OpenSSL refused the host name");
    auto [tls_ec] = co_await stream.async_handshake(ssl::stream_base::client, kAwait);
    if (tls_ec) {
      std::string reason = tls_ec.message();
      if (const long verify = SSL_get_verify_result(handle); verify != X509_V_OK)
        reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      if (!c->failure.empty()) throw SessionEnded(c->failure);
      throw SessionEnded("TLS handshake with " + url.host_header + " failed: " + reason);
    }
  }

  // Engine.IO has its own heartbeat: no stream timeout past the handshake (the attempt timer
  // bounds the rest of the attempt).
  tcp_layer.expires_never();
  step = "WebSocket handshake";
  c->ws.set_option(websocket::stream_base::timeout{timeout, websocket::stream_base::none(), false});
  c->ws.set_option(websocket::stream_base::decorator(
      [](websocket::request_type& req) { req.set(beast::http::field::user_agent, "registrar"); }));
  std::string target = options.path + "?EIO=4&transport=websocket";
  if (!url.query.empty()) target += "&" + url.query;
  websocket::response_type response;
  auto [hs_ec] = co_await c->ws.async_handshake(response, url.host_header, target, kAwait);
  if (hs_ec) {
    if (hs_ec == websocket::error::upgrade_declined)
      throw SessionEnded("the server answered HTTP " + std::to_string(response.result_int()) +
                         " to the WebSocket upgrade at " + options.path + " (not a Socket.IO server, or another path?)");
    throw fail("WebSocket handshake", hs_ec);
  }

  step = "Engine.IO open";
  socketio::SioAssembler assembler;
  beast::flat_buffer buffer;
  bool opened = false;
  for (;;) {
    buffer.clear();
    auto [read_ec, n] = co_await c->ws.async_read(buffer, kAwait);
    if (read_ec) {
      if (!c->failure.empty()) throw SessionEnded(c->failure);
      if (read_ec == websocket::error::closed) throw SessionEnded("the server closed the WebSocket");
      if (read_ec == asio::error::eof || read_ec == asio::error::connection_reset || read_ec == ssl::error::stream_truncated)
        throw SessionEnded("the server closed the connection");
      throw SessionEnded("connection lost: " + read_ec.message());
    }
    const std::string frame = beast::buffers_to_string(buffer.data());
    const auto packet = socketio::decode_ws_frame(frame, !c->ws.got_text());
    if (!packet) throw SessionEnded("not an Engine.IO packet from the server");
    switch (packet->type) {
      case EioType::open: {
        boost::system::error_code json_ec;
        auto handshake = boost::json::parse(packet->data, json_ec);
        if (json_ec || !handshake.is_object()) throw SessionEnded("the server's Engine.IO OPEN packet is not a JSON object");
        c->ping_interval = ms_field(handshake.as_object(), "pingInterval", c->ping_interval);
        c->ping_timeout = ms_field(handshake.as_object(), "pingTimeout", c->ping_timeout);
        opened = true;
        c->arm_watchdog();
        step = "Socket.IO CONNECT";
        SioPacket connect;
        connect.type = SioType::connect;
        connect.nsp = url.nsp;
        if (options.auth) connect.data = *options.auth;
        c->send_control(socketio::encode_ws_frame({EioType::message, socketio::encode_sio(connect), false}));
        break;
      }
      case EioType::ping:
        c->arm_watchdog();
        c->send_control(socketio::encode_ws_frame({EioType::pong, packet->data, false}));
        break;
      case EioType::close:
        throw SessionEnded("the server closed the Engine.IO session");
      case EioType::message: {
        if (!opened) throw SessionEnded("a message before the Engine.IO OPEN packet");
        auto step_result = packet->binary ? assembler.on_binary(packet->data) : assembler.on_text(packet->data);
        if (step_result.step == socketio::SioAssembler::Step::error)
          throw SessionEnded("a malformed Socket.IO packet from the server: " + step_result.error);
        if (step_result.step != socketio::SioAssembler::Step::packet) break;
        const SioPacket& p = step_result.packet;
        if (p.nsp != url.nsp) break;
        if (p.type == SioType::connect && !c->connected) {
          c->connected = true;
          c->attempt_timer.cancel();
          std::string sid;
          if (p.data && p.data->is_object())
            if (const auto* s = p.data->as_object().if_contains("sid"); s && s->is_string()) sid = s->as_string();
          on_connected(sid);
          c->kick();  // what waited goes out, in order
        } else if (p.type == SioType::connect_error) {
          std::string message = "refused";
          if (p.data && p.data->is_string()) message = std::string(p.data->as_string());
          else if (p.data && p.data->is_object())
            if (const auto* m = p.data->as_object().if_contains("message"); m && m->is_string()) message = m->as_string();
          throw SessionEnded("the server refused the Socket.IO connection to namespace " + url.nsp + ": " + message);
        } else if (p.type == SioType::disconnect) {
          throw SessionEnded("the server disconnected the namespace " + url.nsp);
        }
        // Events and acks from the server: nothing this client listens to.
        break;
      }
      default:
        break;  // pong, upgrade, noop: nothing to do on a WebSocket-only session
    }
  }
}

template <class WS>
asio::awaitable<void> SioClientNotifier::Impl::run_connection(std::shared_ptr<Conn<WS>> c, bool& was_connected) {
  conn = c;
  try {
    co_await attempt(c);
  } catch (...) {
    was_connected = c->connected;
    c->close();
    throw;
  }
}

asio::awaitable<void> SioClientNotifier::Impl::supervise() {
  supervising = true;
  while (!closing) {
    std::string why;
    bool was_connected = false;
    try {
      if (tls)
        co_await run_connection(std::make_shared<Conn<websocket::stream<beast::ssl_stream<beast::tcp_stream>>>>(*this, ioc, *tls),
                                was_connected);
      else
        co_await run_connection(std::make_shared<Conn<websocket::stream<beast::tcp_stream>>>(*this, ioc), was_connected);
    } catch (const std::exception& e) {
      why = e.what();
    }
    conn.reset();
    if (closing) break;
    if (was_connected) {
      log.warn("notification server connection lost; reconnecting",
               {{"url", options.url.display}, {"error", why}, {"pending", queue.size()}});
    } else if (failures++ == 0) {
      log.warn("cannot reach the notification server; notifications wait in the queue while retrying",
               {{"url", options.url.display}, {"error", why}, {"pending", queue.size()}});
    } else {
      log.debug("notification server still unreachable", {{"url", options.url.display}, {"error", why}, {"attempt", failures}});
    }
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    retry.expires_after(stopping ? std::chrono::milliseconds(50) : backoff.next(uniform(random)));
    co_await retry.async_wait(kAwait);
  }
  supervising = false;
}

asio::awaitable<void> SioClientNotifier::Impl::drain_and_close(std::shared_ptr<std::promise<void>> done) {
  stopping = true;
  retry.cancel();  // a back-off wait ends: one more attempt to deliver what waits
  asio::steady_timer poll(ioc);
  const auto deadline = std::chrono::steady_clock::now() + options.stop_grace;
  while (!queue.empty() && std::chrono::steady_clock::now() < deadline) {
    poll.expires_after(std::chrono::milliseconds(10));
    co_await poll.async_wait(kAwait);
  }
  closing = true;
  retry.cancel();
  if (conn) conn->shutdown();
  // The DISCONNECT goes out and the reader sees the close; bounded, whatever the server does.
  const auto close_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  while (supervising && std::chrono::steady_clock::now() < close_deadline) {
    poll.expires_after(std::chrono::milliseconds(5));
    co_await poll.async_wait(kAwait);
  }
  report_drops();
  if (!queue.empty())
    log.warn("notifications not delivered at shutdown: the notification server did not take them in time",
             {{"url", options.url.display}, {"undelivered", queue.size()}});
  done->set_value();
}

SioClientNotifier::SioClientNotifier(SioClientOptions options, const logging::Logger& log)
    : impl_(std::make_unique<Impl>(std::move(options), log)) {}

SioClientNotifier::~SioClientNotifier() { stop(); }

const std::string& SioClientNotifier::where() const { return impl_->options.url.display; }

void SioClientNotifier::start() {
  std::lock_guard lock(impl_->lifecycle);
  if (impl_->started) return;
  impl_->started = true;
  asio::co_spawn(impl_->ioc, impl_->supervise(), [](std::exception_ptr e) {
    // Only a bug gets here: loud, not a client that silently stops reconnecting.
    if (e) std::rethrow_exception(e);
  });
  impl_->thread = std::thread([impl = impl_.get()] { impl->ioc.run(); });
}

void SioClientNotifier::notify(const ports::Notification& notification) {
  // A raw pointer: the handler never runs after stop() joined the thread, and a handler left in
  // the io_context must not keep the Impl (which owns that io_context) alive.
  asio::post(impl_->ioc, [impl = impl_.get(), n = notification]() mutable { impl->on_notify(std::move(n)); });
}

void SioClientNotifier::stop() {
  std::lock_guard lock(impl_->lifecycle);
  if (!impl_->started || impl_->stopped) return;
  impl_->stopped = true;
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  asio::co_spawn(impl_->ioc, impl_->drain_and_close(done), asio::detached);
  // drain_and_close() ends within the grace and half a second; the margin is for a loaded machine.
  finished.wait_for(impl_->options.stop_grace + std::chrono::seconds(2));
  impl_->ioc.stop();
  impl_->thread.join();
}

}  // namespace registrar::adapters::socketio_client
