#include "adapters/sqlite/retention.hpp"

#include <algorithm>
#include <limits>
#include <string>

#include "adapters/sqlite/time_columns.hpp"

namespace registrar::adapters::sqlite {

namespace {

// Sent rows sent before ?1 (ISO 8601 text, which orders as the instants do: to_iso8601 writes a
// fixed width for years 0000–9999), oldest first, through the partial index outbox_sent_at
// (migration 4): the statement reads only the rows it deletes. `sent_at IS NOT NULL` is the whole
// safety rule: a pending row, leased or not, never matches.
constexpr std::string_view kDeleteSentBefore = R"sql(
DELETE FROM outbox WHERE seq IN (
  SELECT seq FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ?1 ORDER BY sent_at LIMIT ?2))sql";

// The seq of the ?1-th most recent sent row (0-based): rows up to it, beyond the newest ?1, may go.
constexpr std::string_view kSentSeqAtOffset =
    "SELECT seq FROM outbox WHERE sent_at IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?1";

constexpr std::string_view kDeleteSentUpTo = R"sql(
DELETE FROM outbox WHERE seq IN (
  SELECT seq FROM outbox WHERE seq <= ?1 AND sent_at IS NOT NULL ORDER BY seq LIMIT ?2))sql";

// Records older than ?1, oldest first (index processed_events_processed_at, migration 4), except
// those whose event is still unsent in the outbox (the unique index on outbox.event_id answers).
constexpr std::string_view kDeleteProcessedBefore = R"sql(
DELETE FROM processed_events WHERE (consumer, event_id) IN (
  SELECT p.consumer, p.event_id FROM processed_events AS p
  WHERE p.processed_at < ?1
    AND NOT EXISTS (SELECT 1 FROM outbox AS o WHERE o.event_id = p.event_id AND o.sent_at IS NULL)
  ORDER BY p.processed_at LIMIT ?2))sql";

std::int64_t as_limit(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
}

std::int64_t pragma_int(Connection& c, std::string_view pragma) {
  auto q = c.query(pragma);
  return q.step() ? q.int64(0) : 0;
}

}  // namespace

std::size_t SqliteRetention::delete_sent_events(const ports::SentEventsRule& rule, std::size_t limit) {
  if (limit == 0 || (!rule.sent_before && !rule.keep_newest)) return 0;
  return db_.write([&](Connection& c) {
    std::size_t deleted = 0;
    if (rule.sent_before) {
      c.query(kDeleteSentBefore).bind(1, domain::to_iso8601(*rule.sent_before)).bind(2, as_limit(limit)).run();
      deleted += static_cast<std::size_t>(c.changes());
    }
    if (rule.keep_newest && deleted < limit) {
      auto q = c.query(kSentSeqAtOffset);
      q.bind(1, as_limit(*rule.keep_newest));
      if (q.step()) {
        auto up_to = q.int64(0);
        c.query(kDeleteSentUpTo).bind(1, up_to).bind(2, as_limit(limit - deleted)).run();
        deleted += static_cast<std::size_t>(c.changes());
      }
    }
    return deleted;
  });
}

std::size_t SqliteRetention::delete_processed_events(domain::Timestamp processed_before, std::size_t limit) {
  if (limit == 0) return 0;
  return db_.write([&](Connection& c) {
    c.query(kDeleteProcessedBefore).bind(1, domain::to_iso8601(processed_before)).bind(2, as_limit(limit)).run();
    return static_cast<std::size_t>(c.changes());
  });
}

std::uint64_t SqliteRetention::reclaim_space(std::uint64_t max_bytes) {
  return db_.write([&](Connection& c) -> std::uint64_t {
    auto page_size = static_cast<std::uint64_t>(pragma_int(c, "PRAGMA page_size"));
    auto free_pages = static_cast<std::uint64_t>(pragma_int(c, "PRAGMA freelist_count"));
    if (page_size == 0 || free_pages == 0 || pragma_int(c, "PRAGMA auto_vacuum") != 2) return 0;
    auto pages = std::max<std::uint64_t>(1, std::min(free_pages, max_bytes / page_size));
    // Not a cached statement: the page count is part of the pragma's text.
    c.exec(("PRAGMA incremental_vacuum(" + std::to_string(pages) + ")").c_str());
    return (free_pages - static_cast<std::uint64_t>(pragma_int(c, "PRAGMA freelist_count"))) * page_size;
  });
}

}  // namespace registrar::adapters::sqlite
