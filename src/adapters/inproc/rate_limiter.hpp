#pragma once
// The embedded token-bucket store (README "Abuse limits"): the default without --redis-url, and
// each process's own buckets while Redis is down (--rate-limit-redis-down local). One mutex; each
// bucket is one number (app::bucket_step). Memory is bounded: a bucket that has refilled is
// forgotten as the store is used (it equals an absent one), and past `max_keys` buckets the least
// recently used is dropped, so a flood of new keys costs at most max_keys entries (a dropped
// bucket starts full again: the price of the bound, paid by the oldest-touched key).
#include <cstddef>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ports/rate_limiter.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::inproc {

class InProcessRateLimiter final : public ports::RateLimiter {
 public:
  InProcessRateLimiter(ports::Clock& clock, std::size_t max_keys);

  ports::RateDecision acquire(const std::vector<ports::RateCharge>& charges) override;
  void reset(const std::string& key) override;

  // Buckets held (full ones are dropped as the store is used): for tests.
  std::size_t size() const;

 private:
  struct Entry {
    std::int64_t full_at;
    std::list<std::string>::iterator lru;  // position in lru_ (front: most recently used)
  };
  void drop_refilled(std::int64_t now);  // a few from the LRU end, so each call's work is bounded
  void store(const std::string& key, std::int64_t full_at);

  ports::Clock& clock_;
  std::size_t max_keys_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Entry> buckets_;
  std::list<std::string> lru_;
};

}  // namespace registrar::adapters::inproc
