#include "adapters/threads/supervised_loop.hpp"

#include <algorithm>
#include <exception>
#include <string>

namespace registrar::adapters::threads {

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max)
    : initial_(std::max(initial, std::chrono::milliseconds(1))),
      max_(std::max(max, initial_)),
      step_(initial_),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  const auto half = step_.count() / 2;
  std::uniform_int_distribution<long long> jitter(0, half);
  const std::chrono::milliseconds wait(step_.count() - half + jitter(rng_));
  step_ = std::min(step_ * 2, max_);
  return wait;
}

SupervisedLoop::SupervisedLoop(Backoff backoff, Turn turn, FailureHandler on_failure)
    : backoff_(backoff), turn_(std::move(turn)), on_failure_(std::move(on_failure)) {}

SupervisedLoop::~SupervisedLoop() { stop(); }

void SupervisedLoop::start() {
  std::lock_guard lock(mutex_);
  if (running_ || stopping_.load()) return;
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void SupervisedLoop::request_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  wake_.notify_all();
  state_.notify_all();
}

void SupervisedLoop::stop() {
  request_stop();
  if (thread_.joinable()) thread_.join();
}

void SupervisedLoop::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
  }
  wake_.notify_one();  // the loop's thread is the only one waiting on wake_
}

bool SupervisedLoop::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const bool done = state_.wait_for(lock, timeout, [&] { return stopping_.load() || !running_ || (idle_ && !notified_); });
  return done && running_ && !stopping_.load();
}

bool SupervisedLoop::wait_until(std::chrono::steady_clock::time_point deadline, WakeOn wake_on) {
  std::unique_lock lock(mutex_);
  wake_.wait_until(lock, deadline,
                   [&] { return stopping_.load() || (wake_on == WakeOn::stop_or_notify && notified_); });
  return notified_;
}

bool SupervisedLoop::wait_for(std::chrono::milliseconds timeout, WakeOn wake_on) {
  return wait_until(std::chrono::steady_clock::now() + timeout, wake_on);
}

bool SupervisedLoop::idle_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  idle_ = true;
  state_.notify_all();
  wake_.wait_for(lock, timeout, [&] { return stopping_.load() || notified_; });
  idle_ = false;
  return notified_;
}

bool SupervisedLoop::back_off(WakeOn wake_on) { return wait_for(backoff_.next(), wake_on); }

void SupervisedLoop::run() {
  while (!stopping_.load()) {
    bool notified;
    {
      std::lock_guard lock(mutex_);
      notified = notified_;
      notified_ = false;
    }
    std::string error;
    try {
      turn_(notified);
      continue;
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
    const auto wait = backoff_.next();
    if (on_failure_) on_failure_(error, wait);
    wait_for(wait, WakeOn::stop);
  }
  {
    std::lock_guard lock(mutex_);
    running_ = false;
  }
  state_.notify_all();
}

}  // namespace registrar::adapters::threads
