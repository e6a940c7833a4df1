#include "adapters/sqlite/processed_events.hpp"

#include "adapters/sqlite/time_columns.hpp"

namespace registrar::adapters::sqlite {

namespace {

// ON CONFLICT DO NOTHING (rather than INSERT OR IGNORE) ignores only the duplicate key, not other
// constraint failures; changes() then tells whether this call recorded the id.
constexpr std::string_view kInsertProcessed =
    "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES (?1, ?2, ?3) "
    "ON CONFLICT (consumer, event_id) DO NOTHING";

constexpr std::string_view kSelectProcessed =
    "SELECT EXISTS (SELECT 1 FROM processed_events WHERE consumer = ?1 AND event_id = ?2)";

}  // namespace

bool SqliteProcessedEvents::try_mark_processed(std::string_view consumer, std::string_view event_id) {
  auto processed_at = domain::to_iso8601(ports::now_from(clock_));
  return db_.write([&](Connection& c) {
    c.query(kInsertProcessed).bind(1, consumer).bind(2, event_id).bind(3, processed_at).run();
    return c.changes() == 1;
  });
}

std::size_t SqliteProcessedEvents::mark_all_processed(std::string_view consumer,
                                                     std::span<const std::string> event_ids) {
  if (event_ids.empty()) return 0;
  auto processed_at = domain::to_iso8601(ports::now_from(clock_));
  return db_.write([&](Connection& c) {
    std::size_t added = 0;
    for (const auto& id : event_ids) {
      c.query(kInsertProcessed).bind(1, consumer).bind(2, id).bind(3, processed_at).run();
      added += static_cast<std::size_t>(c.changes());
    }
    return added;
  });
}

namespace {
bool is_processed_on(Connection& c, std::string_view consumer, std::string_view event_id) {
  auto q = c.query(kSelectProcessed);
  q.bind(1, consumer).bind(2, event_id);
  q.step();
  return q.int64(0) != 0;
}
}  // namespace

bool SqliteProcessedEvents::is_processed(std::string_view consumer, std::string_view event_id) {
  return db_.read([&](Connection& c) { return is_processed_on(c, consumer, event_id); });
}

std::unordered_set<std::string> SqliteProcessedEvents::processed_among(std::string_view consumer,
                                                                      std::span<const std::string> event_ids) {
  // In-process: one lookup per id, all on one reader connection.
  return db_.read([&](Connection& c) {
    std::unordered_set<std::string> found;
    for (const auto& id : event_ids)
      if (is_processed_on(c, consumer, id)) found.insert(id);
    return found;
  });
}

}  // namespace registrar::adapters::sqlite
