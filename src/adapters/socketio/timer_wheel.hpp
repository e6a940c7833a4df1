#pragma once
// Due-time calls for many sessions on one timer: a hashed timing wheel (Varghese & Lauck). Every
// Engine.IO session has a heartbeat deadline at all times (the next ping, or the pong it waits
// for); an Asio timer per session costs ~120 bytes inline plus ~100 for its pending wait, more
// than everything else an idle WebSocket session holds. Here a deadline is 24 bytes in a slot.
//
// Deadlines are rounded up to the next tick, so a call comes at most one tick late (the server
// picks a tick small next to the ping interval and timeout: a ping a little late is within the
// client's own allowance of pingInterval + pingTimeout). The wheel ticks only while it holds
// deadlines.
//
// A target is held weakly: one that is gone is skipped. A target that is still alive but no longer
// cares (its deadline moved) recognises the stale call by its token.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace registrar::adapters::socketio {

class WheelTarget {
 public:
  virtual ~WheelTarget() = default;
  // On the wheel's thread: post to your own strand, do not block.
  virtual void on_due(std::uint64_t token) = 0;
};

class TimerWheel {
 public:
  // `horizon`: the longest delay it is asked for (a longer one is capped to it).
  TimerWheel(boost::asio::any_io_executor executor, std::chrono::milliseconds tick, std::chrono::milliseconds horizon);
  ~TimerWheel();
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Any thread: `target->on_due(token)` about `delay` from now.
  void schedule(std::weak_ptr<WheelTarget> target, std::uint64_t token, std::chrono::milliseconds delay);
  // Drops every deadline and stops the timer (so that an io_context without other work can end);
  // the next schedule() starts it again.
  void clear();
  // Deadlines held (for tests).
  std::size_t size() const;

 private:
  struct Entry {
    std::weak_ptr<WheelTarget> target;
    std::uint64_t token;
  };
  // Shared with the timer's handler, which may run after the wheel is gone.
  struct State {
    State(boost::asio::any_io_executor executor, std::chrono::milliseconds tick, std::size_t slots);
    void arm_locked();
    void on_tick(boost::system::error_code ec);

    const std::chrono::steady_clock::duration tick;
    boost::asio::steady_timer timer;
    mutable std::mutex mutex;
    std::vector<std::vector<Entry>> slots;
    std::size_t cursor = 0;  // the slot of the tick that ends at `cursor_end`
    std::chrono::steady_clock::time_point cursor_end;
    std::size_t pending = 0;
    bool armed = false;
    bool stopped = false;
    std::weak_ptr<State> self;
  };
  std::shared_ptr<State> state_;
};

}  // namespace registrar::adapters::socketio
