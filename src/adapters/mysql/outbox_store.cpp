#include "adapters/mysql/outbox_store.hpp"

#include "adapters/mysql/batch.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>

namespace registrar::adapters::mysql {

namespace {

// Pending rows that a relay may lease now (?1 = ?2 = now, ?3 = limit), oldest first, locked for
// this transaction. Rows another relay is leasing at this very moment are locked by its
// transaction and skipped (SKIP LOCKED), so relays never wait for each other nor get one row twice.
// As in SQLite, a row is claimable when it is unsent and its lease is free or expired, and not
// while an OLDER unsent row of the same aggregate is under a live lease.
//
// older_pending counts the aggregate's unsent rows before this one. SKIP LOCKED adds a case the
// NOT EXISTS cannot see: an older row of the aggregate being leased by a concurrent relay right
// now (its lease is not committed yet, so it still looks free). claim() therefore keeps a row only
// if ALL older unsent rows of its aggregate are in this same batch; otherwise the row waits for a
// later claim. (The oldest unsent row of an aggregate is never held back, so every aggregate
// makes progress.)
//
// Unlike SQLite (one writer at a time), InnoDB hands out AUTO_INCREMENT values at insert time, so
// seq is the order of inserts, not of commits: while a transaction that took seq 10 is still open,
// seq 11 may already be committed and claimed. Order per aggregate is kept among committed rows;
// two concurrent transactions writing events of the SAME aggregate have no defined order anyway
// (today each aggregate, a user, gets one event, from the transaction that creates it).
constexpr std::string_view kSelectClaimable = R"sql(
SELECT o.seq, o.event_id, o.event_type, o.aggregate_id, o.payload, o.occurred_at, o.attempts,
       (SELECT COUNT(*) FROM outbox AS p
        WHERE p.aggregate_id = o.aggregate_id AND p.sent_at IS NULL AND p.seq < o.seq) AS older_pending
FROM outbox AS o FORCE INDEX (outbox_pending)
WHERE o.sent_at IS NULL
  AND (o.claimed_until IS NULL OR o.claimed_until <= ?)
  AND NOT EXISTS (
    SELECT 1 FROM outbox AS p
    WHERE p.sent_at IS NULL AND p.aggregate_id = o.aggregate_id AND p.seq < o.seq AND p.claimed_until > ?)
ORDER BY o.seq
LIMIT ?
FOR UPDATE SKIP LOCKED)sql";

// Statements over a batch of rows take a fixed-size IN list of kChunk keys (batch.hpp).
#define REGISTRAR_IN_16 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
static_assert(kChunk == 16);

// Writes the lease (?1 owner, ?2 deadline) on rows this transaction has locked.
constexpr std::string_view kLease =
    "UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE seq IN " REGISTRAR_IN_16;

// Only the current lease holder (or nobody, if the lease was cleared) may mark a row sent: if the
// lease expired and another relay re-claimed the row, that relay owns its delivery now. Already
// sent rows are left alone, which makes the call idempotent. claimed_by stays as a record of who
// delivered it. (?1 sent_at, ?2 owner, then the event ids)
constexpr std::string_view kMarkSent =
    "UPDATE outbox SET sent_at = ?, claimed_until = NULL "
    "WHERE sent_at IS NULL AND (claimed_by IS NULL OR claimed_by = ?) AND event_id IN " REGISTRAR_IN_16;

// Gives rows back for a later attempt, counting the failed one. (?1 owner, then the event ids)
constexpr std::string_view kRelease =
    "UPDATE outbox SET claimed_by = NULL, claimed_until = NULL, attempts = attempts + 1 "
    "WHERE sent_at IS NULL AND claimed_by = ? AND event_id IN " REGISTRAR_IN_16;

#undef REGISTRAR_IN_16

constexpr std::string_view kPendingCount = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL";

// Runs `sql` once per chunk of `keys`, with `head` as its leading parameters.
template <class Key>
void run_chunks(Connection& c, std::string_view sql, const std::vector<Param>& head, std::span<const Key> keys) {
  for_each_chunk(
      head, keys,
      [](std::vector<Param>& params, const Key& k) {
        if constexpr (std::is_same_v<Key, std::string>) {
          params.emplace_back(std::string_view(k));
        } else {
          params.emplace_back(k);
        }
      },
      [&](const std::vector<Param>& params) { c.query(sql).execute(params); });
}

}  // namespace

std::vector<domain::EventEnvelope> MysqlOutboxStore::claim(std::string_view owner, std::size_t limit,
                                                           std::chrono::milliseconds lease) {
  if (limit == 0) return {};
  auto now = ports::now_from(clock_);
  auto until = now + lease;
  auto limit64 = static_cast<std::int64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
  return pool_.transact([&](Connection& c) {
    std::vector<domain::EventEnvelope> events;
    std::vector<std::int64_t> seqs;
    {
      // Rows come in seq order; per aggregate, count the rows kept so far (-1: held back).
      std::unordered_map<std::string, std::int64_t> kept;
      auto q = c.query(kSelectClaimable);
      q.execute({now, now, limit64});
      while (q.fetch()) {
        auto aggregate = q.text(3);
        auto& k = kept[aggregate];
        if (k < 0 || q.int64(7) != k) {
          k = -1;  // an older unsent row of this aggregate is not in the batch: not now
          continue;
        }
        ++k;
        domain::EventEnvelope e;
        e.id = q.text(1);
        e.type = q.text(2);
        e.aggregate_id = std::move(aggregate);
        e.payload = q.text(4);
        e.occurred_at = q.timestamp(5);
        e.attempts = static_cast<int>(q.int64(6));
        seqs.push_back(q.int64(0));
        events.push_back(std::move(e));
      }
    }
    if (!seqs.empty()) run_chunks<std::int64_t>(c, kLease, {owner, until}, seqs);
    return events;
  });
}

// Both statements below are idempotent (they only touch rows still unsent and leased by `owner`):
// a batch of one chunk runs as one statement in one round trip (write_batch).
void MysqlOutboxStore::mark_sent(std::string_view owner, const std::vector<std::string>& event_ids) {
  if (event_ids.empty()) return;
  auto sent_at = ports::now_from(clock_);
  write_batch(pool_, event_ids.size(),
              [&](Connection& c) { run_chunks<std::string>(c, kMarkSent, {sent_at, owner}, event_ids); });
}

void MysqlOutboxStore::release(std::string_view owner, const std::vector<std::string>& event_ids) {
  if (event_ids.empty()) return;
  write_batch(pool_, event_ids.size(), [&](Connection& c) { run_chunks<std::string>(c, kRelease, {owner}, event_ids); });
}

std::size_t MysqlOutboxStore::pending_count() {
  return pool_.read([](Connection& c) {
    auto q = c.query(kPendingCount);
    q.execute({});
    return q.fetch() ? static_cast<std::size_t>(q.int64(0)) : std::size_t{0};
  });
}

}  // namespace registrar::adapters::mysql
