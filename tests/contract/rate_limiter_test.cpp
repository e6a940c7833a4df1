// Contract tests of the abuse-limit bucket store (ports/rate_limiter.hpp).
//
// Every adapter passes the RateLimiterContract suite, value-parameterized over a factory: the
// in-process store, and the Redis store on a private redis-server this test process starts on
// first use (tests/support/redis_server.hpp; a key prefix of its own per test). Both take the time
// from the caller's clock, so both run on the same fake clock and the cases are exact. RedisLimits
// covers what only Redis has: key names, TTLs, the script cache, a server that goes away.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/inproc/rate_limiter.hpp"
#include "adapters/redis/client.hpp"
#include "adapters/redis/redis_rate_limiter.hpp"
#include "app/abuse_limits.hpp"
#include "ports/errors.hpp"
#include "ports/rate_limiter.hpp"
#include "support/fakes.hpp"
#include "support/redis_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using ports::RateCharge;
using ports::RateLimit;

using testing::shared_redis;

std::string fresh_prefix() {
  static std::atomic<int> n{0};
  return "rl-test-" + std::to_string(::getpid()) + "-" + std::to_string(++n) + ":";
}

struct LimiterFactory {
  std::string name;
  // A fresh, empty store on `clock`; nullptr when the backend is not available here.
  std::function<std::shared_ptr<ports::RateLimiter>(ports::Clock& clock)> make;
};

void PrintTo(const LimiterFactory& f, std::ostream* os) { *os << f.name; }

struct RedisHolder {
  std::unique_ptr<adapters::redis::Client> client;
  std::unique_ptr<adapters::redis::RedisRateLimiter> limiter;
};

std::shared_ptr<ports::RateLimiter> make_redis(ports::Clock& clock) {
  auto* server = shared_redis();
  if (server == nullptr) return nullptr;
  auto holder = std::make_shared<RedisHolder>();
  holder->client = std::make_unique<adapters::redis::Client>(adapters::redis::Url::parse(server->url()));
  holder->limiter = std::make_unique<adapters::redis::RedisRateLimiter>(*holder->client, clock, fresh_prefix());
  return {holder, holder->limiter.get()};
}

class RateLimiterContract : public ::testing::TestWithParam<LimiterFactory> {
 protected:
  void SetUp() override {
    limiter_ = GetParam().make(clock_);
    if (!limiter_) GTEST_SKIP() << GetParam().name << " is not available here";
  }
  ports::RateLimiter& limiter() { return *limiter_; }
  bool take(const std::string& key, RateLimit limit, unsigned cost = 1) { return limiter().acquire({{key, limit, cost}}).allowed; }

  testing::FixedClock clock_{domain::Timestamp{std::chrono::milliseconds{1'760'891'835'123}}};
  std::shared_ptr<ports::RateLimiter> limiter_;
};

TEST_P(RateLimiterContract, ABurstThenOneTokenPerRefillWithTheExactWait) {
  const RateLimit limit{3, 1000ms};
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(take("a", limit)) << i;
  auto refused = limiter().acquire({{"a", limit, 1}});
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 1000ms);
  clock_.advance(250ms);
  EXPECT_EQ(limiter().acquire({{"a", limit, 1}}).retry_after, 750ms);
  clock_.advance(750ms);
  EXPECT_TRUE(take("a", limit));
  EXPECT_FALSE(take("a", limit));
  // Long idle: full again, and no fuller than the burst.
  clock_.advance(3'600'000ms);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(take("a", limit)) << i;
  EXPECT_FALSE(take("a", limit));
}

TEST_P(RateLimiterContract, BucketsAreIndependent) {
  const RateLimit limit{1, 60'000ms};
  EXPECT_TRUE(take("a", limit));
  EXPECT_FALSE(take("a", limit));
  EXPECT_TRUE(take("b", limit));
}

TEST_P(RateLimiterContract, SeveralBucketsAreTakenFromAllOrNothingAndTheWaitIsTheLongest) {
  const RateLimit fast{2, 1000ms}, slow{1, 5000ms};
  ASSERT_TRUE(limiter().acquire({{"ip", fast, 1}, {"id", slow, 1}}).allowed);
  auto refused = limiter().acquire({{"ip", fast, 1}, {"id", slow, 1}});
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 5000ms);
  // The refusal took nothing from "ip": it still has its second token.
  EXPECT_TRUE(take("ip", fast));
  EXPECT_FALSE(take("ip", fast));
}

TEST_P(RateLimiterContract, ALookTakesNothingAndNeedsAWholeToken) {
  const RateLimit limit{2, 1000ms};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(take("l", limit, 0));
  ASSERT_TRUE(take("l", limit));
  ASSERT_TRUE(take("l", limit));
  auto look = limiter().acquire({{"l", limit, 0}});
  EXPECT_FALSE(look.allowed);
  EXPECT_EQ(look.retry_after, 1000ms);
}

TEST_P(RateLimiterContract, ResetFillsTheBucket) {
  const RateLimit limit{2, 60'000ms};
  ASSERT_TRUE(take("r", limit));
  ASSERT_TRUE(take("r", limit));
  ASSERT_FALSE(take("r", limit));
  limiter().reset("r");
  EXPECT_TRUE(take("r", limit));
  EXPECT_TRUE(take("r", limit));
  EXPECT_FALSE(take("r", limit));
  limiter().reset("never-used");  // harmless
}

TEST_P(RateLimiterContract, DisabledLimitsAreIgnored) {
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(limiter().acquire({{"off", {}, 1}, {"on", {100, 1ms}, 1}}).allowed);
  EXPECT_TRUE(limiter().acquire({}).allowed);
}

TEST_P(RateLimiterContract, ConcurrentTakesNeverExceedTheBurst) {
  const RateLimit limit{25, 60'000ms};
  constexpr int kThreads = 8, kEach = 20;
  std::atomic<int> allowed{0};
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i)
        if (take("c", limit)) ++allowed;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(allowed.load(), 25);
}

std::vector<LimiterFactory> limiters() {
  return {{"InProcess", [](ports::Clock& clock) { return std::make_shared<adapters::inproc::InProcessRateLimiter>(clock, 1000); }},
          {"Redis", [](ports::Clock& clock) { return make_redis(clock); }}};
}

INSTANTIATE_TEST_SUITE_P(Stores, RateLimiterContract, ::testing::ValuesIn(limiters()),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Redis only.

class RedisLimits : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::RedisServer::available()) GTEST_SKIP() << "redis-server is not installed";
  }
  testing::FixedClock clock_{domain::Timestamp{std::chrono::milliseconds{1'760'891'835'123}}};
};

TEST_F(RedisLimits, KeysCarryThePrefixAndExpireWhenTheBucketWouldBeFull) {
  auto* server = shared_redis();
  adapters::redis::Client client(adapters::redis::Url::parse(server->url()));
  const std::string prefix = fresh_prefix();
  adapters::redis::RedisRateLimiter limiter(client, clock_, prefix);
  ASSERT_TRUE(limiter.acquire({{"rl:login:ip:abc", {5, 2000ms}, 1}}).allowed);
  ASSERT_TRUE(limiter.acquire({{"rl:login:ip:abc", {5, 2000ms}, 1}}).allowed);
  auto keys = client.command({"KEYS", prefix + "*"});
  ASSERT_EQ(keys.elements.size(), 1u);
  EXPECT_EQ(keys.elements[0].str, prefix + "rl:login:ip:abc");
  // Two tokens out: full again in 4 s, and the key goes then (at most burst × refill).
  const auto pttl = client.command({"PTTL", prefix + "rl:login:ip:abc"}).integer;
  EXPECT_GT(pttl, 3000);
  EXPECT_LE(pttl, 4000);
  // A look stores nothing.
  ASSERT_TRUE(limiter.acquire({{"rl:other", {5, 2000ms}, 0}}).allowed);
  EXPECT_EQ(client.command({"EXISTS", prefix + "rl:other"}).integer, 0);
}

TEST_F(RedisLimits, TwoClientsShareOneBudget) {
  auto* server = shared_redis();
  adapters::redis::Client a(adapters::redis::Url::parse(server->url())), b(adapters::redis::Url::parse(server->url()));
  const std::string prefix = fresh_prefix();
  adapters::redis::RedisRateLimiter la(a, clock_, prefix), lb(b, clock_, prefix);
  const RateLimit limit{4, 60'000ms};
  int allowed = 0;
  for (int i = 0; i < 10; ++i) {
    allowed += la.acquire({{"shared", limit, 1}}).allowed;
    allowed += lb.acquire({{"shared", limit, 1}}).allowed;
  }
  EXPECT_EQ(allowed, 4);
}

TEST_F(RedisLimits, AFlushedScriptCacheIsReloaded) {
  auto* server = shared_redis();
  adapters::redis::Client client(adapters::redis::Url::parse(server->url()));
  adapters::redis::RedisRateLimiter limiter(client, clock_, fresh_prefix());
  ASSERT_TRUE(limiter.acquire({{"f", {2, 1000ms}, 1}}).allowed);
  server->cli({"SCRIPT", "FLUSH"});
  EXPECT_TRUE(limiter.acquire({{"f", {2, 1000ms}, 1}}).allowed);  // NOSCRIPT → EVAL
  EXPECT_FALSE(limiter.acquire({{"f", {2, 1000ms}, 1}}).allowed);
}

TEST_F(RedisLimits, AStoppedServerIsAnOutageAndEachPolicyAnswersIt) {
  testing::RedisServer server;  // its own: this test stops it
  adapters::redis::ClientOptions options;
  options.connect_timeout = 500ms;
  options.command_timeout = 1000ms;
  options.reconnect_min = 10ms;
  options.reconnect_max = 50ms;
  adapters::redis::Client client(adapters::redis::Url::parse(server.url()), options);
  adapters::redis::RedisRateLimiter shared(client, clock_, fresh_prefix());
  const std::vector<RateCharge> one{{"k", {1, 60'000ms}, 1}};
  ASSERT_TRUE(shared.acquire(one).allowed);
  server.stop();
  EXPECT_THROW(shared.acquire(one), ports::BackendUnavailable);

  adapters::inproc::InProcessRateLimiter local(clock_, 100);
  app::FailoverRateLimiter local_policy(shared, local, app::StoreDownPolicy::local);
  EXPECT_TRUE(local_policy.acquire(one).allowed);
  EXPECT_FALSE(local_policy.acquire(one).allowed);
  app::FailoverRateLimiter open_policy(shared, local, app::StoreDownPolicy::open);
  EXPECT_TRUE(open_policy.acquire(one).allowed);
  EXPECT_TRUE(open_policy.acquire(one).allowed);
  app::FailoverRateLimiter closed_policy(shared, local, app::StoreDownPolicy::closed);
  EXPECT_THROW(closed_policy.acquire(one), ports::BackendUnavailable);

  // Back: the shared bucket decides again (a fresh server: it starts full).
  server.start();
  bool back = false;
  for (int i = 0; i < 200 && !back; ++i) {
    try {
      back = closed_policy.acquire(one).allowed;
    } catch (const ports::BackendUnavailable&) {
      std::this_thread::sleep_for(20ms);  // the client's reconnect: no event to wait on from here
    }
  }
  EXPECT_TRUE(back);
  EXPECT_FALSE(closed_policy.acquire(one).allowed);
}

}  // namespace
}  // namespace registrar
