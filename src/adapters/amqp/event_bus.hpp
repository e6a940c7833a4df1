#pragma once
// ports::EventBus on RabbitMQ: what the outbox relay publishes with.
#include <condition_variable>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "adapters/amqp/connection.hpp"
#include "adapters/amqp/options.hpp"
#include "adapters/logging/json_logger.hpp"
#include "ports/event_bus.hpp"

namespace registrar::adapters::amqp {

// Publishes outbox events to the exchange, as DESIGN.md specifies: body = the event's payload
// bytes unchanged; properties message_id = event id, content_type application/json,
// delivery_mode 2 (persistent), type = event name, timestamp = occurred_at (seconds); routing key
// per AmqpOptions (fixed "topic_validateJSON" by default, or the event name); `mandatory`.
//
// publish() returns exactly the ids the broker confirmed (basic.ack) and did not return as
// unroutable; the relay marks only those sent and gives the rest back to the outbox. A batch is
// pipelined: all messages are sent, then the confirms are collected (one round trip per batch).
//
// Connection handling: it connects on first use (or connect()), declares the topology on every
// (re)connect (the exchange; the NestJS service's queue bound with the binding key), and after any failure
// (connection refused, heartbeat timeout, channel closed by the broker, confirm timeout) it drops
// the connection, throws ports::BackendUnavailable, and reconnects on the next publish. Backing
// off between attempts is the caller's job (relay::OutboxRelayLoop does, with jitter). An
// idle connection the broker has meanwhile dropped (restart, network) is detected before sending
// and replaced, at no cost to the batch.
//
// Heartbeats: rabbitmq-c sends and checks them only inside library calls, and a relay can sit idle
// for minutes; so a small background thread services the idle connection every heartbeat/2
// (ConfirmPublisher::keepalive) and the broker never drops a healthy, quiet publisher.
//
// Threads: one bus per relay loop, used from that loop's thread, e.g.
// `relay::OutboxRelayLoop loop(outbox, amqp_bus, log)`. publish() is not meant to be called
// concurrently (rabbitmq-c connections are single-threaded); a mutex serializes it with the
// keepalive thread, so a second caller would only wait, never corrupt anything.
class AmqpEventBus final : public ports::EventBus {
 public:
  // Throws std::invalid_argument for a bad options.url. Does not connect. `log` must outlive it.
  AmqpEventBus(AmqpOptions options, const logging::Logger& log);
  ~AmqpEventBus() override;

  // Logs "User registration sent to RabbitMQ: <email>" (info) per confirmed user.registered
  // event, and a warning per event returned (unroutable) or nacked.
  std::vector<std::string> publish(std::span<const domain::EventEnvelope> events) override;

  // Connects and declares the topology now. Throws ports::BackendUnavailable.
  void connect();
  bool connected() const;
  const AmqpOptions& options() const { return options_; }
  const Endpoint& endpoint() const { return endpoint_; }

 private:
  AmqpOptions options_;
  Endpoint endpoint_;
  const logging::Logger& log_;
  ConfirmPublisher publisher_;

  void keepalive_loop();
  mutable std::mutex mutex_;  // serializes use of publisher_ (publish vs. keepalive)
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread keepalive_;
};

// Declares the publisher's topology on `connection`: the exchange (durable, options.exchange_type)
// and, unless options.queue is empty, the NestJS service's queue (durable) bound with the binding
// key.
void declare_publisher_topology(Connection& connection, const AmqpOptions& options);

}  // namespace registrar::adapters::amqp
