#pragma once
// Drives the outbox relay (app::relay_once) on a background thread: the embedded replacement for a
// separate `registrar relay` process.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <random>
#include <thread>

#include "app/outbox_relay.hpp"
#include "ports/event_bus.hpp"
#include "ports/outbox.hpp"

namespace registrar::adapters::inproc {

struct DispatcherOptions {
  app::RelayOptions relay;                          // owner (empty → generated, unique), batch, lease
  std::chrono::milliseconds poll_interval{1000};    // safety net: catches events no notify() announced
  std::chrono::milliseconds linger{0};              // least time between the starts of notified passes (batches events under load)
  std::chrono::milliseconds backoff_initial{100};   // after a failed pass, doubling …
  std::chrono::milliseconds backoff_max{10'000};    // … up to this, with jitter
};

struct DispatcherCounters {
  std::uint64_t passes = 0;    // relay passes completed (including empty ones)
  std::uint64_t sent = 0;      // events confirmed by the bus and marked sent
  std::uint64_t released = 0;  // events given back because a consumer failed them
  std::uint64_t failures = 0;  // passes that threw (store or bus unavailable)
};

// Loop: run a relay pass; if the batch was full (and all of it went through) run the next one at
// once, draining a backlog; otherwise sleep until notify() or the poll interval. After a pass
// that threw or had events released, wait an exponential backoff (jittered, so several processes
// do not retry in lockstep) before trying again; a pass that throws ignores notify() during its
// backoff, so a burst of sign-ups cannot hammer a store or bus that is down.
class OutboxDispatcher final : public ports::OutboxSignal {
 public:
  // `outbox` and `bus` must outlive the dispatcher. Nothing runs until start().
  OutboxDispatcher(ports::OutboxStore& outbox, ports::EventBus& bus, DispatcherOptions options = {});
  ~OutboxDispatcher() override;  // stop()
  OutboxDispatcher(const OutboxDispatcher&) = delete;
  OutboxDispatcher& operator=(const OutboxDispatcher&) = delete;

  void start();
  // Lets the current pass finish, then joins the thread. Idempotent; called by the destructor.
  void stop();

  // Wakes the loop now (called by the use case after a commit). Cheap: a flag and a
  // condition-variable signal; never waits for a pass.
  void notify() override;

  DispatcherCounters counters() const;
  const std::string& owner() const { return options_.relay.owner; }

  // Waits until the loop is asleep with nothing left to do: it has completed a pass that started
  // after the last notify() and found no full batch. For tests and orderly shutdown; returns false
  // on timeout or if the dispatcher is stopped or not started.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  void run();
  std::chrono::milliseconds jittered(std::chrono::milliseconds backoff);

  ports::OutboxStore& outbox_;
  ports::EventBus& bus_;
  DispatcherOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // signals the loop: notify() or stop()
  std::condition_variable idle_cv_;  // signals wait_idle()
  bool notified_ = false;
  bool stopping_ = false;
  bool idle_ = false;
  bool running_ = false;
  std::thread thread_;

  std::atomic<std::uint64_t> passes_{0}, sent_{0}, released_{0}, failures_{0};
  std::minstd_rand rng_;
};

}  // namespace registrar::adapters::inproc
