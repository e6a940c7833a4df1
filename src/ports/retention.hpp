#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>

#include "domain/time.hpp"

namespace registrar::ports {

// What may go of the sent outbox rows: those sent before `sent_before`, and those beyond the
// `keep_newest` most recently sent. Either may be absent (that rule is off).
struct SentEventsRule {
  std::optional<domain::Timestamp> sent_before{};
  std::optional<std::size_t> keep_newest{};
};

// Bounded storage (issue 14): the records that only grow, deleted in small batches. Each call is
// one short write transaction of at most `limit` rows, so a sweep never holds the database's write
// lock (SQLite) or a range of row locks (MySQL) for longer than one small batch; the caller pauses
// between calls. Throws BackendUnavailable on infrastructure failure (nothing is deleted then).
class RetentionStore {
 public:
  virtual ~RetentionStore() = default;

  // Deletes up to `limit` SENT outbox rows that `rule` lets go, oldest first; never a pending row
  // (sent_at unset), leased or not. Returns how many went.
  virtual std::size_t delete_sent_events(const SentEventsRule& rule, std::size_t limit) = 0;

  // Deletes up to `limit` processed-event records (any consumer) recorded before `processed_before`,
  // oldest first, except those of an event whose outbox row in the same database is still unsent:
  // the relay may deliver that event again, and the record is what makes the consumer skip it.
  // Returns how many went.
  virtual std::size_t delete_processed_events(domain::Timestamp processed_before, std::size_t limit) = 0;

  // Gives space freed by the deletes back to the file system, at most about `max_bytes` per call
  // (one short write transaction); returns the bytes given back. Backends whose files keep freed
  // space for reuse without giving it back cheaply return 0 (see the adapter).
  virtual std::uint64_t reclaim_space(std::uint64_t max_bytes) = 0;
};

}  // namespace registrar::ports
