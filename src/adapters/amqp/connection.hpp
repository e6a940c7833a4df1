#pragma once
// Building blocks shared by the publisher (AmqpEventBus) and the consumer runner: one AMQP
// connection with one channel, and a publisher in confirm mode. Internal to the adapter; not
// thread-safe (rabbitmq-c's connection state is not): each object belongs to one thread.
#include <amqp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/amqp/options.hpp"

namespace registrar::adapters::amqp {

// One TCP connection, logged in, with channel kChannel open. Every failure throws
// ports::BackendUnavailable with a message that carries no user data; after one, the connection is
// `broken()` and must be replaced (a channel error closes the channel, and we use just one).
class Connection {
 public:
  static constexpr amqp_channel_t kChannel = 1;

  // Connects to `endpoint` within options.connect_timeout and opens the channel. `purpose`
  // ("publisher", "consumer audit") goes into the connection name and error messages.
  Connection(const Endpoint& endpoint, const AmqpOptions& options, std::string purpose);
  ~Connection();  // closes politely if still healthy (bounded by the RPC timeout), then frees
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  amqp_connection_state_t state() const { return state_; }
  bool broken() const { return broken_; }
  const std::string& purpose() const { return purpose_; }
  // Marks the connection unusable (it is then only freed, not closed politely).
  void mark_broken() { broken_ = true; }

  // Throws BackendUnavailable for a failed RPC (the last one this connection made), describing
  // `what` and the broker's reason (e.g. 406 PRECONDITION_FAILED for inequivalent queue args).
  void check_rpc(std::string_view what);
  // Throws BackendUnavailable for a failed library call that returned `status`.
  [[noreturn]] void fail(std::string_view what, int status);

  // Setup RPCs on kChannel; each throws BackendUnavailable on failure.
  void confirm_select();
  void declare_exchange(const std::string& name, const std::string& type);
  // A durable queue. `arguments` may be empty.
  void declare_queue(const std::string& name, const std::vector<amqp_table_entry_t>& arguments = {});
  void bind_queue(const std::string& queue, const std::string& exchange, const std::string& key);
  void qos(std::uint16_t prefetch);
  void consume(const std::string& queue);  // manual acks

  // Handles a method the broker sent unasked that ends the channel or the connection
  // (channel.close, connection.close): answers it, marks broken and throws BackendUnavailable.
  // Other methods are ignored (returns normally).
  void handle_unsolicited(const amqp_frame_t& frame);

  // Reads whatever the broker sent meanwhile without blocking (heartbeats, a close), so that an
  // idle connection the broker or network has dropped is noticed before anything is sent on it.
  // Returns false (and marks broken) if the connection is gone.
  bool still_alive();

 private:
  // An amqps:// socket on state_, configured from options (CA, client certificate, checks).
  amqp_socket_t* tls_socket(const Endpoint& endpoint, const AmqpOptions& options);

  amqp_connection_state_t state_ = nullptr;
  std::string purpose_;
  bool broken_ = false;
  std::string tls_failure_;  // why the broker's certificate was refused (set by the verify callback)
};

// Checks the URL and the TLS settings (amqps:// only; the CA file, client certificate and key
// load), for start-up: throws std::invalid_argument naming the problem (never the password).
void check_amqp_options(const AmqpOptions& options);

// Builds AMQP table entries whose keys/values point at strings the caller keeps alive.
amqp_table_entry_t table_string(const char* key, const std::string& value);
amqp_table_entry_t table_i64(const char* key, std::int64_t value);
amqp_table_entry_t table_i32(const char* key, std::int32_t value);

amqp_bytes_t bytes_of(std::string_view s);
std::string string_of(amqp_bytes_t b);

// One message to publish. Everything it points to must stay alive during publish().
struct OutgoingMessage {
  std::string_view exchange;
  std::string_view routing_key;
  const amqp_basic_properties_t* properties = nullptr;
  std::string_view body;
  // Correlates a basic.return (which carries no delivery tag) with this message: must equal the
  // message_id property. Messages of one batch should have distinct ids.
  std::string_view message_id;
};

enum class Confirm {
  acked,     // the broker took responsibility (persisted to every queue it was routed to)
  nacked,    // the broker refused it (internal error in a queue process)
  returned,  // mandatory and unroutable: basic.return (then acked, but it reached no queue)
  unknown,   // no answer: confirm timeout or the connection died; it may or may not have arrived
};

struct Settled {
  Confirm outcome = Confirm::unknown;
  std::string detail;  // for returned: "312 NO_ROUTE"; empty otherwise
};

// A channel in confirm mode (RabbitMQ publisher confirms), connecting lazily and reconnecting
// after any failure on the next publish.
//
// Why pipelined confirms: after confirm.select the broker numbers the messages published on the
// channel 1, 2, 3 … (the delivery tags) and answers each with basic.ack / basic.nack, possibly
// several at once (`multiple`: every tag up to and including this one). Sending the whole batch
// first and then collecting the answers costs one round trip per batch, not per message, and an
// ack means the message is in every queue it routes to (on disk for persistent messages in
// durable queues), which is what lets the outbox mark it sent.
//
// Why `mandatory`: an ack only says the broker handled the message, including "routed it nowhere"
// (no queue bound for the key). With mandatory set, such a message is first sent back as
// basic.return and only then acked; channel frames are ordered, so by the time its ack is read the
// return has been seen. Returns carry no delivery tag, so they are matched on message_id.
class ConfirmPublisher {
 public:
  // `on_connect` runs after each (re)connect, before anything is published (to declare the
  // topology); it may throw BackendUnavailable.
  ConfirmPublisher(Endpoint endpoint, AmqpOptions options, std::string purpose,
                   std::function<void(Connection&)> on_connect = {});
  ~ConfirmPublisher();

  // Publishes all messages, then waits up to confirm_timeout for their confirms. Returns one
  // outcome per message, in order. Throws BackendUnavailable if it cannot connect, or if the
  // connection fails before any message was acked (none is then known to have arrived); if it
  // fails after some acks, returns those and `unknown` for the rest. Either way the connection is
  // dropped and the next call reconnects.
  std::vector<Settled> publish(std::span<const OutgoingMessage> messages);

  // Services an idle connection without publishing: reads what the broker sent (its heartbeats, a
  // close) and sends our heartbeat when one is due, so that the broker does not drop a publisher
  // that has nothing to say (rabbitmq-c only does heartbeats inside library calls). Call it more
  // often than the heartbeat interval. A connection found dead is dropped (the next publish
  // reconnects). Never connects, never throws.
  void keepalive();

  // Connects now (and runs on_connect) if not connected. Throws BackendUnavailable.
  void connect();
  bool connected() const { return connection_ != nullptr && !connection_->broken(); }
  void disconnect() { connection_.reset(); }

 private:
  Endpoint endpoint_;
  AmqpOptions options_;
  std::string purpose_;
  std::function<void(Connection&)> on_connect_;
  std::unique_ptr<Connection> connection_;
  std::uint64_t next_tag_ = 0;  // delivery tag of the last message published on this channel
  std::chrono::steady_clock::time_point last_used_{};
};

}  // namespace registrar::adapters::amqp
