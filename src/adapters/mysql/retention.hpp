#pragma once
#include "adapters/mysql/pool.hpp"
#include "ports/retention.hpp"

namespace registrar::adapters::mysql {

// ports::RetentionStore on MySQL/MariaDB. A batch is found by a plain (non-locking) read, then
// deleted by primary key, 16 keys per statement, in one short transaction: InnoDB then locks the
// rows deleted and nothing else (no range or gap locks that a sign-up's INSERT into the outbox, or
// the relay's UPDATE of pending rows, could wait on).
class MysqlRetention final : public ports::RetentionStore {
 public:
  explicit MysqlRetention(MysqlPool& pool) : pool_(pool) {}

  std::size_t delete_sent_events(const ports::SentEventsRule& rule, std::size_t limit) override;
  std::size_t delete_processed_events(domain::Timestamp processed_before, std::size_t limit) override;
  // InnoDB keeps the pages a DELETE frees inside the table's tablespace and reuses them for new
  // rows, so a table swept in step with its inserts stops growing; the file itself shrinks only
  // through OPTIMIZE TABLE, a rebuild that copies the table, which a periodic sweep should not
  // run. Returns 0 (nothing given back).
  std::uint64_t reclaim_space(std::uint64_t max_bytes) override;

 private:
  MysqlPool& pool_;
};

}  // namespace registrar::adapters::mysql
