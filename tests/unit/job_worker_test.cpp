// The job worker runner (adapters/jobs) on a scripted fake queue: what the contract suite cannot
// cause at will — an outcome that cannot be written at first, a lock lost while the job runs,
// renewals while a long handler runs.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "adapters/inproc/job_queue.hpp"
#include "adapters/jobs/job_worker.hpp"
#include "adapters/logging/json_logger.hpp"
#include "ports/errors.hpp"
#include "ports/job_queue.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;

class FakeQueue final : public ports::JobQueue {
 public:
  std::string add(std::string_view data, const ports::JobOptions& options) override {
    std::lock_guard lock(mutex_);
    ports::Job job;
    job.id = std::to_string(++next_);
    job.data = std::string(data);
    job.options = options;
    job.lock_token = "t";
    jobs_.push_back(job);
    return job.id;
  }
  std::optional<ports::JobStatus> status(std::string_view) override { return std::nullopt; }
  std::optional<ports::Job> take(std::chrono::milliseconds wait) override {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, wait, [&] { return !jobs_.empty(); })) return std::nullopt;
    auto job = jobs_.front();
    jobs_.pop_front();
    return job;
  }
  bool extend_lock(const ports::Job&) override {
    extends.fetch_add(1);
    if (extend_outages.load() > 0) {
      extend_outages.fetch_sub(1);
      throw ports::BackendUnavailable("redis: connection lost");
    }
    return !lock_lost.load();
  }
  bool complete(const ports::Job&, std::string_view) override {
    if (complete_outages.load() > 0) {
      complete_outages.fetch_sub(1);
      throw ports::BackendUnavailable("redis: connection lost");
    }
    completes.fetch_add(1);
    changed_.notify_all();
    return !lock_lost.load();
  }
  bool fail(const ports::Job&, std::string_view, bool) override { return true; }
  void update_data(const ports::Job&, std::string_view) override {}
  std::chrono::milliseconds maintenance() override {
    maintenances.fetch_add(1);
    return 1000ms;
  }

  std::atomic<int> extends{0}, completes{0}, complete_outages{0}, extend_outages{0}, maintenances{0};
  std::atomic<bool> lock_lost{false};

  bool wait_completes(int n, std::chrono::milliseconds within) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, within, [&] { return completes.load() >= n; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<ports::Job> jobs_;
  int next_ = 0;
};

adapters::jobs::JobWorkerOptions fast() {
  adapters::jobs::JobWorkerOptions o;
  o.take_wait = 50ms;
  o.lock_renew_interval = 40ms;
  o.backoff_initial = 10ms;
  o.backoff_max = 50ms;
  return o;
}

TEST(JobWorker, RenewsTheLockWhileTheHandlerRuns) {
  adapters::logging::Logger log("error");
  FakeQueue q;
  adapters::jobs::JobWorker worker(
      q,
      [](const ports::Job&) {
        std::this_thread::sleep_for(300ms);
        return ports::JobResult::completed("1");
      },
      log, fast());
  worker.start();
  q.add("{}", {});
  ASSERT_TRUE(q.wait_completes(1, 5s));
  worker.stop();
  EXPECT_GE(q.extends.load(), 4);  // 300 ms / 40 ms, with slack
  EXPECT_GE(q.maintenances.load(), 1);
}

// stop() asks every thread first and then joins them, and the in-process queue ends the waits of
// idle takes: an idle worker of 16 threads whose takes wait 30 s each stops at once. (Joined one
// by one, each idle thread waited out its take in turn: `serve` took ~9 s to stop.)
TEST(JobWorker, AnIdleWorkerOfManyThreadsStopsWithoutWaitingOutItsTakes) {
  adapters::logging::Logger log("error");
  adapters::inproc::InProcessJobQueue q;
  auto options = fast();
  options.concurrency = 16;
  options.take_wait = 30s;
  adapters::jobs::JobWorker worker(q, [](const ports::Job&) { return ports::JobResult::completed("1"); }, log, options);
  worker.start();
  const std::string id = q.add("{}", {});  // one job through, so the threads are up and waiting in take()
  for (int i = 0; i < 500 && !(q.status(id) && q.status(id)->state == ports::JobState::completed); ++i) {
    std::this_thread::sleep_for(10ms);
  }
  const auto t0 = std::chrono::steady_clock::now();
  worker.stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);  // not one take_wait, let alone 16
}

TEST(JobWorker, RetriesAnOutcomeThatCannotBeWrittenYet) {
  adapters::logging::Logger log("error");
  FakeQueue q;
  q.complete_outages = 3;
  adapters::jobs::JobWorker worker(q, [](const ports::Job&) { return ports::JobResult::completed("1"); }, log, fast());
  worker.start();
  q.add("{}", {});
  ASSERT_TRUE(q.wait_completes(1, 5s));
  worker.stop();
  const auto c = worker.counters();
  EXPECT_EQ(c.completed, 1u);
  EXPECT_EQ(c.failures, 3u);
  EXPECT_EQ(q.complete_outages.load(), 0);
}

TEST(JobWorker, CountsAnOutcomeRefusedBecauseTheLockWasLost) {
  adapters::logging::Logger log("error");
  FakeQueue q;
  q.lock_lost = true;
  adapters::jobs::JobWorker worker(q, [](const ports::Job&) { return ports::JobResult::completed("1"); }, log, fast());
  worker.start();
  q.add("{}", {});
  ASSERT_TRUE(q.wait_completes(1, 5s));
  worker.stop();
  const auto c = worker.counters();
  EXPECT_EQ(c.completed, 0u);
  EXPECT_EQ(c.lost, 1u);
}

TEST(JobWorker, ARerunWaitsForTheQueueThenRunsTheJobAgain) {
  adapters::logging::Logger log("error");
  FakeQueue q;
  q.extend_outages = 3;  // the queue does not answer for a while
  std::atomic<int> runs{0};
  adapters::jobs::JobWorker worker(
      q,
      [&](const ports::Job&) {
        return runs.fetch_add(1) == 0 ? ports::JobResult::rerun("outage") : ports::JobResult::completed("1");
      },
      log, fast());
  worker.start();
  q.add("{}", {});
  ASSERT_TRUE(q.wait_completes(1, 5s));
  worker.stop();
  EXPECT_EQ(runs.load(), 2);
  EXPECT_EQ(q.extend_outages.load(), 0);  // it waited through every one
  const auto c = worker.counters();
  EXPECT_EQ(c.completed, 1u);
  EXPECT_EQ(c.retried + c.failed, 0u);  // no attempt was used
}

TEST(JobWorker, ARerunWhoseLockWasLostMeanwhileIsLeftToItsNewRun) {
  adapters::logging::Logger log("error");
  FakeQueue q;
  q.lock_lost = true;
  std::atomic<int> runs{0};
  adapters::jobs::JobWorker worker(
      q,
      [&](const ports::Job&) {
        runs.fetch_add(1);
        return ports::JobResult::rerun("outage");
      },
      log, fast());
  worker.start();
  q.add("{}", {});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (worker.counters().lost == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
  worker.stop();
  EXPECT_EQ(worker.counters().lost, 1u);
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(q.completes.load(), 0);
}

}  // namespace
}  // namespace registrar
