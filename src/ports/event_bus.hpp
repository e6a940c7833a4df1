#pragma once
#include <span>
#include <string>
#include <vector>
#include "domain/event.hpp"

namespace registrar::ports {

// Where the relay sends outbox events: in-process consumers (embedded) or RabbitMQ.
// `publish` returns the ids the bus has durably accepted (for RabbitMQ: publisher-confirmed);
// any id not returned is retried later. Throws BackendUnavailable when the bus is unreachable.
class EventBus {
 public:
  virtual ~EventBus() = default;
  virtual std::vector<std::string> publish(std::span<const domain::EventEnvelope> events) = 0;
};

// Wakes whatever drains the outbox, right after a commit (so delivery does not wait for a poll).
class OutboxSignal {
 public:
  virtual ~OutboxSignal() = default;
  virtual void notify() = 0;
};

// A consumer of events (audit, welcome, webhook, …). Delivery is at-least-once, so every
// consumer is idempotent on the event id: a redelivered event has no second effect.
class EventConsumer {
 public:
  virtual ~EventConsumer() = default;
  virtual std::string name() const = 0;
  // Applies the event; throws on failure (the event is then retried).
  virtual void handle(const domain::EventEnvelope& event) = 0;
  // A consumer that can share work across a batch (one sync, one commit) overrides this: it applies
  // all of `events` in order and returns true, or throws, after which any part of the batch may
  // have been applied and the caller goes event by event with handle() (idempotency makes the
  // repeat harmless). The default returns false at once: this consumer takes one event at a time.
  virtual bool handle_batch(std::span<const domain::EventEnvelope> events) {
    (void)events;
    return false;
  }
};

}  // namespace registrar::ports
