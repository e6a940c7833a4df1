#include "adapters/sqlite/outbox_store.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "adapters/sqlite/time_columns.hpp"

namespace registrar::adapters::sqlite {

namespace {

// Leases up to ?4 pending rows to ?1 until ?2 + ?3 (ms), oldest first. A row is claimable when it
// is unsent and its lease is free (never claimed, released) or expired (its relay died). A row is
// skipped while an OLDER unsent row of the same aggregate is under a live lease (whoever holds
// it): otherwise a second relay could deliver a user's later event before the earlier one.
// Older rows that are free come first by seq anyway, so they are in this batch, ahead.
// The IN (…) subquery is evaluated once, before any row is updated; the whole statement runs in a
// BEGIN IMMEDIATE transaction, so two relays (threads or processes) never lease the same row.
constexpr std::string_view kClaim = R"sql(
UPDATE outbox SET claimed_by = ?1, claimed_until = ?2 + ?3
WHERE seq IN (
  SELECT o.seq FROM outbox AS o
  WHERE o.sent_at IS NULL
    AND (o.claimed_until IS NULL OR o.claimed_until <= ?2)
    AND NOT EXISTS (
      SELECT 1 FROM outbox AS p
      WHERE p.sent_at IS NULL AND p.aggregate_id = o.aggregate_id AND p.seq < o.seq
        AND p.claimed_until > ?2)
  ORDER BY o.seq
  LIMIT ?4)
RETURNING seq, event_id, event_type, aggregate_id, payload, occurred_at, attempts)sql";

// Only the current lease holder (or nobody, if the lease was cleared) may mark a row sent: if the
// lease expired and another relay re-claimed the row, that relay owns its delivery now. Already
// sent rows are left alone, which makes the call idempotent. claimed_by stays as a record of who
// delivered it.
constexpr std::string_view kMarkSent =
    "UPDATE outbox SET sent_at = ?3, claimed_until = NULL "
    "WHERE event_id = ?1 AND sent_at IS NULL AND (claimed_by IS NULL OR claimed_by = ?2)";

// Gives a row back for a later attempt, counting the failed one.
constexpr std::string_view kRelease =
    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, attempts = attempts + 1 "
    "WHERE event_id = ?1 AND sent_at IS NULL AND claimed_by = ?2";

constexpr std::string_view kPendingCount = "SELECT count(*) FROM outbox WHERE sent_at IS NULL";

}  // namespace

std::vector<domain::EventEnvelope> SqliteOutboxStore::claim(std::string_view owner, std::size_t limit,
                                                            std::chrono::milliseconds lease) {
  if (limit == 0) return {};
  auto now = unix_ms(ports::now_from(clock_));
  auto limit64 = static_cast<std::int64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
  auto rows = db_.write([&](Connection& c) {
    std::vector<std::pair<std::int64_t, domain::EventEnvelope>> out;
    auto q = c.query(kClaim);
    q.bind(1, owner).bind(2, now).bind(3, static_cast<std::int64_t>(lease.count())).bind(4, limit64);
    while (q.step()) {
      domain::EventEnvelope e;
      e.id = q.text(1);
      e.type = q.text(2);
      e.aggregate_id = q.text(3);
      e.payload = q.text(4);
      e.occurred_at = timestamp_column(q, 5);
      e.attempts = static_cast<int>(q.int64(6));
      out.emplace_back(q.int64(0), std::move(e));
    }
    return out;
  });
  // RETURNING does not promise any order; the relay publishes in outbox order.
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<domain::EventEnvelope> events;
  events.reserve(rows.size());
  for (auto& [seq, e] : rows) events.push_back(std::move(e));
  return events;
}

void SqliteOutboxStore::mark_sent(std::string_view owner, const std::vector<std::string>& event_ids) {
  if (event_ids.empty()) return;
  auto sent_at = domain::to_iso8601(ports::now_from(clock_));
  db_.write([&](Connection& c) {
    for (const auto& id : event_ids) c.query(kMarkSent).bind(1, id).bind(2, owner).bind(3, sent_at).run();
  });
}

void SqliteOutboxStore::release(std::string_view owner, const std::vector<std::string>& event_ids) {
  if (event_ids.empty()) return;
  db_.write([&](Connection& c) {
    for (const auto& id : event_ids) c.query(kRelease).bind(1, id).bind(2, owner).run();
  });
}

std::size_t SqliteOutboxStore::pending_count() {
  return db_.read([](Connection& c) {
    auto q = c.query(kPendingCount);
    q.step();
    return static_cast<std::size_t>(q.int64(0));
  });
}

}  // namespace registrar::adapters::sqlite
