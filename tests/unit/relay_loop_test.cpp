// The relay loop (OutboxRelayLoop) over the real SQLite outbox, delivering through the in-process
// bus: draining, retries, wake-ups, linger, back-off, stop. Threaded tests wait on conditions with
// timeouts (never on sleeps) for what they expect to happen.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "adapters/inproc/event_bus.hpp"
#include "adapters/relay/outbox_relay_loop.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"
#include "support/recording_consumer.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::inproc::InProcessEventBus;
using adapters::relay::OutboxRelayLoop;
using adapters::relay::RelayLoopOptions;
using testing::BatchingConsumer;
using testing::CapturedLog;
using testing::event;
using testing::ids_of;
using testing::RecordingConsumer;
using testing::TempDir;

constexpr auto kTimeout = 10s;  // generous: only reached when a test fails

class RelayLoopTest : public ::testing::Test {
 protected:
  RelayLoopTest()
      : db_(dir_.path() / "registrar.db"), users_((adapters::sqlite::apply_migrations(db_), db_)), outbox_(db_) {}

  void create_users(int n) {
    for (int i = 0; i < n; ++i) {
      std::string key = std::to_string(next_++);
      domain::User u;
      u.id = "user-" + key;
      u.email = key + "@example.com";
      u.username = "user" + key;
      u.password_hash = "$argon2id$…";
      auto e = event("event-" + key, u.id);
      ASSERT_EQ(users_.create_user(u, u.email, u.username, e), ports::CreateUserOutcome::created);
    }
  }

  static RelayLoopOptions fast_options() {
    RelayLoopOptions o;
    o.relay.owner = "test-relay";
    o.relay.batch_size = 8;
    o.poll_interval = std::chrono::hours(1);  // anything delivered came from start/notify/drain
    o.backoff_initial = 5ms;
    o.backoff_max = 50ms;
    return o;
  }

  CapturedLog log_{spdlog::level::info, 1000};  // a small ring: each test logs a few lines
  TempDir dir_;
  adapters::sqlite::SqliteDatabase db_;
  adapters::sqlite::SqliteUserStore users_;
  adapters::sqlite::SqliteOutboxStore outbox_;
  int next_ = 1;
};

TEST_F(RelayLoopTest, DeliversEachEventOnceToEachConsumerDrainingFullBatches) {
  create_users(20);  // more than two full batches of 8
  RecordingConsumer audit("audit"), welcome("welcome");
  InProcessEventBus bus({audit, welcome}, log_.logger);
  OutboxRelayLoop loop(outbox_, bus, log_.logger, fast_options());
  loop.start();
  ASSERT_TRUE(audit.wait_for_handled(20));
  ASSERT_TRUE(welcome.wait_for_handled(20));
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  loop.stop();

  for (auto* c : {&audit, &welcome}) {
    auto counts = c->handled_count();
    EXPECT_EQ(counts.size(), 20u);
    for (auto& [id, n] : counts) EXPECT_EQ(n, 1) << c->name() << " " << id;
  }
  EXPECT_EQ(ids_of(audit.handled()).front(), "event-1");  // outbox order
  EXPECT_EQ(ids_of(audit.handled()).back(), "event-20");
  EXPECT_EQ(outbox_.pending_count(), 0u);
  auto counters = loop.counters();
  EXPECT_EQ(counters.sent, 20u);
  EXPECT_EQ(counters.released, 0u);
  EXPECT_EQ(counters.failures, 0u);
  EXPECT_GE(counters.passes, 3u);
}

TEST_F(RelayLoopTest, AFailingConsumerGetsTheEventAgainLater) {
  create_users(3);
  RecordingConsumer audit("audit"), flaky("flaky");
  // flaky fails the first two deliveries of event-2.
  flaky.fail_when = [](const domain::EventEnvelope& e, int seen) { return e.id == "event-2" && seen < 2; };
  InProcessEventBus bus({audit, flaky}, log_.logger, [](auto&&...) {});
  OutboxRelayLoop loop(outbox_, bus, log_.logger, fast_options());
  loop.start();
  ASSERT_TRUE(flaky.wait_for_handled(3));
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  loop.stop();

  EXPECT_EQ(flaky.attempts("event-2"), 3);
  EXPECT_EQ(flaky.handled_count().at("event-2"), 1);
  // At-least-once: the healthy consumer saw event-2 on every attempt; the others once.
  EXPECT_EQ(audit.handled_count().at("event-2"), 3);
  EXPECT_EQ(audit.handled_count().at("event-1"), 1);
  EXPECT_EQ(audit.handled_count().at("event-3"), 1);
  // The redelivered envelope carries the failed attempts counted by release().
  EXPECT_EQ(audit.handled().back().id, "event-2");
  EXPECT_EQ(audit.handled().back().attempts, 2);
  EXPECT_EQ(outbox_.pending_count(), 0u);
  EXPECT_EQ(loop.counters().sent, 3u);
  EXPECT_EQ(loop.counters().released, 2u);
}

TEST_F(RelayLoopTest, WakesOnNotifyWithoutWaitingForThePollInterval) {
  RecordingConsumer audit("audit");
  InProcessEventBus bus({audit}, log_.logger);
  OutboxRelayLoop loop(outbox_, bus, log_.logger, fast_options());  // polls once an hour
  loop.start();
  ASSERT_TRUE(loop.wait_idle(kTimeout));  // first pass done, found nothing, now asleep
  create_users(1);
  loop.notify();
  ASSERT_TRUE(audit.wait_for_handled(1));
  EXPECT_EQ(audit.handled().at(0).id, "event-1");
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  EXPECT_EQ(outbox_.pending_count(), 0u);
}

TEST_F(RelayLoopTest, UnderLoadNotifiedPassesStartOneLingerApartSoEventsShareABatch) {
  BatchingConsumer audit("audit");
  InProcessEventBus bus({audit}, log_.logger);
  auto options = fast_options();
  options.linger = 1s;  // long enough that the five commits below surely fall inside it
  OutboxRelayLoop loop(outbox_, bus, log_.logger, options);
  loop.start();
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  create_users(1);
  loop.notify();  // the first notified pass starts at once, linger or not
  ASSERT_TRUE(audit.wait_for_handled(1));
  for (int i = 0; i < 5; ++i) {
    create_users(1);
    loop.notify();
  }
  ASSERT_TRUE(audit.wait_for_handled(6));
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  loop.stop();
  EXPECT_EQ(audit.batch_sizes(), (std::vector<std::size_t>{1, 5}));
  EXPECT_EQ(outbox_.pending_count(), 0u);
}

TEST_F(RelayLoopTest, StopCutsTheLingerShort) {
  RecordingConsumer audit("audit");
  InProcessEventBus bus({audit}, log_.logger);
  auto options = fast_options();
  options.linger = std::chrono::hours(1);
  OutboxRelayLoop loop(outbox_, bus, log_.logger, options);
  loop.start();
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  create_users(1);
  loop.notify();
  ASSERT_TRUE(audit.wait_for_handled(1));  // not delayed: no notified pass before it
  create_users(1);
  loop.notify();  // this one waits for the linger …
  auto stopped = std::async(std::launch::async, [&] { loop.stop(); });
  EXPECT_EQ(stopped.wait_for(kTimeout), std::future_status::ready);  // … which stop() ends
  EXPECT_EQ(outbox_.pending_count(), 1u);  // left for the next start (at least once)
}

// A bus that is "down" for its first `outages` calls, then delivers through `next`.
class FlakyBus : public ports::EventBus {
 public:
  FlakyBus(ports::EventBus& next, int outages) : next_(next), outages_(outages) {}
  std::vector<std::string> publish(std::span<const domain::EventEnvelope> events) override {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::chrono::steady_clock::now());
    if (static_cast<int>(calls_.size()) <= outages_) throw ports::BackendUnavailable("bus down for a test");
    return next_.publish(events);
  }
  std::vector<std::chrono::steady_clock::time_point> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

 private:
  ports::EventBus& next_;
  int outages_;
  std::mutex mutex_;
  std::vector<std::chrono::steady_clock::time_point> calls_;
};

TEST_F(RelayLoopTest, BacksOffExponentiallyWhileTheBusIsDownThenDelivers) {
  create_users(1);
  RecordingConsumer audit("audit");
  InProcessEventBus inner({audit}, log_.logger);
  FlakyBus bus(inner, 3);
  auto options = fast_options();
  options.backoff_initial = 20ms;
  options.backoff_max = 1s;
  OutboxRelayLoop loop(outbox_, bus, log_.logger, options);
  loop.start();
  ASSERT_TRUE(audit.wait_for_handled(1));
  loop.stop();

  EXPECT_EQ(loop.counters().failures, 3u);
  EXPECT_EQ(loop.counters().sent, 1u);
  // Each failed pass is one warning naming the relay and the cause.
  EXPECT_EQ(log_.count(R"("msg":"outbox relay pass failed; retrying")"), 3u);
  EXPECT_EQ(log_.count(R"("relay":"test-relay")"), 3u);
  EXPECT_EQ(log_.count("bus down for a test"), 3u);
  EXPECT_EQ(audit.handled().at(0).attempts, 3);  // each failed pass released its lease
  // Gaps between attempts follow the doubling backoff, each at least half of it (jitter).
  auto calls = bus.calls();
  ASSERT_EQ(calls.size(), 4u);
  auto nominal = 20ms;
  for (std::size_t i = 1; i < calls.size(); ++i, nominal *= 2)
    EXPECT_GE(calls[i] - calls[i - 1], nominal / 2) << "gap " << i;
}

TEST_F(RelayLoopTest, StopLetsTheCurrentBatchFinishAndJoins) {
  create_users(1);
  RecordingConsumer audit("audit");
  std::promise<void> entered, gate;
  auto gate_future = gate.get_future().share();
  audit.on_enter = [&, first = true]() mutable {
    if (!first) return;
    first = false;
    entered.set_value();
    gate_future.wait();
  };
  InProcessEventBus bus({audit}, log_.logger);
  OutboxRelayLoop loop(outbox_, bus, log_.logger, fast_options());
  loop.start();
  ASSERT_EQ(entered.get_future().wait_for(kTimeout), std::future_status::ready);

  auto stopped = std::async(std::launch::async, [&] { loop.stop(); });
  // stop() waits for the batch in progress …
  EXPECT_EQ(stopped.wait_for(50ms), std::future_status::timeout);
  gate.set_value();
  // … which then completes (delivered and marked sent), and the thread is joined.
  ASSERT_EQ(stopped.wait_for(kTimeout), std::future_status::ready);
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"event-1"}));
  EXPECT_EQ(outbox_.pending_count(), 0u);
  EXPECT_FALSE(loop.wait_idle(1ms));
  loop.stop();  // idempotent
  loop.notify();  // harmless after stop
}

TEST_F(RelayLoopTest, NotifyAndStopWithoutStartAreHarmless) {
  RecordingConsumer audit("audit");
  InProcessEventBus bus({audit}, log_.logger);
  auto options = fast_options();
  options.relay.owner.clear();
  OutboxRelayLoop loop(outbox_, bus, log_.logger, options);
  EXPECT_FALSE(loop.owner().empty());  // generated
  loop.notify();
  EXPECT_FALSE(loop.wait_idle(1ms));
  loop.stop();
  EXPECT_EQ(loop.counters().passes, 0u);
}

}  // namespace
}  // namespace registrar
