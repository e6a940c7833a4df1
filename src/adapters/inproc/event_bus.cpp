#include "adapters/inproc/event_bus.hpp"

#include <exception>
#include <set>
#include <utility>

namespace registrar::adapters::inproc {

InProcessEventBus::InProcessEventBus(std::vector<std::reference_wrapper<ports::EventConsumer>> consumers,
                                     logging::Logger log, ConsumerFailureLog on_failure)
    : consumers_(std::move(consumers)), log_(std::move(log)), on_failure_(std::move(on_failure)) {
  if (!on_failure_)
    on_failure_ = [log = log_](const std::string& consumer, const domain::EventEnvelope& event, const std::string& error) {
      log.warn("consumer failed an event; it will be retried",
               {{"consumer", consumer}, {"eventId", event.id}, {"type", event.type}, {"attempt", event.attempts + 1}});
      log.debug("consumer failure", {{"consumer", consumer}, {"eventId", event.id}, {"error", error}});
    };
}

std::vector<std::string> InProcessEventBus::publish(std::span<const domain::EventEnvelope> events) {
  std::vector<bool> ok(events.size(), true);
  for (ports::EventConsumer& consumer : consumers_) {
    const std::string name = consumer.name();
    // The common case: the whole batch in one call (one sync and one commit for the audit file).
    // If that fails, go event by event, so that one bad event or aggregate holds back only itself.
    try {
      if (consumer.handle_batch(events)) continue;
    } catch (const std::exception& e) {
      log_.debug("consumer failed a batch; retrying its events one by one",
                 {{"consumer", name}, {"events", events.size()}, {"error", e.what()}});
    } catch (...) {
      log_.debug("consumer failed a batch; retrying its events one by one",
                 {{"consumer", name}, {"events", events.size()}, {"error", "unknown exception"}});
    }
    std::set<std::string_view> blocked_aggregates;  // aggregates this consumer failed in this batch
    for (std::size_t i = 0; i < events.size(); ++i) {
      const auto& event = events[i];
      if (blocked_aggregates.contains(event.aggregate_id)) {
        ok[i] = false;
        continue;
      }
      try {
        consumer.handle(event);
      } catch (const std::exception& e) {
        ok[i] = false;
        blocked_aggregates.insert(event.aggregate_id);
        on_failure_(name, event, e.what());
      } catch (...) {
        ok[i] = false;
        blocked_aggregates.insert(event.aggregate_id);
        on_failure_(name, event, "unknown exception");
      }
    }
  }
  std::vector<std::string> confirmed;
  for (std::size_t i = 0; i < events.size(); ++i)
    if (ok[i]) confirmed.push_back(events[i].id);
  return confirmed;
}

}  // namespace registrar::adapters::inproc
