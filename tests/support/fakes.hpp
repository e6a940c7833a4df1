#pragma once
// In-memory fakes of the ports, for unit tests (and any test that needs a cheap stand-in).
// Header-only, deterministic, thread-safe (each fake guards its state with a mutex), and with
// just enough failure injection to exercise error paths. They follow the ports' documented
// contracts, so they are also a readable reference of what an adapter must do.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <sodium.h>

#include "domain/event.hpp"
#include "domain/user.hpp"
#include "ports/errors.hpp"
#include "ports/event_bus.hpp"
#include "ports/job_queue.hpp"
#include "ports/mail_sender.hpp"
#include "ports/notifier.hpp"
#include "ports/outbox.hpp"
#include "ports/password_hasher.hpp"
#include "ports/pii_cipher.hpp"
#include "ports/processed_events.hpp"
#include "ports/system.hpp"
#include "ports/token_service.hpp"
#include "ports/user_store.hpp"
#include "ports/verification_codes.hpp"

namespace registrar::testing {

// Users and the outbox in one object, so create_user writes both "in one transaction" (under one
// lock: both or neither). Uniqueness is on the canonical email and username given by the caller.
// Set `unavailable = true` to make every call throw ports::BackendUnavailable.
class FakeUserStore : public ports::UserStore, public ports::OutboxStore {
 public:
  struct StoredUser {
    domain::User user;
    std::optional<std::string> email_canonical;
    std::string username_canonical;
  };
  struct OutboxRow {
    domain::EventEnvelope event;
    bool sent = false;
    std::string owner;  // lease holder; empty when not leased
  };

  std::atomic<bool> unavailable{false};

  // --- UserStore ---
  ports::CreateUserOutcome create_user(const domain::User& user, std::optional<std::string_view> email_canonical,
                                       std::string_view username_canonical,
                                       const domain::EventEnvelope& event) override {
    std::lock_guard lock(mutex_);
    check_available();
    return create_locked(user, email_canonical, username_canonical, event);
  }

  ports::CreateUserOutcome create_user_with_key(const domain::User& user, std::optional<std::string_view> email_canonical,
                                                std::string_view username_canonical, const domain::EventEnvelope& event,
                                                const ports::IdempotencyKeyRecord& key, domain::Timestamp now) override {
    std::lock_guard lock(mutex_);
    check_available();
    // The key first, as the adapters do: a live record of it wins over any other conflict.
    if (auto it = keys_.find(key.key_hash); it != keys_.end() && it->second.expires_at > now) {
      ++create_calls_;
      return ports::CreateUserOutcome::key_taken;
    }
    const auto outcome = create_locked(user, email_canonical, username_canonical, event);
    if (outcome == ports::CreateUserOutcome::created) keys_[key.key_hash] = key;  // with the user, or not at all
    return outcome;
  }

 private:
  ports::CreateUserOutcome create_locked(const domain::User& user, std::optional<std::string_view> email_canonical,
                                         std::string_view username_canonical, const domain::EventEnvelope& event) {
    ++create_calls_;
    if (!email_canonical && !user.phone) throw std::logic_error("fake user store: a user without email or phone");
    for (const auto& [id, u] : users_)
      if (user.verification_id && u.user.verification_id == user.verification_id)
        return ports::CreateUserOutcome::verification_taken;
    for (const auto& [id, u] : users_) {
      if (email_canonical && u.email_canonical == *email_canonical) return ports::CreateUserOutcome::email_taken;
      if (u.username_canonical == username_canonical) return ports::CreateUserOutcome::username_taken;
      if (user.phone && u.user.phone && u.user.phone->blind_index == user.phone->blind_index)
        return ports::CreateUserOutcome::phone_taken;
    }
    users_.emplace(user.id, StoredUser{user, email_canonical ? std::optional<std::string>(*email_canonical) : std::nullopt,
                                       std::string(username_canonical)});
    outbox_.push_back(OutboxRow{event, false, {}});
    return ports::CreateUserOutcome::created;
  }

 public:

  std::optional<ports::IdempotencyKeyRecord> find_idempotency_key(std::string_view key_hash,
                                                                  domain::Timestamp now) override {
    std::lock_guard lock(mutex_);
    check_available();
    ++key_lookups_;
    auto it = keys_.find(std::string(key_hash));
    if (it == keys_.end() || it->second.expires_at <= now) return std::nullopt;
    return it->second;
  }

  // Test helpers: the recorded keys (expired ones too), and how often a key was looked up.
  std::map<std::string, ports::IdempotencyKeyRecord> idempotency_keys() const {
    std::lock_guard lock(mutex_);
    return keys_;
  }
  int key_lookups() const {
    std::lock_guard lock(mutex_);
    return key_lookups_;
  }

  bool mark_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                           const domain::EventEnvelope& event) override {
    std::lock_guard lock(mutex_);
    check_available();
    auto it = users_.find(std::string(user_id));
    if (it == users_.end() || !it->second.user.email || it->second.user.email_verified_at) return false;
    it->second.user.email_verified_at = verified_at;
    outbox_.push_back(OutboxRow{event, false, {}});
    return true;
  }

  std::optional<domain::User> find_by_id(std::string_view id) override {
    std::lock_guard lock(mutex_);
    check_available();
    auto it = users_.find(std::string(id));
    if (it == users_.end()) return std::nullopt;
    return it->second.user;
  }

  std::optional<domain::User> find_by_email(std::string_view email_canonical) override {
    return find_if([&](const StoredUser& u) { return u.email_canonical == email_canonical; });
  }

  std::optional<domain::User> find_by_username(std::string_view username_canonical) override {
    return find_if([&](const StoredUser& u) { return u.username_canonical == username_canonical; });
  }

  std::optional<domain::User> find_by_phone_index(std::string_view phone_index) override {
    return find_if([&](const StoredUser& u) { return u.user.phone && u.user.phone->blind_index == phone_index; });
  }

  std::optional<domain::User> find_by_verification_id(std::string_view verification_id) override {
    return find_if([&](const StoredUser& u) { return u.user.verification_id == verification_id; });
  }

  bool contact_or_username_taken(std::optional<std::string_view> email_canonical, std::string_view username_canonical,
                                 std::optional<std::string_view> phone_index) override {
    std::lock_guard lock(mutex_);
    check_available();
    ++precheck_calls_;
    return std::any_of(users_.begin(), users_.end(), [&](const auto& entry) {
      const StoredUser& u = entry.second;
      return (email_canonical && u.email_canonical == *email_canonical) || u.username_canonical == username_canonical ||
             (phone_index && u.user.phone && u.user.phone->blind_index == *phone_index);
    });
  }

  std::vector<ports::SealedPhoneRow> phones_not_sealed_under(std::string_view key_id, std::string_view after_user_id,
                                                             std::size_t limit) override {
    std::lock_guard lock(mutex_);
    check_available();
    std::vector<ports::SealedPhoneRow> out;
    for (auto it = users_.upper_bound(std::string(after_user_id)); it != users_.end() && out.size() < limit; ++it)
      if (it->second.user.phone && it->second.user.phone->sealed.key_id != key_id)
        out.push_back({it->first, it->second.user.phone->sealed});
    return out;
  }

  std::size_t reseal_phones(const std::vector<ports::Reseal>& batch) override {
    std::lock_guard lock(mutex_);
    check_available();
    std::size_t changed = 0;
    for (const auto& r : batch) {
      auto it = users_.find(r.user_id);
      if (it == users_.end() || !it->second.user.phone || it->second.user.phone->sealed != r.from) continue;
      it->second.user.phone->sealed = r.to;
      ++changed;
    }
    return changed;
  }

  std::vector<std::pair<std::string, std::size_t>> phone_key_counts() override {
    std::lock_guard lock(mutex_);
    check_available();
    std::map<std::string, std::size_t> counts;
    for (const auto& [id, u] : users_)
      if (u.user.phone) ++counts[u.user.phone->sealed.key_id];
    return {counts.begin(), counts.end()};
  }

  // Test helper: replaces a stored user's sealed phone (a concurrent change, a tampered row).
  void set_sealed_phone(const std::string& user_id, domain::SealedValue sealed) {
    std::lock_guard lock(mutex_);
    users_.at(user_id).user.phone->sealed = std::move(sealed);
  }

  void ping() override {
    std::lock_guard lock(mutex_);
    check_available();
  }

  // --- OutboxStore ---
  // Lease expiry is not modelled by time: call expire_leases() to simulate a crashed relay.
  std::vector<domain::EventEnvelope> claim(std::string_view owner, std::size_t limit,
                                           std::chrono::milliseconds /*lease*/) override {
    std::lock_guard lock(mutex_);
    check_available();
    std::vector<domain::EventEnvelope> out;
    std::set<std::string> blocked;  // aggregates with an older unsent event
    for (auto& row : outbox_) {
      if (out.size() >= limit) break;
      if (row.sent) continue;
      const bool first_unsent = blocked.insert(row.event.aggregate_id).second;
      if (!first_unsent || !row.owner.empty()) continue;
      row.owner = std::string(owner);
      out.push_back(row.event);
    }
    return out;
  }

  void mark_sent(std::string_view owner, const std::vector<std::string>& event_ids) override {
    std::lock_guard lock(mutex_);
    check_available();
    ++mark_sent_calls_;
    for (auto& row : outbox_)
      if (contains(event_ids, row.event.id)) {
        row.sent = true;
        row.owner.clear();
      }
  }

  void release(std::string_view owner, const std::vector<std::string>& event_ids) override {
    std::lock_guard lock(mutex_);
    check_available();
    ++release_calls_;
    for (auto& row : outbox_)
      if (!row.sent && row.owner == owner && contains(event_ids, row.event.id)) {
        row.owner.clear();
        ++row.event.attempts;
      }
  }

  std::size_t pending_count() override {
    std::lock_guard lock(mutex_);
    check_available();
    return static_cast<std::size_t>(std::count_if(outbox_.begin(), outbox_.end(), [](auto& r) { return !r.sent; }));
  }

  // --- test helpers (not part of the ports) ---
  // Adds a user directly, bypassing the outbox (seeding a test).
  void seed(const domain::User& user, std::optional<std::string> email_canonical, std::string username_canonical) {
    std::lock_guard lock(mutex_);
    users_.emplace(user.id, StoredUser{user, std::move(email_canonical), std::move(username_canonical)});
  }
  // Appends an event to the outbox directly (relay tests).
  void add_event(domain::EventEnvelope event) {
    std::lock_guard lock(mutex_);
    outbox_.push_back(OutboxRow{std::move(event), false, {}});
  }
  void expire_leases() {
    std::lock_guard lock(mutex_);
    for (auto& row : outbox_) row.owner.clear();
  }
  std::vector<StoredUser> users() const {
    std::lock_guard lock(mutex_);
    std::vector<StoredUser> out;
    for (const auto& [id, u] : users_) out.push_back(u);
    return out;
  }
  std::vector<OutboxRow> outbox() const {
    std::lock_guard lock(mutex_);
    return outbox_;
  }
  std::size_t user_count() const {
    std::lock_guard lock(mutex_);
    return users_.size();
  }
  int create_calls() const { return create_calls_; }
  int precheck_calls() const { return precheck_calls_; }
  int mark_sent_calls() const { return mark_sent_calls_; }
  int release_calls() const { return release_calls_; }

 private:
  void check_available() const {
    if (unavailable) throw ports::BackendUnavailable("fake user store: unavailable");
  }
  static bool contains(const std::vector<std::string>& ids, const std::string& id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  }
  template <class Pred>
  std::optional<domain::User> find_if(Pred pred) {
    std::lock_guard lock(mutex_);
    check_available();
    for (const auto& [id, u] : users_)
      if (pred(u)) return u.user;
    return std::nullopt;
  }

  mutable std::mutex mutex_;
  std::map<std::string, StoredUser> users_;  // by id
  std::vector<OutboxRow> outbox_;           // in insertion (= commit) order
  std::map<std::string, ports::IdempotencyKeyRecord> keys_;  // by key hash
  int key_lookups_ = 0;
  std::atomic<int> create_calls_{0}, precheck_calls_{0}, mark_sent_calls_{0}, release_calls_{0};
};

// A readable stand-in for the PII cipher: seal() gives "<key>|<context>|<plaintext reversed>" under
// `current` (a key id listed in `keys`); open() checks the key is listed (else KeyUnavailable) and
// the context matches (else std::runtime_error, like a tag mismatch); blind_index() is
// "idx:<purpose>:<value>". Tests look at what use cases seal without any cryptography.
class FakePiiCipher : public ports::PiiCipher {
 public:
  std::string current = "k1";
  std::set<std::string> keys{"k1"};
  bool index_available = true;

  ports::SealedValue seal(std::string_view plaintext, std::string_view context) override {
    std::lock_guard lock(mutex_);
    if (!keys.contains(current)) throw ports::KeyUnavailable("fake pii: no key " + current);
    ++seal_calls;
    return {current, current + "|" + std::string(context) + "|" + std::string(plaintext.rbegin(), plaintext.rend())};
  }
  std::string open(const ports::SealedValue& sealed, std::string_view context) override {
    std::lock_guard lock(mutex_);
    if (!keys.contains(sealed.key_id)) throw ports::KeyUnavailable("fake pii: no key " + sealed.key_id);
    const std::string prefix = sealed.key_id + "|" + std::string(context) + "|";
    if (!sealed.ciphertext.starts_with(prefix)) throw std::runtime_error("fake pii: does not authenticate");
    std::string body = sealed.ciphertext.substr(prefix.size());
    return {body.rbegin(), body.rend()};
  }
  std::string current_key_id() const override {
    std::lock_guard lock(mutex_);
    return current;
  }
  std::string blind_index(std::string_view value, std::string_view purpose) override {
    if (!index_available) throw ports::KeyUnavailable("fake pii: no index key");
    return "idx:" + std::string(purpose) + ":" + std::string(value);
  }

  std::atomic<int> seal_calls{0};

 private:
  mutable std::mutex mutex_;
};

// Deterministic "hashing": hash(pw) = "hash:" + pw. Counts calls so tests can check that the
// same work is done whether or not a user exists.
class FakeHasher : public ports::PasswordHasher {
 public:
  std::string hash(std::string_view password) override {
    ++hash_calls;
    return "hash:" + std::string(password);
  }
  bool verify(std::string_view phc_hash, std::string_view password) override {
    ++verify_calls;
    return phc_hash == "hash:" + std::string(password);
  }
  void verify_dummy(std::string_view /*password*/) override { ++verify_dummy_calls; }

  std::atomic<int> hash_calls{0}, verify_calls{0}, verify_dummy_calls{0};
};

// Tokens are readable: "tok:<subject>:<type>" ("access" for TokenType::access). verify() parses them
// back, so a token of another type gives TokenError::wrong_type and anything else unparsable is
// malformed.
// Tokens listed in `expired` verify as TokenError::expired.
class FakeTokenService : public ports::TokenService {
 public:
  static constexpr std::chrono::sys_seconds kIssuedAt{std::chrono::seconds{1'760'000'000}};

  std::chrono::seconds expires_in{900};

  static std::string type_name(ports::TokenType t) {
    switch (t) {
      case ports::TokenType::access: return "access";
      case ports::TokenType::verification: return "verification";
    }
    return "";
  }
  static std::string make(std::string_view subject, ports::TokenType type) {
    return "tok:" + std::string(subject) + ":" + type_name(type);
  }

  ports::IssuedToken issue(std::string_view subject, ports::TokenType type) override {
    ++issue_calls;
    return {make(subject, type), expires_in};
  }

  domain::Expected<ports::VerifiedToken, ports::TokenError> verify(std::string_view token,
                                                                   ports::TokenType expected) override {
    using E = ports::TokenError;
    constexpr std::string_view prefix = "tok:";
    if (!token.starts_with(prefix)) return E::malformed;
    const auto colon = token.rfind(':');
    if (colon < prefix.size()) return E::malformed;
    const std::string_view subject = token.substr(prefix.size(), colon - prefix.size());
    const std::string_view type = token.substr(colon + 1);
    if (subject.empty() || type.empty()) return E::malformed;
    {
      std::lock_guard lock(mutex_);
      if (expired.contains(std::string(token))) return E::expired;
    }
    if (type != type_name(expected)) return E::wrong_type;
    return ports::VerifiedToken{std::string(subject), expected, kIssuedAt, kIssuedAt + expires_in};
  }

  void expire(std::string token) {
    std::lock_guard lock(mutex_);
    expired.insert(std::move(token));
  }

  std::atomic<int> issue_calls{0};

 private:
  std::mutex mutex_;
  std::set<std::string> expired;
};

// A clock that only moves when told to.
class FixedClock : public ports::Clock {
 public:
  explicit FixedClock(domain::Timestamp t = domain::Timestamp{std::chrono::milliseconds{1'760'891'835'123}})
      : now_(t) {}  // default: 2025-10-19T16:37:15.123Z
  domain::Timestamp now() override {
    std::lock_guard lock(mutex_);
    return now_;
  }
  void set(domain::Timestamp t) {
    std::lock_guard lock(mutex_);
    now_ = t;
  }
  void advance(std::chrono::milliseconds d) {
    std::lock_guard lock(mutex_);
    now_ += d;
  }

 private:
  std::mutex mutex_;
  domain::Timestamp now_;
};

// Ids "<prefix>1", "<prefix>2", … in call order.
class SequentialIds : public ports::IdGenerator {
 public:
  explicit SequentialIds(std::string prefix = "id-") : prefix_(std::move(prefix)) {}
  std::string new_id() override { return prefix_ + std::to_string(++next_); }

 private:
  std::string prefix_;
  std::atomic<long> next_{0};
};

// Counts notify() calls; wait_for() lets a threaded test wait for a count instead of sleeping.
class CountingSignal : public ports::OutboxSignal {
 public:
  void notify() override {
    {
      std::lock_guard lock(mutex_);
      ++count_;
    }
    cv_.notify_all();
  }
  int count() const {
    std::lock_guard lock(mutex_);
    return count_;
  }
  // True once at least `n` notifications happened, false on timeout.
  bool wait_for(int n, std::chrono::milliseconds timeout = std::chrono::seconds{5}) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return count_ >= n; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  int count_ = 0;
};

// Records what it is asked to publish. By default confirms everything; `confirm` can pick the
// ids to confirm, and `unavailable = true` makes publish throw ports::BackendUnavailable.
class FakeEventBus : public ports::EventBus {
 public:
  std::atomic<bool> unavailable{false};
  std::function<bool(const domain::EventEnvelope&)> confirm;  // empty = confirm all

  std::vector<std::string> publish(std::span<const domain::EventEnvelope> events) override {
    std::lock_guard lock(mutex_);
    ++publish_calls_;
    if (unavailable) throw ports::BackendUnavailable("fake event bus: unavailable");
    std::vector<std::string> confirmed;
    for (const auto& e : events) {
      published_.push_back(e);
      if (!confirm || confirm(e)) confirmed.push_back(e.id);
    }
    return confirmed;
  }

  std::vector<domain::EventEnvelope> published() const {
    std::lock_guard lock(mutex_);
    return published_;
  }
  int publish_calls() const {
    std::lock_guard lock(mutex_);
    return publish_calls_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<domain::EventEnvelope> published_;
  int publish_calls_ = 0;
};

// ProcessedEvents in memory; like the database, it outlives the consumer instances using it.
// `fail_next_marks` makes that many try_mark_processed / mark_all_processed calls throw
// ports::BackendUnavailable (the database briefly down); mark_all_processed records all or nothing,
// like the transaction of the real adapters, and counts its calls (`batch_marks`).
class MemoryProcessedEvents : public ports::ProcessedEvents {
 public:
  int fail_next_marks = 0;
  bool try_mark_processed(std::string_view consumer, std::string_view event_id) override {
    std::lock_guard lock(mutex_);
    if (fail_next_marks > 0) {
      --fail_next_marks;
      throw ports::BackendUnavailable("processed events down for a test");
    }
    return ids_.insert(std::string(consumer) + "/" + std::string(event_id)).second;
  }
  std::size_t mark_all_processed(std::string_view consumer, std::span<const std::string> event_ids) override {
    std::lock_guard lock(mutex_);
    ++batch_marks_;
    if (fail_next_marks > 0) {
      --fail_next_marks;
      throw ports::BackendUnavailable("processed events down for a test");
    }
    std::size_t added = 0;
    for (const auto& id : event_ids) added += ids_.insert(std::string(consumer) + "/" + id).second ? 1 : 0;
    return added;
  }
  int batch_marks() const {
    std::lock_guard lock(mutex_);
    return batch_marks_;
  }
  bool is_processed(std::string_view consumer, std::string_view event_id) override {
    std::lock_guard lock(mutex_);
    return ids_.contains(std::string(consumer) + "/" + std::string(event_id));
  }
  // How many (consumer, event id) pairs are recorded.
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return ids_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::set<std::string> ids_;
  int batch_marks_ = 0;
};

// A keyed hash like the real blind index (BLAKE2b keyed with a fixed test key over
// purpose ‖ 0 ‖ value, hex), so hashes are deterministic, differ per purpose and reveal nothing
// readable. seal/open are a reversible fake ("sealed:<context>:<plaintext>", key id "test-key"):
// tests of the blind index only; the real cipher has its own tests.
class HashingPiiCipher : public ports::PiiCipher {
 public:
  ports::SealedValue seal(std::string_view plaintext, std::string_view context) override {
    return {"test-key", "sealed:" + std::string(context) + ":" + std::string(plaintext)};
  }
  std::string open(const ports::SealedValue& sealed, std::string_view context) override {
    const std::string prefix = "sealed:" + std::string(context) + ":";
    if (sealed.key_id != "test-key") throw ports::KeyUnavailable("fake cipher: unknown key id");
    if (!sealed.ciphertext.starts_with(prefix)) throw std::runtime_error("fake cipher: tampered");
    return sealed.ciphertext.substr(prefix.size());
  }
  std::string current_key_id() const override { return "test-key"; }
  std::string blind_index(std::string_view value, std::string_view purpose) override {
    ++index_calls;
    static const unsigned char key[crypto_generichash_KEYBYTES] = "registrar test blind-index key";
    std::string input(purpose);
    input.push_back('\0');
    input.append(value);
    unsigned char out[32];
    crypto_generichash(out, sizeof out, reinterpret_cast<const unsigned char*>(input.data()), input.size(), key,
                       sizeof key);
    static const char* hex = "0123456789abcdef";
    std::string text;
    for (unsigned char c : out) {
      text.push_back(hex[c >> 4]);
      text.push_back(hex[c & 15]);
    }
    return text;
  }
  std::atomic<int> index_calls{0};
};

// Random numbers from a script: uniform() returns `values` in turn (cycling), and records the
// bounds it was asked for.
class ScriptedRandom : public ports::RandomSource {
 public:
  explicit ScriptedRandom(std::vector<std::uint32_t> values = {0}) : values_(std::move(values)) {}
  std::uint32_t uniform(std::uint32_t upper_bound) override {
    std::lock_guard lock(mutex_);
    bounds_.push_back(upper_bound);
    return values_[next_++ % values_.size()];
  }
  std::vector<std::uint32_t> bounds() const {
    std::lock_guard lock(mutex_);
    return bounds_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::uint32_t> values_;
  std::size_t next_ = 0;
  std::vector<std::uint32_t> bounds_;
};

// Records every message sent; `fail` (if set) is called first and may throw to simulate a failure.
// send_all() records the size of each batch (`batches`), then sends its messages one by one.
class RecordingMailSender : public ports::MailSender {
 public:
  std::function<void(const ports::MailMessage&)> fail;
  void send(const ports::MailMessage& message) override {
    if (fail) fail(message);
    std::lock_guard lock(mutex_);
    sent_.push_back(message);
  }
  void send_all(std::span<const ports::MailMessage> messages) override {
    {
      std::lock_guard lock(mutex_);
      batches_.push_back(messages.size());
    }
    ports::MailSender::send_all(messages);
  }
  std::vector<ports::MailMessage> sent() const {
    std::lock_guard lock(mutex_);
    return sent_;
  }
  std::vector<std::size_t> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ports::MailMessage> sent_;
  std::vector<std::size_t> batches_;
};

// A code store that records what it is given: issue() answers `next_issue` (issued by default),
// check() compares with the last issued hash of the session (no rules), consume/withdraw are logged.
class RecordingCodeStore : public ports::VerificationCodeStore {
 public:
  ports::IssueResult next_issue{};
  ports::IssueResult issue(const ports::IssueCodeRequest& request) override {
    std::lock_guard lock(mutex_);
    issued_.push_back(request);
    return next_issue;
  }
  ports::CheckResult check(std::string_view session_id, std::string_view code_hash, int max_wrong_tries) override {
    std::lock_guard lock(mutex_);
    for (auto it = issued_.rbegin(); it != issued_.rend(); ++it)
      if (it->session_id == session_id)
        return {it->code_hash == code_hash ? ports::CheckOutcome::match : ports::CheckOutcome::mismatch,
                max_wrong_tries};
    return {ports::CheckOutcome::missing, 0};
  }
  void consume(std::string_view session_id) override {
    std::lock_guard lock(mutex_);
    consumed_.emplace_back(session_id);
  }
  void withdraw(std::string_view session_id, std::string_view subject_key) override {
    std::lock_guard lock(mutex_);
    withdrawn_.emplace_back(std::string(session_id) + "/" + std::string(subject_key));
  }
  std::vector<ports::IssueCodeRequest> issued() const {
    std::lock_guard lock(mutex_);
    return issued_;
  }
  std::vector<std::string> withdrawn() const {
    std::lock_guard lock(mutex_);
    return withdrawn_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ports::IssueCodeRequest> issued_;
  std::vector<std::string> consumed_, withdrawn_;
};

// Records every notification, in order.
class RecordingNotifier : public ports::Notifier {
 public:
  void notify(const ports::Notification& notification) override {
    std::lock_guard lock(mutex_);
    sent_.push_back(notification);
  }
  std::vector<ports::Notification> sent() const {
    std::lock_guard lock(mutex_);
    return sent_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ports::Notification> sent_;
};

// A job queue for handlers run by hand (RunCreateUserJob): it records update_data() per job id (the
// data a job keeps once it ended) and add(); nothing is ever taken or finished through it.
class RecordingJobQueue : public ports::JobQueue {
 public:
  std::string add(std::string_view data_json, const ports::JobOptions& options) override {
    std::lock_guard lock(mutex_);
    added_.emplace_back(std::string(data_json), options);
    return std::to_string(added_.size());
  }
  std::optional<ports::JobStatus> status(std::string_view) override { return std::nullopt; }
  std::optional<ports::Job> take(std::chrono::milliseconds) override { return std::nullopt; }
  bool extend_lock(const ports::Job&) override {
    if (unavailable) throw ports::BackendUnavailable("fake job queue: unavailable");
    return true;
  }
  bool complete(const ports::Job&, std::string_view) override { return true; }
  bool fail(const ports::Job&, std::string_view, bool) override { return true; }
  void update_data(const ports::Job& job, std::string_view data_json) override {
    if (unavailable) throw ports::BackendUnavailable("fake job queue: unavailable");
    std::lock_guard lock(mutex_);
    updates_.emplace_back(job.id, std::string(data_json));
  }
  std::chrono::milliseconds maintenance() override { return std::chrono::seconds{5}; }

  // The queue's backend down: extend_lock() and update_data() throw ports::BackendUnavailable.
  std::atomic<bool> unavailable{false};

  // (job id, new data) in call order.
  std::vector<std::pair<std::string, std::string>> updates() const {
    std::lock_guard lock(mutex_);
    return updates_;
  }
  std::vector<std::pair<std::string, ports::JobOptions>> added() const {
    std::lock_guard lock(mutex_);
    return added_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> updates_;
  std::vector<std::pair<std::string, ports::JobOptions>> added_;
};

}  // namespace registrar::testing
