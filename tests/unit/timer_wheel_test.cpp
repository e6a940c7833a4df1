// The heartbeat timer wheel of the Engine.IO server (adapters/socketio/timer_wheel.hpp): each
// deadline is called once, never early, in order; a target that is gone is skipped; clear() drops
// everything and lets the io_context end; the wheel ticks only while it holds deadlines.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "adapters/socketio/timer_wheel.hpp"

namespace {

using namespace std::chrono_literals;
using registrar::adapters::socketio::TimerWheel;
using registrar::adapters::socketio::WheelTarget;
using Clock = std::chrono::steady_clock;

struct Calls {
  std::vector<std::pair<std::uint64_t, Clock::time_point>> seen;
};

class Target : public WheelTarget {
 public:
  explicit Target(Calls& calls) : calls_(calls) {}
  void on_due(std::uint64_t token) override { calls_.seen.emplace_back(token, Clock::now()); }

 private:
  Calls& calls_;
};

// An io_context, a wheel on it with `tick` and `horizon`, and a target that records its calls.
struct Rig {
  Rig(std::chrono::milliseconds tick, std::chrono::milliseconds horizon) : wheel(ioc.get_executor(), tick, horizon) {}
  boost::asio::io_context ioc;
  TimerWheel wheel;
  Calls calls;
  std::shared_ptr<Target> target = std::make_shared<Target>(calls);
};

TEST(TimerWheel, EachDeadlineIsCalledOnceNeverEarlyAndInOrder) {
  Rig rig(5ms, 200ms);
  auto& [ioc, wheel, calls, target] = rig;
  const auto start = Clock::now();
  wheel.schedule(target, 3, 60ms);
  wheel.schedule(target, 1, 10ms);
  wheel.schedule(target, 2, 30ms);
  EXPECT_EQ(wheel.size(), 3u);
  ioc.run();  // returns once the wheel is empty: it stops ticking
  ASSERT_EQ(calls.seen.size(), 3u);
  const std::chrono::milliseconds due[] = {10ms, 30ms, 60ms};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(calls.seen[i].first, i + 1);
    EXPECT_GE(calls.seen[i].second - start, due[i]) << "deadline " << i + 1 << " came early";
  }
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, ATargetThatIsGoneIsSkipped) {
  Rig rig(5ms, 100ms);
  auto& [ioc, wheel, calls, kept] = rig;
  auto gone = std::make_shared<Target>(calls);
  wheel.schedule(gone, 1, 10ms);
  wheel.schedule(kept, 2, 20ms);
  gone.reset();
  ioc.run();
  ASSERT_EQ(calls.seen.size(), 1u);
  EXPECT_EQ(calls.seen[0].first, 2u);
}

TEST(TimerWheel, ADelayBeyondTheHorizonIsCappedToIt) {
  Rig rig(5ms, 20ms);
  auto& [ioc, wheel, calls, target] = rig;
  const auto start = Clock::now();
  wheel.schedule(target, 1, std::chrono::hours(1));
  ioc.run();  // an hour would hang the test: the deadline comes after about the horizon
  ASSERT_EQ(calls.seen.size(), 1u);
  EXPECT_GE(calls.seen[0].second - start, 20ms);
}

TEST(TimerWheel, ClearDropsEveryDeadlineAndTheWheelStartsAgainAfter) {
  Rig rig(5ms, 100ms);
  auto& [ioc, wheel, calls, target] = rig;
  wheel.schedule(target, 1, 50ms);
  wheel.schedule(target, 2, 80ms);
  wheel.clear();
  EXPECT_EQ(wheel.size(), 0u);
  ioc.run();  // nothing keeps it busy
  EXPECT_TRUE(calls.seen.empty());

  ioc.restart();
  wheel.schedule(target, 3, 10ms);
  ioc.run();
  ASSERT_EQ(calls.seen.size(), 1u);
  EXPECT_EQ(calls.seen[0].first, 3u);
}

TEST(TimerWheel, DeadlinesFromManyThreadsAreEachCalledOnce) {
  Rig rig(2ms, 50ms);
  auto& [ioc, wheel, calls, target] = rig;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) wheel.schedule(target, static_cast<std::uint64_t>(t * 1000 + i), std::chrono::milliseconds(i % 40));
    });
  for (auto& t : threads) t.join();
  ioc.run();
  ASSERT_EQ(calls.seen.size(), 1000u);
  std::vector<bool> seen(4000, false);
  for (const auto& [token, when] : calls.seen) {
    EXPECT_FALSE(seen[token]) << "token " << token << " called twice";
    seen[token] = true;
  }
}

}  // namespace
