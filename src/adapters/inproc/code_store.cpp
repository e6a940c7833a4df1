#include "adapters/inproc/code_store.hpp"

#include <sodium.h>

#include <algorithm>

#include "adapters/sodium/sodium.hpp"

namespace registrar::adapters::inproc {

namespace {

constexpr std::size_t kSweepEvery = 256;

// Up to whole seconds, at least one (a Retry-After of 0 would invite an immediate retry).
std::chrono::seconds retry_seconds(std::chrono::steady_clock::duration wait) {
  return std::max(std::chrono::ceil<std::chrono::seconds>(wait), std::chrono::seconds{1});
}

// The hashes are keyed hashes, so their comparison leaks nothing useful even if it were not
// constant-time; it is anyway (sodium_memcmp), as a habit for secrets.
bool same(std::string_view a, std::string_view b) {
  return a.size() == b.size() && sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

InProcessCodeStore::InProcessCodeStore(std::function<Clock::time_point()> now) : now_(std::move(now)) {
  sodium::ensure_sodium();
  if (!now_) now_ = [] { return Clock::now(); };
}

void InProcessCodeStore::sweep(Clock::time_point now) {
  std::erase_if(codes_, [&](const auto& entry) { return entry.second.expires_at <= now; });
  std::erase_if(subjects_, [&](const auto& entry) { return entry.second.forget_at <= now; });
}

ports::IssueResult InProcessCodeStore::issue(const ports::IssueCodeRequest& request) {
  const auto& rules = request.rules;
  std::lock_guard lock(mutex_);
  const auto now = now_();
  if (++issues_since_sweep_ >= kSweepEvery) {
    issues_since_sweep_ = 0;
    sweep(now);
  }

  auto& subject = subjects_[request.subject_key];
  // The rolling window: only issues of the last cap_window count.
  std::erase_if(subject.issued, [&](const auto& entry) { return entry.second + rules.cap_window <= now; });

  Clock::duration cooldown_wait{0}, cap_wait{0};
  if (!subject.issued.empty()) {
    auto [oldest, newest] = std::minmax_element(subject.issued.begin(), subject.issued.end(),
                                                [](const auto& a, const auto& b) { return a.second < b.second; });
    if (rules.resend_cooldown.count() > 0) cooldown_wait = newest->second + rules.resend_cooldown - now;
    if (static_cast<int>(subject.issued.size()) >= rules.hourly_cap) cap_wait = oldest->second + rules.cap_window - now;
  } else if (rules.hourly_cap <= 0) {
    cap_wait = rules.cap_window;
  }
  if (cooldown_wait.count() > 0 || cap_wait.count() > 0) {
    if (subject.issued.empty()) subjects_.erase(request.subject_key);
    if (cap_wait >= cooldown_wait) return {ports::IssueOutcome::hourly_cap, retry_seconds(cap_wait)};
    return {ports::IssueOutcome::cooldown, retry_seconds(cooldown_wait)};
  }

  codes_[request.session_id] = Code{request.code_hash, 0, now + rules.ttl};
  subject.issued.emplace(request.session_id, now);
  subject.forget_at = now + rules.cap_window;
  return {ports::IssueOutcome::issued, std::chrono::seconds{0}};
}

ports::CheckResult InProcessCodeStore::check(std::string_view session_id, std::string_view code_hash,
                                             int max_wrong_tries) {
  std::lock_guard lock(mutex_);
  auto it = codes_.find(std::string(session_id));
  if (it == codes_.end()) return {ports::CheckOutcome::missing, 0};
  Code& code = it->second;
  if (code.expires_at <= now_()) {
    codes_.erase(it);
    return {ports::CheckOutcome::missing, 0};
  }
  if (code.hash.empty() || code.wrong_tries >= max_wrong_tries) return {ports::CheckOutcome::exhausted, 0};
  if (same(code.hash, code_hash)) return {ports::CheckOutcome::match, max_wrong_tries - code.wrong_tries};
  if (++code.wrong_tries >= max_wrong_tries) {
    // Burnt: kept (without its hash) until it would have expired, so that even the right code is
    // refused as exhausted rather than missing.
    code.hash.clear();
    return {ports::CheckOutcome::exhausted, 0};
  }
  return {ports::CheckOutcome::mismatch, max_wrong_tries - code.wrong_tries};
}

void InProcessCodeStore::consume(std::string_view session_id) {
  std::lock_guard lock(mutex_);
  codes_.erase(std::string(session_id));
}

void InProcessCodeStore::withdraw(std::string_view session_id, std::string_view subject_key) {
  std::lock_guard lock(mutex_);
  codes_.erase(std::string(session_id));
  if (auto it = subjects_.find(std::string(subject_key)); it != subjects_.end()) {
    // The session's newest issue (the one being withdrawn) stops counting.
    auto [first, last] = it->second.issued.equal_range(std::string(session_id));
    auto newest = std::max_element(first, last, [](const auto& a, const auto& b) { return a.second < b.second; });
    if (newest != last) it->second.issued.erase(newest);
    if (it->second.issued.empty()) subjects_.erase(it);
  }
}

std::size_t InProcessCodeStore::size() const {
  std::lock_guard lock(mutex_);
  return codes_.size() + subjects_.size();
}

}  // namespace registrar::adapters::inproc
