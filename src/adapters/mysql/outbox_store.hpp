#pragma once
#include "adapters/mysql/pool.hpp"
#include "ports/outbox.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::mysql {

// ports::OutboxStore on MySQL/MariaDB: the relays' side of the outbox that MysqlUserStore writes.
// Leases are wall-clock deadlines (DATETIME(3), UTC) computed from `clock` (default: the system
// clock) and compared in SQL, so relays in several processes share them.
class MysqlOutboxStore final : public ports::OutboxStore {
 public:
  explicit MysqlOutboxStore(MysqlPool& pool, ports::Clock* clock = nullptr) : pool_(pool), clock_(clock) {}

  std::vector<domain::EventEnvelope> claim(std::string_view owner, std::size_t limit,
                                           std::chrono::milliseconds lease) override;
  void mark_sent(std::string_view owner, const std::vector<std::string>& event_ids) override;
  void release(std::string_view owner, const std::vector<std::string>& event_ids) override;
  std::size_t pending_count() override;

 private:
  MysqlPool& pool_;
  ports::Clock* clock_;
};

}  // namespace registrar::adapters::mysql
