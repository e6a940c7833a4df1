// threads::Backoff and threads::SupervisedLoop: the jittered doubling back-off and its reset, turns
// run again and again, notify() and stop() ending waits, wait_idle(), and a stop that lets the
// current turn finish. Tests wait on events (futures, condition variables) with generous
// timeouts, never on sleeps.
#include "adapters/threads/supervised_loop.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::threads::Backoff;
using adapters::threads::SupervisedLoop;
using WakeOn = SupervisedLoop::WakeOn;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = 10s;  // only reached when a test fails

// ---------------------------------------------------------------------------------------------
// Backoff

TEST(Backoff, DoublesUpToTheMaximumWithEachWaitBetweenHalfAndAllOfTheStep) {
  Backoff backoff(100ms, 1000ms);
  const std::vector<std::chrono::milliseconds> steps = {100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms, 1000ms};
  for (int round = 0; round < 50; ++round) {  // many draws: the jitter stays in its bounds
    backoff.reset();
    for (auto step : steps) {
      ASSERT_EQ(backoff.step(), step);
      const auto wait = backoff.next();
      EXPECT_GE(wait, step / 2);
      EXPECT_LE(wait, step);
    }
  }
}

TEST(Backoff, IsJittered) {
  Backoff backoff(1000ms, 1000ms);  // the step stays at 1000 ms: every wait is drawn from [500, 1000]
  std::vector<std::chrono::milliseconds> waits;
  for (int i = 0; i < 20; ++i) waits.push_back(backoff.next());
  EXPECT_NE(std::count(waits.begin(), waits.end(), waits.front()), 20) << "20 equal draws from 501 values";
}

TEST(Backoff, ResetStartsAgainFromTheInitialStep) {
  Backoff backoff(10ms, 80ms);
  for (int i = 0; i < 5; ++i) backoff.next();
  EXPECT_EQ(backoff.step(), 80ms);
  backoff.reset();
  EXPECT_EQ(backoff.step(), 10ms);
  EXPECT_LE(backoff.next(), 10ms);
  EXPECT_EQ(backoff.step(), 20ms);
}

TEST(Backoff, ClampsNonsensicalBounds) {
  Backoff zero(0ms, 0ms);
  EXPECT_EQ(zero.step(), 1ms);
  EXPECT_EQ(zero.next(), 1ms);  // never a busy loop
  Backoff inverted(50ms, 10ms);
  inverted.next();
  EXPECT_EQ(inverted.step(), 50ms);  // the maximum is at least the initial step
}

// ---------------------------------------------------------------------------------------------
// SupervisedLoop

// What the loop's callbacks report, for a test to wait on.
struct Journal {
  struct Failure {
    std::string error;
    std::chrono::milliseconds retry_in;
    Clock::time_point at;
  };
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<bool> turns;  // the `notified` argument of each turn
  std::vector<Clock::time_point> turn_starts;
  std::vector<Failure> failures;

  void turn(bool notified) {
    std::lock_guard lock(mutex);
    turns.push_back(notified);
    turn_starts.push_back(Clock::now());
    cv.notify_all();
  }
  void failure(std::string_view error, std::chrono::milliseconds retry_in) {
    std::lock_guard lock(mutex);
    failures.push_back({std::string(error), retry_in, Clock::now()});
    cv.notify_all();
  }
  bool wait_turns(std::size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, kTimeout, [&] { return turns.size() >= n; });
  }
  bool wait_failures(std::size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, kTimeout, [&] { return failures.size() >= n; });
  }
};

TEST(SupervisedLoop, BacksOffAfterFailedTurnsDoublingAndResetsAfterASuccess) {
  Journal journal;
  int turn = 0;
  SupervisedLoop* self = nullptr;
  // Four failures, a success, two failures, then quiet.
  SupervisedLoop loop(
      Backoff(4ms, 16ms),
      [&](bool notified) {
        journal.turn(notified);
        ++turn;
        if (turn == 5) {
          self->reset_backoff();
          return;
        }
        if (turn <= 7) throw std::runtime_error("failure " + std::to_string(turn));
        self->idle_for(1h);
      },
      [&](std::string_view error, std::chrono::milliseconds retry_in) { journal.failure(error, retry_in); });
  self = &loop;
  loop.start();
  ASSERT_TRUE(journal.wait_failures(6));
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  loop.stop();

  std::lock_guard lock(journal.mutex);
  ASSERT_EQ(journal.failures.size(), 6u);
  EXPECT_EQ(journal.failures[0].error, "failure 1");
  EXPECT_EQ(journal.failures[5].error, "failure 7");
  // Steps 4, 8, 16, 16 ms; after the success 4, 8 again. Each wait is half to all of its step.
  const std::vector<std::chrono::milliseconds> steps = {4ms, 8ms, 16ms, 16ms, 4ms, 8ms};
  for (std::size_t i = 0; i < steps.size(); ++i) {
    EXPECT_GE(journal.failures[i].retry_in, steps[i] / 2) << i;
    EXPECT_LE(journal.failures[i].retry_in, steps[i]) << i;
  }
  // And the loop did wait that long before the next turn.
  ASSERT_EQ(journal.turn_starts.size(), 8u);
  for (std::size_t i : {0u, 1u, 2u, 3u}) EXPECT_GE(journal.turn_starts[i + 1] - journal.failures[i].at, journal.failures[i].retry_in) << i;
}

TEST(SupervisedLoop, ReportsAnExceptionOfAnyTypeAndGoesOn) {
  Journal journal;
  int turn = 0;
  SupervisedLoop* self = nullptr;
  SupervisedLoop loop(
      Backoff(1ms, 1ms),
      [&](bool notified) {
        journal.turn(notified);
        if (++turn == 1) throw 42;
        self->idle_for(1h);
      },
      [&](std::string_view error, std::chrono::milliseconds retry_in) { journal.failure(error, retry_in); });
  self = &loop;
  loop.start();
  ASSERT_TRUE(journal.wait_turns(2));
  loop.stop();
  std::lock_guard lock(journal.mutex);
  ASSERT_EQ(journal.failures.size(), 1u);
  EXPECT_EQ(journal.failures[0].error, "unknown exception");
}

TEST(SupervisedLoop, NotifyWakesAnIdleLoopAndTheNextTurnIsTold) {
  Journal journal;
  SupervisedLoop* self = nullptr;
  SupervisedLoop loop(
      Backoff(1ms, 1ms),
      [&](bool notified) {
        journal.turn(notified);
        self->idle_for(1h);
      },
      {});
  self = &loop;
  loop.start();
  ASSERT_TRUE(loop.wait_idle(kTimeout));  // first turn done, asleep for an hour
  loop.notify();
  ASSERT_TRUE(journal.wait_turns(2));
  ASSERT_TRUE(loop.wait_idle(kTimeout));  // the notified turn is done too
  loop.stop();
  std::lock_guard lock(journal.mutex);
  EXPECT_EQ(journal.turns, (std::vector<bool>{false, true}));
}

TEST(SupervisedLoop, WaitIdleWaitsForATurnThatStartedAfterTheLastNotify) {
  std::promise<void> entered, gate;
  auto gate_future = gate.get_future().share();
  Journal journal;
  SupervisedLoop* self = nullptr;
  SupervisedLoop loop(
      Backoff(1ms, 1ms),
      [&, first = true](bool notified) mutable {
        journal.turn(notified);
        if (first) {
          first = false;
          entered.set_value();
          gate_future.wait();
        }
        self->idle_for(1h);
      },
      {});
  self = &loop;
  loop.start();
  ASSERT_EQ(entered.get_future().wait_for(kTimeout), std::future_status::ready);
  loop.notify();  // during the first turn: that turn may have missed what the notify announces
  gate.set_value();
  ASSERT_TRUE(loop.wait_idle(kTimeout));
  loop.stop();
  std::lock_guard lock(journal.mutex);
  EXPECT_EQ(journal.turns, (std::vector<bool>{false, true}));  // wait_idle waited for the second turn
}

TEST(SupervisedLoop, NotifyCutsAWaitShortOnlyWhereTheTurnAllowsIt) {
  std::promise<void> in_back_off;
  Journal journal;
  SupervisedLoop* self = nullptr;
  SupervisedLoop loop(
      Backoff(1h, 1h),
      [&, turn = 0](bool notified) mutable {
        journal.turn(notified);
        if (++turn == 1) {
          in_back_off.set_value();
          self->back_off(WakeOn::stop_or_notify);  // an hour, unless notified
          return;
        }
        self->idle_for(1h);
      },
      {});
  self = &loop;
  loop.start();
  ASSERT_EQ(in_back_off.get_future().wait_for(kTimeout), std::future_status::ready);
  loop.notify();
  ASSERT_TRUE(journal.wait_turns(2));
  loop.stop();
}

TEST(SupervisedLoop, NotifyDoesNotShortenTheBackOffAfterAFailure) {
  Journal journal;
  SupervisedLoop* self = nullptr;
  SupervisedLoop loop(
      Backoff(200ms, 200ms),
      [&, turn = 0](bool notified) mutable {
        journal.turn(notified);
        if (++turn == 1) throw std::runtime_error("down");
        self->idle_for(1h);
      },
      [&](std::string_view error, std::chrono::milliseconds retry_in) { journal.failure(error, retry_in); });
  self = &loop;
  loop.start();
  ASSERT_TRUE(journal.wait_failures(1));
  for (int i = 0; i < 10; ++i) loop.notify();  // a burst of commits while the store is down
  ASSERT_TRUE(journal.wait_turns(2));
  loop.stop();
  std::lock_guard lock(journal.mutex);
  EXPECT_GE(journal.turn_starts[1] - journal.failures[0].at, journal.failures[0].retry_in);
  EXPECT_TRUE(journal.turns[1]) << "the notifications wait for the next turn";
}

// stop() ends a wait of an hour at once; `wait` is what the turn waits in.
void expect_stop_ends(const std::function<void(SupervisedLoop&)>& wait, bool throw_first = false) {
  std::promise<void> waiting;
  SupervisedLoop* self = nullptr;
  SupervisedLoop loop(
      Backoff(1h, 1h),
      [&](bool) {
        if (throw_first) throw std::runtime_error("down");  // then the loop's own back-off waits
        waiting.set_value();
        wait(*self);
      },
      [&](std::string_view, std::chrono::milliseconds) { waiting.set_value(); });
  self = &loop;
  loop.start();
  ASSERT_EQ(waiting.get_future().wait_for(kTimeout), std::future_status::ready);
  const auto t0 = Clock::now();
  auto stopped = std::async(std::launch::async, [&] { loop.stop(); });
  ASSERT_EQ(stopped.wait_for(kTimeout), std::future_status::ready);
  EXPECT_LT(Clock::now() - t0, 5s);  // not the hour
}

TEST(SupervisedLoop, StopEndsEveryKindOfWaitAtOnce) {
  expect_stop_ends([](SupervisedLoop& l) { l.idle_for(1h); });
  expect_stop_ends([](SupervisedLoop& l) { l.wait_for(1h, WakeOn::stop); });
  expect_stop_ends([](SupervisedLoop& l) { l.wait_until(Clock::now() + 1h, WakeOn::stop); });
  expect_stop_ends([](SupervisedLoop& l) { l.back_off(WakeOn::stop); });
  expect_stop_ends({}, /*throw_first=*/true);  // the back-off after a failed turn
}

TEST(SupervisedLoop, StopLetsTheCurrentTurnFinishThenJoins) {
  std::promise<void> entered, gate;
  auto gate_future = gate.get_future().share();
  Journal journal;
  std::atomic<bool> finished{false};
  SupervisedLoop loop(
      Backoff(1ms, 1ms),
      [&](bool notified) {
        journal.turn(notified);
        entered.set_value();
        gate_future.wait();
        finished = true;
      },
      {});
  loop.start();
  ASSERT_EQ(entered.get_future().wait_for(kTimeout), std::future_status::ready);
  auto stopped = std::async(std::launch::async, [&] { loop.stop(); });
  // stop() waits for the turn in progress …
  EXPECT_EQ(stopped.wait_for(50ms), std::future_status::timeout);
  gate.set_value();
  // … which completes; no other turn starts, and the thread is joined.
  ASSERT_EQ(stopped.wait_for(kTimeout), std::future_status::ready);
  EXPECT_TRUE(finished);
  EXPECT_TRUE(loop.stopping());
  std::lock_guard lock(journal.mutex);
  EXPECT_EQ(journal.turns.size(), 1u);
}

TEST(SupervisedLoop, ALoopRunsOnceAndNotifyAndStopWithoutStartAreHarmless) {
  Journal journal;
  SupervisedLoop loop(Backoff(1ms, 1ms), [&](bool notified) { journal.turn(notified); }, {});
  loop.notify();
  EXPECT_FALSE(loop.wait_idle(1ms));  // never started
  loop.stop();
  loop.stop();  // idempotent
  loop.start();  // a stopped loop does not start again
  EXPECT_FALSE(loop.wait_idle(1ms));
  loop.notify();  // harmless after stop
  std::lock_guard lock(journal.mutex);
  EXPECT_TRUE(journal.turns.empty());
}

}  // namespace
}  // namespace registrar
