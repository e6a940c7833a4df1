#pragma once
#include "adapters/sqlite/database.hpp"
#include "ports/outbox.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::sqlite {

// ports::OutboxStore on SQLite: the relays' side of the outbox that SqliteUserStore writes.
// Leases are wall-clock deadlines (Unix ms) compared in SQL, so relays in several processes on the
// same file share them; `clock` (default: the system clock) is for tests.
class SqliteOutboxStore final : public ports::OutboxStore {
 public:
  explicit SqliteOutboxStore(SqliteDatabase& db, ports::Clock* clock = nullptr) : db_(db), clock_(clock) {}

  std::vector<domain::EventEnvelope> claim(std::string_view owner, std::size_t limit,
                                           std::chrono::milliseconds lease) override;
  void mark_sent(std::string_view owner, const std::vector<std::string>& event_ids) override;
  void release(std::string_view owner, const std::vector<std::string>& event_ids) override;
  std::size_t pending_count() override;

 private:
  SqliteDatabase& db_;
  ports::Clock* clock_;
};

}  // namespace registrar::adapters::sqlite
