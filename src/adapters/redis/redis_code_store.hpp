#pragma once
// Verification codes in Redis, shared by every registrar process (and, in the Node layout, with an
// existing Node service). Two layouts of one port (ports/verification_codes.hpp):
//
// RedisCodeStore — registrar's own layout; nothing in clear (keyed hashes only):
//   <prefix>code:<session id>          hash {h: code hash, w: wrong tries}, PEXPIRE = the code's TTL;
//                                      a burnt code keeps only `w` until then (exhausted, not missing)
//   <prefix>code-subject:<subject key> sorted set: member = session id, score = issue time (ms, the
//                                      server's clock); PEXPIRE = the cap window after the last issue
// Each operation is one Lua script (issue, check, withdraw) or one command (consume: DEL), so it is
// atomic across processes; times come from the server (TIME), so processes with skewed clocks
// agree. Needs Redis ≥ 5 (scripts that write after TIME replicate by effects).
//
// RedisNodeCodeStore — the drop-in for a deployment whose Node Create_User service writes codes:
//   <session id>                       the code in clear, as that service writes it
//                                      (`SET <id> <code> EX 600`) and its worker reads it (`GET <id>`,
//                                      compared to String(code), `DEL <id>` once used)
//   <prefix>code-tries:<session id>    registrar's count of tries, expiring with the code
// What registrar cannot enforce in this layout, because another service owns the code: that it is
// not in clear in Redis, that it comes from a CSPRNG with ≥ 6 digits, its TTL (whatever the writer
// set, or none), the resend cooldown and hourly cap (the writer issues codes; issue() and
// withdraw() throw std::logic_error here), and the try limit against a Node worker running beside
// registrar (it does not count tries). What it does enforce: the try limit among registrar
// processes (a try is reserved atomically before the comparison, so concurrent checks never
// compare more than the limit; the limit-th wrong try deletes the code), single use (consume = DEL),
// and a constant-time comparison (sodium_memcmp, of keyed hashes of both sides, in C++ after GET).
#include <chrono>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis/client.hpp"
#include "ports/verification_codes.hpp"

namespace registrar::adapters::redis {

class RedisCodeStore final : public ports::VerificationCodeStore {
 public:
  // `client` must outlive the store. `prefix` starts every key ("registrar:" → registrar:code:<id>).
  explicit RedisCodeStore(Client& client, std::string prefix = "registrar:");

  ports::IssueResult issue(const ports::IssueCodeRequest& request) override;
  // Every issue script of the batch pipelined: one round trip.
  std::vector<ports::IssueResult> issue_all(std::span<const ports::IssueCodeRequest> requests) override;
  ports::CheckResult check(std::string_view session_id, std::string_view code_hash, int max_wrong_tries) override;
  void consume(std::string_view session_id) override;
  void withdraw(std::string_view session_id, std::string_view subject_key) override;

  std::string code_key(std::string_view session_id) const;
  std::string subject_key(std::string_view subject) const;
  Client::ScriptCall issue_call(const ports::IssueCodeRequest& request) const;

 private:
  Client& client_;
  std::string prefix_;
};

// How a code read in clear is hashed for the comparison: app::code_hash(keys, session, code), the
// function the callers of check() hash their candidate with.
using CodeHasher = std::function<std::string(std::string_view session_id, std::string_view code)>;

class RedisNodeCodeStore final : public ports::VerificationCodeStore {
 public:
  // `tries_ttl`: how long a tries counter lives when the code itself has no TTL.
  RedisNodeCodeStore(Client& client, CodeHasher hash, std::string prefix = "registrar:",
                     std::chrono::milliseconds tries_ttl = std::chrono::minutes{10});

  ports::IssueResult issue(const ports::IssueCodeRequest& request) override;  // throws std::logic_error
  ports::CheckResult check(std::string_view session_id, std::string_view code_hash, int max_wrong_tries) override;
  void consume(std::string_view session_id) override;
  void withdraw(std::string_view session_id, std::string_view subject_key) override;  // throws std::logic_error

  std::string tries_key(std::string_view session_id) const;

 private:
  Client& client_;
  CodeHasher hash_;
  std::string prefix_;
  std::chrono::milliseconds tries_ttl_;
};

}  // namespace registrar::adapters::redis
