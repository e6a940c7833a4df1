#pragma once
// ports::JobQueue on Redis in the layout of Node's `bull` v4, so that Node producers (queue.add,
// job.finished(), getJobCounts, getJob) and Node workers share the queue with us. Every step that
// changes the queue runs bull's own Lua script (scripts.hpp) with the keys and arguments that
// bull's lib/scripts.js gives it; what bull's Node client does around the scripts is done here
// the same way (read from lib/queue.js, lib/job.js, lib/getters.js of bull 4.16.5):
//
//  - take(): if the last take found the queue empty ("drained"), BRPOPLPUSH wait → active on the
//    blocking client, then moveToActive with that id; else moveToActive alone (its RPOPLPUSH).
//    moveToActive locks the job: `<job>:lock` = this queue's token (a uuid v4, one per queue object
//    as in bull), PX lock_duration. A paused queue (pause(), or a Node `queue.pause()`) has its
//    jobs in `paused`, so nothing is taken. No rate limiter: it is an option of the worker's Queue
//    object (ours), not of the jobs, and we set none.
//  - complete()/fail(): moveToFinished (ZADD completed|failed, returnvalue|failedReason,
//    finishedOn, removeOnComplete|removeOnFail as bull packs them, and the PUBLISH on
//    `<prefix>:<queue>:completed|failed` of {"jobId","val"} that resolves or rejects Node's
//    job.finished(); the script publishes it, also when it deletes the job). We pass "do not
//    fetch the next job" (Node fetches it in the same call; we take() it instead).
//  - fail(): as Job.moveToFailed: attemptsMade + 1, stacktrace and failedReason saved
//    (saveStacktrace), then — while attempts are left and the failure may be retried — moveToDelayed
//    with bull's backoff (lib/backoffs.js), or retryJob when there is no delay; else moveToFinished
//    to failed. Node runs the two scripts in one MULTI; our Redis client is shared by concurrent
//    callers, so the two are run as one script instead (compose(): each source is wrapped, unchanged,
//    in a Lua function given its own KEYS and ARGV), which keeps them atomic.
//  - maintenance(): updateDelaySet (promote due delayed jobs; bull's updateDelayTimer) and
//    moveStalledJobsToWait (bull's stalled check; the script runs it at most once per
//    stalled_interval, whoever calls, with the `stalled-check` key).
//  - status(): Job.getState (completed, failed, delayed, active, waiting, paused, else "stuck") and
//    the job hash.
//
// Thread-safe. Redis outages throw ports::BackendUnavailable (from the client).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/redis/client.hpp"
#include "ports/job_queue.hpp"

namespace registrar::adapters::bull {

struct BullQueueOptions {
  std::string prefix = "bull";        // bull's `prefix` option
  std::string queue = "Create_User";  // the queue's name
  std::chrono::milliseconds lock_duration{30'000};    // settings.lockDuration
  std::chrono::milliseconds stalled_interval{30'000};  // settings.stalledInterval (0: no stalled check)
  int max_stalled_count = 1;                          // settings.maxStalledCount
  std::chrono::milliseconds guard_interval{5'000};    // settings.guardInterval: most time between delayed-set checks
};

// Counts per state, as bull's Queue#getJobCounts.
struct BullJobCounts {
  long long waiting = 0, active = 0, completed = 0, failed = 0, delayed = 0, paused = 0;
};

class BullQueue final : public ports::JobQueue {
 public:
  // `client` runs everything but BRPOPLPUSH, which blocks its connection and so runs on
  // `blocking`. With `events`, the queue listens to `<prefix>:<queue>:delayed` (the next delayed
  // timestamp, published by bull's scripts) and calls on_wakeup's function, as Node's worker
  // updates its delay timer; without, a job delayed by another process is promoted at most
  // guard_interval late. One BullQueue per Subscriber and queue name (the subscription is by
  // channel). All must outlive the queue.
  BullQueue(redis::Client& client, redis::Client& blocking, BullQueueOptions options = {},
            redis::Subscriber* events = nullptr);
  ~BullQueue() override;
  BullQueue(const BullQueue&) = delete;
  BullQueue& operator=(const BullQueue&) = delete;

  // `data_json` must be a JSON text (std::invalid_argument otherwise): Node workers JSON.parse it.
  std::string add(std::string_view data_json, const ports::JobOptions& options) override;
  std::optional<ports::JobStatus> status(std::string_view job_id) override;
  std::optional<ports::Job> take(std::chrono::milliseconds wait) override;
  bool extend_lock(const ports::Job& job) override;
  bool complete(const ports::Job& job, std::string_view return_value_json) override;
  bool fail(const ports::Job& job, std::string_view reason, bool retry) override;
  void update_data(const ports::Job& job, std::string_view data_json) override;
  std::chrono::milliseconds maintenance() override;
  void on_wakeup(std::function<void()> wake) override;

  // Queue#pause() / resume() (global: every worker, Node's too) and isPaused().
  void pause();
  void resume();
  bool paused();
  BullJobCounts counts();

  // `<prefix>:<queue>:<name>`, as bull's Queue#toKey.
  std::string key(std::string_view name) const;
  // This queue object's lock token.
  const std::string& token() const { return token_; }
  // Jobs the stalled checks moved back to wait, and failed for stalling too often.
  std::uint64_t stalled_requeued() const { return stalled_requeued_.load(); }
  std::uint64_t stalled_failed() const { return stalled_failed_.load(); }

 private:
  // What take() read from the job's `opts` that complete()/fail() need, exactly as the producer
  // wrote it (a Node producer may give removeOnComplete as a count or {age, count}).
  struct Taken {
    std::string keep_completed, keep_failed;  // bull's packed keepJobs arguments
    std::string backoff_type;                 // "", "fixed", "exponential", or a custom name
    double backoff_delay = 0;
    bool lifo = false;
    std::optional<long long> stacktrace_limit;
    std::vector<std::string> stacktrace;  // the job's saved stack traces
  };

  redis::Reply run(std::string_view name, const std::vector<std::string>& keys, const std::vector<std::string>& args);
  redis::Reply run_pair(std::string_view first, const std::vector<std::string>& first_keys,
                        const std::vector<std::string>& first_args, std::string_view second,
                        const std::vector<std::string>& second_keys, const std::vector<std::string>& second_args);
  std::optional<ports::Job> move_to_active(const std::string& job_id);
  std::vector<std::string> move_to_finished_args(const ports::Job& job, std::int64_t finished_on, bool completed,
                                                 std::string_view value, const std::string& keep_jobs) const;
  Taken taken_of(const ports::Job& job);
  void forget(const std::string& job_id);

  redis::Client& client_;
  redis::Client& blocking_;
  BullQueueOptions options_;
  std::string token_;
  std::string base_;  // toKey(''): "<prefix>:<queue>:"
  std::atomic<bool> drained_{true};
  // One BRPOPLPUSH at a time on the blocking connection: `blocking_busy_` under `blocking_mutex_`,
  // waited for on `blocking_free_`. (Not a std::timed_mutex: its try_lock_for is glibc's
  // pthread_mutex_clocklock, which GCC 12's ThreadSanitizer does not intercept, so it would see
  // an unlock of a mutex it never saw locked.)
  std::mutex blocking_mutex_;
  std::condition_variable blocking_free_;
  bool blocking_busy_ = false;
  std::mutex taken_mutex_;
  std::map<std::string, Taken, std::less<>> taken_;  // by job id, from take() to complete()/fail()
  std::atomic<std::uint64_t> stalled_requeued_{0}, stalled_failed_{0};
  // The wake-up function, shared with the subscription's callback (which may outlive the queue).
  struct Wakeup {
    std::mutex mutex;
    std::function<void()> wake;
    bool subscribed = false;
  };
  redis::Subscriber* events_;
  std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
};

// bull's backoff (lib/backoffs.js), in ms, after `attempts_made` failed runs: fixed: delay;
// exponential: round((2^attempts_made - 1) * delay); none or unknown: 0 (retry at once).
std::int64_t backoff_delay_ms(std::string_view type, double delay, int attempts_made);

}  // namespace registrar::adapters::bull
