#pragma once
// The Socket.IO protocol 5 server side, on top of Engine.IO connections (engine_link.hpp), as the
// npm `socket.io` 4 server behaves (its lib/client.ts, namespace.ts, socket.ts):
//
//  - A connection (SioConnection, socket.io's "Client") multiplexes namespaces. A CONNECT packet
//    for a namespace the server has runs that namespace's `authorize`; a refusal is answered with
//    CONNECT_ERROR {message[, data]}, an unknown namespace with CONNECT_ERROR
//    {"message":"Invalid namespace"}; an accepted socket gets CONNECT {"sid"} and joins the room
//    of its own id. A connection that has joined no namespace within `connect_timeout` is closed.
//  - EVENT / BINARY_EVENT `[name, ...args]` go to the socket's handler for `name`; with an ack id,
//    the handler gets an Ack that answers ACK / BINARY_ACK with that id. The server's own emits
//    may ask for an ack; the client's ACK calls it back.
//  - Closed, as socket.io does, on a packet it cannot decode and on an invalid state (a packet for
//    a namespace the connection has not joined, a second CONNECT for one it has).
//  - DISCONNECT from the client leaves that namespace only; SioSocket::disconnect() sends one.
//
// Rooms are per namespace. Emits to a room come from any thread (the Create_User worker, the
// relay's consumers); each socket's messages go through its Engine.IO link, whose bounded queue
// drops a slow client instead of delaying the others. Binary arguments travel as socket.io does:
// the JSON holds {"_placeholder":true,"num":i} where buffer i goes (SioMessage keeps both).
//
// Hand-written because nothing in Debian speaks Socket.IO; no I/O here but the connect timer.
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "adapters/socketio/engine_link.hpp"
#include "adapters/socketio/socketio_packet.hpp"

namespace registrar::adapters::socketio {

// An event's arguments (without its name), or an ack's. Binary arguments are placeholders in
// `args` that refer to `buffers` by index.
struct SioMessage {
  boost::json::array args;
  std::vector<std::string> buffers;
};

// Answers an event that asked for an ack (at most once; later calls do nothing).
using Ack = std::function<void(SioMessage)>;
using EventHandler = std::function<void(SioMessage message, std::optional<Ack> ack)>;

// Why a namespace refused a CONNECT: sent as CONNECT_ERROR {message, data} (data when not null).
struct ConnectRefusal {
  std::string message;
  boost::json::value data = nullptr;
};

class SioNamespace;
class SioConnection;

// One client's connection to one namespace.
class SioSocket : public std::enable_shared_from_this<SioSocket> {
 public:
  SioSocket(std::string id, SioNamespace& nsp, std::weak_ptr<SioConnection> connection, boost::json::value auth);

  const std::string& id() const { return id_; }
  SioNamespace& nsp() const { return nsp_; }
  // The CONNECT packet's payload (an object; {} when it had none, as socket.io's handshake.auth),
  // for the namespace's authorize and on_connection; null after them: a token kept for the life of
  // every idle connection, for nobody to read, cost more than the socket itself.
  const boost::json::value& auth() const { return auth_; }

  // Handlers are set in the namespace's on_connection (before any event of the client is read).
  void on(std::string event, EventHandler handler);
  void on_disconnect(std::function<void(std::string_view reason)> handler);

  void emit(std::string_view event, SioMessage message = {});
  // `callback` runs with the client's ack (on the connection's thread); never if it does not ack.
  void emit_with_ack(std::string_view event, SioMessage message, std::function<void(SioMessage)> callback);

  void join(const std::string& room);
  void leave(const std::string& room);
  std::set<std::string> rooms() const;

  // Leaves the namespace: DISCONNECT to the client, rooms left, on_disconnect("server namespace disconnect").
  // With `close`, the whole connection is closed after it (socket.io's disconnect(true)).
  void disconnect(bool close = false);
  bool connected() const { return connected_.load(); }

 private:
  friend class SioConnection;
  friend class SioNamespace;
  void send_packet(SioPacket packet);
  void on_packet(SioPacket packet);           // from the connection: EVENT, ACK, DISCONNECT
  void closed(std::string_view reason);       // leaves rooms, tells on_disconnect (once)

  const std::string id_;
  SioNamespace& nsp_;
  const std::weak_ptr<SioConnection> connection_;
  boost::json::value auth_;  // only while connecting (see auth())
  std::atomic<bool> connected_{true};

  // What on(), on_disconnect() and emit_with_ack() leave: made by the first of them, as most
  // sockets (serve's, which only receive emits) never call one and an idle socket should cost little.
  struct Callbacks {
    std::map<std::string, EventHandler, std::less<>> handlers;
    std::function<void(std::string_view)> on_disconnect;
    std::map<std::uint64_t, std::function<void(SioMessage)>> pending_acks;
    std::uint64_t next_ack_id = 0;
  };
  Callbacks& callbacks_locked();

  mutable std::mutex mutex_;
  std::unique_ptr<Callbacks> callbacks_;
  // The rooms it joined besides its own id's: keys of the namespace's rooms_, under its mutex.
  mutable std::vector<const std::string*> joined_;
};

// Which sockets a broadcast reaches: those in any of `rooms` (all the namespace's sockets when
// empty), minus those in any of `except`.
struct Broadcast {
  std::vector<std::string> rooms;
  std::vector<std::string> except;
};

// The cross-process half of socket.io's Adapter: a namespace delivers a broadcast to its own
// sockets, then hands it to its adapter (when it has one) to reach the other processes' sockets.
// `packet` is an EVENT / BINARY_EVENT of the namespace (binary arguments as placeholders + buffers).
// Called on the emitting thread; must not throw.
class SioAdapter {
 public:
  virtual ~SioAdapter() = default;
  virtual void broadcast(const Broadcast& to, const SioPacket& packet) = 0;
};

class SioNamespace {
 public:
  using Authorize = std::function<std::optional<ConnectRefusal>(SioSocket& socket)>;
  using OnConnection = std::function<void(const std::shared_ptr<SioSocket>&)>;

  explicit SioNamespace(std::string name) : name_(std::move(name)) {}
  const std::string& name() const { return name_; }

  // Decides a CONNECT (may join the socket to rooms); nullopt accepts. None set: all are accepted.
  void set_authorize(Authorize authorize) { authorize_ = std::move(authorize); }
  void on_connection(OnConnection handler) { on_connection_ = std::move(handler); }

  // Emits to this process's sockets that `to` selects, and through the adapter (if any) to the
  // other processes'; returns how many of this process's sockets it was sent to.
  std::size_t emit(const Broadcast& to, std::string_view event, const SioMessage& message);
  // A packet from another process (through the adapter): to this process's sockets only.
  std::size_t emit_local(const Broadcast& to, const SioPacket& packet);
  std::size_t size() const;
  std::vector<std::shared_ptr<SioSocket>> sockets(const Broadcast& to) const;
  // Every room that has a socket of this process (socket ids' own rooms included, as socket.io).
  std::set<std::string> rooms() const;
  bool has_room(const std::string& room) const;

  // The adapter the namespace's emits go through besides (nullptr: this process only). It must
  // outlive its use: set it before serving, clear it before destroying it.
  void set_adapter(SioAdapter* adapter) { adapter_.store(adapter); }

 private:
  friend class SioSocket;
  friend class SioConnection;
  void add(const std::shared_ptr<SioSocket>& socket);
  void remove(const SioSocket& socket);
  void join(const SioSocket& socket, const std::string& room);
  void leave(const SioSocket& socket, const std::string& room);
  std::set<std::string> rooms_of(const SioSocket& socket) const;

  using Members = std::map<const SioSocket*, std::weak_ptr<SioSocket>>;  // the key is never dereferenced
  // The room `room` names: its members, or the socket whose id it is (each socket is in the room
  // of its own id without an entry in rooms_: an entry per connection for a room of one).
  void members_locked(const std::string& room, Members& out) const;

  const std::string name_;
  Authorize authorize_;
  OnConnection on_connection_;
  std::atomic<SioAdapter*> adapter_{nullptr};
  mutable std::mutex mutex_;
  std::map<std::string, std::weak_ptr<SioSocket>, std::less<>> sockets_;  // by socket id
  // Room → its members (other than own-id rooms); a member's SioSocket::joined_ points at the key.
  // Weak: a socket destroyed without leaving (the io_context torn down first) leaves an expired
  // entry, never a dangling one.
  std::map<std::string, Members, std::less<>> rooms_;
};

struct SioOptions {
  std::chrono::milliseconds connect_timeout{45000};  // socket.io's connectTimeout
  SioLimits limits{};
};

class SioServer {
 public:
  explicit SioServer(const logging::Logger& log, SioOptions options = {});

  // The namespace `name` ("/", "/custom"), made on first use. Set namespaces up before serving.
  SioNamespace& of(const std::string& name);
  SioNamespace* find(std::string_view name);

  // A new Engine.IO connection: the returned object takes its messages (one at a time, on
  // `executor`: the Engine.IO session's strand, where its connect timer runs too) and must be told
  // when it closes. `link` is held weakly: whoever owns the link keeps the connection alive.
  std::shared_ptr<SioConnection> accept(std::weak_ptr<EngineLink> link, boost::asio::any_io_executor executor);

  const SioOptions& options() const { return options_; }
  const logging::Logger& log() const { return log_; }

 private:
  const logging::Logger& log_;
  SioOptions options_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<SioNamespace>, std::less<>> namespaces_;
};

// One Engine.IO connection's Socket.IO side (socket.io's "Client").
class SioConnection : public std::enable_shared_from_this<SioConnection> {
 public:
  // `link` is held weakly: its Engine.IO session owns this connection (EngineSocket::attach).
  SioConnection(SioServer& server, std::weak_ptr<EngineLink> link);

  void start(boost::asio::any_io_executor executor);  // arms the connect timeout (on `executor`)
  void on_text(std::string_view text);
  void on_binary(std::string bytes);
  void on_close(std::string_view reason);  // every socket of it leaves with this reason

  // Sends one packet (its buffers after it) on the link.
  void send(const SioPacket& packet);
  void close();

 private:
  friend class SioSocket;
  SioAssembler& assembler();
  void assembled(SioAssembler::Result result);
  void dispatch(SioPacket packet);
  void connect(const std::string& nsp, boost::json::value auth);
  void drop(const SioSocket& socket);  // the socket left its namespace
  void invalid(std::string_view why);  // logs and closes

  SioServer& server_;
  const std::weak_ptr<EngineLink> link_;
  // Made for a message and dropped when it holds no unfinished packet (one waiting for its binary
  // attachments): an idle connection has none.
  std::unique_ptr<SioAssembler> assembler_;
  std::unique_ptr<boost::asio::steady_timer> connect_timer_;  // until the first namespace is joined
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<SioSocket>> sockets_;  // by namespace
  bool closed_ = false;
};

// The event of `packet` (EVENT / BINARY_EVENT) and its arguments; nothing for a malformed one
// (decode_sio refuses those before).
std::optional<std::pair<std::string, SioMessage>> event_of(const SioPacket& packet);

}  // namespace registrar::adapters::socketio
