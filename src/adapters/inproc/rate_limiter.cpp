#include "adapters/inproc/rate_limiter.hpp"

#include <algorithm>

#include "app/abuse_limits.hpp"

namespace registrar::adapters::inproc {

InProcessRateLimiter::InProcessRateLimiter(ports::Clock& clock, std::size_t max_keys)
    : clock_(clock), max_keys_(std::max<std::size_t>(max_keys, 1)) {}

void InProcessRateLimiter::drop_refilled(std::int64_t now) {
  // The least recently used buckets are the likeliest to have refilled; two per call keeps pace
  // with at most one new bucket per charge.
  for (int i = 0; i < 2 && !lru_.empty(); ++i) {
    auto it = buckets_.find(lru_.back());
    if (it->second.full_at > now) break;
    buckets_.erase(it);
    lru_.pop_back();
  }
}

void InProcessRateLimiter::store(const std::string& key, std::int64_t full_at) {
  auto it = buckets_.find(key);
  if (it != buckets_.end()) {
    it->second.full_at = full_at;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    return;
  }
  if (buckets_.size() >= max_keys_) {
    buckets_.erase(lru_.back());
    lru_.pop_back();
  }
  lru_.push_front(key);
  buckets_.emplace(key, Entry{full_at, lru_.begin()});
}

ports::RateDecision InProcessRateLimiter::acquire(const std::vector<ports::RateCharge>& charges) {
  const std::int64_t now = clock_.now().time_since_epoch().count();
  std::lock_guard lock(mutex_);
  drop_refilled(now);
  std::vector<app::BucketStep> steps;
  steps.reserve(charges.size());
  std::int64_t wait = 0;
  for (const auto& c : charges) {
    if (!c.limit.enabled()) {
      steps.push_back({true, 0, 0});
      continue;
    }
    auto it = buckets_.find(c.key);
    auto step = app::bucket_step(it == buckets_.end() ? 0 : it->second.full_at, now, c.limit, c.cost);
    if (!step.allowed) wait = std::max(wait, step.wait_ms);
    steps.push_back(step);
  }
  if (wait > 0) {
    // A refused bucket is in use: it keeps its place (a flood of new keys must not push out the
    // bucket of the client being refused, which would start full again).
    for (const auto& c : charges)
      if (auto it = buckets_.find(c.key); it != buckets_.end()) lru_.splice(lru_.begin(), lru_, it->second.lru);
    return {false, std::chrono::milliseconds{wait}};
  }
  for (std::size_t i = 0; i < charges.size(); ++i)
    if (charges[i].limit.enabled() && charges[i].cost > 0) store(charges[i].key, steps[i].full_at);
  return {};
}

void InProcessRateLimiter::reset(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = buckets_.find(key);
  if (it == buckets_.end()) return;
  lru_.erase(it->second.lru);
  buckets_.erase(it);
}

std::size_t InProcessRateLimiter::size() const {
  std::lock_guard lock(mutex_);
  return buckets_.size();
}

}  // namespace registrar::adapters::inproc
