// The embedded event path: InProcessEventBus + OutboxDispatcher over the real SQLite outbox.
// Threaded tests wait on conditions with timeouts (never on sleeps) for what they expect to happen.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "adapters/inproc/event_bus.hpp"
#include "adapters/inproc/outbox_dispatcher.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "ports/errors.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::inproc::DispatcherOptions;
using adapters::inproc::InProcessEventBus;
using adapters::inproc::OutboxDispatcher;
using testing::TempDir;

constexpr auto kTimeout = 10s;  // generous: only reached when a test fails

// A consumer that records what it handled and can be told to fail. Thread-safe; tests wait on
// it for a number of handled events.
class RecordingConsumer : public ports::EventConsumer {
 public:
  explicit RecordingConsumer(std::string name) : name_(std::move(name)) {}
  // Called with the event and how many times this consumer has seen its id before; returning
  // true makes handle() throw.
  std::function<bool(const domain::EventEnvelope&, int seen_before)> fail_when;
  // Called at the start of handle(), outside the lock (to block a delivery in a test).
  std::function<void()> on_enter;

  std::string name() const override { return name_; }

  void handle(const domain::EventEnvelope& event) override {
    if (on_enter) on_enter();
    std::unique_lock lock(mutex_);
    int seen = seen_[event.id]++;
    if (fail_when && fail_when(event, seen)) throw std::runtime_error("consumer failure for a test");
    handled_.push_back(event);
    ++handled_count_[event.id];
    cv_.notify_all();
  }

  bool wait_for_handled(std::size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, kTimeout, [&] { return handled_.size() >= n; });
  }
  std::vector<domain::EventEnvelope> handled() const {
    std::lock_guard lock(mutex_);
    return handled_;
  }
  std::map<std::string, int> handled_count() const {
    std::lock_guard lock(mutex_);
    return handled_count_;
  }
  int attempts(const std::string& id) const {
    std::lock_guard lock(mutex_);
    auto it = seen_.find(id);
    return it == seen_.end() ? 0 : it->second;
  }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<domain::EventEnvelope> handled_;
  std::map<std::string, int> handled_count_, seen_;
};

domain::EventEnvelope event(std::string id, std::string aggregate) {
  domain::EventEnvelope e;
  e.id = std::move(id);
  e.type = "user.registered";
  e.aggregate_id = std::move(aggregate);
  e.payload = R"({"event":"user.registered"})";
  return e;
}

std::vector<std::string> ids_of(const std::vector<domain::EventEnvelope>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

// A consumer that takes whole batches (as the audit consumer does); records each batch's size.
class BatchingConsumer : public RecordingConsumer {
 public:
  using RecordingConsumer::RecordingConsumer;
  bool fail_batches = false;

  bool handle_batch(std::span<const domain::EventEnvelope> events) override {
    {
      std::lock_guard lock(batch_mutex_);
      batch_sizes_.push_back(events.size());
    }
    if (fail_batches) throw std::runtime_error("batch failure for a test");
    for (const auto& e : events) handle(e);
    return true;
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(batch_mutex_);
    return batch_sizes_;
  }

 private:
  mutable std::mutex batch_mutex_;
  std::vector<std::size_t> batch_sizes_;
};

// ---------------------------------------------------------------------------------------------
// InProcessEventBus alone.

TEST(InProcessEventBus, DeliversEveryEventToEveryConsumerInOrder) {
  RecordingConsumer audit("audit"), welcome("welcome");
  InProcessEventBus bus({audit, welcome});
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2"), event("e3", "u1")};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(ids_of(welcome.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_TRUE(bus.publish({}).empty());
}

TEST(InProcessEventBus, ConfirmsOnlyEventsThatAllConsumersHandled) {
  RecordingConsumer audit("audit"), welcome("welcome");
  welcome.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "e1"; };
  std::vector<std::string> logged;
  InProcessEventBus bus({audit, welcome}, [&](const std::string& consumer, const domain::EventEnvelope& e,
                                              const std::string&) { logged.push_back(consumer + ":" + e.id); });
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2")};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e2"}));
  // The healthy consumer still got both (it deduplicates the redelivery of e1 itself).
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(logged, (std::vector<std::string>{"welcome:e1"}));
}

TEST(InProcessEventBus, KeepsPerAggregateOrderWhenAConsumerFails) {
  RecordingConsumer audit("audit"), welcome("welcome");
  welcome.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "u1-first"; };
  InProcessEventBus bus({audit, welcome}, [](auto&&...) {});
  std::vector<domain::EventEnvelope> batch = {event("u1-first", "u1"), event("u1-second", "u1"),
                                              event("u2-first", "u2")};
  // welcome never sees u1-second before u1-first, so neither is confirmed.
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"u2-first"}));
  EXPECT_EQ(ids_of(welcome.handled()), (std::vector<std::string>{"u2-first"}));
  EXPECT_EQ(welcome.attempts("u1-second"), 0);
}

TEST(InProcessEventBus, GivesABatchingConsumerTheWholeBatchInOneCall) {
  BatchingConsumer audit("audit");
  RecordingConsumer welcome("welcome");
  InProcessEventBus bus({audit, welcome});
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2"), event("e3", "u1")};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(audit.batch_sizes(), (std::vector<std::size_t>{3}));
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(ids_of(welcome.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
}

TEST(InProcessEventBus, AFailedBatchIsRetriedEventByEvent) {
  BatchingConsumer audit("audit");
  audit.fail_batches = true;
  audit.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "e2"; };
  std::vector<std::string> logged;
  InProcessEventBus bus({audit}, [&](const std::string& consumer, const domain::EventEnvelope& e,
                                     const std::string&) { logged.push_back(consumer + ":" + e.id); });
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2"), event("e3", "u3")};
  // Only the event that fails on its own is held back.
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(logged, (std::vector<std::string>{"audit:e2"}));
}

// ---------------------------------------------------------------------------------------------
// OutboxDispatcher over the real SQLite outbox.

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest()
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

  static DispatcherOptions fast_options() {
    DispatcherOptions o;
    o.relay.owner = "test-relay";
    o.relay.batch_size = 8;
    o.poll_interval = std::chrono::hours(1);  // anything delivered came from start/notify/drain
    o.backoff_initial = 5ms;
    o.backoff_max = 50ms;
    return o;
  }

  TempDir dir_;
  adapters::sqlite::SqliteDatabase db_;
  adapters::sqlite::SqliteUserStore users_;
  adapters::sqlite::SqliteOutboxStore outbox_;
  int next_ = 1;
};

TEST_F(DispatcherTest, DeliversEachEventOnceToEachConsumerDrainingFullBatches) {
  create_users(20);  // more than two full batches of 8
  RecordingConsumer audit("audit"), welcome("welcome");
  InProcessEventBus bus({audit, welcome});
  OutboxDispatcher dispatcher(outbox_, bus, fast_options());
  dispatcher.start();
  ASSERT_TRUE(audit.wait_for_handled(20));
  ASSERT_TRUE(welcome.wait_for_handled(20));
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));
  dispatcher.stop();

  for (auto* c : {&audit, &welcome}) {
    auto counts = c->handled_count();
    EXPECT_EQ(counts.size(), 20u);
    for (auto& [id, n] : counts) EXPECT_EQ(n, 1) << c->name() << " " << id;
  }
  EXPECT_EQ(ids_of(audit.handled()).front(), "event-1");  // outbox order
  EXPECT_EQ(ids_of(audit.handled()).back(), "event-20");
  EXPECT_EQ(outbox_.pending_count(), 0u);
  auto counters = dispatcher.counters();
  EXPECT_EQ(counters.sent, 20u);
  EXPECT_EQ(counters.released, 0u);
  EXPECT_EQ(counters.failures, 0u);
  EXPECT_GE(counters.passes, 3u);
}

TEST_F(DispatcherTest, AFailingConsumerGetsTheEventAgainLater) {
  create_users(3);
  RecordingConsumer audit("audit"), flaky("flaky");
  // flaky fails the first two deliveries of event-2.
  flaky.fail_when = [](const domain::EventEnvelope& e, int seen) { return e.id == "event-2" && seen < 2; };
  InProcessEventBus bus({audit, flaky}, [](auto&&...) {});
  OutboxDispatcher dispatcher(outbox_, bus, fast_options());
  dispatcher.start();
  ASSERT_TRUE(flaky.wait_for_handled(3));
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));
  dispatcher.stop();

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
  EXPECT_EQ(dispatcher.counters().sent, 3u);
  EXPECT_EQ(dispatcher.counters().released, 2u);
}

TEST_F(DispatcherTest, WakesOnNotifyWithoutWaitingForThePollInterval) {
  RecordingConsumer audit("audit");
  InProcessEventBus bus({audit});
  OutboxDispatcher dispatcher(outbox_, bus, fast_options());  // polls once an hour
  dispatcher.start();
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));  // first pass done, found nothing, now asleep
  create_users(1);
  dispatcher.notify();
  ASSERT_TRUE(audit.wait_for_handled(1));
  EXPECT_EQ(audit.handled().at(0).id, "event-1");
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));
  EXPECT_EQ(outbox_.pending_count(), 0u);
}

TEST_F(DispatcherTest, UnderLoadNotifiedPassesStartOneLingerApartSoEventsShareABatch) {
  BatchingConsumer audit("audit");
  InProcessEventBus bus({audit});
  auto options = fast_options();
  options.linger = 1s;  // long enough that the five commits below surely fall inside it
  OutboxDispatcher dispatcher(outbox_, bus, options);
  dispatcher.start();
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));
  create_users(1);
  dispatcher.notify();  // the first notified pass starts at once, linger or not
  ASSERT_TRUE(audit.wait_for_handled(1));
  for (int i = 0; i < 5; ++i) {
    create_users(1);
    dispatcher.notify();
  }
  ASSERT_TRUE(audit.wait_for_handled(6));
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));
  dispatcher.stop();
  EXPECT_EQ(audit.batch_sizes(), (std::vector<std::size_t>{1, 5}));
  EXPECT_EQ(outbox_.pending_count(), 0u);
}

TEST_F(DispatcherTest, StopCutsTheLingerShort) {
  RecordingConsumer audit("audit");
  InProcessEventBus bus({audit});
  auto options = fast_options();
  options.linger = std::chrono::hours(1);
  OutboxDispatcher dispatcher(outbox_, bus, options);
  dispatcher.start();
  ASSERT_TRUE(dispatcher.wait_idle(kTimeout));
  create_users(1);
  dispatcher.notify();
  ASSERT_TRUE(audit.wait_for_handled(1));  // not delayed: no notified pass before it
  create_users(1);
  dispatcher.notify();  // this one waits for the linger …
  auto stopped = std::async(std::launch::async, [&] { dispatcher.stop(); });
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

TEST_F(DispatcherTest, BacksOffExponentiallyWhileTheBusIsDownThenDelivers) {
  create_users(1);
  RecordingConsumer audit("audit");
  InProcessEventBus inner({audit});
  FlakyBus bus(inner, 3);
  auto options = fast_options();
  options.backoff_initial = 20ms;
  options.backoff_max = 1s;
  OutboxDispatcher dispatcher(outbox_, bus, options);
  dispatcher.start();
  ASSERT_TRUE(audit.wait_for_handled(1));
  dispatcher.stop();

  EXPECT_EQ(dispatcher.counters().failures, 3u);
  EXPECT_EQ(dispatcher.counters().sent, 1u);
  EXPECT_EQ(audit.handled().at(0).attempts, 3);  // each failed pass released its lease
  // Gaps between attempts follow the doubling backoff, each at least half of it (jitter).
  auto calls = bus.calls();
  ASSERT_EQ(calls.size(), 4u);
  auto nominal = 20ms;
  for (std::size_t i = 1; i < calls.size(); ++i, nominal *= 2)
    EXPECT_GE(calls[i] - calls[i - 1], nominal / 2) << "gap " << i;
}

TEST_F(DispatcherTest, StopLetsTheCurrentBatchFinishAndJoins) {
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
  InProcessEventBus bus({audit});
  OutboxDispatcher dispatcher(outbox_, bus, fast_options());
  dispatcher.start();
  ASSERT_EQ(entered.get_future().wait_for(kTimeout), std::future_status::ready);

  auto stopped = std::async(std::launch::async, [&] { dispatcher.stop(); });
  // stop() waits for the batch in progress …
  EXPECT_EQ(stopped.wait_for(50ms), std::future_status::timeout);
  gate.set_value();
  // … which then completes (delivered and marked sent), and the thread is joined.
  ASSERT_EQ(stopped.wait_for(kTimeout), std::future_status::ready);
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"event-1"}));
  EXPECT_EQ(outbox_.pending_count(), 0u);
  EXPECT_FALSE(dispatcher.wait_idle(1ms));
  dispatcher.stop();  // idempotent
  dispatcher.notify();  // harmless after stop
}

TEST_F(DispatcherTest, NotifyAndStopWithoutStartAreHarmless) {
  RecordingConsumer audit("audit");
  InProcessEventBus bus({audit});
  auto options = fast_options();
  options.relay.owner.clear();
  OutboxDispatcher dispatcher(outbox_, bus, options);
  EXPECT_FALSE(dispatcher.owner().empty());  // generated
  dispatcher.notify();
  EXPECT_FALSE(dispatcher.wait_idle(1ms));
  dispatcher.stop();
  EXPECT_EQ(dispatcher.counters().passes, 0u);
}

}  // namespace
}  // namespace registrar
