#include "adapters/jobs/job_worker.hpp"

#include <exception>
#include <utility>

#include "ports/errors.hpp"

namespace registrar::adapters::jobs {

using threads::SupervisedLoop;
using WakeOn = SupervisedLoop::WakeOn;

JobWorker::JobWorker(ports::JobQueue& queue, JobHandler handler, const logging::Logger& log, JobWorkerOptions options)
    : queue_(queue), handler_(std::move(handler)), log_(log), options_(options) {
  if (options_.concurrency < 1) options_.concurrency = 1;
  const threads::Backoff backoff(options_.backoff_initial, options_.backoff_max);
  maintenance_ = std::make_unique<SupervisedLoop>(
      backoff,
      [this](bool) {
        const auto next = queue_.maintenance();
        maintenance_->reset_backoff();
        maintenance_->idle_for(next);
      },
      [this](std::string_view error, std::chrono::milliseconds retry_in) { on_failure("maintenance", error, retry_in); });
  renewer_ = std::make_unique<SupervisedLoop>(
      backoff,
      [this](bool) {
        // After a failed renewal, try again after a back-off rather than a whole interval later:
        // the lock may expire meanwhile.
        if (renew_failed_) renewer_->back_off(WakeOn::stop);
        else renewer_->wait_for(options_.lock_renew_interval, WakeOn::stop);
        if (!renewer_->stopping()) renew_failed_ = !renew();
      },
      [this](std::string_view error, std::chrono::milliseconds retry_in) { on_failure("lock renewal", error, retry_in); });
  // Each turn finds its own loop by index: workers_ does not change after this.
  for (int i = 0; i < options_.concurrency; ++i) {
    workers_.push_back(std::make_unique<SupervisedLoop>(
        backoff, [this, i](bool) { work(*workers_[static_cast<std::size_t>(i)]); },
        [this](std::string_view error, std::chrono::milliseconds retry_in) { on_failure("take", error, retry_in); }));
  }
}

JobWorker::~JobWorker() { stop(); }

void JobWorker::start() {
  queue_.on_wakeup([this] { maintenance_->notify(); });
  maintenance_->start();
  renewer_->start();
  for (auto& w : workers_) w->start();
}

void JobWorker::stop() {
  // Every thread is asked first and joined after, so that the worker stops in the time of its
  // slowest thread: one by one, each idle thread would wait out its take() in turn (16 threads
  // made a stop take ~9 s).
  for (auto& w : workers_) w->request_stop();
  queue_.interrupt_takes();
  for (auto& w : workers_) w->stop();  // each lets its running job finish
  renewer_->stop();
  queue_.on_wakeup(nullptr);
  maintenance_->stop();
}

JobWorkerCounters JobWorker::counters() const {
  return {completed_.load(), failed_.load(), retried_.load(), lost_.load(), failures_.load()};
}

void JobWorker::on_failure(std::string_view what, std::string_view error, std::chrono::milliseconds retry_in) {
  failures_.fetch_add(1);
  // Queue adapters keep job data out of exception messages.
  log_.warn("job queue unavailable; retrying", {{"step", what}, {"error", error}, {"retryInMs", retry_in.count()}});
}

void JobWorker::work(SupervisedLoop& loop) {
  // A throw (the queue is down) goes to the loop, which logs and backs off.
  std::optional<ports::Job> job = queue_.take(options_.take_wait);
  loop.reset_backoff();
  if (!job) return;

  std::uint64_t run;
  {
    std::lock_guard lock(running_mutex_);
    run = next_run_++;
    running_.emplace(run, *job);
  }
  ports::JobResult result = run_handler(*job);
  // An outage of the queue's own backend met by the run: wait until the queue answers (the lock
  // renewal goes on meanwhile), then run the job again.
  while (result.kind == ports::JobResult::Kind::rerun) {
    log_.warn("job run met an outage of the queue; it runs again when the queue answers",
              {{"jobId", job->id}, {"reason", result.value}});
    const auto answer = wait_for_queue(loop, *job);
    if (!answer) {
      log_.warn("job left for the stalled check: stopping during an outage of the queue", {{"jobId", job->id}});
      break;
    }
    if (!*answer) {
      lost_.fetch_add(1);
      log_.warn("job lock lost during an outage of the queue (it runs again elsewhere)", {{"jobId", job->id}});
      break;
    }
    result = run_handler(*job);
  }
  if (result.kind != ports::JobResult::Kind::rerun) apply(loop, *job, result);
  std::lock_guard lock(running_mutex_);
  running_.erase(run);
}

ports::JobResult JobWorker::run_handler(const ports::Job& job) {
  try {
    return handler_(job);
  } catch (const std::exception& e) {
    log_.warn("job handler threw; the run is retried per the job's attempts", {{"jobId", job.id}, {"error", e.what()}});
  } catch (...) {
    log_.warn("job handler threw; the run is retried per the job's attempts", {{"jobId", job.id}});
  }
  return ports::JobResult::retry("Error processing job");
}

std::optional<bool> JobWorker::wait_for_queue(SupervisedLoop& loop, const ports::Job& job) {
  for (;;) {
    loop.back_off(WakeOn::stop);
    if (loop.stopping()) return std::nullopt;
    try {
      const bool ours = queue_.extend_lock(job);
      loop.reset_backoff();
      return ours;
    } catch (const ports::BackendUnavailable&) {
      failures_.fetch_add(1);
    }
  }
}

bool JobWorker::apply(SupervisedLoop& loop, const ports::Job& job, const ports::JobResult& result) {
  for (;;) {
    try {
      bool ours = false;
      switch (result.kind) {
        case ports::JobResult::Kind::complete:
          ours = queue_.complete(job, result.value);
          if (ours) completed_.fetch_add(1);
          break;
        case ports::JobResult::Kind::rerun:  // work() runs the job again instead
        case ports::JobResult::Kind::fail:
        case ports::JobResult::Kind::retry: {
          const bool retry = result.kind != ports::JobResult::Kind::fail;
          ours = queue_.fail(job, result.value, retry);
          if (ours && retry && job.attempts_made + 1 < job.options.attempts) {
            retried_.fetch_add(1);
            maintenance_->notify();  // promote it when its backoff is over
          } else if (ours) {
            failed_.fetch_add(1);
          }
          break;
        }
      }
      if (!ours) {
        lost_.fetch_add(1);
        log_.warn("job outcome refused: the job is no longer ours (lock lost; it runs again)", {{"jobId", job.id}});
      }
      loop.reset_backoff();
      return true;
    } catch (const ports::BackendUnavailable& e) {
      failures_.fetch_add(1);
      if (loop.stopping()) {
        log_.warn("job outcome not written before stop; the job runs again after the stalled check",
                  {{"jobId", job.id}, {"error", e.what()}});
        return false;
      }
      log_.warn("job outcome not written; retrying", {{"jobId", job.id}, {"error", e.what()}});
      loop.back_off(WakeOn::stop);
    } catch (const std::exception& e) {
      log_.error("job outcome rejected by the queue; the job runs again after the stalled check",
                 {{"jobId", job.id}, {"error", e.what()}});
      return false;
    }
  }
}

bool JobWorker::renew() {
  std::vector<ports::Job> jobs;
  {
    std::lock_guard lock(running_mutex_);
    for (const auto& [run, job] : running_) jobs.push_back(job);
  }
  bool failed = false;
  for (const auto& job : jobs) {
    try {
      if (!queue_.extend_lock(job)) log_.warn("job lock lost while running (it may run again)", {{"jobId", job.id}});
    } catch (const ports::BackendUnavailable& e) {
      failed = true;
      failures_.fetch_add(1);
      log_.warn("job lock not renewed; retrying", {{"jobId", job.id}, {"error", e.what()}});
    }
  }
  if (!failed) renewer_->reset_backoff();
  return !failed;
}

}  // namespace registrar::adapters::jobs
