#include "adapters/redis/redis_code_store.hpp"

#include <sodium.h>

#include <algorithm>
#include <stdexcept>

#include "adapters/sodium/sodium.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::redis {

namespace {

// --- The scripts: one per operation, so that each is atomic across processes. ---------------
// Times are the server's (TIME, in ms): every process agrees on them whatever its own clock says.

// issue: KEYS = code key, subject key; ARGV = code hash, TTL ms, cooldown ms, cap, window ms,
// session id. Returns {0, 0} issued, {1, wait ms} cooldown, {2, wait ms} cap (the longer wait
// when both hold). The subject's sorted set keeps the issue times of its window only, one member
// per issue: "<session id>#<server time in µs>", so that codes issued again under one session id
// (an email address's code, kept under its user) each count.
constexpr const char* kIssueScript = R"lua(
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local cooldown_wait, cap_wait = 0, 0
local newest = redis.call('ZREVRANGE', KEYS[2], 0, 0, 'WITHSCORES')
if newest[2] and tonumber(ARGV[3]) > 0 then
  cooldown_wait = tonumber(newest[2]) + tonumber(ARGV[3]) - now
end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if oldest[2] then cap_wait = tonumber(oldest[2]) + window - now else cap_wait = window end
end
if cooldown_wait > 0 or cap_wait > 0 then
  if cap_wait >= cooldown_wait then return {2, cap_wait} end
  return {1, cooldown_wait}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'w', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[6] .. '#' .. t[1] .. string.format('%06d', tonumber(t[2])))
redis.call('PEXPIRE', KEYS[2], window)
return {0, 0}
)lua";

// check: KEYS = code key; ARGV = candidate hash, max wrong tries. Returns {0, tries left} match,
// {1, tries left} mismatch, {2, 0} exhausted, {3, 0} missing. The limit-th wrong try removes the
// hash and keeps the count until the key expires, so the right code is then refused as exhausted.
// (The hashes are keyed, so comparing them with Lua's == leaks nothing about the code.)
constexpr const char* kCheckScript = R"lua(
local w = redis.call('HGET', KEYS[1], 'w')
if not w then return {3, 0} end
w = tonumber(w)
local max = tonumber(ARGV[2])
local h = redis.call('HGET', KEYS[1], 'h')
if not h or w >= max then return {2, 0} end
if h == ARGV[1] then return {0, max - w} end
w = redis.call('HINCRBY', KEYS[1], 'w', 1)
if w >= max then
  redis.call('HDEL', KEYS[1], 'h')
  return {2, 0}
end
return {1, max - w}
)lua";

// withdraw: KEYS = code key, subject key; ARGV = session id. The code goes, and so does its place
// in the subject's cooldown and cap: the session's newest issue (the set holds at most the cap's
// issues of one window; a member that is the bare session id is from before the "#" suffix).
constexpr const char* kWithdrawScript = R"lua(
redis.call('DEL', KEYS[1])
local prefix = ARGV[1] .. '#'
for _, m in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, -1)) do
  if m == ARGV[1] or string.sub(m, 1, #prefix) == prefix then
    redis.call('ZREM', KEYS[2], m)
    return 0
  end
end
return 0
)lua";

// Node layout, check step 1 (reserve a try): KEYS = the code's key (the session id), tries key;
// ARGV = max tries, tries TTL ms when the code has none. Returns {3, 0} missing, {2, 0} exhausted
// (or burns the code when this try is past the limit), else {0, try number, code}: the caller
// compares, then gives the try back on a match (kNodeReleaseScript) or burns the code when this
// was the last (kNodeBurnScript). Reserving before comparing is what keeps concurrent checks
// within the limit.
constexpr const char* kNodeReserveScript = R"lua(
local code = redis.call('GET', KEYS[1])
local max = tonumber(ARGV[1])
if not code then
  if tonumber(redis.call('GET', KEYS[2]) or '0') >= max then return {2, 0} end
  return {3, 0}
end
local n = redis.call('INCR', KEYS[2])
if n == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl <= 0 then ttl = tonumber(ARGV[2]) end
  redis.call('PEXPIRE', KEYS[2], ttl)
end
if n > max then
  redis.call('DEL', KEYS[1])
  return {2, 0}
end
return {0, n, code}
)lua";

// Node layout: a right code does not cost a try.
constexpr const char* kNodeReleaseScript = R"lua(
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
)lua";

// Node layout: the last allowed try was wrong: the code goes (a Node worker cannot accept it
// either); the count stays as the tombstone that says "exhausted".
constexpr const char* kNodeBurnScript = R"lua(
redis.call('DEL', KEYS[1])
return 0
)lua";

// Replies that mean "not now" rather than "wrong": the server is loading its data, busy with a
// script, a read-only replica, … → BackendUnavailable (retry later); any other error reply is a
// bug, thrown as ServerError.
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

long long integer_at(const Reply& reply, std::size_t i) {
  if (reply.type != Reply::Type::array || reply.elements.size() <= i || reply.elements[i].type != Reply::Type::integer)
    throw ServerError("redis code store: unexpected reply from a script");
  return reply.elements[i].integer;
}

std::chrono::seconds retry_seconds(long long wait_ms) {
  return std::chrono::seconds{std::max<long long>(1, (wait_ms + 999) / 1000)};
}

ports::CheckResult check_result(long long outcome, long long tries_left) {
  switch (outcome) {
    case 0: return {ports::CheckOutcome::match, static_cast<int>(tries_left)};
    case 1: return {ports::CheckOutcome::mismatch, static_cast<int>(tries_left)};
    case 2: return {ports::CheckOutcome::exhausted, 0};
    case 3: return {ports::CheckOutcome::missing, 0};
  }
  throw ServerError("redis code store: unexpected outcome from a script");
}

std::string ms(std::chrono::milliseconds d) { return std::to_string(d.count()); }

}  // namespace

// --- RedisCodeStore ------------------------------------------------------------------------------

RedisCodeStore::RedisCodeStore(Client& client, std::string prefix) : client_(client), prefix_(std::move(prefix)) {}

std::string RedisCodeStore::code_key(std::string_view session_id) const {
  return prefix_ + "code:" + std::string(session_id);
}

std::string RedisCodeStore::subject_key(std::string_view subject) const {
  return prefix_ + "code-subject:" + std::string(subject);
}

namespace {

ports::IssueResult issue_result(const Reply& reply) {
  switch (integer_at(reply, 0)) {
    case 0: return {ports::IssueOutcome::issued, std::chrono::seconds{0}};
    case 1: return {ports::IssueOutcome::cooldown, retry_seconds(integer_at(reply, 1))};
    case 2: return {ports::IssueOutcome::hourly_cap, retry_seconds(integer_at(reply, 1))};
  }
  throw ServerError("redis code store: unexpected outcome from the issue script");
}

}  // namespace

Client::ScriptCall RedisCodeStore::issue_call(const ports::IssueCodeRequest& request) const {
  const auto& rules = request.rules;
  return {{code_key(request.session_id), subject_key(request.subject_key)},
          {request.code_hash, ms(rules.ttl), ms(rules.resend_cooldown), std::to_string(rules.hourly_cap),
           ms(rules.cap_window), request.session_id}};
}

ports::IssueResult RedisCodeStore::issue(const ports::IssueCodeRequest& request) {
  return issue_all(std::span(&request, 1)).front();
}

std::vector<ports::IssueResult> RedisCodeStore::issue_all(std::span<const ports::IssueCodeRequest> requests) {
  std::vector<Client::ScriptCall> calls;
  calls.reserve(requests.size());
  for (const auto& request : requests) calls.push_back(issue_call(request));
  std::vector<ports::IssueResult> results;
  results.reserve(requests.size());
  for (auto& reply : client_.eval_all(kIssueScript, calls)) results.push_back(issue_result(checked(std::move(reply))));
  return results;
}

ports::CheckResult RedisCodeStore::check(std::string_view session_id, std::string_view code_hash,
                                         int max_wrong_tries) {
  const Reply reply = checked(client_.eval(kCheckScript, {code_key(session_id)},
                                            {std::string(code_hash), std::to_string(max_wrong_tries)}));
  return check_result(integer_at(reply, 0), integer_at(reply, 1));
}

void RedisCodeStore::consume(std::string_view session_id) {
  checked(client_.command({"DEL", code_key(session_id)}));
}

void RedisCodeStore::withdraw(std::string_view session_id, std::string_view subject) {
  checked(client_.eval(kWithdrawScript, {code_key(session_id), subject_key(subject)}, {std::string(session_id)}));
}

// --- RedisNodeCodeStore --------------------------------------------------------------------------

RedisNodeCodeStore::RedisNodeCodeStore(Client& client, CodeHasher hash, std::string prefix,
                                       std::chrono::milliseconds tries_ttl)
    : client_(client), hash_(std::move(hash)), prefix_(std::move(prefix)), tries_ttl_(tries_ttl) {
  sodium::ensure_sodium();
  if (!hash_) throw std::invalid_argument("redis node code store: a code hasher is required");
  if (tries_ttl_.count() <= 0) throw std::invalid_argument("redis node code store: the tries TTL must be positive");
}

std::string RedisNodeCodeStore::tries_key(std::string_view session_id) const {
  return prefix_ + "code-tries:" + std::string(session_id);
}

ports::IssueResult RedisNodeCodeStore::issue(const ports::IssueCodeRequest&) {
  throw std::logic_error("the node code layout does not issue codes: the Node service writes them");
}

void RedisNodeCodeStore::withdraw(std::string_view, std::string_view) {
  throw std::logic_error("the node code layout does not issue codes: nothing to withdraw");
}

ports::CheckResult RedisNodeCodeStore::check(std::string_view session_id, std::string_view code_hash,
                                             int max_wrong_tries) {
  const std::string code_key(session_id);
  const std::string tries = tries_key(session_id);
  const Reply reserved = checked(
      client_.eval(kNodeReserveScript, {code_key, tries}, {std::to_string(max_wrong_tries), ms(tries_ttl_)}));
  const long long outcome = integer_at(reserved, 0);
  if (outcome != 0) return check_result(outcome, 0);
  const long long try_number = integer_at(reserved, 1);
  if (reserved.elements.size() < 3 || reserved.elements[2].type != Reply::Type::bulk)
    throw ServerError("redis code store: unexpected reply from the reserve script");

  // The stored code in clear, hashed like the candidate, and compared in constant time.
  std::string stored_hash = hash_(session_id, reserved.elements[2].str);
  const bool match = stored_hash.size() == code_hash.size() &&
                     sodium_memcmp(stored_hash.data(), code_hash.data(), stored_hash.size()) == 0;
  if (match) {
    checked(client_.eval(kNodeReleaseScript, {tries}, {}));
    return {ports::CheckOutcome::match, static_cast<int>(max_wrong_tries - (try_number - 1))};
  }
  if (try_number >= max_wrong_tries) {
    checked(client_.eval(kNodeBurnScript, {code_key}, {}));
    return {ports::CheckOutcome::exhausted, 0};
  }
  return {ports::CheckOutcome::mismatch, static_cast<int>(max_wrong_tries - try_number)};
}

void RedisNodeCodeStore::consume(std::string_view session_id) {
  checked(client_.command({"DEL", std::string(session_id), tries_key(session_id)}));
}

}  // namespace registrar::adapters::redis
