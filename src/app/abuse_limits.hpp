#pragma once
// Abuse limits (OWASP ASVS V2.2.1): which buckets a request of each limited route takes from, the
// login soft lockout, and the token-bucket arithmetic the bucket stores share. No I/O: the buckets
// live behind ports::RateLimiter, identifiers are hashed with the PII cipher's keyed hash.
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ports/pii_cipher.hpp"
#include "ports/rate_limiter.hpp"

namespace registrar::app {

// ---- the bucket arithmetic (GCRA form) ----
// A bucket is one number, `full_at`: the time (ms) at which it is full again. At `now` it holds
// burst - (full_at - now) / refill tokens (burst when full_at <= now), so an absent bucket is a
// full one, and a bucket can be forgotten once full_at has passed. Integer milliseconds throughout,
// exactly as the Redis script computes them (Lua numbers are doubles: exact far beyond epoch ms).
struct BucketStep {
  bool allowed = false;
  std::int64_t full_at = 0;    // the bucket's new state if the step is applied
  std::int64_t wait_ms = 0;    // when refused: how long until the bucket could give it
};
// Taking `cost` tokens (0: needing one, taking none) at `now` from a bucket whose state is `full_at`.
BucketStep bucket_step(std::int64_t full_at, std::int64_t now, const ports::RateLimit& limit, unsigned cost);

// Retry-After in whole seconds, rounded up (never 0: RFC 9110 gives the client a whole second).
std::chrono::seconds retry_after_seconds(std::chrono::milliseconds wait);

// ---- identifiers ----
enum class IdentifierKind { email, username, phone, login };
// The canonical form of an identifier as its rules define it (domain/credentials.hpp: an email
// lower-cased, a phone in bare E.164, a username lower-cased); a login identifier is an email
// when it has an '@', else a username. A value that is not valid is trimmed and ASCII
// lower-cased, so that spellings of one invalid value still share a bucket.
std::string canonical_identifier(IdentifierKind kind, std::string_view raw);

// ---- the policy ----
enum class LimitedRoute { register_user, login, codes, jobs };
std::string_view route_name(LimitedRoute route);

struct RouteLimits {
  ports::RateLimit per_ip;          // per client IP
  ports::RateLimit per_identifier;  // per email / username / phone the request names
};

struct AbuseLimitSettings {
  RouteLimits register_user, login, codes, jobs;
  // Login soft lockout, per identifier and client IP: `burst` failures are free, then one more try
  // per `refill` (which is therefore the longest anyone is kept waiting by it); a success resets
  // it. Keyed on the address too, so that failures from an attacker's address never lock the owner
  // out from theirs; the per-identifier rate (login.per_identifier, every try, any address) caps
  // what many addresses together can try against one account.
  ports::RateLimit lockout;
  const RouteLimits& of(LimitedRoute route) const;
};

struct Admission {
  bool allowed = true;
  std::chrono::milliseconds retry_after{0};
  bool locked_out = false;  // refused by the login lockout (not by a rate)
};

class AbuseLimits {
 public:
  // `keys` hashes identifiers and addresses into bucket names (blind_index, purpose "rate-limit"),
  // so no email, phone or IP address is ever a key (in Redis, in logs).
  AbuseLimits(ports::RateLimiter& buckets, ports::PiiCipher& keys, AbuseLimitSettings settings);

  // Before a request of `route`: one take from the client IP's bucket (none when `client_ip` is
  // empty: an exempt client) and one from each identifier's (already canonical), all or nothing;
  // for a login, the lockout of (identifier, client IP) must also hold a token.
  Admission admit(LimitedRoute route, std::string_view client_ip, const std::vector<std::string>& identifiers);
  // After a login: a failure charges the lockout, a success clears it.
  void login_failed(const std::string& identifier, std::string_view client_ip);
  void login_succeeded(const std::string& identifier, std::string_view client_ip);
  // After a request the service could not serve (a 5xx: its database or Redis was down): the
  // identifiers' buckets for `route` are made full again. A client that retries its sign-up
  // through an outage — with its Idempotency-Key, as README "Safe retries" tells it to — must not
  // find its own email or username refused once the service is back. The per-IP bucket stays
  // charged: an outage is no reason to let one address send more.
  void not_served(LimitedRoute route, const std::vector<std::string>& identifiers);

  const AbuseLimitSettings& settings() const { return settings_; }
  // The bucket names (for tests): "rl:<route>:<ip|id|lockout>:<keyed hash>".
  std::string ip_key(LimitedRoute route, std::string_view client_ip) const;
  std::string identifier_key(LimitedRoute route, std::string_view identifier) const;
  std::string lockout_key(std::string_view identifier, std::string_view client_ip) const;

 private:
  ports::RateLimiter& buckets_;
  ports::PiiCipher& keys_;
  AbuseLimitSettings settings_;
};

// What a limiter does when its store (Redis) cannot be reached: README "Abuse limits".
enum class StoreDownPolicy {
  local,   // each process limits with its own in-process buckets until the store is back
  open,    // no limit until the store is back
  closed,  // the limited routes answer 503 until the store is back
};

// A limiter over a shared store, with the store-down policy. `on_change(true)` when the store
// stops answering, `(false)` when it answers again (once per outage: the log).
class FailoverRateLimiter final : public ports::RateLimiter {
 public:
  FailoverRateLimiter(ports::RateLimiter& shared, ports::RateLimiter& local, StoreDownPolicy policy,
                      std::function<void(bool down, std::string_view error)> on_change = {});
  ports::RateDecision acquire(const std::vector<ports::RateCharge>& charges) override;
  void reset(const std::string& key) override;

 private:
  void note(bool down, std::string_view error);
  ports::RateLimiter& shared_;
  ports::RateLimiter& local_;
  StoreDownPolicy policy_;
  std::function<void(bool, std::string_view)> on_change_;
  std::mutex mutex_;
  bool down_ = false;
};

}  // namespace registrar::app
