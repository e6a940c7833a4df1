#pragma once
// Repeated failures of one kind as episodes in the log, so that an outage stays readable: with
// MariaDB stopped under load the service used to write one error line per 503 (about 14,700 in
// four seconds). Instead, per kind of failure:
//   "failure episode started"    the first failure: its message and fields (request id, error);
//   "failure episode continues"  at most one per summary interval, with the count since the last line;
//   "failure episode ended"      after a quiet period without failures of that kind, on a success
//                                of that kind, or at shutdown: the total count and the duration.
// A reporter that retries with a back-off (the relay passes feeding in-process consumers, a
// RabbitMQ consumer's delayed retries) says how far apart its tries may come: its quiet period is
// at least twice that, so that the episode lasts while the retries keep failing instead of ending
// and starting again at every retry.
// Every line of an episode carries "episode" (the kind) and "failures" (how many failures that
// line accounts for: the start line 1, the others the count since the line before), so the
// "failures" of one episode's lines add up to its "total". The three lines use the level of the
// episode's first failure, so that whoever reads the log at that level sees the end too. Each
// single failure is still logged, at debug level, with its own fields (a request can be traced
// with --log-level debug).
//
// Threads: failure() and success() are called from any thread. While an episode is open, a
// failure costs a lock-free walk of the (few) kinds, a clock read and two atomic operations on its
// kind's counter; no mutex. Only the failure that opens an episode, the periodic check and the end
// take the mutex. A 503 storm (~3,500 failures/s with MariaDB down) thus makes the I/O threads
// share one cache line, not a lock: a failure() costs ~90 ns on the 2-core test machine, against
// ~6 µs for the line (render, write, flush) that each failure used to get.
//
// Something must notice the quiet period when no failure and no request arrives any more: with the
// real clock, a thread of this object (started by the first episode) wakes at the next summary or
// quiet-period deadline of the open episodes, and sleeps on a condition variable while none is
// open. It is a thread of its own rather than a timer on an io_context because `consume` reports
// failures too and runs no io_context. With an injected clock (tests) nothing runs by itself: the
// caller calls tick().
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::logging {

struct EpisodeOptions {
  // At most one "continues" line per episode this often.
  std::chrono::milliseconds summary_interval{5000};
  // An episode ends once no failure of its kind came for this long (or longer: see failure()).
  std::chrono::milliseconds quiet_period{5000};
  // A success ends an episode only if the last failure is at least this old: while successes and
  // failures interleave (a flapping backend, a pool with some broken connections) the episode goes
  // on, instead of ending and starting again at every turn.
  std::chrono::milliseconds success_settle{1000};
};

class FailureEpisodes {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Clock = std::function<TimePoint()>;

  // With the real clock (no `clock`), a thread ends quiet episodes. `log` is copied (a copy shares
  // its sink).
  explicit FailureEpisodes(const Logger& log, EpisodeOptions options = {}, Clock clock = {});
  ~FailureEpisodes();  // close()
  FailureEpisodes(const FailureEpisodes&) = delete;
  FailureEpisodes& operator=(const FailureEpisodes&) = delete;

  // One failure of `kind`: logged at debug level as `msg` with `fields` (and "episode": kind); if
  // no episode of that kind is open, it opens one with a line at `level` carrying the same fields.
  // `kind` names a kind of failure, from a small fixed set ("backend_unavailable",
  // "consumer:welcome", …), never a message or an id: each kind is kept for the object's lifetime.
  // `retried_within`: for a reporter that retries while failing, the longest wait between its
  // tries (its back-off cap); the episode then ends only after twice that without a failure.
  // After close(), each failure is logged on its own at `level`.
  void failure(std::string_view kind, std::string_view msg, boost::json::object fields = {}, Level level = Level::error,
               std::chrono::milliseconds retried_within = {});

  // An operation of `kind` succeeded: ends its open episode (see EpisodeOptions::success_settle).
  // A kind that never failed costs a lookup.
  void success(std::string_view kind);

  // Writes the summaries and ends the quiet episodes that are due at the clock's time. Returns
  // when the next one may be due (none while no episode is open). The thread calls it; tests with
  // an injected clock call it themselves.
  std::optional<TimePoint> tick();

  // Ends every open episode ("endedBy": "shutdown") and stops the thread. Idempotent.
  void close();

 private:
  struct Kind;
  Kind* find(std::string_view kind) const;
  Kind& find_or_add(std::string_view kind);
  void open(Kind& k, TimePoint now, std::string_view msg, boost::json::object fields, Level level,
            std::chrono::milliseconds retried_within);
  void collect(Kind& k);
  void end(Kind& k, TimePoint now, std::string_view why);
  std::optional<TimePoint> tick_locked(TimePoint now);
  void run_ticker();

  Logger log_;
  EpisodeOptions options_;
  Clock clock_;
  const bool ticks_itself_;  // the real clock: ticker_ runs once an episode opens

  // The kinds, newest first: read without a lock (find), added under mutex_. Never removed.
  std::atomic<Kind*> kinds_{nullptr};
  std::vector<std::unique_ptr<Kind>> owned_;  // guarded by mutex_

  std::mutex mutex_;  // opening, ending and summarising episodes; adding kinds; the fields below
  std::condition_variable wake_;
  bool closed_ = false;
  bool rescan_ = false;  // an episode opened: the thread recomputes its next deadline
  std::thread ticker_;  // guarded by mutex_ until close() joins it
};

}  // namespace registrar::adapters::logging
