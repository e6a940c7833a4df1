#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>
#include "domain/event.hpp"

namespace registrar::ports {

// The transactional outbox, read by relays. Several relays may run against one database:
// `claim` leases rows to one owner so that no two relays hold the same row at once, and never
// hands out an aggregate's event while an older one of the same aggregate is unsent.
class OutboxStore {
 public:
  virtual ~OutboxStore() = default;

  // Leases up to `limit` unsent events, oldest first, to `owner` for `lease`.
  virtual std::vector<domain::EventEnvelope> claim(std::string_view owner, std::size_t limit,
                                                   std::chrono::milliseconds lease) = 0;
  // Marks events delivered (only after the bus confirmed them). Idempotent.
  virtual void mark_sent(std::string_view owner, const std::vector<std::string>& event_ids) = 0;
  // Gives leased events back (delivery failed), counting an attempt.
  virtual void release(std::string_view owner, const std::vector<std::string>& event_ids) = 0;
  virtual std::size_t pending_count() = 0;
};

}  // namespace registrar::ports
