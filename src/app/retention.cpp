#include "app/retention.hpp"

#include <algorithm>
#include <utility>

namespace registrar::app {

RetentionSweep::RetentionSweep(ports::RetentionStore& store, ports::Clock& clock, RetentionPolicy policy,
                               ExpireFiles expire_messages)
    : store_(store), clock_(clock), policy_(std::move(policy)), expire_messages_(std::move(expire_messages)) {
  policy_.batch = std::max<std::size_t>(policy_.batch, 1);
}

SweepReport RetentionSweep::run(const Pause& pause) {
  SweepReport report;
  // Repeats `step` (which deletes up to one batch and returns how many) until a short batch.
  auto batches = [&](auto&& step, auto& counter) {
    while (!report.stopped) {
      auto n = step();
      counter += n;
      if (n < policy_.batch) return;
      if (!pause(policy_.pause)) report.stopped = true;
    }
  };
  // One "now" for the whole sweep: what it deletes is decided against the same instant.
  const auto now = clock_.now();
  if (policy_.sent_events_age || policy_.sent_events_count) {
    ports::SentEventsRule rule;
    if (policy_.sent_events_age) rule.sent_before = now - *policy_.sent_events_age;
    rule.keep_newest = policy_.sent_events_count;
    batches([&] { return store_.delete_sent_events(rule, policy_.batch); }, report.sent_events);
  }
  if (policy_.processed_events_age) {
    const auto before = now - *policy_.processed_events_age;
    batches([&] { return store_.delete_processed_events(before, policy_.batch); }, report.processed_events);
  }
  if (policy_.messages_age && expire_messages_) {
    const auto before = now - *policy_.messages_age;
    batches([&] { return expire_messages_(before, policy_.batch); }, report.message_files);
  }
  if (report.sent_events + report.processed_events > 0 && policy_.reclaim_bytes_per_step > 0) {
    while (!report.stopped) {
      auto bytes = store_.reclaim_space(policy_.reclaim_bytes_per_step);
      report.reclaimed_bytes += bytes;
      if (bytes == 0) break;
      if (!pause(policy_.pause)) report.stopped = true;
    }
  }
  return report;
}

}  // namespace registrar::app
