#pragma once
// The Create_User job queue. Two adapters pass one contract suite
// (tests/contract/job_queue_test.cpp): in process (no Redis configured), and Bull v4's layout on
// Redis, which Node `bull` producers and workers share with us.
//
// Producer side (POST /users, GET /jobs/{id}) and worker side (take → complete | fail). A taken job
// is locked for `lock_duration` and the lock is renewed while it runs; a job whose worker died is
// found by the stalled check and runs again (at-least-once: the use case is idempotent).
//
// Retries follow Bull: a failed run counts in `attempts_made`; while attempts_made < attempts the
// job waits `backoff` (fixed: delay; exponential: round((2^attempts_made - 1) * delay)) in the
// delayed state, or goes back to waiting at once without a backoff. maintenance() promotes due
// delayed jobs. Infrastructure failures throw ports::BackendUnavailable; the queue's state is then
// what Bull's would be after a lost connection (at worst a job stays active and is found stalled).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace registrar::ports {

struct JobOptions {
  int attempts = 1;                     // Bull's `attempts`
  std::string backoff_type;             // "" (none), "fixed", "exponential"
  std::chrono::milliseconds backoff_delay{0};
  bool remove_on_complete = false, remove_on_fail = false;
};

// The wait before the next run after `attempts_made` failed runs (Bull's lib/backoffs.js): fixed:
// delay; exponential: round((2^attempts_made - 1) * delay); none: 0 (at once).
inline std::chrono::milliseconds backoff_delay(const JobOptions& options, int attempts_made) {
  const auto d = options.backoff_delay.count();
  if (options.backoff_type == "fixed") return std::chrono::milliseconds(d);
  if (options.backoff_type == "exponential" && attempts_made >= 0 && attempts_made < 62) {
    return std::chrono::milliseconds(((std::int64_t{1} << attempts_made) - 1) * d);
  }
  return std::chrono::milliseconds(0);
}

struct Job {
  std::string id;        // the queue's job id (Bull: the counter, or the producer's jobId)
  std::string data;      // the job's data, JSON text as the producer wrote it
  int attempts_made = 0;  // runs that failed before this one
  JobOptions options;
  std::string lock_token;  // the worker's lock on the job while it runs (Bull: the lock value)
};

// What a handler decides about one run of a job (the worker runner applies it).
struct JobResult {
  enum class Kind { complete, fail, retry, rerun };
  Kind kind = Kind::complete;
  std::string value;  // complete: the return value (JSON text); fail / retry: the failure reason

  static JobResult completed(std::string return_value_json) { return {Kind::complete, std::move(return_value_json)}; }
  // Fails for good, whatever attempts are left (Bull: job.discard() then throw).
  static JobResult failed(std::string reason) { return {Kind::fail, std::move(reason)}; }
  // Fails this run; the job runs again per its attempts and backoff, or fails when they are used up.
  static JobResult retry(std::string reason) { return {Kind::retry, std::move(reason)}; }
  // The run met an outage of the queue's own backend (Redis holds the queue and the codes): nothing
  // can be recorded until it is back. The worker waits for the queue to answer, keeps the job's
  // lock, and runs the job again without counting an attempt (a job that has no attempts left is
  // not lost to an outage it could not even report). `reason` goes to the log.
  static JobResult rerun(std::string reason) { return {Kind::rerun, std::move(reason)}; }
};

// `unknown`: the job exists but is in no list (Bull's "stuck", e.g. between two steps of a worker
// that lost its connection).
enum class JobState { waiting, active, delayed, completed, failed, paused, unknown };

struct JobStatus {
  std::string id;
  JobState state = JobState::unknown;
  std::optional<std::string> return_value;  // JSON text, when completed
  std::optional<std::string> failed_reason;  // the last failed run's reason (failed, or waiting to retry)
  int attempts_made = 0;
  std::optional<std::int64_t> finished_on;    // ms since the epoch
  std::string data;  // the job's data (JSON text) as it is now: whose job it is, its recorded outcome
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Producer side.
  virtual std::string add(std::string_view data_json, const JobOptions& options) = 0;
  virtual std::optional<JobStatus> status(std::string_view job_id) = 0;

  // Worker side. Waits up to `wait` for a job; the job comes back locked.
  virtual std::optional<Job> take(std::chrono::milliseconds wait) = 0;
  // Ends the waits of the take() calls waiting now (they return no job), so that a worker stops
  // without waiting out `wait` on each of its threads. Best effort: an adapter that cannot cut a
  // wait short (a blocking command on a server) lets it run out.
  virtual void interrupt_takes() {}
  // Renews the job's lock; false if the lock was lost (another worker has the job now).
  virtual bool extend_lock(const Job& job) = 0;
  // `return_value_json` is stored as the job's return value (Bull: `returnvalue`) and sent to
  // waiting producers. False if the job was not ours any more (lock lost, or no longer active):
  // nothing was changed.
  virtual bool complete(const Job& job, std::string_view return_value_json) = 0;
  // `retry`: false fails the job for good (a wrong code); true retries it per its attempts and
  // backoff (a backend outage) or fails it when the attempts are used up. False as for complete().
  virtual bool fail(const Job& job, std::string_view reason, bool retry) = 0;
  // Replaces the job's data (scrubbing the password, phone and token when it ends).
  virtual void update_data(const Job& job, std::string_view data_json) = 0;

  // Housekeeping a worker runs periodically (Bull: promote due delayed jobs, the stalled-job
  // check, itself run at most once per stalled interval whoever calls it). Returns how soon it
  // wants to run again: when the next delayed job is due, at most a guard interval (a job delayed
  // later by another process is then promoted at most that late).
  virtual std::chrono::milliseconds maintenance() = 0;
  // `wake` is called (from any thread; it must not block) when maintenance() should run sooner
  // than it asked: Bull, when another process delays a job (Node's worker listens to the same
  // `delayed` message). An empty function stops the calls. Adapters without such news ignore it.
  virtual void on_wakeup(std::function<void()> wake) {}
};

}  // namespace registrar::ports
