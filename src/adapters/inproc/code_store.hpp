#pragma once
// The embedded verification code store (no --redis-url): codes and per-subject issue times in
// memory, under one mutex, so each operation is atomic like the Redis store's Lua scripts. A
// restart forgets every code (a user asks for a new one). One process only: several `serve`
// processes need Redis to share codes.
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "ports/verification_codes.hpp"

namespace registrar::adapters::inproc {

class InProcessCodeStore final : public ports::VerificationCodeStore {
 public:
  using Clock = std::chrono::steady_clock;
  // `now` defaults to the steady clock (tests may drive time).
  explicit InProcessCodeStore(std::function<Clock::time_point()> now = {});

  ports::IssueResult issue(const ports::IssueCodeRequest& request) override;
  ports::CheckResult check(std::string_view session_id, std::string_view code_hash, int max_wrong_tries) override;
  void consume(std::string_view session_id) override;
  void withdraw(std::string_view session_id, std::string_view subject_key) override;

  // Codes and subjects held (expired ones are dropped as the store is used): for tests.
  std::size_t size() const;

 private:
  struct Code {
    std::string hash;  // empty once burnt (exhausted)
    int wrong_tries = 0;
    Clock::time_point expires_at;
  };
  struct Subject {
    // session id → when issued, one entry per issue (a code issued again under one session id, as
    // an email address's code under its user, counts again)
    std::multimap<std::string, Clock::time_point> issued;
    Clock::time_point forget_at;                      // last issue + the cap window
  };

  // Drops what expired; called under the lock, every kSweepEvery issues (amortised).
  void sweep(Clock::time_point now);

  std::function<Clock::time_point()> now_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Code> codes_;
  std::unordered_map<std::string, Subject> subjects_;
  std::size_t issues_since_sweep_ = 0;
};

}  // namespace registrar::adapters::inproc
