#pragma once
// A Notifier that is a Socket.IO client of an existing notification server: the Node Create_User
// service's PORT_MESSAGES_USERS server, which its worker reaches with
// `io(NOTIFY_URL, {transports: ['websocket']})` and `emit('notify', {id, success, message})`, and
// which forwards each one as `notification` to the room `id`. This client does what that worker
// does, so registrar drops in beside such a server unchanged.
//
// Socket.IO protocol 5 over Engine.IO protocol 4, WebSocket transport only
// (GET <path>?EIO=4&transport=websocket), on Boost.Beast's WebSocket client, TLS through
// Boost.Asio SSL (wss/https: certificate chain and host name verified, SNI). Hand-written because
// nothing in Debian speaks Socket.IO as a client; the packet formats are those of the server side
// (adapters/socketio/engineio_packet.hpp, socketio_packet.hpp), not a second implementation.
//
// Behaviour:
//  - answers the server's pings with pongs; no ping within pingInterval + pingTimeout (the OPEN
//    packet's values) means a dead server: the connection is dropped and made again;
//  - CONNECTs to the URL's namespace (the main one by default) with the `auth` payload, if any;
//  - reconnects after any loss with capped exponential back-off and jitter (ReconnectBackoff);
//  - notify() never blocks: it hands the notification to the client's thread; while there is no
//    connection, notifications wait in a bounded queue (NotifyQueue: when full the oldest goes,
//    and the number dropped is logged) and go out in order once connected;
//  - stop() gives the queue a short grace to drain, then closes.
// Best effort, as ports/notifier.hpp says: a notification written to a connection that then dies
// may be lost (the Node worker's socket.io-client is no different); the job's outcome is the record.
#include <boost/json/object.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "adapters/logging/json_logger.hpp"
#include "adapters/socketio_client/notify_url.hpp"
#include "ports/notifier.hpp"

namespace registrar::adapters::socketio_client {

struct SioClientOptions {
  NotifyUrl url;
  std::string path = "/socket.io/";          // the Engine.IO path (socket.io-client's `path`)
  std::optional<boost::json::object> auth;   // the CONNECT payload (e.g. {"token": …}); none: no payload
  std::string ca_file;                       // TLS: PEM bundle to verify the server with; empty: the system's
  std::string event = "notify";              // the event each notification is emitted as
  std::size_t queue_limit = 1000;            // notifications kept while disconnected
  std::chrono::milliseconds reconnect_min{500};
  std::chrono::milliseconds reconnect_max{10'000};
  std::chrono::milliseconds connect_timeout{10'000};  // TCP + TLS + WebSocket + OPEN + CONNECT
  std::chrono::milliseconds stop_grace{2'000};        // stop(): time allowed to flush the queue
};

class SioClientNotifier final : public ports::Notifier {
 public:
  // Throws std::invalid_argument for TLS settings that cannot work (an unreadable CA file).
  SioClientNotifier(SioClientOptions options, const logging::Logger& log);
  ~SioClientNotifier() override;
  SioClientNotifier(const SioClientNotifier&) = delete;
  SioClientNotifier& operator=(const SioClientNotifier&) = delete;

  void start();  // the client's own thread: connects, and keeps connecting
  // Thread-safe, never blocks (queues the notification for the client's thread).
  void notify(const ports::Notification& notification) override;
  // Flushes for up to stop_grace, closes, joins the thread; logs what was left undelivered. Idempotent.
  void stop();

  const std::string& where() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace registrar::adapters::socketio_client
