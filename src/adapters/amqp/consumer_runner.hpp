#pragma once
// Runs one built-in consumer (ports::EventConsumer) on RabbitMQ: `registrar consume NAME`.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/amqp/connection.hpp"
#include "adapters/amqp/options.hpp"
#include "adapters/logging/failure_episodes.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/threads/supervised_loop.hpp"
#include "domain/event.hpp"
#include "ports/event_bus.hpp"

namespace registrar::adapters::amqp {

// What a delivery carried, independent of rabbitmq-c (so decoding is testable on its own).
struct InboundMessage {
  std::optional<std::string> message_id;
  std::optional<std::string> type;
  std::optional<std::uint64_t> timestamp;  // AMQP timestamp property: seconds since the epoch
  std::string body;
  int previous_failures = 0;  // the x-attempts header
};

// The envelope handed to the consumer, or why the message is not an event (poison).
//   id           = message_id; without one (e.g. a message the NestJS service published), a
//                  stable id derived from the body ("body-" + BLAKE2b-128 hex), so redeliveries
//                  of the same bytes still deduplicate
//   type         = the type property; else the body's "event", else its "pattern"
//   payload      = the body bytes, unchanged
//   aggregate_id = the body's data.id, if a string
//   occurred_at  = the body's "timestamp" (ISO 8601, ms), else the timestamp property (if not past
//                  the year 9999)
//   attempts     = previous failures (x-attempts)
// A body that is not a JSON object, an event without a type, or a message_id / type property that
// is not UTF-8 text (then the id is the body-derived one) gives `error` (no user data in it).
struct DecodedMessage {
  domain::EventEnvelope event;
  std::optional<std::string> error;
};
DecodedMessage decode_message(const InboundMessage& message);

struct RunnerCounters {
  std::uint64_t delivered = 0;      // deliveries received
  std::uint64_t handled = 0;        // handle() succeeded → acked
  std::uint64_t retried = 0;        // failed → republished to a retry queue, then acked
  std::uint64_t dead_lettered = 0;  // failed max_attempts times (or poison) → DLQ, then acked
  std::uint64_t requeued = 0;       // failed and could not be republished → nack(requeue)
  std::uint64_t connection_failures = 0;
};

// Consumes the consumer's own durable queue (registrar.<name>, bound to the exchange: every
// consumer gets every event; several runners of one consumer share the queue and split the
// messages: competing consumers). Manual acks and basic.qos prefetch.
//
// Per delivery: logs "Received message" (consumer, event id, attempt; never the body), calls
// consumer.handle(), and on success acks. Consumers are idempotent on the event id (their
// ProcessedEvents store), so a redelivery after a crash between handle() and the ack has no
// second effect. Under load, the deliveries that have already arrived when one is taken (up to
// the prefetch, at most kMaxBatch) go to consumer.handle_batch() together — one write, one sync,
// one commit for a consumer that batches, as on the in-process path — and are acked at once (one
// basic.ack with `multiple`). A batch with a poison message, a consumer that takes one event at a
// time, or a batch that throws is handled delivery by delivery as above.
//
// On failure (handle() threw, or the message is poison) the message is retried with exponential
// backoff, without blocking the queue and without a timer in this process:
//   * the runner republishes a copy, with header x-attempts = failures so far, to the delay queue
//     registrar.<name>.retry.<ms> for this attempt (retry_initial · 2^(failures-1), ≤ retry_max);
//     that queue has no consumer and x-message-ttl = <ms>, x-dead-letter-exchange = "" and
//     x-dead-letter-routing-key = registrar.<name>, so after the delay the broker moves the copy
//     back to the work queue. One delay queue per delay value (not one queue with per-message
//     expirations) because RabbitMQ only expires messages at the head of a queue: a 60 s message
//     would hold back a 1 s one behind it.
//   * after max_attempts deliveries, the copy goes to registrar.<name>.dlq instead (with
//     x-last-error), for an operator to inspect or shovel back.
//   * the copy is published with a publisher confirm (on a connection of its own) and only then
//     is the original acked: a crash in between duplicates the message, never loses it. If the
//     copy cannot be confirmed, the original is nacked with requeue after a pause.
// Failures go to the failure episodes, not a line per message: a consumer failing message after
// message (its mail server or endpoint down) is one episode "consumer:<name>" (warn), ended by the
// next message it handles, and the messages that run out of attempts one "dead_letter:<name>"
// (error); both last while failures keep coming within the longest retry delay, and each
// message's line stays at debug level with its event id.
//
// Connection loss: reconnects with exponential backoff (jittered); unacked deliveries go back to
// the queue by themselves. Topology (exchange, queues, binding) is declared on every connect.
//
// Threads: start() runs the runner on a thread of its own (a threads::SupervisedLoop: one turn
// is one connection's lifetime); stop() ends a reconnect or retry pause at once and a session
// within options.poll (it checks between deliveries), then joins. handle() is called from the
// runner's thread only.
class AmqpConsumerRunner {
 public:
  // Most deliveries handed to the consumer's handle_batch() at once (and at most `prefetch`).
  static constexpr std::size_t kMaxBatch = 512;

  // Throws std::invalid_argument for a bad amqp.url or options. `consumer`, `log` and `episodes`
  // must outlive it.
  AmqpConsumerRunner(AmqpOptions amqp, ConsumerOptions options, ports::EventConsumer& consumer,
                     const logging::Logger& log, logging::FailureEpisodes& episodes);
  ~AmqpConsumerRunner();  // stop()
  AmqpConsumerRunner(const AmqpConsumerRunner&) = delete;
  AmqpConsumerRunner& operator=(const AmqpConsumerRunner&) = delete;

  void start();
  void stop();  // lets the delivery in hand finish, disconnects, joins; idempotent

  // True once the runner is consuming (topology declared, basic.consume accepted) — waits up to
  // `timeout`. For tests and readiness logs.
  bool wait_consuming(std::chrono::milliseconds timeout);

  RunnerCounters counters() const;
  const ConsumerOptions& options() const { return options_; }

 private:
  void session();  // one connection's lifetime; throws BackendUnavailable when it ends badly
  void declare_topology(Connection& c);
  // One delivery, destroyed with its owner (rabbitmq-c's envelope owns its memory).
  struct Delivery {
    amqp_envelope_t envelope;
    explicit Delivery(const amqp_envelope_t& e) : envelope(e) {}
    Delivery(Delivery&& o) noexcept : envelope(o.envelope) { o.owned = false; }
    Delivery(const Delivery&) = delete;
    Delivery& operator=(const Delivery&) = delete;
    Delivery& operator=(Delivery&&) = delete;
    ~Delivery() {
      if (owned) amqp_destroy_envelope(&envelope);
    }
    bool owned = true;
  };
  struct Received {
    InboundMessage in;
    DecodedMessage decoded;
  };
  // Waits up to `timeout` for a delivery and appends it; false on timeout or a frame that was not
  // a delivery (handled); throws BackendUnavailable when the session ends.
  bool receive(Connection& c, const timeval& timeout, std::vector<Delivery>& into);
  void process_batch(Connection& c, std::vector<Delivery>& batch);
  Received receive_log(const amqp_envelope_t& envelope);  // decodes, logs "Received message"
  void settle(Connection& c, const amqp_envelope_t& envelope, const Received& received);  // handle + ack/retry
  bool republish(const amqp_envelope_t& envelope, const std::string& queue, int failures,
                 const std::string& error, bool dead_letter);
  void set_consuming(bool v);

  AmqpOptions amqp_;
  Endpoint endpoint_;
  ConsumerOptions options_;
  ports::EventConsumer& consumer_;
  const logging::Logger& log_;
  logging::FailureEpisodes& episodes_;
  std::string failing_kind_, dead_letter_kind_;  // "consumer:<name>", "dead_letter:<name>"
  ConfirmPublisher republisher_;

  // For wait_consuming(): the loop's own state says nothing about the broker.
  std::mutex consuming_mutex_;
  std::condition_variable consuming_cv_;
  bool consuming_ = false;

  std::atomic<std::uint64_t> delivered_{0}, handled_{0}, retried_{0}, dead_lettered_{0}, requeued_{0},
      connection_failures_{0};
  threads::SupervisedLoop loop_;  // last: its thread stops before the members it uses go
};

}  // namespace registrar::adapters::amqp
