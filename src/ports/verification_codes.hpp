#pragma once
// Where one-time verification codes live between "send a code" and "check it". Codes are never
// stored in clear by registrar: the use case hands the store a keyed hash (`code_hash`), and
// checks a candidate by its hash. The store enforces the rules atomically (one Lua script per
// operation on Redis, one mutex in process): TTL, single use, a limited number of wrong tries,
// a resend cooldown and a cap per phone/address over a rolling window (`subject_key`, itself a
// keyed hash). The hashes are made by app/verification.hpp (code_hash, subject_key): every user of
// the store (issue, Create_User job) must use those.
// Every adapter (in-process, Redis) passes tests/contract/verification_codes_test.cpp.
// Throws BackendUnavailable when the backend cannot be reached.
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace registrar::ports {

// Durations are in milliseconds (Redis PEXPIRE; short rules in tests); the defaults are the
// production rules of issue 12.
struct CodeRules {
  std::chrono::milliseconds ttl{std::chrono::minutes{10}};         // a code is valid for 10 minutes
  int max_wrong_tries = 5;                                         // the 5th wrong try burns the code
  std::chrono::milliseconds resend_cooldown{std::chrono::seconds{60}};  // per subject
  int hourly_cap = 5;                                              // codes per subject per window
  std::chrono::milliseconds cap_window{std::chrono::hours{1}};    // the rolling "hour"
};

struct IssueCodeRequest {
  std::string session_id;   // key of the code (the verification session's id)
  std::string subject_key;  // keyed hash of the phone/address: cooldown and cap are per subject
  std::string code_hash;    // keyed hash of the code
  CodeRules rules;
};

enum class IssueOutcome { issued, cooldown, hourly_cap };
struct IssueResult {
  IssueOutcome outcome = IssueOutcome::issued;
  // For cooldown / hourly_cap: how long until an issue can succeed, rounded up to whole seconds
  // (≥ 1 s). When both hold, the outcome is the one that lasts longer.
  std::chrono::seconds retry_after{0};
};

enum class CheckOutcome {
  match,       // right code; the code stays until consume() (the caller finishes its work first)
  mismatch,    // wrong code; tries left
  exhausted,   // too many wrong tries: the code is burnt, even the right one is refused (until
               // the code would have expired, or consume())
  missing,     // no code under this id (never issued, expired, already used)
};
struct CheckResult {
  CheckOutcome outcome = CheckOutcome::missing;
  int tries_left = 0;  // wrong tries still allowed (match, mismatch); 0 otherwise
};

class VerificationCodeStore {
 public:
  virtual ~VerificationCodeStore() = default;
  // Stores the code under its session id (replacing any code of that id) unless the subject is in
  // its cooldown or at its cap; an issued code counts for its subject's cooldown and cap, each
  // issue once, also when it replaces a code of the same session id (the email verification code
  // of a user is re-issued under one id).
  virtual IssueResult issue(const IssueCodeRequest& request) = 0;
  // issue() for each request, in their order, one result each (a batch of sign-ups' codes). An
  // adapter that can share the cost (one round trip) overrides it; this default issues one by one.
  // A throw may come after some were issued.
  virtual std::vector<IssueResult> issue_all(std::span<const IssueCodeRequest> requests) {
    std::vector<IssueResult> results;
    results.reserve(requests.size());
    for (const auto& r : requests) results.push_back(issue(r));
    return results;
  }
  // Compares `code_hash` with the stored one; a mismatch counts as a wrong try, and the
  // `max_wrong_tries`-th burns the code (exhausted). Concurrent checks never let more than
  // `max_wrong_tries` wrong candidates be compared.
  virtual CheckResult check(std::string_view session_id, std::string_view code_hash,
                            int max_wrong_tries) = 0;
  // Deletes the code (single use). Idempotent.
  virtual void consume(std::string_view session_id) = 0;
  // Undoes issue(): deletes the code, whose issue (the session's latest) no longer counts for the
  // subject's cooldown and cap
  // (the message carrying it could not be sent, so the user may ask again at once). Idempotent.
  virtual void withdraw(std::string_view session_id, std::string_view subject_key) = 0;
};

}  // namespace registrar::ports
