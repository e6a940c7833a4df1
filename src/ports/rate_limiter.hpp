#pragma once
// Token buckets for abuse limits (README "Abuse limits"): each key is a bucket of at most `burst`
// tokens that regains one token every `refill`; a request takes tokens from one or more buckets
// at once, all or nothing. Adapters: in process (adapters/inproc/rate_limiter.hpp, one process)
// and Redis (adapters/redis/redis_rate_limiter.hpp, one atomic script per call, so every process
// on that Redis shares one budget). Both keep a bucket only while it is not full: a key unseen, or
// idle long enough to have refilled, is a full bucket and costs no memory.
#include <chrono>
#include <string>
#include <vector>

namespace registrar::ports {

struct RateLimit {
  unsigned burst = 0;                      // tokens a full bucket holds; 0 = no limit
  std::chrono::milliseconds refill{0};     // one token comes back per this long
  bool enabled() const { return burst > 0 && refill.count() > 0; }
  friend bool operator==(const RateLimit&, const RateLimit&) = default;
};

// One bucket to take from. cost 0 only looks: the bucket must hold a whole token, none is taken
// (the login lockout is checked this way before a login and charged only when it fails).
struct RateCharge {
  std::string key;  // the bucket's name: no personal data (callers hash identifiers)
  RateLimit limit;
  unsigned cost = 1;
};

struct RateDecision {
  bool allowed = true;
  // When refused: how long until every refused bucket could give what was asked (ms, > 0).
  std::chrono::milliseconds retry_after{0};
};

class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Takes `cost` tokens from every bucket if each can give it, else takes nothing and says how
  // long to wait. Buckets with a disabled limit are ignored. Atomic against every other caller of
  // the same store. Throws ports::BackendUnavailable when the store cannot be reached.
  virtual RateDecision acquire(const std::vector<RateCharge>& charges) = 0;
  // Makes the bucket full again (a successful login clears its failures).
  virtual void reset(const std::string& key) = 0;
};

}  // namespace registrar::ports
