#pragma once
// The Create_User job queue. Two adapters pass one contract suite
// (tests/contract/job_queue_test.cpp): in process (no Redis configured), and Bull v4's layout on
// Redis, which Node `bull` producers and workers share with us.
//
// Producer side (POST /users, GET /jobs/{id}) and worker side (take → complete | fail). A taken job
// is locked for `lock_duration` and the lock is renewed while it runs; a job whose worker died is
// found by the stalled check and runs again (at-least-once: the use case is idempotent).
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace registrar::ports {

struct JobOptions {
  int attempts = 1;                     // Bull's `attempts`
  std::string backoff_type;             // "" (none), "fixed", "exponential"
  std::chrono::milliseconds backoff_delay{0};
  bool remove_on_complete = false, remove_on_fail = false;
};

struct Job {
  std::string id;        // the queue's job id (Bull: the counter, or the producer's jobId)
  std::string data;      // the job's data, JSON text as the producer wrote it
  int attempts_made = 0;  // runs that failed before this one
  JobOptions options;
  std::string lock_token;  // the worker's lock on the job while it runs (Bull: the lock value)
};

enum class JobState { waiting, active, delayed, completed, failed, paused, unknown };

struct JobStatus {
  std::string id;
  JobState state = JobState::unknown;
  std::optional<std::string> return_value;  // JSON text, when completed
  std::optional<std::string> failed_reason;  // when failed
  int attempts_made = 0;
  std::optional<std::int64_t> finished_on;    // ms since the epoch
};

class JobQueue {
 public:
  virtual ~JobQueue() = default;

  // Producer side.
  virtual std::string add(std::string_view data_json, const JobOptions& options) = 0;
  virtual std::optional<JobStatus> status(std::string_view job_id) = 0;

  // Worker side. Waits up to `wait` for a job; the job comes back locked.
  virtual std::optional<Job> take(std::chrono::milliseconds wait) = 0;
  // Renews the job's lock; false if the lock was lost (another worker has the job now).
  virtual bool extend_lock(const Job& job) = 0;
  // `return_value_json` is stored as the job's return value (Bull: `returnvalue`) and sent to
  // waiting producers.
  virtual void complete(const Job& job, std::string_view return_value_json) = 0;
  // `retry`: false fails the job for good (a wrong code); true retries it per its attempts and
  // backoff (a backend outage) or fails it when the attempts are used up.
  virtual void fail(const Job& job, std::string_view reason, bool retry) = 0;
  // Replaces the job's data (scrubbing the password, phone and token when it ends).
  virtual void update_data(const Job& job, std::string_view data_json) = 0;

  // Housekeeping a worker runs periodically (Bull: promote due delayed jobs, the stalled-job
  // check). No-ops where the adapter needs none.
  virtual void maintenance() = 0;
};

}  // namespace registrar::ports
