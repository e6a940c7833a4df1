#include "app/outbox_relay.hpp"
#include <algorithm>
#include <unordered_set>

namespace registrar::app {

RelayStats relay_once(ports::OutboxStore& outbox, ports::EventBus& bus, const RelayOptions& options) {
  RelayStats stats;
  auto batch = outbox.claim(options.owner, options.batch_size, options.lease);
  stats.claimed = batch.size();
  if (batch.empty()) return stats;

  std::vector<std::string> all_ids;
  all_ids.reserve(batch.size());
  for (const auto& e : batch) all_ids.push_back(e.id);

  std::vector<std::string> confirmed;
  try {
    confirmed = bus.publish(batch);
  } catch (...) {
    try {
      outbox.release(options.owner, all_ids);
    } catch (...) {
      // The lease expires by itself; nothing is lost.
    }
    throw;
  }
  std::unordered_set<std::string> ok(confirmed.begin(), confirmed.end());
  std::vector<std::string> failed;
  for (const auto& id : all_ids)
    if (!ok.contains(id)) failed.push_back(id);
  if (!confirmed.empty()) outbox.mark_sent(options.owner, confirmed);
  if (!failed.empty()) outbox.release(options.owner, failed);
  stats.sent = confirmed.size();
  stats.released = failed.size();
  return stats;
}

}  // namespace registrar::app
