#pragma once
// A background loop with what every long-running worker of the service needs, written once: a
// thread that runs a turn again and again; waits that stop() (and, where the turn asks for it,
// notify()) cut short; jittered exponential back-off after a failed turn, reset on success; and a
// stop that lets the current turn finish and joins. The outbox relay loop and the RabbitMQ
// consumer runner each run on one.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string_view>
#include <thread>

namespace registrar::adapters::threads {

// Exponential back-off with "equal jitter": each wait is between half and all of the current
// step, so processes that failed together (a broker restart) do not retry in lockstep. The step
// doubles after each wait, up to `max`; reset() after a success brings it back to `initial`.
class Backoff {
 public:
  // An `initial` under 1 ms counts as 1 ms, a `max` under `initial` as `initial`.
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max);

  // The wait to do now; doubles the step for the next one.
  std::chrono::milliseconds next();
  void reset() { step_ = initial_; }
  // The step the next wait is drawn from (its upper bound).
  std::chrono::milliseconds step() const { return step_; }

 private:
  std::chrono::milliseconds initial_, max_, step_;
  std::minstd_rand rng_;
};

// Runs `turn` on a thread of its own until stop(). A turn is one unit of work followed by the
// wait the turn chooses (wait_for, idle_for, back_off …); the loop calls it again as soon as it
// returns. A turn that throws is reported to `on_failure` with the wait before the next turn, and
// the loop backs off, during which only stop() wakes it (a failing store or broker is not
// hammered by a burst of notify() calls). The turn resets the back-off when it has succeeded.
//
// notify() leaves a notification pending; each turn takes it as it starts (the `notified`
// argument), so a turn sees everything that was notified before it began. wait_idle() lets
// another thread wait until the loop has caught up: it is in idle_for() with no notification
// pending.
class SupervisedLoop {
 public:
  using Turn = std::function<void(bool notified)>;
  // A turn threw: its message (adapters keep user data out of exception messages) and the wait
  // before the next turn. Called on the loop's thread.
  using FailureHandler = std::function<void(std::string_view error, std::chrono::milliseconds retry_in)>;
  enum class WakeOn { stop, stop_or_notify };

  // Nothing runs until start().
  SupervisedLoop(Backoff backoff, Turn turn, FailureHandler on_failure);
  ~SupervisedLoop();  // stop()
  SupervisedLoop(const SupervisedLoop&) = delete;
  SupervisedLoop& operator=(const SupervisedLoop&) = delete;

  // Starts the thread. Does nothing if it is running or the loop was stopped (a loop runs once).
  void start();
  // Ends the current wait at once, lets the current turn finish, and joins the thread. Idempotent;
  // call it from another thread than the loop's own.
  void stop();
  // stop() without the join: the loop ends after its current turn. Several loops stop in the time
  // of the slowest when each is asked first and joined (stop()) after.
  void request_stop();
  // Leaves a notification for the next turn and ends a wait that allows it. Cheap: never waits
  // for a turn.
  void notify();
  // True once stop() was called: a long turn checks it to return early.
  bool stopping() const noexcept { return stopping_.load(); }
  // Waits until the loop is in idle_for() with no notification pending, i.e. it has completed a
  // turn that started after the last notify(). False on timeout, or if the loop is stopped or
  // was never started.
  bool wait_idle(std::chrono::milliseconds timeout);

  // --- For the turn, on the loop's thread. Each returns whether a notification is pending. ---
  bool wait_until(std::chrono::steady_clock::time_point deadline, WakeOn wake_on);
  bool wait_for(std::chrono::milliseconds timeout, WakeOn wake_on);
  // wait_for(timeout, stop_or_notify) with the loop counted as idle meanwhile (see wait_idle()).
  bool idle_for(std::chrono::milliseconds timeout);
  // Waits the next back-off (see Backoff) before another try.
  bool back_off(WakeOn wake_on);
  // The turn succeeded: the next failure waits the initial back-off again.
  void reset_backoff() { backoff_.reset(); }

 private:
  void run();

  Backoff backoff_;  // the loop's thread only
  Turn turn_;
  FailureHandler on_failure_;

  std::mutex mutex_;
  std::condition_variable wake_;   // the loop's waits: stop(), notify()
  std::condition_variable state_;  // wait_idle(): idle or running changed
  std::atomic<bool> stopping_{false};  // written under mutex_, so that no wait misses it
  bool notified_ = false;
  bool idle_ = false;
  bool running_ = false;
  std::thread thread_;
};

}  // namespace registrar::adapters::threads
