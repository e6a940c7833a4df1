#pragma once
// The embedded job queue (no Redis configured): the Bull semantics of ports::JobQueue in memory —
// ids from a counter ("1", "2", …), FIFO, attempts with fixed/exponential backoff through a
// delayed set, remove-on-complete/fail, and the status of a finished job kept for a bounded
// history (the oldest finished jobs are forgotten first). One process owns the queue, so a lock
// is only a token checked by extend_lock/complete/fail (a job taken again after a stop is not
// possible here: jobs live and die with the process) and maintenance() only promotes delayed jobs
// (take() does it too). Thread-safe.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "ports/job_queue.hpp"

namespace registrar::adapters::inproc {

struct InProcessJobQueueOptions {
  std::size_t finished_history = 10'000;  // finished jobs whose status stays readable
};

class InProcessJobQueue final : public ports::JobQueue {
 public:
  explicit InProcessJobQueue(InProcessJobQueueOptions options = {});

  std::string add(std::string_view data_json, const ports::JobOptions& options) override;
  std::optional<ports::JobStatus> status(std::string_view job_id) override;
  std::optional<ports::Job> take(std::chrono::milliseconds wait) override;
  void interrupt_takes() override;
  bool extend_lock(const ports::Job& job) override;
  bool complete(const ports::Job& job, std::string_view return_value_json) override;
  bool fail(const ports::Job& job, std::string_view reason, bool retry) override;
  void update_data(const ports::Job& job, std::string_view data_json) override;
  std::chrono::milliseconds maintenance() override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    std::string data;
    ports::JobOptions options;
    ports::JobState state = ports::JobState::waiting;
    int attempts_made = 0;
    std::string lock_token;  // while active
    std::optional<std::string> return_value, failed_reason;
    std::optional<std::int64_t> finished_on;
  };

  // With mutex_ held.
  void promote_due(Clock::time_point now);
  Entry* active_entry(const ports::Job& job);
  void finish(const std::string& id, Entry& entry, bool remove);

  InProcessJobQueueOptions options_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t interrupts_ = 0;  // interrupt_takes() calls: a take() that sees it change returns
  std::uint64_t next_id_ = 1;
  std::uint64_t next_token_ = 1;
  std::map<std::string, Entry, std::less<>> jobs_;
  std::deque<std::string> waiting_;
  std::multimap<Clock::time_point, std::string> delayed_;
  std::deque<std::string> finished_;  // oldest first, for the history bound
};

}  // namespace registrar::adapters::inproc
