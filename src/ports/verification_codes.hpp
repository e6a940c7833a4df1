#pragma once
// Where one-time verification codes live between "send a code" and "check it". Codes are never
// stored in clear by registrar: the use case hands the store a keyed hash (`code_hash`), and
// checks a candidate by its hash. The store enforces the rules atomically (one Lua script per
// operation on Redis, one mutex in process): TTL, single use, a limited number of wrong tries,
// a resend cooldown and an hourly cap per phone/address (`subject_key`, itself a keyed hash).
// Every adapter (in-process, Redis) passes tests/contract/verification_codes_test.cpp.
// Throws BackendUnavailable when the backend cannot be reached.
#include <chrono>
#include <string>
#include <string_view>

namespace registrar::ports {

struct CodeRules {
  std::chrono::seconds ttl{600};            // a code is valid for 10 minutes
  int max_wrong_tries = 5;                  // the 5th wrong try burns the code
  std::chrono::seconds resend_cooldown{60};  // per subject
  int hourly_cap = 5;                       // codes per subject per rolling hour
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
  std::chrono::seconds retry_after{0};  // for cooldown / hourly_cap
};

enum class CheckOutcome {
  match,       // right code; the code stays until consume() (the caller finishes its work first)
  mismatch,    // wrong code; tries left
  exhausted,   // too many wrong tries: the code is gone, even the right one is refused
  missing,     // no code under this id (never issued, expired, already used)
};
struct CheckResult {
  CheckOutcome outcome = CheckOutcome::missing;
  int tries_left = 0;
};

class VerificationCodeStore {
 public:
  virtual ~VerificationCodeStore() = default;
  virtual IssueResult issue(const IssueCodeRequest& request) = 0;
  // Compares `code_hash` with the stored one; a mismatch counts as a wrong try.
  virtual CheckResult check(std::string_view session_id, std::string_view code_hash,
                            int max_wrong_tries) = 0;
  // Deletes the code (single use). Idempotent.
  virtual void consume(std::string_view session_id) = 0;
};

}  // namespace registrar::ports
