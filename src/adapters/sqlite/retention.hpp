#pragma once
#include "adapters/sqlite/database.hpp"
#include "ports/retention.hpp"

namespace registrar::adapters::sqlite {

// ports::RetentionStore on SQLite. Each call is one BEGIN IMMEDIATE transaction on the writer
// connection (a few milliseconds for a batch of 500 rows), so sign-ups, which need the same
// writer, wait at most one batch: the caller's pause between calls lets them through.
class SqliteRetention final : public ports::RetentionStore {
 public:
  explicit SqliteRetention(SqliteDatabase& db) : db_(db) {}

  std::size_t delete_sent_events(const ports::SentEventsRule& rule, std::size_t limit) override;
  std::size_t delete_processed_events(domain::Timestamp processed_before, std::size_t limit) override;
  // PRAGMA incremental_vacuum(N) with N pages worth `max_bytes`: the file shrinks by the pages the
  // deletes freed (the database must be in auto_vacuum = INCREMENTAL mode: see
  // ensure_incremental_vacuum() in migrations.hpp; otherwise nothing is given back).
  std::uint64_t reclaim_space(std::uint64_t max_bytes) override;

 private:
  SqliteDatabase& db_;
};

}  // namespace registrar::adapters::sqlite
