#include "adapters/mysql/retention.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

#include "adapters/mysql/batch.hpp"

namespace registrar::adapters::mysql {

namespace {

// Sent rows sent before ?, oldest first, through outbox_pending (sent_at, seq).
constexpr std::string_view kSelectSentBefore =
    "SELECT seq FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ? ORDER BY sent_at LIMIT ?";

// The seq of the ?-th most recent sent row (0-based): rows up to it, beyond the newest ?, may go.
constexpr std::string_view kSentSeqAtOffset =
    "SELECT seq FROM outbox WHERE sent_at IS NOT NULL ORDER BY seq DESC LIMIT 1 OFFSET ?";

constexpr std::string_view kSelectSentUpTo =
    "SELECT seq FROM outbox WHERE seq <= ? AND sent_at IS NOT NULL ORDER BY seq LIMIT ?";

#define REGISTRAR_IN_16 "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
static_assert(kChunk == 16);

// `sent_at IS NOT NULL` again at delete time: the one rule that keeps pending rows, checked under
// the row's lock (a sent row never becomes pending again, so the read above cannot be stale in the
// unsafe direction; the check is there so that this statement alone is safe).
constexpr std::string_view kDeleteSent = "DELETE FROM outbox WHERE sent_at IS NOT NULL AND seq IN " REGISTRAR_IN_16;

constexpr std::string_view kSelectProcessedBefore =
    "SELECT consumer, event_id FROM processed_events WHERE processed_at < ? ORDER BY processed_at LIMIT ?";

// Which of 16 event ids are still unsent in the outbox (unique key outbox_event_id).
constexpr std::string_view kSelectUnsentAmong =
    "SELECT event_id FROM outbox WHERE sent_at IS NULL AND event_id IN " REGISTRAR_IN_16;

#undef REGISTRAR_IN_16

// 16 primary keys (consumer, event_id) as ORs of equalities, which every MySQL and MariaDB
// version turns into primary-key lookups (a row-constructor IN is not optimised alike by all).
#define REGISTRAR_PK "(consumer = ? AND event_id = ?)"
#define REGISTRAR_PK_4 REGISTRAR_PK " OR " REGISTRAR_PK " OR " REGISTRAR_PK " OR " REGISTRAR_PK
constexpr std::string_view kDeleteProcessed =
    "DELETE FROM processed_events WHERE processed_at < ? AND (" REGISTRAR_PK_4 " OR " REGISTRAR_PK_4
    " OR " REGISTRAR_PK_4 " OR " REGISTRAR_PK_4 ")";
#undef REGISTRAR_PK_4
#undef REGISTRAR_PK

std::int64_t as_limit(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, std::numeric_limits<std::int32_t>::max()));
}

std::vector<std::int64_t> select_seqs(Connection& c, std::string_view sql, std::initializer_list<Param> params) {
  std::vector<std::int64_t> seqs;
  auto q = c.query(sql);
  q.execute(params);
  while (q.fetch()) seqs.push_back(q.int64(0));
  return seqs;
}

std::size_t delete_seqs(MysqlPool& pool, std::span<const std::int64_t> seqs) {
  if (seqs.empty()) return 0;
  std::size_t deleted = 0;
  pool.transact([&](Connection& c) {
    deleted = 0;  // a retried transaction counts again from the start
    for_each_chunk(
        {}, seqs, [](std::vector<Param>& params, std::int64_t seq) { params.emplace_back(seq); },
        [&](const std::vector<Param>& params) {
          auto q = c.query(kDeleteSent);
          q.execute(params);
          deleted += static_cast<std::size_t>(q.affected_rows());
        });
  });
  return deleted;
}

}  // namespace

std::size_t MysqlRetention::delete_sent_events(const ports::SentEventsRule& rule, std::size_t limit) {
  if (limit == 0) return 0;
  std::size_t deleted = 0;
  if (rule.sent_before) {
    auto seqs = pool_.read([&](Connection& c) {
      return select_seqs(c, kSelectSentBefore, {*rule.sent_before, as_limit(limit)});
    });
    deleted += delete_seqs(pool_, seqs);
  }
  if (rule.keep_newest && deleted < limit) {
    auto seqs = pool_.read([&](Connection& c) {
      auto at = select_seqs(c, kSentSeqAtOffset, {as_limit(*rule.keep_newest)});
      if (at.empty()) return at;
      return select_seqs(c, kSelectSentUpTo, {at.front(), as_limit(limit - deleted)});
    });
    deleted += delete_seqs(pool_, seqs);
  }
  return deleted;
}

std::size_t MysqlRetention::delete_processed_events(domain::Timestamp processed_before, std::size_t limit) {
  if (limit == 0) return 0;
  struct Key {
    std::string consumer, event_id;
  };
  // The oldest records, then those of them whose event is still unsent: the relay may deliver it
  // again, so they stay. (An unsent row only ever becomes sent, so a record found deletable here
  // cannot become needed before the delete below.)
  auto keys = pool_.read([&](Connection& c) {
    std::vector<Key> found;
    auto q = c.query(kSelectProcessedBefore);
    q.execute({processed_before, as_limit(limit)});
    while (q.fetch()) found.push_back({q.text(0), q.text(1)});
    std::vector<std::string> ids;
    for (const auto& k : found) ids.push_back(k.event_id);
    std::unordered_set<std::string> unsent;
    for_each_chunk(
        {}, std::span<const std::string>(ids),
        [](std::vector<Param>& params, const std::string& id) { params.emplace_back(std::string_view(id)); },
        [&](const std::vector<Param>& params) {
          auto u = c.query(kSelectUnsentAmong);
          u.execute(params);
          while (u.fetch()) unsent.insert(u.text(0));
        });
    std::erase_if(found, [&](const Key& k) { return unsent.contains(k.event_id); });
    return found;
  });
  if (keys.empty()) return 0;
  std::size_t deleted = 0;
  pool_.transact([&](Connection& c) {
    deleted = 0;
    for_each_chunk(
        {processed_before}, std::span<const Key>(keys),
        [](std::vector<Param>& params, const Key& k) {
          params.emplace_back(Bytes{k.consumer});
          params.emplace_back(Bytes{k.event_id});
        },
        [&](const std::vector<Param>& params) {
          auto q = c.query(kDeleteProcessed);
          q.execute(params);
          deleted += static_cast<std::size_t>(q.affected_rows());
        });
  });
  return deleted;
}

std::uint64_t MysqlRetention::reclaim_space(std::uint64_t /*max_bytes*/) { return 0; }

}  // namespace registrar::adapters::mysql
