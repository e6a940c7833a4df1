#pragma once
// Drives the outbox relay (app::relay_once) on a background thread, whatever the bus: `serve`
// runs one into the in-process bus, or two into RabbitMQ, and `registrar relay` runs the RabbitMQ
// ones alone.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "adapters/logging/json_logger.hpp"
#include "adapters/threads/supervised_loop.hpp"
#include "app/outbox_relay.hpp"
#include "ports/event_bus.hpp"
#include "ports/outbox.hpp"

namespace registrar::adapters::relay {

struct RelayLoopOptions {
  app::RelayOptions relay;                          // owner (empty → generated, unique), batch, lease
  std::chrono::milliseconds poll_interval{1000};    // safety net: catches events no notify() announced
  std::chrono::milliseconds linger{0};              // least time between the starts of notified passes (batches events under load)
  std::chrono::milliseconds backoff_initial{100};   // after a failed pass, doubling …
  std::chrono::milliseconds backoff_max{10'000};    // … up to this, with jitter
};

struct RelayLoopCounters {
  std::uint64_t passes = 0;    // relay passes completed (including empty ones)
  std::uint64_t sent = 0;      // events confirmed by the bus and marked sent
  std::uint64_t released = 0;  // events given back because a consumer failed them
  std::uint64_t failures = 0;  // passes that threw (store or bus unavailable)
};

// Loop: run a relay pass; if the batch was full (and all of it went through) run the next one at
// once, draining a backlog; otherwise sleep until notify() or the poll interval. After a pass
// that threw or had events released, wait an exponential backoff (jittered, so several processes
// do not retry in lockstep) before trying again; a pass that throws ignores notify() during its
// backoff, so a burst of sign-ups cannot hammer a store or bus that is down. The thread, the
// waits, the backoff and the stop are a threads::SupervisedLoop's; one turn of it is one pass.
class OutboxRelayLoop final : public ports::OutboxSignal {
 public:
  // `outbox`, `bus` and `log` must outlive the loop. Nothing runs until start().
  OutboxRelayLoop(ports::OutboxStore& outbox, ports::EventBus& bus, const logging::Logger& log,
                  RelayLoopOptions options = {});
  ~OutboxRelayLoop() override = default;  // the loop's destructor stops it first
  OutboxRelayLoop(const OutboxRelayLoop&) = delete;
  OutboxRelayLoop& operator=(const OutboxRelayLoop&) = delete;

  void start() { loop_.start(); }
  // Lets the current pass finish, then joins the thread. Idempotent.
  void stop() { loop_.stop(); }

  // Wakes the loop now (called by the use case after a commit). Cheap: never waits for a pass.
  void notify() override { loop_.notify(); }

  RelayLoopCounters counters() const;
  const std::string& owner() const { return options_.relay.owner; }

  // Waits until the loop is asleep with nothing left to do: it has completed a pass that started
  // after the last notify() and found no full batch. For tests and orderly shutdown; returns false
  // on timeout or if the loop is stopped or not started.
  bool wait_idle(std::chrono::milliseconds timeout) { return loop_.wait_idle(timeout); }

 private:
  void pass(bool notified);

  ports::OutboxStore& outbox_;
  ports::EventBus& bus_;
  const logging::Logger& log_;
  RelayLoopOptions options_;
  std::chrono::steady_clock::time_point notified_pass_started_ = std::chrono::steady_clock::time_point::min();
  std::atomic<std::uint64_t> passes_{0}, sent_{0}, released_{0}, failures_{0};
  threads::SupervisedLoop loop_;  // last: its thread stops before the members it uses go
};

}  // namespace registrar::adapters::relay
