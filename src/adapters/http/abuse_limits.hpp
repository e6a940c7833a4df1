#pragma once
// The abuse-limit middleware (README "Abuse limits"): before a request of a limited route reaches
// its handler, it takes from the client IP's bucket and from the bucket of each identifier the
// body names (app::AbuseLimits); refused → 429 rate_limited with Retry-After, and the handler never
// runs. After a login it tells the soft lockout the outcome (401: a failure, 200: a reset).
//
// Limited routes: POST /auth/register (email, username), POST /auth/login (its identifier, and
// the lockout), POST /auth/verification-codes, /auth/email-verification and …/resend (per IP:
// their per-phone and per-account limits are the code store's own cooldown, hourly cap and try
// limit), POST /users (phone). Every other route passes untouched.
//
// Exempt from the per-IP buckets (identifier buckets and the lockout still apply):
//  - a request with `Authorization: Bearer <admin token>` (compared in constant time);
//  - a request whose client address is itself a trusted proxy (a proxy that forwarded nobody: its
//    own address would be one bucket for everyone behind it). A trusted proxy that forwards a
//    client is not exempt: the forwarded client's address is the bucket (middleware::client_address).
#include <string>

#include "adapters/http/client_address.hpp"
#include "adapters/http/middleware.hpp"
#include "adapters/threads/blocking_runner.hpp"
#include "app/abuse_limits.hpp"

namespace registrar::adapters::http::middleware {

struct AbuseLimitOptions {
  app::AbuseLimits& limits;
  TrustedProxies trusted_proxies{};
  std::string admin_token{};                  // empty: nobody is exempt by token
  threads::BlockingRunner* runner = nullptr;  // where the limiter runs (Redis is blocking I/O); null: inline
};

// After map_exceptions: a limiter that cannot decide (Redis down, --rate-limit-redis-down closed)
// throws ports::BackendUnavailable, answered 503.
Middleware abuse_limits(AbuseLimitOptions options);

}  // namespace registrar::adapters::http::middleware
