#include "adapters/inproc/job_queue.hpp"

#include <algorithm>

namespace registrar::adapters::inproc {
namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

InProcessJobQueue::InProcessJobQueue(InProcessJobQueueOptions options) : options_(options) {}

std::string InProcessJobQueue::add(std::string_view data_json, const ports::JobOptions& options) {
  std::string id;
  {
    std::lock_guard lock(mutex_);
    id = std::to_string(next_id_++);
    Entry e;
    e.data = std::string(data_json);
    e.options = options;
    e.options.attempts = std::max(1, options.attempts);
    jobs_.emplace(id, std::move(e));
    waiting_.push_back(id);
  }
  changed_.notify_one();
  return id;
}

std::optional<ports::JobStatus> InProcessJobQueue::status(std::string_view job_id) {
  std::lock_guard lock(mutex_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return std::nullopt;
  const Entry& e = it->second;
  ports::JobStatus st;
  st.id = it->first;
  st.state = e.state;
  st.return_value = e.return_value;
  st.failed_reason = e.failed_reason;
  st.attempts_made = e.attempts_made;
  st.finished_on = e.finished_on;
  st.data = e.data;
  return st;
}

void InProcessJobQueue::promote_due(Clock::time_point now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    const std::string id = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    if (auto it = jobs_.find(id); it != jobs_.end() && it->second.state == ports::JobState::delayed) {
      it->second.state = ports::JobState::waiting;
      waiting_.push_back(id);
    }
  }
}

std::optional<ports::Job> InProcessJobQueue::take(std::chrono::milliseconds wait) {
  const auto deadline = Clock::now() + wait;
  std::unique_lock lock(mutex_);
  const std::uint64_t interrupts = interrupts_;
  for (;;) {
    promote_due(Clock::now());
    if (!waiting_.empty()) break;
    auto until = deadline;
    if (!delayed_.empty()) until = std::min(until, delayed_.begin()->first);
    if (Clock::now() >= deadline || interrupts_ != interrupts) return std::nullopt;
    changed_.wait_until(lock, until);
  }
  const std::string id = waiting_.front();
  waiting_.pop_front();
  Entry& e = jobs_.at(id);
  e.state = ports::JobState::active;
  e.lock_token = std::to_string(next_token_++);
  ports::Job job;
  job.id = id;
  job.data = e.data;
  job.attempts_made = e.attempts_made;
  job.options = e.options;
  job.lock_token = e.lock_token;
  return job;
}

void InProcessJobQueue::interrupt_takes() {
  {
    std::lock_guard lock(mutex_);
    ++interrupts_;
  }
  changed_.notify_all();
}

InProcessJobQueue::Entry* InProcessJobQueue::active_entry(const ports::Job& job) {
  auto it = jobs_.find(job.id);
  if (it == jobs_.end() || it->second.state != ports::JobState::active || it->second.lock_token != job.lock_token) {
    return nullptr;
  }
  return &it->second;
}

bool InProcessJobQueue::extend_lock(const ports::Job& job) {
  std::lock_guard lock(mutex_);
  return active_entry(job) != nullptr;
}

void InProcessJobQueue::finish(const std::string& id, Entry& entry, bool remove) {
  entry.lock_token.clear();
  entry.finished_on = now_ms();
  if (remove) {
    jobs_.erase(id);
    return;
  }
  finished_.push_back(id);
  while (finished_.size() > options_.finished_history) {
    jobs_.erase(finished_.front());
    finished_.pop_front();
  }
}

bool InProcessJobQueue::complete(const ports::Job& job, std::string_view return_value_json) {
  std::lock_guard lock(mutex_);
  Entry* e = active_entry(job);
  if (e == nullptr) return false;
  e->state = ports::JobState::completed;
  e->return_value = std::string(return_value_json);
  finish(job.id, *e, e->options.remove_on_complete);
  return true;
}

bool InProcessJobQueue::fail(const ports::Job& job, std::string_view reason, bool retry) {
  {
    std::lock_guard lock(mutex_);
    Entry* e = active_entry(job);
    if (e == nullptr) return false;
    e->attempts_made += 1;
    e->failed_reason = std::string(reason);
    e->lock_token.clear();
    if (retry && e->attempts_made < e->options.attempts) {
      const auto delay = ports::backoff_delay(e->options, e->attempts_made);
      if (delay > std::chrono::milliseconds(0)) {
        e->state = ports::JobState::delayed;
        delayed_.emplace(Clock::now() + delay, job.id);
      } else {
        e->state = ports::JobState::waiting;
        waiting_.push_back(job.id);
      }
    } else {
      e->state = ports::JobState::failed;
      finish(job.id, *e, e->options.remove_on_fail);
    }
  }
  changed_.notify_all();
  return true;
}

void InProcessJobQueue::update_data(const ports::Job& job, std::string_view data_json) {
  std::lock_guard lock(mutex_);
  if (auto it = jobs_.find(job.id); it != jobs_.end()) it->second.data = std::string(data_json);
}

std::chrono::milliseconds InProcessJobQueue::maintenance() {
  std::lock_guard lock(mutex_);
  const auto now = Clock::now();
  promote_due(now);
  if (!waiting_.empty()) changed_.notify_all();
  std::chrono::milliseconds next{1000};
  if (!delayed_.empty()) {
    next = std::min(next, std::chrono::ceil<std::chrono::milliseconds>(delayed_.begin()->first - now));
  }
  return next;
}

}  // namespace registrar::adapters::inproc
