// Unit tests of the abuse limits (app/abuse_limits.hpp): the token-bucket arithmetic, identifier
// canonical forms, the route policy and the login soft lockout over the in-process bucket store,
// all on a fake clock (ports::Clock) that moves only when told.
#include <gtest/gtest.h>

#include <stdexcept>

#include "adapters/inproc/rate_limiter.hpp"
#include "app/abuse_limits.hpp"
#include "main/config_loader.hpp"
#include "ports/errors.hpp"
#include "support/fakes.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using app::AbuseLimits;
using app::IdentifierKind;
using app::LimitedRoute;
using ports::RateLimit;

constexpr std::int64_t kNow = 1'760'891'835'123;

TEST(BucketMaths, AFullBucketGivesItsBurstThenOneTokenPerRefill) {
  const RateLimit limit{3, 1000ms};
  std::int64_t state = 0;  // absent: full
  for (int i = 0; i < 3; ++i) {
    auto step = app::bucket_step(state, kNow, limit, 1);
    ASSERT_TRUE(step.allowed) << i;
    state = step.full_at;
  }
  EXPECT_EQ(state, kNow + 3000);  // empty: full again in burst × refill
  auto refused = app::bucket_step(state, kNow, limit, 1);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.wait_ms, 1000);
  EXPECT_EQ(refused.full_at, state);  // a refusal changes nothing
  // 400 ms later, 600 to go; at 1000 ms one token is back, and only one.
  EXPECT_EQ(app::bucket_step(state, kNow + 400, limit, 1).wait_ms, 600);
  auto again = app::bucket_step(state, kNow + 1000, limit, 1);
  ASSERT_TRUE(again.allowed);
  EXPECT_EQ(app::bucket_step(again.full_at, kNow + 1000, limit, 1).wait_ms, 1000);
}

TEST(BucketMaths, AnIdleBucketRefillsToItsBurstAndNoFurther) {
  const RateLimit limit{2, 500ms};
  std::int64_t state = app::bucket_step(0, kNow, limit, 1).full_at;
  state = app::bucket_step(state, kNow, limit, 1).full_at;
  // An hour later: full, i.e. exactly 2 more, not 7200.
  const std::int64_t later = kNow + 3'600'000;
  auto a = app::bucket_step(state, later, limit, 1);
  auto b = app::bucket_step(a.full_at, later, limit, 1);
  auto c = app::bucket_step(b.full_at, later, limit, 1);
  EXPECT_TRUE(a.allowed);
  EXPECT_TRUE(b.allowed);
  EXPECT_FALSE(c.allowed);
  EXPECT_EQ(c.wait_ms, 500);
}

TEST(BucketMaths, ALookNeedsOneTokenAndTakesNone) {
  const RateLimit limit{1, 2000ms};
  auto look = app::bucket_step(0, kNow, limit, 0);
  ASSERT_TRUE(look.allowed);
  EXPECT_EQ(look.full_at, kNow);  // nothing taken
  auto take = app::bucket_step(0, kNow, limit, 1);
  auto look_empty = app::bucket_step(take.full_at, kNow + 500, limit, 0);
  EXPECT_FALSE(look_empty.allowed);
  EXPECT_EQ(look_empty.wait_ms, 1500);
}

TEST(BucketMaths, RetryAfterIsWholeSecondsRoundedUpAndNeverZero) {
  EXPECT_EQ(app::retry_after_seconds(1ms), 1s);
  EXPECT_EQ(app::retry_after_seconds(999ms), 1s);
  EXPECT_EQ(app::retry_after_seconds(1000ms), 1s);
  EXPECT_EQ(app::retry_after_seconds(1001ms), 2s);
  EXPECT_EQ(app::retry_after_seconds(0ms), 1s);
  EXPECT_EQ(app::retry_after_seconds(900'000ms), 900s);
}

TEST(Identifiers, SpellingsOfOneIdentifierShareTheirCanonicalForm) {
  using app::canonical_identifier;
  EXPECT_EQ(canonical_identifier(IdentifierKind::email, " John.Doe@Example.COM "),
            canonical_identifier(IdentifierKind::email, "john.doe@example.com"));
  EXPECT_EQ(canonical_identifier(IdentifierKind::username, "NewUser"), canonical_identifier(IdentifierKind::username, "newuser"));
  EXPECT_EQ(canonical_identifier(IdentifierKind::phone, "+33 6 12 34 56 78"),
            canonical_identifier(IdentifierKind::phone, "+33612345678"));
  // A login identifier is an email when it has an '@', else a username: as the login looks it up.
  EXPECT_EQ(canonical_identifier(IdentifierKind::login, "John@Example.com"),
            canonical_identifier(IdentifierKind::email, "john@example.com"));
  EXPECT_EQ(canonical_identifier(IdentifierKind::login, "NewUser"), canonical_identifier(IdentifierKind::username, "newuser"));
  // Kinds never collide (a username that reads like a phone number is another bucket).
  EXPECT_NE(canonical_identifier(IdentifierKind::username, "33612345678"),
            canonical_identifier(IdentifierKind::phone, "33612345678"));
  // Invalid values are still folded: spellings of one invalid value share a bucket.
  EXPECT_EQ(canonical_identifier(IdentifierKind::email, " NOT-AN-EMAIL "), canonical_identifier(IdentifierKind::email, "not-an-email"));
}

class AbuseLimitsTest : public ::testing::Test {
 protected:
  AbuseLimitsTest() : clock_(domain::Timestamp{std::chrono::milliseconds{kNow}}), buckets_(clock_, 1000) {}

  static app::AbuseLimitSettings settings() {
    app::AbuseLimitSettings s;
    s.register_user = {{3, 1000ms}, {2, 1000ms}};
    s.login = {{100, 10ms}, {50, 10ms}};
    s.codes = {{2, 1000ms}, {}};
    s.jobs = {{5, 1000ms}, {1, 60'000ms}};
    s.lockout = {3, 5000ms};  // 3 failures free, then one try per 5 s
    return s;
  }
  AbuseLimits make(app::AbuseLimitSettings s = settings()) { return AbuseLimits(buckets_, keys_, s); }
  std::string id(std::string_view email) { return app::canonical_identifier(IdentifierKind::login, email); }

  testing::FixedClock clock_;
  testing::HashingPiiCipher keys_;
  adapters::inproc::InProcessRateLimiter buckets_;
};

TEST_F(AbuseLimitsTest, ThePerIpBucketRefusesPastItsBurstWithTheWaitAndRefillsOnTheClock) {
  auto limits = make();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "203.0.113.7", {}).allowed) << i;
  auto refused = limits.admit(LimitedRoute::register_user, "203.0.113.7", {});
  EXPECT_FALSE(refused.allowed);
  EXPECT_FALSE(refused.locked_out);
  EXPECT_EQ(refused.retry_after, 1000ms);
  // Another client is not affected; nor is another route.
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "203.0.113.8", {}).allowed);
  EXPECT_TRUE(limits.admit(LimitedRoute::codes, "203.0.113.7", {}).allowed);
  clock_.advance(1000ms);
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "203.0.113.7", {}).allowed);
  EXPECT_FALSE(limits.admit(LimitedRoute::register_user, "203.0.113.7", {}).allowed);
}

TEST_F(AbuseLimitsTest, IdentifierBucketsFollowTheIdentifierAcrossAddressesAndAreAllOrNothing) {
  auto limits = make();
  const auto email = app::canonical_identifier(IdentifierKind::email, "Victim@Example.com");
  const auto user = app::canonical_identifier(IdentifierKind::username, "victim");
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.1", {email, user}).allowed);
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.2", {email}).allowed);
  // The email's bucket is empty: refused from a third address, and the username's and the
  // address's buckets gave nothing (all or nothing).
  EXPECT_FALSE(limits.admit(LimitedRoute::register_user, "198.51.100.3", {app::canonical_identifier(IdentifierKind::email, "victim@example.com"), user}).allowed);
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.3", {user}).allowed);
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.3", {}).allowed);
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.3", {}).allowed);
  EXPECT_FALSE(limits.admit(LimitedRoute::register_user, "198.51.100.3", {}).allowed);
}

// A sign-up retried through an outage (each try answered 503) must not use up its own email's
// and username's budget: not_served() gives those buckets back; the address's bucket stays charged.
TEST_F(AbuseLimitsTest, RequestsNotServedGiveTheIdentifiersTheirBudgetBackButNotTheAddress) {
  auto limits = make();
  const auto email = app::canonical_identifier(IdentifierKind::email, "retry@example.com");
  const auto user = app::canonical_identifier(IdentifierKind::username, "retrier");
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.9", {email, user}).allowed) << i;
    limits.not_served(LimitedRoute::register_user, {email, user});  // the database was down
  }
  // Two tries spent the per-identifier burst (2) but not_served() refilled it; the address's
  // bucket (3) has one token left.
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.9", {email, user}).allowed);
  EXPECT_FALSE(limits.admit(LimitedRoute::register_user, "198.51.100.9", {}).allowed) << "the address stays charged";
  // Without not_served() the identifiers' burst of 2 holds.
  const auto other = app::canonical_identifier(IdentifierKind::email, "other@example.com");
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.10", {other}).allowed);
  EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "198.51.100.11", {other}).allowed);
  EXPECT_FALSE(limits.admit(LimitedRoute::register_user, "198.51.100.12", {other}).allowed);
}

TEST_F(AbuseLimitsTest, AnExemptClientTakesNothingFromThePerIpBucketButStillFromIdentifiers) {
  auto limits = make();
  const auto phone = app::canonical_identifier(IdentifierKind::phone, "+33612345678");
  EXPECT_TRUE(limits.admit(LimitedRoute::jobs, "", {phone}).allowed);
  EXPECT_FALSE(limits.admit(LimitedRoute::jobs, "", {phone}).allowed);  // the phone's bucket: 1 per minute
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(limits.admit(LimitedRoute::jobs, "", {}).allowed) << i;
}

TEST_F(AbuseLimitsTest, ADisabledLimitTakesNothing) {
  auto s = settings();
  s.register_user = {{}, {}};
  auto limits = make(s);
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(limits.admit(LimitedRoute::register_user, "203.0.113.7", {id("a@b.io")}).allowed);
  EXPECT_EQ(buckets_.size(), 0u);
}

TEST_F(AbuseLimitsTest, BucketNamesHoldNoIdentifierOrAddress) {
  auto limits = make();
  for (const auto& key : {limits.ip_key(LimitedRoute::login, "203.0.113.7"),
                          limits.identifier_key(LimitedRoute::login, id("victim@example.com")),
                          limits.lockout_key(id("victim@example.com"), "203.0.113.7")}) {
    EXPECT_EQ(key.find("203.0.113"), std::string::npos) << key;
    EXPECT_EQ(key.find("victim"), std::string::npos) << key;
    EXPECT_EQ(key.find("example"), std::string::npos) << key;
    EXPECT_TRUE(key.starts_with("rl:login:")) << key;
  }
}

TEST_F(AbuseLimitsTest, TheLockoutStartsAfterTheFreeFailuresAndNeverKeepsAnyoneWaitingLongerThanItsMaximum) {
  auto limits = make();
  const auto victim = id("victim@example.com");
  const std::string attacker = "203.0.113.66", owner = "198.51.100.1";
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limits.admit(LimitedRoute::login, attacker, {victim}).allowed) << i;
    limits.login_failed(victim, attacker);
  }
  // Locked: the attacker's next try is refused before any password is checked, with the wait.
  auto locked = limits.admit(LimitedRoute::login, attacker, {victim});
  EXPECT_FALSE(locked.allowed);
  EXPECT_TRUE(locked.locked_out);
  EXPECT_EQ(locked.retry_after, 5000ms);
  // The owner, from their own address, is not locked out by the attacker's failures at all.
  EXPECT_TRUE(limits.admit(LimitedRoute::login, owner, {victim}).allowed);
  // The attacker keeps trying as soon as a try comes back: one guess per maximum (5 s), and the
  // wait is never longer than that.
  for (int round = 0; round < 20; ++round) {
    auto d = limits.admit(LimitedRoute::login, attacker, {victim});
    ASSERT_FALSE(d.allowed);
    ASSERT_LE(d.retry_after, 5000ms);
    clock_.advance(d.retry_after);
    ASSERT_TRUE(limits.admit(LimitedRoute::login, attacker, {victim}).allowed) << round;
    limits.login_failed(victim, attacker);
  }
  // Someone behind the attacker's address (a shared NAT) waits at most the maximum, then gets a try.
  auto shared = limits.admit(LimitedRoute::login, attacker, {victim});
  ASSERT_FALSE(shared.allowed);
  EXPECT_LE(shared.retry_after, 5000ms);
  clock_.advance(shared.retry_after);
  ASSERT_TRUE(limits.admit(LimitedRoute::login, attacker, {victim}).allowed);
  // A success resets the count: the free failures are back.
  limits.login_succeeded(victim, attacker);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(limits.admit(LimitedRoute::login, attacker, {victim}).allowed) << i;
    limits.login_failed(victim, attacker);
  }
  EXPECT_FALSE(limits.admit(LimitedRoute::login, attacker, {victim}).allowed);
  // Other accounts from the attacker's address are not affected.
  EXPECT_TRUE(limits.admit(LimitedRoute::login, attacker, {id("other@example.com")}).allowed);
}

TEST_F(AbuseLimitsTest, ManyAddressesTogetherAreCappedByTheIdentifiersRate) {
  auto s = settings();
  s.login = {{}, {10, 360'000ms}};  // 10 tries per hour per identifier, from anywhere
  auto limits = make(s);
  const auto victim = id("victim@example.com");
  int tried = 0;
  for (int i = 0; i < 100; ++i) {
    const std::string ip = "203.0.113." + std::to_string(i);
    if (limits.admit(LimitedRoute::login, ip, {victim}).allowed) {
      ++tried;
      limits.login_failed(victim, ip);
    }
  }
  EXPECT_EQ(tried, 10);
}

TEST_F(AbuseLimitsTest, ALockedOutRequestTakesNothingFromTheRateBuckets) {
  auto s = settings();
  s.login = {{5, 60'000ms}, {}};
  s.lockout = {1, 60'000ms};
  auto limits = make(s);
  const auto victim = id("victim");
  ASSERT_TRUE(limits.admit(LimitedRoute::login, "203.0.113.9", {victim}).allowed);  // ip: 4 left
  limits.login_failed(victim, "203.0.113.9");
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(limits.admit(LimitedRoute::login, "203.0.113.9", {victim}).locked_out);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(limits.admit(LimitedRoute::login, "203.0.113.9", {id("other")}).allowed) << i;
  EXPECT_FALSE(limits.admit(LimitedRoute::login, "203.0.113.9", {id("other")}).allowed);
}

TEST_F(AbuseLimitsTest, NoLockoutWhenItIsOff) {
  auto s = settings();
  s.lockout = {};
  auto limits = make(s);
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(limits.admit(LimitedRoute::login, "203.0.113.9", {id("victim")}).allowed) << i;
    limits.login_failed(id("victim"), "203.0.113.9");
    clock_.advance(20ms);
  }
}

// ---- the settings ----

config::Settings load_abuse(std::vector<std::string> args, const config::Environment& env = {}) {
  std::vector<const char*> argv{"registrar", "serve"};
  for (const auto& a : args) argv.push_back(a.c_str());
  auto result = config::load_settings(static_cast<int>(argv.size()), argv.data(), env, {});
  if (auto* exit = std::get_if<config::Exit>(&result)) {
    ADD_FAILURE() << "exited " << exit->code << ": " << exit->err;
    return {};
  }
  return std::get<config::Loaded>(result).settings;
}

std::string abuse_error(std::vector<std::string> args) {
  std::vector<const char*> argv{"registrar", "serve"};
  for (const auto& a : args) argv.push_back(a.c_str());
  auto result = config::load_settings(static_cast<int>(argv.size()), argv.data(), {}, {});
  auto* exit = std::get_if<config::Exit>(&result);
  if (exit == nullptr) return "no error";
  EXPECT_EQ(exit->code, 2);
  return exit->err;
}

TEST(AbuseLimitSettings, TheDefaultsAreOnAndWithinAsvsHundredFailuresAnHour) {
  auto s = load_abuse({});
  EXPECT_TRUE(s.abuse.enabled);
  EXPECT_EQ(s.abuse.register_ip, (RateLimit{20, 180'000ms}));
  EXPECT_EQ(s.abuse.login_id, (RateLimit{30, 120'000ms}));
  EXPECT_EQ(s.abuse.lockout_failures, 10u);
  EXPECT_EQ(s.abuse.lockout_max, 900'000ms);
  EXPECT_EQ(s.abuse.redis_down, config::AbuseLimits::RedisDown::local);
  // Failed tries on one account in an hour, from any number of addresses: the identifier's burst
  // and an hour of refill.
  EXPECT_LE(s.abuse.login_id.burst + 3'600'000 / s.abuse.login_id.refill.count(), 100);
}

TEST(AbuseLimitSettings, RatesAreNPerSecondsOrZeroAndComeFromFlagsOrTheEnvironment) {
  auto s = load_abuse({"--rate-limit-login-ip", "5/0.5", "--rate-limit-jobs-id", "0", "--login-lockout-max", "1.5",
                       "--rate-limit-redis-down", "closed", "--rate-limit-max-keys", "500"},
                      {{"REGISTRAR_RATE_LIMIT_REGISTER_ID", "3/60"}, {"REGISTRAR_RATE_LIMITS", "false"}});
  EXPECT_EQ(s.abuse.login_ip, (RateLimit{5, 100ms}));
  EXPECT_FALSE(s.abuse.jobs_id.enabled());
  EXPECT_EQ(s.abuse.lockout_max, 1500ms);
  EXPECT_EQ(s.abuse.register_id, (RateLimit{3, 20'000ms}));
  EXPECT_FALSE(s.abuse.enabled);
  EXPECT_EQ(s.abuse.redis_down, config::AbuseLimits::RedisDown::closed);
  EXPECT_EQ(s.abuse.max_keys, 500u);
}

TEST(AbuseLimitSettings, BadValuesNameTheFlagAndTheVariable) {
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"rate-limit-login-ip", "ten"}, {"rate-limit-login-ip", "5/0"}, {"rate-limit-register-ip", "0/60"},
           {"rate-limit-codes-ip", "2000/1"}, {"rate-limit-jobs-ip", "5/1.2345"}, {"login-lockout-max", "0"},
           {"login-lockout-failures", "-1"}, {"rate-limit-redis-down", "maybe"}, {"rate-limit-max-keys", "5"}}) {
    std::string env = "REGISTRAR_";
    for (char c : flag) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    const auto err = abuse_error({"--" + flag, value});
    EXPECT_NE(err.find("--" + flag), std::string::npos) << err;
    EXPECT_NE(err.find(env), std::string::npos) << err;
  }
}

// ---- the in-process store's memory bound ----

TEST(InProcessRateLimiter, RefilledBucketsAreForgottenAndTheKeyCountIsCapped) {
  testing::FixedClock clock(domain::Timestamp{std::chrono::milliseconds{kNow}});
  adapters::inproc::InProcessRateLimiter buckets(clock, 100);
  const RateLimit limit{2, 1000ms};
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(buckets.acquire({{"k" + std::to_string(i), limit, 1}}).allowed);
  EXPECT_EQ(buckets.size(), 100u);  // the least recently used went
  // Once refilled, idle buckets go as the store is used.
  clock.advance(2000ms);
  for (int i = 0; i < 200; ++i) buckets.acquire({{"x", limit, 0}});
  EXPECT_EQ(buckets.size(), 0u);
}

TEST(InProcessRateLimiter, TheMostRecentlyUsedBucketsAreKept) {
  testing::FixedClock clock(domain::Timestamp{std::chrono::milliseconds{kNow}});
  adapters::inproc::InProcessRateLimiter buckets(clock, 100);
  const RateLimit limit{1, 60'000ms};
  ASSERT_TRUE(buckets.acquire({{"attacker", limit, 1}}).allowed);
  for (int i = 0; i < 98; ++i) buckets.acquire({{"k" + std::to_string(i), limit, 1}});
  EXPECT_FALSE(buckets.acquire({{"attacker", limit, 1}}).allowed);  // touched: now the newest
  for (int i = 98; i < 197; ++i) buckets.acquire({{"k" + std::to_string(i), limit, 1}});
  EXPECT_FALSE(buckets.acquire({{"attacker", limit, 1}}).allowed);
}

// ---- the store-down policies ----

class DownLimiter : public ports::RateLimiter {
 public:
  bool down = true;
  ports::RateDecision acquire(const std::vector<ports::RateCharge>&) override {
    if (down) throw ports::BackendUnavailable("redis: connection refused");
    return {false, 7000ms};
  }
  void reset(const std::string&) override {
    if (down) throw ports::BackendUnavailable("redis: connection refused");
  }
};

TEST(FailoverRateLimiter, EachPolicyDecidesWhileTheStoreIsDownAndTheStoreDecidesOnceBack) {
  testing::FixedClock clock(domain::Timestamp{std::chrono::milliseconds{kNow}});
  const std::vector<ports::RateCharge> one{{"k", {1, 60'000ms}, 1}};
  for (auto policy : {app::StoreDownPolicy::local, app::StoreDownPolicy::open, app::StoreDownPolicy::closed}) {
    DownLimiter shared;
    adapters::inproc::InProcessRateLimiter local(clock, 100);
    std::vector<bool> changes;
    app::FailoverRateLimiter limiter(shared, local, policy, [&](bool down, std::string_view) { changes.push_back(down); });
    switch (policy) {
      case app::StoreDownPolicy::local:
        EXPECT_TRUE(limiter.acquire(one).allowed);
        EXPECT_FALSE(limiter.acquire(one).allowed);  // the local bucket limits meanwhile
        break;
      case app::StoreDownPolicy::open:
        for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.acquire(one).allowed);
        break;
      case app::StoreDownPolicy::closed:
        EXPECT_THROW(limiter.acquire(one), ports::BackendUnavailable);
        EXPECT_THROW(limiter.acquire(one), ports::BackendUnavailable);
        break;
    }
    shared.down = false;
    auto d = limiter.acquire(one);
    EXPECT_FALSE(d.allowed);
    EXPECT_EQ(d.retry_after, 7000ms);  // the shared store's answer
    EXPECT_EQ(changes, (std::vector<bool>{true, false}));  // one report per outage, one when back
  }
}

}  // namespace
}  // namespace registrar
