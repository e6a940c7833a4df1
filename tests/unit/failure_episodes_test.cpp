// Failure episodes (adapters/logging/failure_episodes): repeated failures of one kind become a start
// line, at most one summary per interval and an end line (quiet period, success or shutdown), with
// exact counts, every failure still at debug level; kinds apart; exact counts under many threads.
// A fake clock drives the time, except in the test of the thread that ends quiet episodes alone.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "adapters/logging/failure_episodes.hpp"
#include "support/captured_log.hpp"

namespace registrar {
namespace {

namespace json = boost::json;
using adapters::logging::EpisodeOptions;
using adapters::logging::FailureEpisodes;
using adapters::logging::Level;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::CapturedLog;

constexpr std::string_view kStarted = "failure episode started";
constexpr std::string_view kContinues = "failure episode continues";
constexpr std::string_view kEnded = "failure episode ended";

// A steady time that only moves when the test says so (from any thread).
class FakeClock {
 public:
  FailureEpisodes::TimePoint now() const { return FailureEpisodes::TimePoint(std::chrono::nanoseconds(ns_.load())); }
  void advance(std::chrono::nanoseconds d) { ns_.fetch_add(d.count()); }
  FailureEpisodes::Clock fn() {
    return [this] { return now(); };
  }

 private:
  std::atomic<std::int64_t> ns_{std::chrono::nanoseconds(std::chrono::hours(1)).count()};
};

// The captured lines, parsed, optionally only those with this msg.
std::vector<json::object> lines(const CapturedLog& log, std::string_view msg = {}) {
  std::vector<json::object> out;
  for (const auto& text : log.sink->last_formatted()) {
    auto line = json::parse(text).as_object();
    if (msg.empty() || line.at("msg").as_string() == msg) out.push_back(std::move(line));
  }
  return out;
}

std::vector<json::object> episode_lines(const CapturedLog& log, std::string_view kind) {
  std::vector<json::object> out;
  for (auto& line : lines(log)) {
    const auto msg = line.at("msg").as_string();
    if ((msg == kStarted || msg == kContinues || msg == kEnded) && line.at("episode").as_string() == kind)
      out.push_back(std::move(line));
  }
  return out;
}

std::string str(const json::object& line, std::string_view key) { return std::string(line.at(key).as_string()); }
std::int64_t num(const json::object& line, std::string_view key) { return line.at(key).to_number<std::int64_t>(); }

// The "failures" of every line of `kind`'s episodes, added up.
std::int64_t failures_reported(const CapturedLog& log, std::string_view kind) {
  std::int64_t sum = 0;
  for (const auto& line : episode_lines(log, kind)) sum += num(line, "failures");
  return sum;
}

json::object request_failed(std::string id) { return {{"requestId", std::move(id)}, {"error", "mysql: cannot connect"}}; }

struct EpisodesTest : ::testing::Test {
  CapturedLog log{spdlog::level::debug, 10'000};
  FakeClock clock;
  EpisodeOptions options{.summary_interval = seconds(5), .quiet_period = seconds(5), .success_settle = seconds(1)};
};

TEST_F(EpisodesTest, FirstFailureStartsAnEpisodeWithItsFieldsAndEveryFailureIsAtDebug) {
  FailureEpisodes episodes(log.logger, options, clock.fn());
  episodes.failure("backend_unavailable", "request failed", request_failed("r1"));
  episodes.failure("backend_unavailable", "request failed", request_failed("r2"));
  episodes.failure("backend_unavailable", "request failed", request_failed("r3"));

  auto started = lines(log, kStarted);
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(str(started[0], "level"), "error");
  EXPECT_EQ(str(started[0], "episode"), "backend_unavailable");
  EXPECT_EQ(str(started[0], "failure"), "request failed");
  EXPECT_EQ(str(started[0], "requestId"), "r1");
  EXPECT_EQ(str(started[0], "error"), "mysql: cannot connect");
  EXPECT_EQ(num(started[0], "failures"), 1);

  auto each = lines(log, "request failed");
  ASSERT_EQ(each.size(), 3u);
  for (std::size_t i = 0; i < each.size(); ++i) {
    EXPECT_EQ(str(each[i], "level"), "debug");
    EXPECT_EQ(str(each[i], "requestId"), "r" + std::to_string(i + 1));
    EXPECT_EQ(str(each[i], "episode"), "backend_unavailable");
  }
  // Nothing else at error level.
  std::size_t errors = 0;
  for (const auto& line : lines(log)) errors += str(line, "level") == "error";
  EXPECT_EQ(errors, 1u);
}

TEST_F(EpisodesTest, AtInfoLevelOnlyTheEpisodeLinesAreWritten) {
  CapturedLog info_log(spdlog::level::info, 10'000);
  FailureEpisodes episodes(info_log.logger, options, clock.fn());
  for (int i = 0; i < 100; ++i) episodes.failure("backend_unavailable", "request failed", request_failed("r"));
  clock.advance(seconds(6));
  episodes.tick();
  auto all = lines(info_log);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(str(all[0], "msg"), kStarted);
  EXPECT_EQ(str(all[1], "msg"), kEnded);
  EXPECT_EQ(num(all[1], "total"), 100);
}

TEST_F(EpisodesTest, SummaryAtMostOncePerIntervalWithTheCountSinceTheLastLine) {
  options.quiet_period = seconds(30);
  FailureEpisodes episodes(log.logger, options, clock.fn());
  episodes.failure("backend_unavailable", "request failed", request_failed("r0"));  // t = 0: start
  // 4 more failures over the next 4 s, ticking all the while: the interval has not passed.
  for (int i = 1; i <= 4; ++i) {
    clock.advance(seconds(1));
    episodes.failure("backend_unavailable", "request failed", request_failed("r" + std::to_string(i)));
    episodes.tick();
  }
  EXPECT_TRUE(lines(log, kContinues).empty());
  clock.advance(seconds(1));  // t = 5 s
  episodes.tick();
  auto summaries = lines(log, kContinues);
  ASSERT_EQ(summaries.size(), 1u);
  EXPECT_EQ(num(summaries[0], "failures"), 4);  // since the start line
  EXPECT_EQ(num(summaries[0], "total"), 5);
  EXPECT_EQ(num(summaries[0], "forMs"), 5000);
  EXPECT_EQ(str(summaries[0], "level"), "error");

  // 7 failures within the next interval, ticks after each: one more summary, at t = 10 s.
  for (int i = 0; i < 7; ++i) {
    clock.advance(milliseconds(700));
    episodes.failure("backend_unavailable", "request failed", request_failed("s"));
    episodes.tick();
  }
  EXPECT_EQ(lines(log, kContinues).size(), 1u);  // t = 9.9 s
  clock.advance(milliseconds(100));
  episodes.tick();
  summaries = lines(log, kContinues);
  ASSERT_EQ(summaries.size(), 2u);
  EXPECT_EQ(num(summaries[1], "failures"), 7);
  EXPECT_EQ(num(summaries[1], "total"), 12);

  // No failure since the last line: no summary, however often it ticks.
  for (int i = 0; i < 20; ++i) {
    clock.advance(seconds(1));
    episodes.tick();
  }
  EXPECT_EQ(lines(log, kContinues).size(), 2u);
  EXPECT_TRUE(lines(log, kEnded).empty());  // 20 s < the 30 s quiet period
}

TEST_F(EpisodesTest, EndsAfterTheQuietPeriodWithTotalAndDurationThenANewFailureStartsAnother) {
  options.summary_interval = seconds(10);
  FailureEpisodes episodes(log.logger, options, clock.fn());
  for (int i = 0; i < 10; ++i) {
    episodes.failure("backend_unavailable", "request failed", request_failed("r"));
    clock.advance(milliseconds(300));
  }
  // The last failure was at 2.7 s; quiet until 7.7 s.
  clock.advance(milliseconds(4600));  // 7.6 s
  episodes.tick();
  EXPECT_TRUE(lines(log, kEnded).empty());
  clock.advance(milliseconds(100));  // 7.7 s
  episodes.tick();
  auto ended = lines(log, kEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(str(ended[0], "endedBy"), "quiet");
  EXPECT_EQ(num(ended[0], "total"), 10);
  EXPECT_EQ(num(ended[0], "failures"), 9);  // the start line reported the first
  EXPECT_EQ(num(ended[0], "durationMs"), 2700);  // first to last failure
  EXPECT_EQ(str(ended[0], "level"), "error");
  EXPECT_FALSE(episodes.tick().has_value());  // nothing open: the thread would sleep

  episodes.failure("backend_unavailable", "request failed", request_failed("again"));
  auto started = lines(log, kStarted);
  ASSERT_EQ(started.size(), 2u);
  EXPECT_EQ(str(started[1], "requestId"), "again");
}

TEST_F(EpisodesTest, FailuresRetriedWithABackoffStayOneEpisode) {
  options.summary_interval = seconds(60);
  FailureEpisodes episodes(log.logger, options, clock.fn());
  // A relay retrying with a doubling back-off capped at 10 s: its failures come further apart than
  // the 5 s quiet period, yet they are one episode, which ends 2 × 10 s after the last one.
  const auto fail = [&] {
    episodes.failure("consumer:welcome", "consumer failed an event", {}, Level::warn, seconds(10));
  };
  fail();
  for (int backoff_ms : {100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000, 10000}) {
    clock.advance(milliseconds(backoff_ms));
    episodes.tick();
    fail();
  }
  EXPECT_TRUE(lines(log, kEnded).empty());
  clock.advance(seconds(20) - milliseconds(1));
  episodes.tick();
  EXPECT_TRUE(lines(log, kEnded).empty());
  clock.advance(milliseconds(1));
  episodes.tick();
  auto ended = lines(log, kEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(num(ended[0], "total"), 11);
  EXPECT_EQ(lines(log, kStarted).size(), 1u);
  // Without the hint, the configured quiet period.
  episodes.failure("backend_unavailable", "request failed");
  clock.advance(seconds(5));
  episodes.tick();
  EXPECT_EQ(lines(log, kEnded).size(), 2u);
}

TEST_F(EpisodesTest, TickSaysWhenTheNextLineMayBeDue) {
  options.summary_interval = seconds(2);
  FailureEpisodes episodes(log.logger, options, clock.fn());
  EXPECT_FALSE(episodes.tick().has_value());
  const auto t0 = clock.now();
  episodes.failure("backend_unavailable", "request failed");
  EXPECT_EQ(episodes.tick(), t0 + seconds(2));  // the summary, before the quiet end at t0 + 5 s
  clock.advance(seconds(2));
  episodes.failure("backend_unavailable", "request failed");
  episodes.tick();  // the summary at t0 + 2 s
  EXPECT_EQ(episodes.tick(), t0 + seconds(4));
}

TEST_F(EpisodesTest, ASuccessEndsTheEpisodeOnceTheLastFailureIsSettled) {
  FailureEpisodes episodes(log.logger, options, clock.fn());
  episodes.success("consumer:welcome");  // never failed: nothing
  episodes.failure("consumer:welcome", "consumer failed an event", {{"eventId", "e1"}}, Level::warn);
  episodes.failure("consumer:welcome", "consumer failed an event", {{"eventId", "e2"}}, Level::warn);
  clock.advance(milliseconds(400));
  // Successes and failures interleaved (a flapping backend): the episode goes on.
  episodes.success("consumer:welcome");
  episodes.failure("consumer:welcome", "consumer failed an event", {{"eventId", "e3"}}, Level::warn);
  clock.advance(milliseconds(999));
  episodes.success("consumer:welcome");
  EXPECT_TRUE(lines(log, kEnded).empty());
  clock.advance(milliseconds(1));
  episodes.success("consumer:welcome");
  episodes.success("consumer:welcome");  // already ended: nothing more
  auto ended = lines(log, kEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(str(ended[0], "endedBy"), "success");
  EXPECT_EQ(str(ended[0], "level"), "warn");  // the level of the episode's first failure
  EXPECT_EQ(num(ended[0], "total"), 3);
  EXPECT_EQ(num(ended[0], "durationMs"), 400);
  EXPECT_EQ(str(lines(log, kStarted).at(0), "level"), "warn");
}

TEST_F(EpisodesTest, KindsAreApart) {
  FailureEpisodes episodes(log.logger, options, clock.fn());
  for (int i = 0; i < 3; ++i) episodes.failure("backend_unavailable", "request failed", request_failed("b"));
  for (int i = 0; i < 5; ++i) episodes.failure("overloaded", "request failed", request_failed("o"), Level::warn);
  EXPECT_EQ(lines(log, kStarted).size(), 2u);
  clock.advance(seconds(2));
  episodes.success("overloaded");  // ends that one only
  for (int i = 0; i < 4; ++i) episodes.failure("backend_unavailable", "request failed", request_failed("b"));
  clock.advance(seconds(3));
  episodes.tick();  // the summary of backend_unavailable (5 s)
  clock.advance(seconds(5));
  episodes.tick();  // its quiet end

  auto backend = episode_lines(log, "backend_unavailable");
  ASSERT_EQ(backend.size(), 3u);
  EXPECT_EQ(str(backend[0], "msg"), kStarted);
  EXPECT_EQ(str(backend[1], "msg"), kContinues);
  EXPECT_EQ(num(backend[1], "failures"), 6);
  EXPECT_EQ(str(backend[2], "msg"), kEnded);
  EXPECT_EQ(num(backend[2], "total"), 7);
  EXPECT_EQ(str(backend[2], "endedBy"), "quiet");

  auto overloaded = episode_lines(log, "overloaded");
  ASSERT_EQ(overloaded.size(), 2u);
  EXPECT_EQ(str(overloaded[1], "endedBy"), "success");
  EXPECT_EQ(num(overloaded[1], "total"), 5);
  EXPECT_EQ(str(overloaded[1], "level"), "warn");
}

TEST_F(EpisodesTest, CloseEndsOpenEpisodesWithTheirCountAndLaterFailuresAreLoggedAlone) {
  auto episodes = std::make_unique<FailureEpisodes>(log.logger, options, clock.fn());
  for (int i = 0; i < 4; ++i) episodes->failure("backend_unavailable", "request failed", request_failed("r"));
  episodes->failure("consumer:audit", "consumer failed an event", {{"eventId", "e"}}, Level::warn);
  episodes->failure("consumer:audit", "consumer failed an event", {{"eventId", "e"}}, Level::warn);
  clock.advance(seconds(6));
  episodes->success("consumer:audit");  // ends it before the shutdown
  clock.advance(seconds(1));
  episodes->close();
  auto ended = lines(log, kEnded);
  ASSERT_EQ(ended.size(), 2u);
  EXPECT_EQ(str(ended[1], "episode"), "backend_unavailable");
  EXPECT_EQ(str(ended[1], "endedBy"), "shutdown");
  EXPECT_EQ(num(ended[1], "total"), 4);
  EXPECT_EQ(num(ended[1], "failures"), 3);

  episodes->failure("backend_unavailable", "request failed", request_failed("late"), Level::error);
  auto late = lines(log, "request failed");
  ASSERT_FALSE(late.empty());
  EXPECT_EQ(str(late.back(), "level"), "error");
  EXPECT_EQ(str(late.back(), "requestId"), "late");
  EXPECT_EQ(lines(log, kStarted).size(), 2u);  // no new episode
  episodes->close();                             // idempotent
  episodes.reset();                              // and the destructor after it
  EXPECT_EQ(lines(log, kEnded).size(), 2u);
}

TEST_F(EpisodesTest, ManyThreadsReportingAtOnceAreCountedExactly) {
  CapturedLog info_log(spdlog::level::info, 10'000);
  FailureEpisodes episodes(info_log.logger, options, clock.fn());
  constexpr int kThreads = 8, kEach = 20'000;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kEach; ++i) {
        episodes.failure(t % 2 ? "backend_unavailable" : "overloaded", "request failed", request_failed("r"));
        if (i % 1000 == 0) episodes.success("backend_unavailable");  // never settled: the clock stands
      }
    });
  go = true;
  for (auto& t : threads) t.join();
  episodes.close();
  for (std::string_view kind : {"backend_unavailable", "overloaded"}) {
    auto all = episode_lines(info_log, kind);
    ASSERT_EQ(all.size(), 2u) << kind;  // one start, one end
    EXPECT_EQ(num(all[1], "total"), kThreads / 2 * kEach) << kind;
    EXPECT_EQ(failures_reported(info_log, kind), kThreads / 2 * kEach) << kind;
  }
}

TEST_F(EpisodesTest, CountsStayExactWhileEpisodesEndAndStartUnderManyThreads) {
  CapturedLog info_log(spdlog::level::info);  // the default capacity: room for every episode's lines
  options.success_settle = milliseconds(0);
  FailureEpisodes episodes(info_log.logger, options, clock.fn());
  constexpr int kThreads = 6, kEach = 30'000;
  std::atomic<int> running{kThreads};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) episodes.failure("backend_unavailable", "request failed");
      running.fetch_sub(1);
    });
  // Meanwhile time jumps past the quiet period and summaries, and successes end episodes, at random
  // points between the failures.
  while (running.load() > 0) {
    clock.advance(seconds(3));
    episodes.tick();
    episodes.success("backend_unavailable");
  }
  for (auto& t : threads) t.join();
  episodes.close();
  EXPECT_EQ(failures_reported(info_log, "backend_unavailable"), kThreads * kEach);
  auto started = lines(info_log, kStarted), ended = lines(info_log, kEnded);
  EXPECT_EQ(started.size(), ended.size());
  std::int64_t totals = 0;
  for (const auto& line : ended) totals += num(line, "total");
  EXPECT_EQ(totals, kThreads * kEach);
  EXPECT_GE(started.size(), 1u);
  EXPECT_LT(lines(info_log).size(), 200'000u);  // none dropped from the ring buffer
}

TEST(FailureEpisodesThread, EndsAQuietEpisodeWithoutAnyFurtherCall) {
  CapturedLog log(spdlog::level::info, 10'000);
  FailureEpisodes episodes(log.logger, {.summary_interval = milliseconds(40), .quiet_period = milliseconds(100)});
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) {
    episodes.failure("backend_unavailable", "request failed", request_failed("r"));
    std::this_thread::sleep_for(milliseconds(20));
  }
  auto deadline = t0 + seconds(10);
  while (lines(log, kEnded).empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(5));
  auto ended = lines(log, kEnded);
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_EQ(str(ended[0], "endedBy"), "quiet");
  EXPECT_EQ(num(ended[0], "total"), 5);
  EXPECT_EQ(failures_reported(log, "backend_unavailable"), 5);
  // Ended by the thread, not before the quiet period after the last failure.
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(80 + 100));
}

}  // namespace
}  // namespace registrar
