#include "adapters/logging/failure_episodes.hpp"

#include <algorithm>

namespace registrar::adapters::logging {

namespace json = boost::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

struct FailureEpisodes::Kind {
  Kind(std::string_view n, Kind* nx) : name(n), next(nx) {}

  const std::string name;
  Kind* const next;  // the kind added before this one

  // (failures not yet collected into the episode) << 1 | (an episode is open). One word, so that a
  // failure's increment lands either before the end takes the word (and is counted in the ending
  // episode) or after it, when the failure sees the episode closed and opens the next one: no
  // failure is lost or counted twice, without a lock on the failure path.
  std::atomic<std::uint64_t> word{0};
  // When the latest failure happened (TimePoint::rep). Written before the increment of `word`, so
  // whoever collects the increment also sees this time (release/acquire through `word`).
  std::atomic<TimePoint::rep> last_failure{0};

  // Guarded by FailureEpisodes::mutex_, meaningful while the episode is open.
  Level level = Level::error;
  TimePoint started{};
  TimePoint last_line{};
  TimePoint::duration quiet{};   // ends after this long without a failure
  std::uint64_t total = 0;       // failures collected into this episode
  std::uint64_t unreported = 0;  // of which no line has spoken yet

  TimePoint last_failure_time() const { return TimePoint(TimePoint::duration(last_failure.load(std::memory_order_relaxed))); }
};

namespace {
constexpr std::uint64_t kOpen = 1;
constexpr std::uint64_t kOne = 2;  // one failure in Kind::word

std::int64_t ms_between(FailureEpisodes::TimePoint from, FailureEpisodes::TimePoint to) {
  return std::max<std::int64_t>(0, duration_cast<milliseconds>(to - from).count());
}
}  // namespace

FailureEpisodes::FailureEpisodes(const Logger& log, EpisodeOptions options, Clock clock)
    : log_(log), options_(options), clock_(std::move(clock)), ticks_itself_(!clock_) {
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
}

FailureEpisodes::~FailureEpisodes() { close(); }

FailureEpisodes::Kind* FailureEpisodes::find(std::string_view kind) const {
  for (Kind* k = kinds_.load(std::memory_order_acquire); k != nullptr; k = k->next)
    if (k->name == kind) return k;
  return nullptr;
}

FailureEpisodes::Kind& FailureEpisodes::find_or_add(std::string_view kind) {
  if (Kind* k = find(kind)) return *k;
  std::lock_guard lock(mutex_);
  if (Kind* k = find(kind)) return *k;
  owned_.push_back(std::make_unique<Kind>(kind, kinds_.load(std::memory_order_relaxed)));
  kinds_.store(owned_.back().get(), std::memory_order_release);
  return *owned_.back();
}

void FailureEpisodes::failure(std::string_view kind, std::string_view msg, json::object fields, Level level,
                              milliseconds retried_within) {
  Kind& k = find_or_add(kind);
  const TimePoint now = clock_();
  k.last_failure.store(now.time_since_epoch().count(), std::memory_order_relaxed);
  const bool was_open = (k.word.fetch_add(kOne, std::memory_order_acq_rel) & kOpen) != 0;
  if (log_.enabled(Level::debug)) {
    json::object line = was_open ? std::move(fields) : fields;
    line["episode"] = kind;
    log_.debug(msg, std::move(line));
  }
  if (!was_open) open(k, now, msg, std::move(fields), level, retried_within);
}

void FailureEpisodes::open(Kind& k, TimePoint now, std::string_view msg, json::object fields, Level level,
                           milliseconds retried_within) {
  std::lock_guard lock(mutex_);
  if (closed_) {
    log_.log(level, msg, std::move(fields));  // nobody would end an episode any more
    return;
  }
  const std::uint64_t word = k.word.load(std::memory_order_acquire);
  if (word & kOpen) return;  // another failure opened it meanwhile and counts this one
  // This failure was collected by an episode that opened and ended meanwhile.
  if (word < kOne) return;
  k.word.fetch_or(kOpen, std::memory_order_acq_rel);
  k.level = level;
  k.started = now;
  k.last_line = now;
  k.quiet = std::max(options_.quiet_period, 2 * retried_within);
  k.total = 0;
  k.unreported = 0;
  collect(k);
  k.unreported -= 1;  // the one this line reports
  json::object line{{"episode", k.name}, {"failures", 1}, {"failure", msg}};
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  log_.log(level, "failure episode started", std::move(line));
  if (!ticks_itself_) return;
  // The first episode starts the thread (a process that never fails never has it); later ones
  // make it recompute its next deadline.
  if (!ticker_.joinable()) ticker_ = std::thread([this] { run_ticker(); });
  rescan_ = true;
  wake_.notify_one();
}

void FailureEpisodes::collect(Kind& k) {
  // Takes the count and keeps the open bit: concurrent increments land before or after, never lost.
  const std::uint64_t n = k.word.fetch_and(kOpen, std::memory_order_acq_rel) / kOne;
  k.total += n;
  k.unreported += n;
}

void FailureEpisodes::end(Kind& k, TimePoint now, std::string_view why) {
  // Closes and collects in one step: a failure after this opens a new episode.
  const std::uint64_t n = k.word.exchange(0, std::memory_order_acq_rel) / kOne;
  k.total += n;
  k.unreported += n;
  log_.log(k.level, "failure episode ended",
           {{"episode", k.name},
            {"failures", k.unreported},
            {"total", k.total},
            {"durationMs", ms_between(k.started, k.last_failure_time())},
            {"endedBy", why}});
}

void FailureEpisodes::success(std::string_view kind) {
  Kind* k = find(kind);
  if (k == nullptr || (k->word.load(std::memory_order_acquire) & kOpen) == 0) return;
  const TimePoint now = clock_();
  if (now - k->last_failure_time() < options_.success_settle) return;
  std::lock_guard lock(mutex_);
  if ((k->word.load(std::memory_order_acquire) & kOpen) == 0) return;  // ended meanwhile
  if (now - k->last_failure_time() < options_.success_settle) return;  // failed again meanwhile
  end(*k, now, "success");
}

std::optional<FailureEpisodes::TimePoint> FailureEpisodes::tick() {
  std::lock_guard lock(mutex_);
  return tick_locked(clock_());
}

std::optional<FailureEpisodes::TimePoint> FailureEpisodes::tick_locked(TimePoint now) {
  std::optional<TimePoint> next;
  for (auto& owned : owned_) {
    Kind& k = *owned;
    if ((k.word.load(std::memory_order_acquire) & kOpen) == 0) continue;
    const TimePoint last = k.last_failure_time();
    if (now - last >= k.quiet) {
      end(k, now, "quiet");
      continue;
    }
    collect(k);
    if (k.unreported > 0 && now - k.last_line >= options_.summary_interval) {
      log_.log(k.level, "failure episode continues",
               {{"episode", k.name}, {"failures", k.unreported}, {"total", k.total}, {"forMs", ms_between(k.started, now)}});
      k.unreported = 0;
      k.last_line = now;
    }
    // A later failure only moves the quiet deadline later: waking at this one is never too late.
    const TimePoint due = std::min(last + k.quiet, k.last_line + options_.summary_interval);
    next = next ? std::min(*next, due) : due;
  }
  return next;
}

void FailureEpisodes::run_ticker() {
  std::unique_lock lock(mutex_);
  while (!closed_) {
    rescan_ = false;
    const auto next = tick_locked(clock_());
    const auto woken = [this] { return closed_ || rescan_; };
    if (next)
      wake_.wait_until(lock, *next, woken);
    else
      wake_.wait(lock, woken);
  }
}

void FailureEpisodes::close() {
  {
    std::lock_guard lock(mutex_);
    if (!closed_) {
      closed_ = true;
      const TimePoint now = clock_();
      for (auto& owned : owned_)
        if (owned->word.load(std::memory_order_acquire) & kOpen) end(*owned, now, "shutdown");
    }
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
}

}  // namespace registrar::adapters::logging
