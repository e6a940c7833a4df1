#pragma once
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>

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

  // The ids of `event_ids` recorded for `consumer`. Adapters ask for a whole batch at once; this
  // default asks id by id.
  virtual std::unordered_set<std::string> processed_among(std::string_view consumer,
                                                          std::span<const std::string> event_ids) {
    std::unordered_set<std::string> found;
    for (const auto& id : event_ids)
      if (is_processed(consumer, id)) found.insert(id);
    return found;
  }

  // Records every id of `event_ids` for `consumer`, ids already recorded included (they stay as
  // they are), and returns how many were new. All or nothing: adapters do it in one transaction
  // (one commit for a whole batch of events); this default records them one by one, which is
  // idempotent, so a failure half-way is repaired by calling again. (If the connection to a
  // database breaks after the batch was applied, the adapter applies it again: the count may then
  // miss ids the lost attempt recorded, never the records.)
  virtual std::size_t mark_all_processed(std::string_view consumer, std::span<const std::string> event_ids) {
    std::size_t added = 0;
    for (const auto& id : event_ids)
      if (try_mark_processed(consumer, id)) ++added;
    return added;
  }
};

}  // namespace registrar::ports
