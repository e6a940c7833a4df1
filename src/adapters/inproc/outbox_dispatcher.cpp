#include "adapters/inproc/outbox_dispatcher.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <exception>

#include <fmt/format.h>

namespace registrar::adapters::inproc {

namespace {

// A lease owner name unique to this process and dispatcher, so that a restarted process never
// mistakes its predecessor's leases for its own.
std::string generate_owner() {
  std::random_device rd;
  return fmt::format("inproc-{}-{:08x}{:08x}", ::getpid(), rd(), rd());
}

}  // namespace

OutboxDispatcher::OutboxDispatcher(ports::OutboxStore& outbox, ports::EventBus& bus, DispatcherOptions options)
    : outbox_(outbox), bus_(bus), options_(std::move(options)), rng_(std::random_device{}()) {
  if (options_.relay.owner.empty()) options_.relay.owner = generate_owner();
  if (options_.relay.batch_size == 0) options_.relay.batch_size = 1;
  if (options_.backoff_initial <= std::chrono::milliseconds::zero()) options_.backoff_initial = std::chrono::milliseconds(1);
  options_.backoff_max = std::max(options_.backoff_max, options_.backoff_initial);
}

OutboxDispatcher::~OutboxDispatcher() { stop(); }

void OutboxDispatcher::start() {
  std::lock_guard lock(mutex_);
  if (running_ || stopping_) return;
  running_ = true;
  thread_ = std::thread([this] { run(); });
}

void OutboxDispatcher::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  idle_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void OutboxDispatcher::notify() {
  {
    std::lock_guard lock(mutex_);
    notified_ = true;
    idle_ = false;
  }
  wake_.notify_one();
}

DispatcherCounters OutboxDispatcher::counters() const {
  return {passes_.load(), sent_.load(), released_.load(), failures_.load()};
}

bool OutboxDispatcher::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  bool done = idle_cv_.wait_for(lock, timeout, [&] { return stopping_ || !running_ || (idle_ && !notified_); });
  return done && running_ && !stopping_;
}

std::chrono::milliseconds OutboxDispatcher::jittered(std::chrono::milliseconds backoff) {
  // "Equal jitter": between half and all of the backoff.
  auto half = backoff.count() / 2;
  std::uniform_int_distribution<long long> dist(0, std::max<long long>(half, 0));
  return std::chrono::milliseconds(backoff.count() - half + dist(rng_));
}

void OutboxDispatcher::run() {
  enum class Next { drain, poll, retry_soon, back_off };
  auto backoff = options_.backoff_initial;
  auto pass_started = std::chrono::steady_clock::time_point::min();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    // Only passes that a commit asked for count for the linger (not the first, poll or retry ones).
    if (notified_) pass_started = std::chrono::steady_clock::now();
    notified_ = false;  // this pass will see everything committed before the notify()
    lock.unlock();

    Next next = Next::poll;
    try {
      auto stats = app::relay_once(outbox_, bus_, options_.relay);
      passes_.fetch_add(1);
      sent_.fetch_add(stats.sent);
      released_.fetch_add(stats.released);
      if (stats.released > 0) {
        next = Next::retry_soon;  // a consumer is failing: try again after a backoff
      } else {
        backoff = options_.backoff_initial;
        next = stats.claimed >= options_.relay.batch_size ? Next::drain : Next::poll;
      }
    } catch (const std::exception& e) {
      failures_.fetch_add(1);
      // BackendUnavailable messages carry no user data by convention of the adapters.
      spdlog::warn("outbox relay {}: pass failed, retrying in up to {} ms: {}", options_.relay.owner,
                   backoff.count(), e.what());
      next = Next::back_off;
    } catch (...) {
      failures_.fetch_add(1);
      spdlog::warn("outbox relay {}: pass failed with an unknown exception", options_.relay.owner);
      next = Next::back_off;
    }

    lock.lock();
    if (stopping_) break;
    switch (next) {
      case Next::drain:
        break;
      case Next::poll:
        idle_ = true;
        idle_cv_.notify_all();
        wake_.wait_for(lock, options_.poll_interval, [&] { return stopping_ || notified_; });
        idle_ = false;
        // Woken by a commit. Under load, passes start at most one linger apart, so the commits
        // made meanwhile share the next pass (one claim, one mark-sent, one batch for each
        // consumer) instead of a pass each. After a quiet spell the pass starts at once.
        if (notified_ && options_.linger.count() > 0)
          wake_.wait_until(lock, pass_started + options_.linger, [&] { return stopping_; });
        break;
      case Next::retry_soon:
        // A new event (notify) may be for a healthy aggregate: let it cut the wait short.
        wake_.wait_for(lock, jittered(backoff), [&] { return stopping_ || notified_; });
        backoff = std::min(backoff * 2, options_.backoff_max);
        break;
      case Next::back_off:
        // The store or bus is down: only stop() ends the wait early.
        wake_.wait_for(lock, jittered(backoff), [&] { return stopping_; });
        backoff = std::min(backoff * 2, options_.backoff_max);
        break;
    }
  }
  running_ = false;
  idle_cv_.notify_all();
}

}  // namespace registrar::adapters::inproc
