#pragma once
#include "adapters/sqlite/database.hpp"
#include "ports/processed_events.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::sqlite {

// ports::ProcessedEvents on SQLite (table processed_events). Each successful try_mark_processed
// (and mark_all_processed) is a committed (fsynced) transaction, so a recorded id survives a crash.
class SqliteProcessedEvents final : public ports::ProcessedEvents {
 public:
  explicit SqliteProcessedEvents(SqliteDatabase& db, ports::Clock* clock = nullptr) : db_(db), clock_(clock) {}

  bool try_mark_processed(std::string_view consumer, std::string_view event_id) override;
  bool is_processed(std::string_view consumer, std::string_view event_id) override;
  std::unordered_set<std::string> processed_among(std::string_view consumer,
                                                  std::span<const std::string> event_ids) override;
  // One transaction (one fsync) for the whole batch.
  std::size_t mark_all_processed(std::string_view consumer, std::span<const std::string> event_ids) override;

 private:
  SqliteDatabase& db_;
  ports::Clock* clock_;
};

}  // namespace registrar::adapters::sqlite
