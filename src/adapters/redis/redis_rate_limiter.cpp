#include "adapters/redis/redis_rate_limiter.hpp"

#include "ports/errors.hpp"

namespace registrar::adapters::redis {

namespace {

// KEYS: the buckets. ARGV[1]: now (ms); then per bucket: burst, refill (ms), cost. The arithmetic
// of app::bucket_step, on integers held in doubles (exact: epoch ms and products stay far below
// 2^53). Returns 0 when every bucket gave its tokens (and stores each charged one's new full_at,
// expiring then), else the longest wait in ms, having changed nothing.
constexpr const char* kTakeScript = R"lua(
local now = tonumber(ARGV[1])
local worst = 0
local after = {}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[3 * i - 1])
  local refill = tonumber(ARGV[3 * i])
  local cost = tonumber(ARGV[3 * i + 1])
  local full_at = tonumber(redis.call('GET', key) or '0') or 0
  local base = full_at
  if base < now then base = now end
  local need = cost
  if need < 1 then need = 1 end
  local over = (base - now) + need * refill - burst * refill
  if over > worst then worst = over end
  after[i] = base + cost * refill
end
if worst > 0 then return worst end
for i, key in ipairs(KEYS) do
  if tonumber(ARGV[3 * i + 1]) > 0 then
    redis.call('SET', key, string.format('%.0f', after[i]), 'PX', string.format('%.0f', after[i] - now))
  end
end
return 0
)lua";

// A server error that says the server is not serving now (loading, failing over): an outage,
// like a lost connection. Any other error is a bug.
Reply checked(Reply reply) {
  if (reply.is_error()) {
    for (std::string_view transient : {"LOADING", "BUSY", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
                                       "NOREPLICAS", "MISCONF"})
      if (std::string_view(reply.str).starts_with(transient))
        throw ports::BackendUnavailable("redis: " + reply.str);
  }
  reply.throw_if_error();
  return reply;
}

}  // namespace

RedisRateLimiter::RedisRateLimiter(Client& client, ports::Clock& clock, std::string prefix)
    : client_(client), clock_(clock), prefix_(std::move(prefix)) {}

ports::RateDecision RedisRateLimiter::acquire(const std::vector<ports::RateCharge>& charges) {
  std::vector<std::string> keys;
  std::vector<std::string> args{std::to_string(clock_.now().time_since_epoch().count())};
  for (const auto& c : charges) {
    if (!c.limit.enabled()) continue;
    keys.push_back(prefix_ + c.key);
    args.push_back(std::to_string(c.limit.burst));
    args.push_back(std::to_string(c.limit.refill.count()));
    args.push_back(std::to_string(c.cost));
  }
  if (keys.empty()) return {};
  const Reply reply = checked(client_.eval(kTakeScript, keys, args));
  if (reply.type != Reply::Type::integer) throw ServerError("redis rate limiter: unexpected reply from the script");
  if (reply.integer <= 0) return {};
  return {false, std::chrono::milliseconds{reply.integer}};
}

void RedisRateLimiter::reset(const std::string& key) {
  checked(client_.command({"DEL", prefix_ + key}));
}

}  // namespace registrar::adapters::redis
