#include "adapters/mysql/processed_events.hpp"

#include "adapters/mysql/batch.hpp"

namespace registrar::adapters::mysql {

namespace {

// A plain INSERT: the primary key (consumer, event_id) refuses a second record, and ER_DUP_ENTRY
// on that key means "already processed". (INSERT IGNORE would also swallow other errors, such as
// an over-long value.) Concurrent callers for one id queue on the key's lock: exactly one
// inserts, the others see the duplicate once it commits.
constexpr std::string_view kInsertProcessed =
    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?, ?, ?)";

// For a batch of kChunk ids (batch.hpp): a duplicate of the primary key leaves the row as it is and
// counts 0 affected rows (and only that key: other errors still fail the statement), so the
// affected rows are the new ids; an id repeated to fill the chunk is such a duplicate.
#define REGISTRAR_ROW "(?, ?, ?)"
#define REGISTRAR_ROWS_4 REGISTRAR_ROW ", " REGISTRAR_ROW ", " REGISTRAR_ROW ", " REGISTRAR_ROW
constexpr std::string_view kUpsertProcessed =
    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES " REGISTRAR_ROWS_4
    ", " REGISTRAR_ROWS_4 ", " REGISTRAR_ROWS_4 ", " REGISTRAR_ROWS_4 " ON DUPLICATE KEY UPDATE event_id = event_id";
#undef REGISTRAR_ROWS_4
#undef REGISTRAR_ROW

constexpr std::string_view kSelectProcessedAmong =
    "SELECT event_id FROM processed_events WHERE consumer = ? AND event_id IN "
    "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static_assert(kChunk == 16);

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
  write_batch(pool_, event_ids.size(), [&](Connection& c) {
    added = 0;  // a retried transaction counts again from the start
    for_each_chunk(
        {}, event_ids,
        [&](std::vector<Param>& params, const std::string& id) {
          params.emplace_back(consumer);
          params.emplace_back(std::string_view(id));
          params.emplace_back(processed_at);
        },
        [&](const std::vector<Param>& params) {
          auto q = c.query(kUpsertProcessed);
          q.execute(params);
          added += static_cast<std::size_t>(q.affected_rows());
        });
  });
  return added;
}

std::unordered_set<std::string> MysqlProcessedEvents::processed_among(std::string_view consumer,
                                                                     std::span<const std::string> event_ids) {
  std::unordered_set<std::string> found;
  if (event_ids.empty()) return found;
  return pool_.read([&](Connection& c) {
    found.clear();  // a read retried on a fresh connection starts again
    for_each_chunk(
        {consumer}, event_ids,
        [](std::vector<Param>& params, const std::string& id) { params.emplace_back(std::string_view(id)); },
        [&](const std::vector<Param>& params) {
          auto q = c.query(kSelectProcessedAmong);
          q.execute(params);
          while (q.fetch()) found.insert(q.text(0));
        });
    return found;
  });
}

bool MysqlProcessedEvents::is_processed(std::string_view consumer, std::string_view event_id) {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kSelectProcessed);
    q.execute({consumer, event_id});
    return q.fetch() && q.int64(0) != 0;
  });
}

}  // namespace registrar::adapters::mysql
