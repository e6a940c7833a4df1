#pragma once
// Abuse-limit token buckets in Redis (ports/rate_limiter.hpp), shared by every registrar process on
// that server, so requests spread over several `serve`s draw on one budget:
//   <prefix>rl:<route>:<ip|id|lockout>:<keyed hash>   string: the bucket's full_at (ms, app::bucket_step)
// with PEXPIRE at full_at, so a bucket vanishes once it has refilled (an absent key is a full bucket):
// Redis holds only the buckets that are not full, each for at most burst × refill.
// One call is one Lua script (EVALSHA, EVAL on NOSCRIPT: Client::eval) over all its buckets, so
// the all-or-nothing take is atomic across processes. The time is the caller's clock (every
// process keeps NTP time; a skew of d gives at most d / refill tokens early), and a bucket's state
// never moves back in time whoever writes it. Key names hold no personal data: identifiers and
// addresses are keyed hashes (app::AbuseLimits).
#include <string>

#include "adapters/redis/client.hpp"
#include "ports/rate_limiter.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::redis {

class RedisRateLimiter final : public ports::RateLimiter {
 public:
  // `client` and `clock` must outlive the limiter. `prefix` starts every key.
  RedisRateLimiter(Client& client, ports::Clock& clock, std::string prefix = "registrar:");

  ports::RateDecision acquire(const std::vector<ports::RateCharge>& charges) override;
  void reset(const std::string& key) override;

 private:
  Client& client_;
  ports::Clock& clock_;
  std::string prefix_;
};

}  // namespace registrar::adapters::redis
