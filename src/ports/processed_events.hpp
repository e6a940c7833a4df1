#pragma once
#include <string_view>

namespace registrar::ports {

// Deduplication record for event consumers. Delivery is at-least-once, so a consumer whose effect
// is not naturally idempotent records each event id it has applied, per consumer name, and skips
// ids it has seen. Throws BackendUnavailable on infrastructure failure.
class ProcessedEvents {
 public:
  virtual ~ProcessedEvents() = default;

  // Records (consumer, event_id) as processed. Returns true if it was not recorded before, false if
  // it already was (a redelivery). Safe to call concurrently: exactly one caller gets true.
  virtual bool try_mark_processed(std::string_view consumer, std::string_view event_id) = 0;
  virtual bool is_processed(std::string_view consumer, std::string_view event_id) = 0;
};

}  // namespace registrar::ports
