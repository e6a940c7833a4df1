#include "adapters/relay/outbox_relay_loop.hpp"

#include <unistd.h>

#include <random>

#include <fmt/format.h>

namespace registrar::adapters::relay {

namespace {

// A lease owner name unique to this process and loop, so that a restarted process never mistakes
// its predecessor's leases for its own.
std::string generate_owner() {
  std::random_device rd;
  return fmt::format("relay-{}-{:08x}{:08x}", ::getpid(), rd(), rd());
}

}  // namespace

OutboxRelayLoop::OutboxRelayLoop(ports::OutboxStore& outbox, ports::EventBus& bus, const logging::Logger& log,
                                 RelayLoopOptions options)
    : outbox_(outbox),
      bus_(bus),
      log_(log),
      options_(std::move(options)),
      loop_(threads::Backoff(options_.backoff_initial, options_.backoff_max),
            [this](bool notified) { pass(notified); },
            [this](std::string_view error, std::chrono::milliseconds retry_in) {
              failures_.fetch_add(1);
              // BackendUnavailable messages carry no user data by convention of the adapters.
              log_.warn("outbox relay pass failed; retrying",
                        {{"relay", options_.relay.owner}, {"error", error}, {"retryInMs", retry_in.count()}});
            }) {
  if (options_.relay.owner.empty()) options_.relay.owner = generate_owner();
  if (options_.relay.batch_size == 0) options_.relay.batch_size = 1;
}

RelayLoopCounters OutboxRelayLoop::counters() const {
  return {passes_.load(), sent_.load(), released_.load(), failures_.load()};
}

void OutboxRelayLoop::pass(bool notified) {
  using WakeOn = threads::SupervisedLoop::WakeOn;
  // Only passes that a commit asked for count for the linger (not the first, poll or retry ones).
  if (notified) notified_pass_started_ = std::chrono::steady_clock::now();
  // A throw goes to the loop, which backs off with notify() ignored: the store or bus is down.
  const auto stats = app::relay_once(outbox_, bus_, options_.relay);
  passes_.fetch_add(1);
  sent_.fetch_add(stats.sent);
  released_.fetch_add(stats.released);

  if (stats.released > 0) {
    // A consumer is failing: try again after a backoff. A new event (notify) may be for a healthy
    // aggregate: let it cut the wait short.
    loop_.back_off(WakeOn::stop_or_notify);
    return;
  }
  loop_.reset_backoff();
  if (stats.claimed >= options_.relay.batch_size) return;  // a backlog: drain it at once
  // Asleep until a commit's notify() or the poll interval. Woken by a commit: under load, passes
  // start at most one linger apart, so the commits made meanwhile share the next pass (one claim,
  // one mark-sent, one batch for each consumer) instead of a pass each. After a quiet spell the
  // pass starts at once.
  if (loop_.idle_for(options_.poll_interval) && options_.linger.count() > 0)
    loop_.wait_until(notified_pass_started_ + options_.linger, WakeOn::stop);
}

}  // namespace registrar::adapters::relay
