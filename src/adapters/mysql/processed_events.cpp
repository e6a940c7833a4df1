#include "adapters/mysql/processed_events.hpp"

namespace registrar::adapters::mysql {

namespace {

// A plain INSERT: the primary key (consumer, event_id) refuses a second record, and ER_DUP_ENTRY
// on that key means "already processed". (INSERT IGNORE would also swallow other errors, such as
// an over-long value.) Concurrent callers for one id queue on the key's lock: exactly one
// inserts, the others see the duplicate once it commits.
constexpr std::string_view kInsertProcessed =
    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)";

// For a batch: a duplicate of the primary key leaves the row as it is and reports 0 affected rows
// (and only that key: other errors still fail the statement).
constexpr std::string_view kUpsertProcessed =
    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?) "
    "ON DUPLICATE KEY UPDATE event_id = event_id";

constexpr std::string_view kSelectProcessed =
    "SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = ? AND event_id = ?)";

}  // namespace

bool MysqlProcessedEvents::try_mark_processed(std::string_view consumer, std::string_view event_id) {
  auto processed_at = ports::now_from(clock_);
  try {
    pool_.transact([&](Connection& c) { c.query(kInsertProcessed).execute({consumer, event_id, processed_at}); });
    return true;
  } catch (const MysqlError& e) {
    if (e.is_duplicate_key() && e.key() == "PRIMARY") return false;
    throw;
  }
}

std::size_t MysqlProcessedEvents::mark_all_processed(std::string_view consumer,
                                                    std::span<const std::string> event_ids) {
  if (event_ids.empty()) return 0;
  auto processed_at = ports::now_from(clock_);
  std::size_t added = 0;
  pool_.transact([&](Connection& c) {
    added = 0;  // a retried transaction counts again from the start
    auto q = c.query(kUpsertProcessed);
    for (const auto& id : event_ids) {
      q.execute({consumer, id, processed_at});
      added += q.affected_rows() == 1 ? 1 : 0;
    }
  });
  return added;
}

bool MysqlProcessedEvents::is_processed(std::string_view consumer, std::string_view event_id) {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kSelectProcessed);
    q.execute({consumer, event_id});
    return q.fetch() && q.int64(0) != 0;
  });
}

}  // namespace registrar::adapters::mysql
