#pragma once
#include "adapters/mysql/pool.hpp"
#include "ports/processed_events.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::mysql {

// ports::ProcessedEvents on MySQL/MariaDB (table processed_events). Each successful
// try_mark_processed (and mark_all_processed) is committed before it returns.
class MysqlProcessedEvents final : public ports::ProcessedEvents {
 public:
  explicit MysqlProcessedEvents(MysqlPool& pool, ports::Clock* clock = nullptr) : pool_(pool), clock_(clock) {}

  bool try_mark_processed(std::string_view consumer, std::string_view event_id) override;
  bool is_processed(std::string_view consumer, std::string_view event_id) override;
  // One statement per 16 ids; a batch of up to 16 is one round trip, a larger one one transaction.
  std::size_t mark_all_processed(std::string_view consumer, std::span<const std::string> event_ids) override;
  // One query per 16 ids.
  std::unordered_set<std::string> processed_among(std::string_view consumer,
                                                  std::span<const std::string> event_ids) override;

 private:
  MysqlPool& pool_;
  ports::Clock* clock_;
};

}  // namespace registrar::adapters::mysql
