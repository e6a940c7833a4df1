// Contract tests of the verification code store (ports/verification_codes.hpp).
//
// Every adapter passes the CodeStoreContract suite, value-parameterized over a factory (kStores
// below): the in-process store, and the Redis store on a private redis-server this test process
// starts on first use (tests/support/redis_server.hpp; a key prefix of its own per test). Time is
// real: rules with short TTLs and windows, and expiry awaited by polling with a deadline.
// NodeLayout covers the Redis drop-in layout (codes written in clear by a Node service).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <mutex>

#include "adapters/inproc/code_store.hpp"
#include "adapters/redis/client.hpp"
#include "adapters/redis/redis_code_store.hpp"
#include "app/verification.hpp"
#include "ports/verification_codes.hpp"
#include "support/fakes.hpp"
#include "support/redis_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using ports::CheckOutcome;
using ports::IssueOutcome;

struct StoreFactory {
  std::string name;
  // A fresh, empty store; nullptr when the backend is not available here.
  std::function<std::shared_ptr<ports::VerificationCodeStore>()> make;
};

void PrintTo(const StoreFactory& f, std::ostream* os) { *os << f.name; }

// Polls `probe` until it holds or `timeout` passes (expiry has no event to wait on).
bool eventually(const std::function<bool()>& probe, std::chrono::milliseconds timeout = 5s) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (probe()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(20ms);
  }
}

class CodeStoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    store_ = GetParam().make();
    if (!store_) GTEST_SKIP() << GetParam().name << " is not available here";
  }
  ports::VerificationCodeStore& store() { return *store_; }

  // Keyed hashes as the use case makes them.
  std::string hash(const std::string& session, const std::string& code) { return app::code_hash(keys_, session, code); }
  std::string subject(const std::string& phone) { return app::phone_subject_key(keys_, phone); }
  // A session id unique to this test run (the Redis server is shared by the tests of the process).
  std::string session(const std::string& name) { return name + "-" + std::to_string(++counter_) + "-" + nonce_; }

  ports::IssueResult issue(const std::string& session, const std::string& code, const std::string& phone,
                           ports::CodeRules rules = relaxed()) {
    return store().issue({.session_id = session, .subject_key = subject(phone), .code_hash = hash(session, code), .rules = rules});
  }
  // No cooldown or cap in the way, a long TTL: for the tests of checking.
  static ports::CodeRules relaxed() {
    ports::CodeRules r;
    r.ttl = 60s;
    r.resend_cooldown = 0ms;
    r.hourly_cap = 1000;
    return r;
  }
  static std::string phone(int n) { return "+3361234" + std::to_string(1000 + n); }

  testing::HashingPiiCipher keys_;
  std::shared_ptr<ports::VerificationCodeStore> store_;
  std::atomic<int> counter_{0};
  std::string nonce_ = std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
};

TEST_P(CodeStoreContract, TheRightCodeMatchesAndStaysUntilConsumed) {
  const auto s = session("match");
  ASSERT_EQ(issue(s, "123456", phone(1)).outcome, IssueOutcome::issued);
  auto r = store().check(s, hash(s, "123456"), 5);
  EXPECT_EQ(r.outcome, CheckOutcome::match);
  EXPECT_EQ(r.tries_left, 5);
  EXPECT_EQ(store().check(s, hash(s, "123456"), 5).outcome, CheckOutcome::match);
}

TEST_P(CodeStoreContract, UnknownSessionsAreMissing) {
  EXPECT_EQ(store().check(session("never"), hash("x", "123456"), 5).outcome, CheckOutcome::missing);
}

TEST_P(CodeStoreContract, AMismatchCountsDownTheTriesLeft) {
  const auto s = session("mismatch");
  ASSERT_EQ(issue(s, "123456", phone(2)).outcome, IssueOutcome::issued);
  for (int left = 4; left >= 1; --left) {
    auto r = store().check(s, hash(s, "000000"), 5);
    EXPECT_EQ(r.outcome, CheckOutcome::mismatch);
    EXPECT_EQ(r.tries_left, left);
  }
  // The right code still matches with one try left, and a right code costs no try.
  auto r = store().check(s, hash(s, "123456"), 5);
  EXPECT_EQ(r.outcome, CheckOutcome::match);
  EXPECT_EQ(r.tries_left, 1);
  EXPECT_EQ(store().check(s, hash(s, "123456"), 5).tries_left, 1);
}

TEST_P(CodeStoreContract, FiveWrongTriesBurnTheCodeAndTheRightOneIsThenRefused) {
  const auto s = session("burn");
  ASSERT_EQ(issue(s, "123456", phone(3)).outcome, IssueOutcome::issued);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(store().check(s, hash(s, "654321"), 5).outcome, CheckOutcome::mismatch);
  EXPECT_EQ(store().check(s, hash(s, "654321"), 5).outcome, CheckOutcome::exhausted);
  auto r = store().check(s, hash(s, "123456"), 5);
  EXPECT_EQ(r.outcome, CheckOutcome::exhausted);
  EXPECT_EQ(r.tries_left, 0);
  EXPECT_EQ(store().check(s, hash(s, "654321"), 5).outcome, CheckOutcome::exhausted);
  // Once consumed, it is gone altogether.
  store().consume(s);
  EXPECT_EQ(store().check(s, hash(s, "123456"), 5).outcome, CheckOutcome::missing);
}

TEST_P(CodeStoreContract, ACodeExpiresAfterItsTtl) {
  const auto s = session("expiry");
  auto rules = relaxed();
  rules.ttl = 300ms;
  ASSERT_EQ(issue(s, "123456", phone(4), rules).outcome, IssueOutcome::issued);
  // (Checked at once: 300 ms is far more than one round trip.)
  EXPECT_EQ(store().check(s, hash(s, "123456"), 5).outcome, CheckOutcome::match);
  EXPECT_TRUE(eventually([&] { return store().check(s, hash(s, "123456"), 5).outcome == CheckOutcome::missing; }));
}

TEST_P(CodeStoreContract, ACodeIsSingleUse) {
  const auto s = session("single-use");
  ASSERT_EQ(issue(s, "123456", phone(5)).outcome, IssueOutcome::issued);
  ASSERT_EQ(store().check(s, hash(s, "123456"), 5).outcome, CheckOutcome::match);
  store().consume(s);
  EXPECT_EQ(store().check(s, hash(s, "123456"), 5).outcome, CheckOutcome::missing);
  EXPECT_NO_THROW(store().consume(s));  // idempotent
}

TEST_P(CodeStoreContract, SessionsAreIndependent) {
  const auto a = session("a"), b = session("b");
  ASSERT_EQ(issue(a, "111111", phone(6)).outcome, IssueOutcome::issued);
  ASSERT_EQ(issue(b, "222222", phone(7)).outcome, IssueOutcome::issued);
  EXPECT_EQ(store().check(a, hash(a, "222222"), 5).outcome, CheckOutcome::mismatch);
  EXPECT_EQ(store().check(b, hash(b, "222222"), 5).tries_left, 5);
  store().consume(a);
  EXPECT_EQ(store().check(b, hash(b, "222222"), 5).outcome, CheckOutcome::match);
}

TEST_P(CodeStoreContract, TheCooldownRefusesASecondCodeToOnePhoneWithRetryAfter) {
  auto rules = relaxed();
  rules.resend_cooldown = 60s;
  const auto first = session("cool-1"), second = session("cool-2");
  ASSERT_EQ(issue(first, "111111", phone(8), rules).outcome, IssueOutcome::issued);
  auto r = issue(second, "222222", phone(8), rules);
  EXPECT_EQ(r.outcome, IssueOutcome::cooldown);
  EXPECT_GE(r.retry_after, 59s);
  EXPECT_LE(r.retry_after, 60s);
  // Nothing was stored for the refused session; the first code is untouched; other phones are free.
  EXPECT_EQ(store().check(second, hash(second, "222222"), 5).outcome, CheckOutcome::missing);
  EXPECT_EQ(store().check(first, hash(first, "111111"), 5).outcome, CheckOutcome::match);
  EXPECT_EQ(issue(session("cool-3"), "333333", phone(9), rules).outcome, IssueOutcome::issued);
}

// issue_all: the same outcomes as issue() one request after the other, in the requests' order.
TEST_P(CodeStoreContract, IssueAllGivesWhatIssuingOneByOneGives) {
  auto rules = relaxed();
  rules.resend_cooldown = 60s;
  const auto a = session("all-a"), b = session("all-b"), c = session("all-c");
  const std::vector<ports::IssueCodeRequest> requests{
      {.session_id = a, .subject_key = subject(phone(20)), .code_hash = hash(a, "111111"), .rules = rules},
      {.session_id = b, .subject_key = subject(phone(20)), .code_hash = hash(b, "222222"), .rules = rules},
      {.session_id = c, .subject_key = subject(phone(21)), .code_hash = hash(c, "333333"), .rules = rules}};
  const auto results = store().issue_all(requests);
  ASSERT_EQ(results.size(), 3u);
  EXPECT_EQ(results[0].outcome, IssueOutcome::issued);
  EXPECT_EQ(results[1].outcome, IssueOutcome::cooldown);  // the same phone, just after the first
  EXPECT_GE(results[1].retry_after, 59s);
  EXPECT_EQ(results[2].outcome, IssueOutcome::issued);
  EXPECT_EQ(store().check(a, hash(a, "111111"), 5).outcome, CheckOutcome::match);
  EXPECT_EQ(store().check(b, hash(b, "222222"), 5).outcome, CheckOutcome::missing);
  EXPECT_EQ(store().check(c, hash(c, "333333"), 5).outcome, CheckOutcome::match);
  EXPECT_TRUE(store().issue_all({}).empty());
}

TEST_P(CodeStoreContract, TheCooldownEnds) {
  auto rules = relaxed();
  rules.resend_cooldown = 300ms;
  ASSERT_EQ(issue(session("cool-end-1"), "111111", phone(10), rules).outcome, IssueOutcome::issued);
  EXPECT_EQ(issue(session("cool-end-2"), "222222", phone(10), rules).outcome, IssueOutcome::cooldown);
  EXPECT_TRUE(eventually([&] { return issue(session("cool-end-3"), "333333", phone(10), rules).outcome == IssueOutcome::issued; }));
}

TEST_P(CodeStoreContract, TheCapRefusesPastNCodesPerWindowWithRetryAfter) {
  auto rules = relaxed();
  rules.hourly_cap = 3;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(issue(session("cap"), "111111", phone(11), rules).outcome, IssueOutcome::issued);
  auto r = issue(session("cap"), "111111", phone(11), rules);
  EXPECT_EQ(r.outcome, IssueOutcome::hourly_cap);
  EXPECT_GE(r.retry_after, 3599s);
  EXPECT_LE(r.retry_after, 3600s);
  EXPECT_EQ(issue(session("cap-other"), "111111", phone(12), rules).outcome, IssueOutcome::issued);
}

TEST_P(CodeStoreContract, TheCapWindowRolls) {
  auto rules = relaxed();
  rules.hourly_cap = 2;
  rules.cap_window = 400ms;
  ASSERT_EQ(issue(session("roll"), "111111", phone(13), rules).outcome, IssueOutcome::issued);
  ASSERT_EQ(issue(session("roll"), "111111", phone(13), rules).outcome, IssueOutcome::issued);
  const auto refused = issue(session("roll"), "111111", phone(13), rules);
  EXPECT_EQ(refused.outcome, IssueOutcome::hourly_cap);
  EXPECT_EQ(refused.retry_after, 1s);  // rounded up to whole seconds, never 0
  EXPECT_TRUE(eventually([&] { return issue(session("roll"), "111111", phone(13), rules).outcome == IssueOutcome::issued; }));
}

TEST_P(CodeStoreContract, WhenCooldownAndCapBothHoldTheLongerWaitIsReported) {
  auto rules = relaxed();
  rules.resend_cooldown = 60s;
  rules.hourly_cap = 1;
  ASSERT_EQ(issue(session("both"), "111111", phone(14), rules).outcome, IssueOutcome::issued);
  auto r = issue(session("both"), "111111", phone(14), rules);
  EXPECT_EQ(r.outcome, IssueOutcome::hourly_cap);
  EXPECT_GE(r.retry_after, 3599s);
}

TEST_P(CodeStoreContract, AWithdrawnCodeIsGoneAndDoesNotCountForThePhone) {
  auto rules = relaxed();
  rules.resend_cooldown = 60s;
  rules.hourly_cap = 1;
  const auto s = session("withdraw");
  ASSERT_EQ(issue(s, "111111", phone(15), rules).outcome, IssueOutcome::issued);
  store().withdraw(s, subject(phone(15)));
  EXPECT_EQ(store().check(s, hash(s, "111111"), 5).outcome, CheckOutcome::missing);
  EXPECT_EQ(issue(session("withdraw-2"), "222222", phone(15), rules).outcome, IssueOutcome::issued);
  EXPECT_NO_THROW(store().withdraw(s, subject(phone(15))));  // idempotent
}

TEST_P(CodeStoreContract, CodesIssuedAgainUnderOneSessionEachCountAndReplaceTheLast) {
  // An email address's code lives under its user ("email-verification:<user id>"): a resend
  // re-issues under the same id, and the cap must still count every code.
  auto rules = relaxed();
  rules.hourly_cap = 3;
  const auto s = session("reissue");
  ASSERT_EQ(issue(s, "111111", phone(16), rules).outcome, IssueOutcome::issued);
  ASSERT_EQ(issue(s, "222222", phone(16), rules).outcome, IssueOutcome::issued);
  EXPECT_EQ(store().check(s, hash(s, "111111"), 5).outcome, CheckOutcome::mismatch);  // replaced
  EXPECT_EQ(store().check(s, hash(s, "222222"), 5).outcome, CheckOutcome::match);
  // A withdrawn re-issue gives back its own count only.
  ASSERT_EQ(issue(s, "333333", phone(16), rules).outcome, IssueOutcome::issued);
  store().withdraw(s, subject(phone(16)));
  ASSERT_EQ(issue(s, "444444", phone(16), rules).outcome, IssueOutcome::issued);
  const auto capped = issue(s, "555555", phone(16), rules);
  EXPECT_EQ(capped.outcome, IssueOutcome::hourly_cap);
  EXPECT_GE(capped.retry_after, 3599s);
  EXPECT_EQ(store().check(s, hash(s, "444444"), 5).outcome, CheckOutcome::match);
}

TEST_P(CodeStoreContract, ConcurrentWrongChecksNeverExceedTheTryLimit) {
  const auto s = session("race");
  ASSERT_EQ(issue(s, "123456", phone(16)).outcome, IssueOutcome::issued);
  constexpr int kThreads = 8, kEach = 6;
  std::atomic<int> mismatches{0}, exhausted{0}, other{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        const auto r = store().check(s, hash(s, std::to_string(100000 + t * 100 + i)), 5);
        (r.outcome == CheckOutcome::mismatch ? mismatches : r.outcome == CheckOutcome::exhausted ? exhausted : other)++;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, 4);  // the 5th wrong try burns the code, whichever thread makes it
  EXPECT_EQ(exhausted, kThreads * kEach - 4);
  EXPECT_EQ(other, 0);
  EXPECT_EQ(store().check(s, hash(s, "123456"), 5).outcome, CheckOutcome::exhausted);
}

TEST_P(CodeStoreContract, ConcurrentRightAndWrongChecksCompareAtMostTheLimit) {
  // Wrong guesses from many threads with the right one among them: whatever the interleaving, at
  // most 4 mismatches are answered before the code burns, and a match is only ever answered
  // while the code was still alive.
  for (int round = 0; round < 5; ++round) {
    const auto s = session("race-right");
    ASSERT_EQ(issue(s, "123456", phone(17)).outcome, IssueOutcome::issued);
    constexpr int kThreads = 8;
    std::atomic<int> mismatches{0}, matches{0};
    std::latch start(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        start.arrive_and_wait();
        const auto code = t == round ? std::string("123456") : std::to_string(200000 + t);
        const auto r = store().check(s, hash(s, code), 5);
        if (r.outcome == CheckOutcome::mismatch) ++mismatches;
        if (r.outcome == CheckOutcome::match) ++matches;
      });
    for (auto& t : threads) t.join();
    EXPECT_LE(mismatches, 4);
    EXPECT_LE(matches, 1);
  }
}

TEST_P(CodeStoreContract, ConcurrentIssuesToOnePhoneHonourTheCooldown) {
  auto rules = relaxed();
  rules.resend_cooldown = 60s;
  constexpr int kThreads = 8;
  std::atomic<int> issued{0}, cooled{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      const auto r = issue(session("race-issue"), "123456", phone(18), rules);
      (r.outcome == IssueOutcome::issued ? issued : cooled)++;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(issued, 1);
  EXPECT_EQ(cooled, kThreads - 1);
}

// ---------------------------------------------------------------------------------------------
// Redis: one private server per test process, started on first use; a key prefix per store.

using testing::shared_redis;

std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return "test-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ":";
}

// A store with the client it uses (the client outlives the store).
template <class Store>
struct WithClient {
  std::unique_ptr<adapters::redis::Client> client;
  std::unique_ptr<Store> store;
};

std::shared_ptr<ports::VerificationCodeStore> make_redis_store() {
  auto* server = shared_redis();
  if (server == nullptr) return nullptr;
  auto holder = std::make_shared<WithClient<adapters::redis::RedisCodeStore>>();
  holder->client = std::make_unique<adapters::redis::Client>(adapters::redis::Url::parse(server->url()));
  holder->store = std::make_unique<adapters::redis::RedisCodeStore>(*holder->client, fresh_prefix());
  return {holder, holder->store.get()};  // aliasing: the store, keeping its client alive
}

// ---------------------------------------------------------------------------------------------
// The Node drop-in layout: codes written in clear by the Node Create_User service under the
// session id (`SET <id> <code> EX 600`), checked and deleted by registrar.

class NodeLayout : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = shared_redis();
    if (server_ == nullptr) GTEST_SKIP() << "redis-server is not installed";
    client_ = std::make_unique<adapters::redis::Client>(adapters::redis::Url::parse(server_->url()));
    store_ = std::make_unique<adapters::redis::RedisNodeCodeStore>(
        *client_, [this](std::string_view session, std::string_view code) { return app::code_hash(keys_, session, code); },
        prefix_);
  }
  // What the Node service does when it sends a code.
  std::string node_sets(const std::string& code, int ex_seconds = 600) {
    const std::string id = "s-" + std::to_string(::getpid()) + "-" + std::to_string(++n_);
    client_->command({"SET", id, code, "EX", std::to_string(ex_seconds)}).throw_if_error();
    return id;
  }
  std::string hash(const std::string& session, const std::string& code) { return app::code_hash(keys_, session, code); }
  bool exists(const std::string& key) { return client_->command({"EXISTS", key}).integer == 1; }

  testing::HashingPiiCipher keys_;
  testing::RedisServer* server_ = nullptr;
  std::string prefix_ = fresh_prefix();
  std::unique_ptr<adapters::redis::Client> client_;
  std::unique_ptr<adapters::redis::RedisNodeCodeStore> store_;
  int n_ = 0;
};

TEST_F(NodeLayout, TheNodeServicesCodeMatchesAndConsumeDeletesItAsTheNodeWorkerWould) {
  const auto id = node_sets("123456");
  auto r = store_->check(id, hash(id, "123456"), 5);
  EXPECT_EQ(r.outcome, CheckOutcome::match);
  EXPECT_EQ(r.tries_left, 5);
  EXPECT_TRUE(exists(id));  // kept until consumed
  store_->consume(id);
  EXPECT_FALSE(exists(id));
  EXPECT_FALSE(exists(store_->tries_key(id)));
  EXPECT_EQ(store_->check(id, hash(id, "123456"), 5).outcome, CheckOutcome::missing);
}

TEST_F(NodeLayout, WrongTriesAreCountedUnderRegistrarsKeyAndTheLimitDeletesTheCode) {
  const auto id = node_sets("123456");
  for (int left = 4; left >= 1; --left) {
    auto r = store_->check(id, hash(id, "000000"), 5);
    EXPECT_EQ(r.outcome, CheckOutcome::mismatch);
    EXPECT_EQ(r.tries_left, left);
  }
  // The tries counter expires with the code.
  const auto pttl = client_->command({"PTTL", store_->tries_key(id)}).integer;
  EXPECT_GT(pttl, 590'000);
  EXPECT_LE(pttl, 600'000);
  EXPECT_EQ(store_->check(id, hash(id, "000000"), 5).outcome, CheckOutcome::exhausted);
  EXPECT_FALSE(exists(id)) << "a burnt code stays readable by a Node worker";
  EXPECT_EQ(store_->check(id, hash(id, "123456"), 5).outcome, CheckOutcome::exhausted);
}

TEST_F(NodeLayout, ConcurrentWrongChecksNeverCompareMoreThanTheLimit) {
  const auto id = node_sets("123456");
  constexpr int kThreads = 8, kEach = 4;
  std::atomic<int> mismatches{0}, exhausted{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        const auto r = store_->check(id, hash(id, std::to_string(300000 + t * 10 + i)), 5);
        if (r.outcome == CheckOutcome::mismatch) ++mismatches;
        if (r.outcome == CheckOutcome::exhausted) ++exhausted;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches, 4);
  EXPECT_EQ(exhausted, kThreads * kEach - 4);
  EXPECT_EQ(store_->check(id, hash(id, "123456"), 5).outcome, CheckOutcome::exhausted);
}

TEST_F(NodeLayout, ARightCodeCostsNoTryAndTheExpiryIsTheWriters) {
  const auto id = node_sets("654321", 1);
  EXPECT_EQ(store_->check(id, hash(id, "000000"), 5).tries_left, 4);
  EXPECT_EQ(store_->check(id, hash(id, "654321"), 5).tries_left, 4);
  EXPECT_EQ(store_->check(id, hash(id, "654321"), 5).tries_left, 4);
  EXPECT_TRUE(eventually([&] { return store_->check(id, hash(id, "654321"), 5).outcome == CheckOutcome::missing; }));
}

TEST_F(NodeLayout, ItIssuesNothing) {
  EXPECT_THROW(store_->issue({.session_id = "s", .subject_key = "k", .code_hash = "h", .rules = {}}), std::logic_error);
  EXPECT_THROW(store_->withdraw("s", "k"), std::logic_error);
}

// Nothing registrar's own layout writes holds a code or a phone in clear.
TEST(RedisCodeStore, KeysAndValuesHoldOnlyHashes) {
  auto* server = shared_redis();
  if (server == nullptr) GTEST_SKIP() << "redis-server is not installed";
  adapters::redis::Client client(adapters::redis::Url::parse(server->url()));
  const auto prefix = fresh_prefix();
  adapters::redis::RedisCodeStore store(client, prefix);
  testing::HashingPiiCipher keys;
  const std::string session = "sess-clear-check", code = "493817", phone = "+33612345678";
  ASSERT_EQ(store.issue({.session_id = session, .subject_key = app::phone_subject_key(keys, phone),
                         .code_hash = app::code_hash(keys, session, code), .rules = {}})
                .outcome,
            IssueOutcome::issued);
  EXPECT_EQ(client.command({"HGET", prefix + "code:" + session, "h"}).str, app::code_hash(keys, session, code));
  // The subject's set counts the issue under "<session>#<µs>".
  const auto members = client.command({"ZRANGE", prefix + "code-subject:" + app::phone_subject_key(keys, phone), "0", "-1"});
  ASSERT_EQ(members.elements.size(), 1u);
  EXPECT_TRUE(members.elements[0].str.starts_with(session + "#")) << members.elements[0].str;
  const auto keys_found = client.command({"KEYS", prefix + "*"});
  ASSERT_EQ(keys_found.elements.size(), 2u);
  for (const auto& k : keys_found.elements) {
    EXPECT_EQ(k.str.find(code), std::string::npos);
    EXPECT_EQ(k.str.find("612345678"), std::string::npos);
    const auto dump = client.command({"DUMP", k.str});
    EXPECT_EQ(dump.str.find(code), std::string::npos) << k.str;
    EXPECT_EQ(dump.str.find("612345678"), std::string::npos) << k.str;
  }
  // The TTL is the rule's.
  const auto pttl = client.command({"PTTL", prefix + "code:" + session}).integer;
  EXPECT_GT(pttl, 590'000);
  EXPECT_LE(pttl, 600'000);
}

std::vector<StoreFactory> stores() {
  std::vector<StoreFactory> list;
  list.push_back({"InProcess", [] { return std::make_shared<adapters::inproc::InProcessCodeStore>(); }});
  list.push_back({"Redis", [] { return make_redis_store(); }});
  return list;
}

INSTANTIATE_TEST_SUITE_P(Stores, CodeStoreContract, ::testing::ValuesIn(stores()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace registrar
