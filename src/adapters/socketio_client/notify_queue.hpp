#pragma once
// The pieces of the Socket.IO client notifier (sio_client_notifier.hpp) that decide, without I/O:
// what waits while the notification server is unreachable (NotifyQueue) and how long to wait
// before the next connection attempt (ReconnectBackoff). Kept apart so that unit tests drive them
// with fakes (tests/unit/sio_client_notifier_test.cpp).
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <utility>

#include "ports/notifier.hpp"

namespace registrar::adapters::socketio_client {

// Notifications waiting to be written, oldest first, at most `limit` of them: when full, the
// oldest goes (notifications are best effort, the job's own outcome is the record; a recent one is
// worth more to a user still waiting on the page than an old one). Each entry has a sequence
// number, so that the writer can take out the one it wrote even if it was dropped meanwhile.
class NotifyQueue {
 public:
  struct Entry {
    std::uint64_t seq = 0;
    ports::Notification notification;
  };

  explicit NotifyQueue(std::size_t limit) : limit_(std::max<std::size_t>(limit, 1)) {}

  // Appends; returns true when the oldest entry was dropped to make room.
  bool push(ports::Notification n) {
    bool dropped = false;
    if (entries_.size() >= limit_) {
      entries_.pop_front();
      ++dropped_;
      dropped = true;
    }
    entries_.push_back({next_seq_++, std::move(n)});
    return dropped;
  }

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  std::size_t limit() const { return limit_; }
  const Entry& front() const { return entries_.front(); }

  // The entry `seq` was written: it leaves the queue (a no-op if it was dropped meanwhile).
  void written(std::uint64_t seq) {
    if (!entries_.empty() && entries_.front().seq == seq) entries_.pop_front();
  }

  // Drops made since the last call (for one log line per episode, not one per notification).
  std::uint64_t take_dropped() { return std::exchange(dropped_, 0); }
  std::uint64_t dropped() const { return dropped_; }

 private:
  std::size_t limit_;
  std::deque<Entry> entries_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t dropped_ = 0;
};

// Capped exponential back-off with jitter: min, 2·min, 4·min … up to max, each scaled by a factor
// drawn from [1 − jitter, 1 + jitter] (processes that lost the same server do not all come back in
// the same millisecond); reset() after a connection that worked. The random draw is a parameter
// (a uniform number in [0, 1]) so that tests choose it.
class ReconnectBackoff {
 public:
  ReconnectBackoff(std::chrono::milliseconds min, std::chrono::milliseconds max, double jitter = 0.2)
      : min_(min), max_(std::max(min, max)), jitter_(std::clamp(jitter, 0.0, 1.0)), next_(min) {}

  // The wait before the next attempt; the one after it doubles (up to max).
  std::chrono::milliseconds next(double uniform01) {
    const double factor = 1.0 - jitter_ + 2.0 * jitter_ * std::clamp(uniform01, 0.0, 1.0);
    const auto wait = std::chrono::milliseconds(static_cast<std::int64_t>(static_cast<double>(next_.count()) * factor));
    next_ = next_ > max_ / 2 ? max_ : next_ * 2;
    return std::max(wait, std::chrono::milliseconds(1));
  }
  void reset() { next_ = min_; }

 private:
  std::chrono::milliseconds min_, max_;
  double jitter_;
  std::chrono::milliseconds next_;
};

}  // namespace registrar::adapters::socketio_client
