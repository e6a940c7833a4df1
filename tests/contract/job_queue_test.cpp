// Contract tests of the job queue port (ports::JobQueue) and of the worker runner on it.
//
// Every queue adapter must pass the JobQueueContract suite, value-parameterized over kBackends:
// the in-process queue, and the Bull layout on a private redis-server that this test process
// starts on first use (one server per process, FLUSHALL before each test). A factory returning
// nullptr skips its backend (redis-server not installed). What only Bull has (locks that expire
// and the stalled check across processes, a paused queue) is in the BullQueue suite below; the
// wire format against Node's own `bull` is proven by tests/node/bull_wire.test.js.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "adapters/bull/bull_queue.hpp"
#include "adapters/bull/scripts.hpp"
#include "adapters/inproc/job_queue.hpp"
#include "adapters/jobs/job_worker.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/redis/client.hpp"
#include "ports/errors.hpp"
#include "ports/job_queue.hpp"
#include "support/redis_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using ports::JobOptions;
using ports::JobState;

// ---------------------------------------------------------------------------------------------
// What a backend under test provides.

class QueueUnderTest {
 public:
  virtual ~QueueUnderTest() = default;
  virtual ports::JobQueue& queue() = 0;
  // Another worker on the same queue (Bull: another queue object with its own connections and
  // token, as another process would have; in process: the same queue).
  virtual ports::JobQueue& other() = 0;
};

class InProcess final : public QueueUnderTest {
 public:
  ports::JobQueue& queue() override { return queue_; }
  ports::JobQueue& other() override { return queue_; }

 private:
  adapters::inproc::InProcessJobQueue queue_;
};

testing::RedisServer& shared_redis() {
  static testing::RedisServer server;  // torn down at exit
  return server;
}

adapters::redis::Url redis_url() { return adapters::redis::Url::parse(shared_redis().url()); }

// One BullQueue with its two connections.
struct BullStack {
  explicit BullStack(adapters::bull::BullQueueOptions options = {})
      : client(redis_url()), blocking(redis_url()), queue(client, blocking, std::move(options)) {}
  adapters::redis::Client client, blocking;
  adapters::bull::BullQueue queue;
};

void flush_redis() {
  adapters::redis::Client c(redis_url());
  c.command({"FLUSHALL"}).throw_if_error();
}

class Bull final : public QueueUnderTest {
 public:
  Bull() { flush_redis(); }
  ports::JobQueue& queue() override { return a_.queue; }
  ports::JobQueue& other() override { return b_.queue; }

 private:
  BullStack a_, b_;
};

struct Backend {
  const char* name;
  std::function<std::unique_ptr<QueueUnderTest>()> make;  // nullptr: not available here
};

const Backend kBackends[] = {
    {"InProcess", [] { return std::make_unique<InProcess>(); }},
    {"Bull", []() -> std::unique_ptr<QueueUnderTest> {
       if (!testing::RedisServer::available()) return nullptr;
       return std::make_unique<Bull>();
     }},
};

JobOptions with_attempts(int attempts, std::string backoff_type = "", milliseconds delay = 0ms) {
  JobOptions o;
  o.attempts = attempts;
  o.backoff_type = std::move(backoff_type);
  o.backoff_delay = delay;
  return o;
}

boost::json::value parse(std::string_view s) { return boost::json::parse(s); }

// Takes the job (running maintenance meanwhile, as a worker does) or gives up at `deadline`.
std::optional<ports::Job> take_within(ports::JobQueue& q, milliseconds within) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    q.maintenance();
    if (auto job = q.take(20ms)) return job;
  }
  return std::nullopt;
}

class JobQueueContract : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (!backend_) GTEST_SKIP() << GetParam().name << " not available here";
  }
  ports::JobQueue& q() { return backend_->queue(); }
  ports::JobQueue& other() { return backend_->other(); }

  std::unique_ptr<QueueUnderTest> backend_;
};

TEST_P(JobQueueContract, AddTakeCompleteStatus) {
  const std::string id = q().add(R"({"username":"ada","n":1})", {});
  ASSERT_FALSE(id.empty());
  auto st = q().status(id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, JobState::waiting);
  EXPECT_EQ(st->id, id);

  auto job = q().take(1s);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->id, id);
  EXPECT_EQ(parse(job->data), parse(R"({"username":"ada","n":1})"));
  EXPECT_EQ(job->attempts_made, 0);
  EXPECT_EQ(job->options.attempts, 1);
  EXPECT_FALSE(job->lock_token.empty());
  EXPECT_EQ(q().status(id)->state, JobState::active);
  EXPECT_TRUE(q().extend_lock(*job));

  EXPECT_TRUE(q().complete(*job, R"({"success":true,"message":"User created successfully"})"));
  st = q().status(id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, JobState::completed);
  ASSERT_TRUE(st->return_value);
  EXPECT_EQ(parse(*st->return_value), parse(R"({"success":true,"message":"User created successfully"})"));
  EXPECT_FALSE(st->failed_reason);
  ASSERT_TRUE(st->finished_on);
  EXPECT_GT(*st->finished_on, 1'600'000'000'000);
  // Finished: no lock to renew, nothing more to take, a second outcome is refused.
  EXPECT_FALSE(q().extend_lock(*job));
  EXPECT_FALSE(q().take(50ms));
  EXPECT_FALSE(q().complete(*job, "{}"));
  EXPECT_FALSE(q().status("no-such-job"));
}

TEST_P(JobQueueContract, JobsAreTakenInOrder) {
  const std::string a = q().add(R"({"n":1})", {});
  const std::string b = q().add(R"({"n":2})", {});
  EXPECT_NE(a, b);
  auto first = q().take(1s), second = q().take(1s);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->id, a);
  EXPECT_EQ(second->id, b);
}

TEST_P(JobQueueContract, TakeWaitsForAJobAddedMeanwhile) {
  std::string id;
  std::thread producer([&] {
    std::this_thread::sleep_for(100ms);  // the take below is then already waiting
    id = other().add(R"({"late":true})", {});
  });
  const auto started = Clock::now();
  auto job = q().take(3s);
  producer.join();
  ASSERT_TRUE(job);
  EXPECT_EQ(job->id, id);
  EXPECT_LT(Clock::now() - started, 2s);
}

TEST_P(JobQueueContract, FailForGoodIgnoresAttemptsLeft) {
  const std::string id = q().add("{}", with_attempts(3, "fixed", 10ms));
  auto job = q().take(1s);
  ASSERT_TRUE(job);
  EXPECT_TRUE(q().fail(*job, "The verification code is incorrect", /*retry=*/false));
  auto st = q().status(id);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, JobState::failed);
  EXPECT_EQ(st->failed_reason, "The verification code is incorrect");
  EXPECT_EQ(st->attempts_made, 1);
  EXPECT_TRUE(st->finished_on);
  EXPECT_FALSE(take_within(q(), 200ms));
}

TEST_P(JobQueueContract, RetryWithoutBackoffRunsAgainAtOnceThenFailsWhenAttemptsAreUsedUp) {
  const std::string id = q().add(R"({"n":1})", with_attempts(2));
  auto job = q().take(1s);
  ASSERT_TRUE(job);
  EXPECT_TRUE(q().fail(*job, "database down", true));
  auto st = q().status(id);
  EXPECT_EQ(st->state, JobState::waiting);
  EXPECT_EQ(st->attempts_made, 1);
  EXPECT_EQ(st->failed_reason, "database down");

  auto again = q().take(1s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(again->attempts_made, 1);
  EXPECT_TRUE(q().fail(*again, "database still down", true));
  st = q().status(id);
  EXPECT_EQ(st->state, JobState::failed);
  EXPECT_EQ(st->attempts_made, 2);
  EXPECT_EQ(st->failed_reason, "database still down");
}

// Runs a job that fails `failures` times with a retry, then completes; checks that each retry
// waited at least its backoff (and not absurdly longer) and was delayed meanwhile.
void run_with_backoff(ports::JobQueue& q, const JobOptions& options, int failures,
                      const std::vector<milliseconds>& expected_waits) {
  const std::string id = q.add(R"({"n":1})", options);
  auto job = q.take(1s);
  ASSERT_TRUE(job);
  for (int i = 0; i < failures; ++i) {
    const auto failed_at = Clock::now();
    ASSERT_TRUE(q.fail(*job, "database down", true));
    EXPECT_EQ(q.status(id)->state, JobState::delayed) << "after failure " << i + 1;
    EXPECT_FALSE(q.take(0ms)) << "taken before its backoff";
    // A worker's maintenance asks to run again by the time the job is due (+1 ms: Bull bakes
    // the id's low 12 bits into the score, a fraction of a millisecond, and rounds up).
    EXPECT_LE(q.maintenance(), expected_waits[i] + 1ms);
    job = take_within(q, expected_waits[i] + 3s);
    ASSERT_TRUE(job) << "not run again after failure " << i + 1;
    const auto waited = Clock::now() - failed_at;
    EXPECT_GE(waited, expected_waits[i]) << "failure " << i + 1;
    EXPECT_LT(waited, expected_waits[i] + 2s) << "failure " << i + 1;
    EXPECT_EQ(job->attempts_made, i + 1);
  }
  ASSERT_TRUE(q.complete(*job, R"("done")"));
  auto st = q.status(id);
  EXPECT_EQ(st->state, JobState::completed);
  EXPECT_EQ(st->attempts_made, failures);
  EXPECT_EQ(st->return_value, R"("done")");
}

TEST_P(JobQueueContract, RetryWithFixedBackoffHonoursTheDelay) {
  run_with_backoff(q(), with_attempts(3, "fixed", 300ms), 2, {300ms, 300ms});
}

TEST_P(JobQueueContract, RetryWithExponentialBackoffDoublesTheDelay) {
  // Bull: round((2^attemptsMade - 1) * delay): 200 ms, then 600 ms.
  run_with_backoff(q(), with_attempts(3, "exponential", 200ms), 2, {200ms, 600ms});
}

TEST_P(JobQueueContract, RemoveOnCompleteAndOnFail) {
  JobOptions o;
  o.remove_on_complete = true;
  const std::string done = q().add("{}", o);
  auto job = q().take(1s);
  ASSERT_TRUE(job);
  EXPECT_TRUE(job->options.remove_on_complete);
  EXPECT_TRUE(q().complete(*job, "1"));
  EXPECT_FALSE(q().status(done));

  JobOptions f;
  f.remove_on_fail = true;
  const std::string failed = q().add("{}", f);
  job = q().take(1s);
  ASSERT_TRUE(job);
  EXPECT_TRUE(q().fail(*job, "no", false));
  EXPECT_FALSE(q().status(failed));

  // Without the options, both stay readable.
  const std::string kept = q().add("{}", {});
  job = q().take(1s);
  ASSERT_TRUE(job);
  EXPECT_TRUE(q().complete(*job, "1"));
  EXPECT_TRUE(q().status(kept));
}

TEST_P(JobQueueContract, UpdateDataReplacesTheJobsData) {
  const std::string id = q().add(R"({"password":"secret","username":"ada"})", with_attempts(2));
  auto job = q().take(1s);
  ASSERT_TRUE(job);
  q().update_data(*job, R"({"username":"ada"})");
  ASSERT_TRUE(q().fail(*job, "retry me", true));
  auto again = q().take(1s);
  ASSERT_TRUE(again);
  EXPECT_EQ(parse(again->data), parse(R"({"username":"ada"})"));
}

TEST_P(JobQueueContract, TwoWorkersNeverGetTheSameJob) {
  constexpr int kJobs = 60;
  std::set<std::string> added;
  for (int i = 0; i < kJobs; ++i) added.insert(q().add("{\"n\":" + std::to_string(i) + "}", {}));
  ASSERT_EQ(added.size(), static_cast<std::size_t>(kJobs));

  std::mutex mutex;
  std::multiset<std::string> taken;
  auto worker = [&](ports::JobQueue& queue) {
    while (auto job = queue.take(200ms)) {
      {
        std::lock_guard lock(mutex);
        taken.insert(job->id);
      }
      EXPECT_TRUE(queue.complete(*job, "true"));
    }
  };
  std::thread a([&] { worker(q()); }), b([&] { worker(other()); });
  a.join();
  b.join();
  EXPECT_EQ(std::set<std::string>(taken.begin(), taken.end()), added);
  EXPECT_EQ(taken.size(), added.size()) << "a job was taken twice";
}

// --- the worker runner, on each queue -----------------------------------------------------------

// A handler double: its answers are scripted per job id and run number; it records each run.
class ScriptedHandler {
 public:
  using Script = std::function<ports::JobResult(const ports::Job&, int run)>;
  explicit ScriptedHandler(Script script) : script_(std::move(script)) {}

  ports::JobResult operator()(const ports::Job& job) {
    int run;
    {
      std::lock_guard lock(mutex_);
      run = ++runs_[job.id];
    }
    return script_(job, run);
  }
  int runs(const std::string& id) {
    std::lock_guard lock(mutex_);
    return runs_.count(id) ? runs_[id] : 0;
  }

 private:
  Script script_;
  std::mutex mutex_;
  std::map<std::string, int> runs_;
};

// Waits (polling the status: no event to wait on across processes) until the job is finished.
std::optional<ports::JobStatus> wait_finished(ports::JobQueue& q, const std::string& id, milliseconds within) {
  const auto deadline = Clock::now() + within;
  for (;;) {
    auto st = q.status(id);
    if (st && (st->state == JobState::completed || st->state == JobState::failed)) return st;
    if (Clock::now() >= deadline) return st;
    std::this_thread::sleep_for(10ms);
  }
}

TEST_P(JobQueueContract, WorkerCompletesFailsAndRetriesPerTheHandler) {
  adapters::logging::Logger log("error");
  ScriptedHandler handler([](const ports::Job& job, int run) {
    const auto data = parse(job.data).as_object();
    const std::string kind(data.at("kind").as_string());
    if (kind == "ok") return ports::JobResult::completed(R"({"success":true})");
    if (kind == "bad") return ports::JobResult::failed("The verification code is incorrect");
    if (kind == "throws") throw std::runtime_error("boom");
    return run < 3 ? ports::JobResult::retry("database down") : ports::JobResult::completed(R"({"run":3})");
  });
  adapters::jobs::JobWorkerOptions wo;
  wo.concurrency = 2;
  wo.take_wait = 200ms;
  adapters::jobs::JobWorker worker(q(), std::ref(handler), log, wo);
  worker.start();

  const std::string ok = q().add(R"({"kind":"ok"})", {});
  const std::string bad = q().add(R"({"kind":"bad"})", with_attempts(3));
  const std::string flaky = q().add(R"({"kind":"flaky"})", with_attempts(3, "exponential", 100ms));
  const std::string throws = q().add(R"({"kind":"throws"})", with_attempts(2));

  auto st = wait_finished(q(), ok, 5s);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, JobState::completed);
  EXPECT_EQ(parse(*st->return_value), parse(R"({"success":true})"));

  st = wait_finished(q(), bad, 5s);
  EXPECT_EQ(st->state, JobState::failed);
  EXPECT_EQ(st->failed_reason, "The verification code is incorrect");
  EXPECT_EQ(handler.runs(bad), 1);

  st = wait_finished(q(), flaky, 10s);
  EXPECT_EQ(st->state, JobState::completed);
  EXPECT_EQ(st->attempts_made, 2);
  EXPECT_EQ(handler.runs(flaky), 3);

  st = wait_finished(q(), throws, 5s);
  EXPECT_EQ(st->state, JobState::failed);
  EXPECT_EQ(st->failed_reason, "Error processing job");  // the exception's text stays in the log
  EXPECT_EQ(handler.runs(throws), 2);

  worker.stop();
  const auto c = worker.counters();
  EXPECT_EQ(c.completed, 2u);
  EXPECT_EQ(c.failed, 2u);
  EXPECT_EQ(c.retried, 3u);  // flaky twice, throws once
}

TEST_P(JobQueueContract, WorkerStopLetsTheRunningJobFinish) {
  adapters::logging::Logger log("error");
  std::mutex mutex;
  std::condition_variable cv;
  bool started = false, release = false;
  adapters::jobs::JobWorkerOptions wo;
  wo.take_wait = 100ms;
  adapters::jobs::JobWorker worker(
      q(),
      [&](const ports::Job&) {
        std::unique_lock lock(mutex);
        started = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
        return ports::JobResult::completed("\"finished\"");
      },
      log, wo);
  worker.start();
  const std::string id = q().add("{}", {});
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return started; }));
  }
  std::thread stopper([&] { worker.stop(); });
  std::this_thread::sleep_for(100ms);  // stop() is now waiting for the handler
  EXPECT_EQ(q().status(id)->state, JobState::active);
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  stopper.join();
  auto st = q().status(id);
  EXPECT_EQ(st->state, JobState::completed);
  EXPECT_EQ(st->return_value, "\"finished\"");
  // Stopped: a new job stays waiting.
  const std::string later = q().add("{}", {});
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(q().status(later)->state, JobState::waiting);
}

INSTANTIATE_TEST_SUITE_P(Backends, JobQueueContract, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// What only the Bull queue has: locks that expire, the stalled check, a paused queue, the layout.

class BullQueue : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
    flush_redis();
  }
  static adapters::bull::BullQueueOptions fast_stall() {
    adapters::bull::BullQueueOptions o;
    o.lock_duration = 300ms;
    o.stalled_interval = 300ms;
    return o;
  }
};

TEST_F(BullQueue, EmbedsBullsScripts) {
  EXPECT_STREQ(adapters::bull::kBullVersion, "4.16.5");
  const auto& s = adapters::bull::script("moveToFinished");
  EXPECT_EQ(s.keys, 9);
  // The includes are resolved in place.
  EXPECT_EQ(std::string_view(s.source).find("@include"), std::string_view::npos);
  EXPECT_NE(std::string_view(s.source).find("local function removeLock"), std::string_view::npos);
  EXPECT_THROW(adapters::bull::script("noSuchScript"), std::out_of_range);
}

TEST_F(BullQueue, UsesBullsKeys) {
  BullStack s;
  const std::string id = s.queue.add(R"({"a":1})", with_attempts(3, "exponential", 200ms));
  adapters::redis::Client c(redis_url());
  EXPECT_EQ(c.command({"LRANGE", "bull:Create_User:wait", "0", "-1"}).elements.at(0).str, id);
  EXPECT_EQ(c.command({"GET", "bull:Create_User:id"}).str, id);
  const auto opts = parse(c.command({"HGET", "bull:Create_User:" + id, "opts"}).str).as_object();
  EXPECT_EQ(opts.at("attempts").as_int64(), 3);
  EXPECT_EQ(opts.at("backoff"), parse(R"({"type":"exponential","delay":200})"));
  EXPECT_EQ(c.command({"HGET", "bull:Create_User:" + id, "name"}).str, "__default__");

  auto job = s.queue.take(1s);
  ASSERT_TRUE(job);
  EXPECT_EQ(c.command({"GET", "bull:Create_User:" + id + ":lock"}).str, s.queue.token());
  EXPECT_EQ(job->lock_token, s.queue.token());
  const auto ttl = c.command({"PTTL", "bull:Create_User:" + id + ":lock"}).integer;
  EXPECT_GT(ttl, 25'000);  // lockDuration 30 s
  EXPECT_LE(ttl, 30'000);

  // A custom prefix and queue name.
  adapters::bull::BullQueueOptions o;
  o.prefix = "acme";
  o.queue = "signups";
  BullStack t(o);
  const std::string other = t.queue.add("{}", {});
  EXPECT_EQ(c.command({"EXISTS", "acme:signups:" + other}).integer, 1);
}

TEST_F(BullQueue, AJobWhoseLockIsNotRenewedIsFoundStalledAndTakenAgain) {
  BullStack a(fast_stall()), b(fast_stall());
  const std::string id = a.queue.add(R"({"n":1})", {});
  auto job = a.queue.take(1s);
  ASSERT_TRUE(job);
  // `a` dies: its lock is never renewed. `b`'s maintenance marks the job, then (lock expired,
  // next stalled interval) moves it back to wait, and `b` takes it.
  auto again = take_within(b.queue, 5s);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->id, id);
  EXPECT_EQ(b.queue.stalled_requeued(), 1u);
  EXPECT_FALSE(a.queue.extend_lock(*job));  // `a` lost it
  EXPECT_FALSE(a.queue.complete(*job, "\"late\""));
  EXPECT_TRUE(b.queue.complete(*again, "\"once\""));
  EXPECT_EQ(b.queue.status(id)->return_value, "\"once\"");
}

TEST_F(BullQueue, ARenewedLockKeepsTheJob) {
  BullStack a(fast_stall()), b(fast_stall());
  const std::string id = a.queue.add("{}", {});
  auto job = a.queue.take(1s);
  ASSERT_TRUE(job);
  const auto until = Clock::now() + 1500ms;  // five stalled intervals
  while (Clock::now() < until) {
    ASSERT_TRUE(a.queue.extend_lock(*job));
    b.queue.maintenance();
    EXPECT_FALSE(b.queue.take(0ms));
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(b.queue.stalled_requeued(), 0u);
  EXPECT_TRUE(a.queue.complete(*job, "1"));
}

TEST_F(BullQueue, AJobStalledMoreThanMaxStalledCountFails) {
  auto o = fast_stall();
  o.max_stalled_count = 0;
  BullStack a(o), b(o);
  const std::string id = a.queue.add("{}", {});
  ASSERT_TRUE(a.queue.take(1s));
  const auto deadline = Clock::now() + 5s;
  while (b.queue.stalled_failed() == 0 && Clock::now() < deadline) {
    b.queue.maintenance();
    std::this_thread::sleep_for(20ms);
  }
  auto st = b.queue.status(id);
  EXPECT_EQ(st->state, JobState::failed);
  EXPECT_EQ(st->failed_reason, "job stalled more than allowable limit");
}

TEST_F(BullQueue, APausedQueueIsNotTaken) {
  BullStack s;
  s.queue.pause();
  EXPECT_TRUE(s.queue.paused());
  const std::string id = s.queue.add("{}", {});
  EXPECT_EQ(s.queue.status(id)->state, JobState::paused);
  EXPECT_FALSE(s.queue.take(300ms));
  EXPECT_EQ(s.queue.counts().paused, 1);
  s.queue.resume();
  EXPECT_FALSE(s.queue.paused());
  auto job = s.queue.take(1s);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->id, id);
}

TEST_F(BullQueue, FinishingPublishesWhatNodesFinishedWaitsFor) {
  BullStack s;
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<std::pair<std::string, std::string>> messages;
  adapters::redis::Subscriber sub(redis_url());
  std::atomic<int> subscribed{0};
  sub.on_connected([&] {
    subscribed.fetch_add(1);
    cv.notify_all();
  });
  for (const char* channel : {"bull:Create_User:completed", "bull:Create_User:failed"}) {
    sub.subscribe(channel, [&](std::string_view ch, std::string_view msg) {
      std::lock_guard lock(mutex);
      messages.emplace_back(ch, msg);
      cv.notify_all();
    });
  }
  {
    std::unique_lock lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return subscribed.load() > 0; }));
  }
  JobOptions removed;
  removed.remove_on_complete = true;
  const std::string a = s.queue.add("{}", removed);
  auto job = s.queue.take(1s);
  ASSERT_TRUE(s.queue.complete(*job, R"({"success":true})"));
  const std::string b = s.queue.add("{}", {});
  job = s.queue.take(1s);
  ASSERT_TRUE(s.queue.fail(*job, "Session expired. Please log in again", false));

  std::unique_lock lock(mutex);
  ASSERT_TRUE(cv.wait_for(lock, 5s, [&] { return messages.size() >= 2; }));
  EXPECT_EQ(messages[0].first, "bull:Create_User:completed");
  EXPECT_EQ(parse(messages[0].second), parse(R"({"jobId":")" + a + R"(","val":"{\"success\":true}"})"));
  EXPECT_EQ(messages[1].first, "bull:Create_User:failed");
  EXPECT_EQ(parse(messages[1].second), parse(R"({"jobId":")" + b + R"(","val":"Session expired. Please log in again"})"));
}

TEST_F(BullQueue, TheWorkerSurvivesARedisOutage) {
  adapters::logging::Logger log("error");
  BullStack s;
  std::atomic<int> runs{0};
  adapters::jobs::JobWorkerOptions wo;
  wo.take_wait = 200ms;
  wo.backoff_max = 500ms;
  adapters::jobs::JobWorker worker(
      s.queue,
      [&](const ports::Job&) {
        runs.fetch_add(1);
        return ports::JobResult::completed("1");
      },
      log, wo);
  worker.start();
  const std::string before = s.queue.add("{}", {});
  ASSERT_EQ(wait_finished(s.queue, before, 5s)->state, JobState::completed);

  shared_redis().stop();
  std::this_thread::sleep_for(700ms);  // takes fail meanwhile, and back off
  shared_redis().start();

  // The first commands after the restart may meet the lost connection: a producer retries.
  std::string after;
  const auto deadline = Clock::now() + 10s;
  while (after.empty()) {
    try {
      after = s.queue.add("{}", {});
    } catch (const ports::BackendUnavailable&) {
      ASSERT_LT(Clock::now(), deadline) << "redis not back";
      std::this_thread::sleep_for(50ms);
    }
  }
  std::optional<ports::JobStatus> st;
  while (!st || st->state != JobState::completed) {
    try {
      st = wait_finished(s.queue, after, 15s);
      break;
    } catch (const ports::BackendUnavailable&) {
      ASSERT_LT(Clock::now(), deadline + 15s);
    }
  }
  ASSERT_TRUE(st);
  EXPECT_EQ(st->state, JobState::completed);
  worker.stop();
  EXPECT_GT(worker.counters().failures, 0u);
  EXPECT_EQ(runs.load(), 2);
}

}  // namespace
}  // namespace registrar
