#pragma once
// The embedded event bus: delivers outbox events straight to in-process consumers.
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "ports/event_bus.hpp"

namespace registrar::adapters::inproc {

// Called when a consumer fails an event: consumer name, the event, the exception's message. The
// default logs at warn level with the id and type only (the payload carries an e-mail address; the
// exception text goes to debug level as it may quote it).
using ConsumerFailureLog = std::function<void(const std::string& consumer, const domain::EventEnvelope& event,
                                              const std::string& error)>;

class InProcessEventBus final : public ports::EventBus {
 public:
  // The consumers must outlive the bus. Each is called for every event, in batch order; a consumer
  // must be thread-safe if several relays publish at once. Failures are logged to `log`, unless
  // `on_failure` reports a consumer's failed events instead.
  InProcessEventBus(std::vector<std::reference_wrapper<ports::EventConsumer>> consumers, logging::Logger log,
                    ConsumerFailureLog on_failure = {});

  // Delivers each event to every consumer and returns the ids that ALL consumers handled. An id a
  // consumer threw for is left out, so the relay releases it and delivers it again later to every
  // consumer (the ones that succeeded deduplicate on the event id). Once a consumer fails an
  // event, the later events of the same aggregate in this batch are not given to that consumer
  // (nor confirmed): each consumer sees a user's events in order.
  std::vector<std::string> publish(std::span<const domain::EventEnvelope> events) override;

 private:
  std::vector<std::reference_wrapper<ports::EventConsumer>> consumers_;
  logging::Logger log_;
  ConsumerFailureLog on_failure_;
};

}  // namespace registrar::adapters::inproc
