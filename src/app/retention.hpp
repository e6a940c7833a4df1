#pragma once
// Bounded storage (issue 14): what the retention sweep deletes and how it paces itself. Free of
// I/O: the stores are ports, the pause between batches is the caller's (a thread's wait).
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "domain/time.hpp"
#include "ports/retention.hpp"
#include "ports/system.hpp"

namespace registrar::app {

struct RetentionPolicy {
  // Sent outbox rows: deleted once sent longer ago than this, and beyond the newest count.
  std::optional<std::chrono::seconds> sent_events_age{};
  std::optional<std::size_t> sent_events_count{};
  // Processed-event records: deleted once older than this (never while the event is unsent).
  std::optional<std::chrono::seconds> processed_events_age{};
  // Message files (the development mail spool): deleted once older than this.
  std::optional<std::chrono::seconds> messages_age{};
  // Rows (or files) per write transaction, and the pause after each batch: sign-ups waiting for
  // the database's write lock get it in between.
  std::size_t batch = 500;
  std::chrono::milliseconds pause{10};
  // Space given back to the file system per step (SQLite's incremental vacuum), between pauses too.
  std::uint64_t reclaim_bytes_per_step = 4 * 1024 * 1024;
};

struct SweepReport {
  std::size_t sent_events = 0;
  std::size_t processed_events = 0;
  std::size_t message_files = 0;
  std::uint64_t reclaimed_bytes = 0;
  bool stopped = false;  // the pause said stop before the sweep was done
  bool operator==(const SweepReport&) const = default;
};

// Deletes up to `limit` message files older than the cutoff; returns how many.
using ExpireFiles = std::function<std::size_t(domain::Timestamp older_than, std::size_t limit)>;
// Waits between two batches; returns false when the sweep must stop (the process is stopping).
using Pause = std::function<bool(std::chrono::milliseconds)>;

// One sweep: each kind of record in batches of policy.batch until a batch comes back short, then
// the freed space given back in steps; a pause after every batch and step.
class RetentionSweep {
 public:
  RetentionSweep(ports::RetentionStore& store, ports::Clock& clock, RetentionPolicy policy,
                 ExpireFiles expire_messages = {});

  SweepReport run(const Pause& pause);
  const RetentionPolicy& policy() const { return policy_; }

 private:
  ports::RetentionStore& store_;
  ports::Clock& clock_;
  RetentionPolicy policy_;
  ExpireFiles expire_messages_;
};

}  // namespace registrar::app
