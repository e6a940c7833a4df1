#pragma once
// Runs jobs from any ports::JobQueue (Bull on Redis, or in process) the way a Node bull worker
// runs them: `concurrency` threads take a job (locked), call the handler, and complete, fail or
// retry it per the handler's JobResult; the locks of the running jobs are renewed every
// lock_renew_interval (bull: lockDuration / 2); maintenance() (promote delayed jobs, the stalled
// check) runs when the queue asks for it and at once after a retry was scheduled here.
//
// Outages: a take, renewal or maintenance that throws (ports::BackendUnavailable) is logged and
// retried after a jittered exponential back-off (threads::SupervisedLoop). A finished run whose
// outcome cannot be written is retried the same way; if its lock is lost meanwhile the queue has
// given the job to another run (the stalled check), which the idempotent use case absorbs.
//
// A handler that answers JobResult::rerun (the run met an outage of the queue's own backend) is
// run again, without counting an attempt, once the queue answers and the job's lock is still ours.
//
// A handler that throws counts as a failed run to retry (as a Node worker's rejected promise); the
// reason stored is "Error processing job" and the exception's text goes to the log only.
//
// One JobWorker per queue object (its threads are the queue's concurrency; on_wakeup has one
// listener). lock_renew_interval must stay under the queue's lock duration (half, as bull).
//
// stop(): takes no new job and lets each running job finish and its outcome be written (one try
// if the queue is down: a job left active then runs again after the stalled check), then joins.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "adapters/threads/supervised_loop.hpp"
#include "ports/job_queue.hpp"

namespace registrar::adapters::jobs {

using JobHandler = std::function<ports::JobResult(const ports::Job&)>;

struct JobWorkerOptions {
  int concurrency = 1;
  std::chrono::milliseconds take_wait{1000};             // longest block in take(); bounds how long stop() waits for an idle thread
  std::chrono::milliseconds lock_renew_interval{15'000};  // bull: lockRenewTime = lockDuration / 2
  std::chrono::milliseconds backoff_initial{100};         // after a failure, doubling …
  std::chrono::milliseconds backoff_max{10'000};          // … up to this, with jitter
};

struct JobWorkerCounters {
  std::uint64_t completed = 0;  // runs completed
  std::uint64_t failed = 0;     // runs failed for good (or out of attempts)
  std::uint64_t retried = 0;    // runs failed with a retry left
  std::uint64_t lost = 0;       // outcomes the queue refused: the job was not ours any more
  std::uint64_t failures = 0;   // queue calls that threw (outages)
};

class JobWorker {
 public:
  // `queue`, `handler`'s captures and `log` must outlive the worker. Nothing runs until start().
  JobWorker(ports::JobQueue& queue, JobHandler handler, const logging::Logger& log, JobWorkerOptions options = {});
  ~JobWorker();  // stop()
  JobWorker(const JobWorker&) = delete;
  JobWorker& operator=(const JobWorker&) = delete;

  void start();
  void stop();  // idempotent
  JobWorkerCounters counters() const;

 private:
  void work(threads::SupervisedLoop& loop);
  ports::JobResult run_handler(const ports::Job& job);  // a throw is a retry
  // Backs off until the queue answers: whether the job is still ours; nullopt when stopping.
  std::optional<bool> wait_for_queue(threads::SupervisedLoop& loop, const ports::Job& job);
  bool renew();  // false if a renewal could not be made (outage)
  // Writes the run's outcome; true if it was written (or refused as not ours), false if given up.
  bool apply(threads::SupervisedLoop& loop, const ports::Job& job, const ports::JobResult& result);
  void on_failure(std::string_view what, std::string_view error, std::chrono::milliseconds retry_in);

  ports::JobQueue& queue_;
  JobHandler handler_;
  const logging::Logger& log_;
  JobWorkerOptions options_;
  std::atomic<std::uint64_t> completed_{0}, failed_{0}, retried_{0}, lost_{0}, failures_{0};
  std::mutex running_mutex_;
  std::map<std::uint64_t, ports::Job> running_;  // by run number: the jobs whose locks are renewed
  std::uint64_t next_run_ = 0;
  bool renew_failed_ = false;  // the renewer's thread only
  // Last: their threads stop before the members they use go.
  std::unique_ptr<threads::SupervisedLoop> maintenance_, renewer_;
  std::vector<std::unique_ptr<threads::SupervisedLoop>> workers_;
};

}  // namespace registrar::adapters::jobs
