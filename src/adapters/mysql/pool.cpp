#include "adapters/mysql/pool.hpp"

#include <fmt/format.h>

#include <random>
#include <stdexcept>
#include <thread>

namespace registrar::adapters::mysql {

namespace {
constexpr std::string_view kPing = "SELECT 1";
}

MysqlPool::MysqlPool(MysqlOptions options) : options_(std::move(options)) {
  if (options_.pool_size == 0) throw std::invalid_argument("mysql: pool size must be at least 1");
}

MysqlPool::~MysqlPool() = default;

MysqlPool::Lease MysqlPool::acquire() {
  std::unique_lock lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  for (;;) {
    if (!idle_.empty()) {
      // Most recently returned first: it is the most likely to be alive and warm.
      auto c = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(c), true);
    }
    if (open_ < options_.pool_size) {
      ++open_;
      peak_open_ = std::max(peak_open_, open_);
      lock.unlock();
      try {
        auto c = std::make_unique<Connection>(options_);
        lock.lock();
        ++opened_;
        return Lease(this, std::move(c), false);
      } catch (...) {
        if (!lock.owns_lock()) lock.lock();
        --open_;
        lock.unlock();
        returned_.notify_one();
        throw;
      }
    }
    if (returned_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= options_.pool_size) {
      throw ports::BackendUnavailable(fmt::format("mysql: no connection free within {} ms (pool size {})",
                                                  options_.acquire_timeout.count(), options_.pool_size));
    }
  }
}

void MysqlPool::release(std::unique_ptr<Connection> connection) noexcept {
  std::unique_lock lock(mutex_);
  if (!connection->broken()) {
    idle_.push_back(std::move(connection));
    lock.unlock();
    returned_.notify_one();
    return;
  }
  // The server went away or the connection was cut: the idle ones most likely went with it.
  // Close them all now rather than let the next callers find out one by one.
  std::vector<std::unique_ptr<Connection>> closing;
  closing.push_back(std::move(connection));
  for (auto& c : idle_) closing.push_back(std::move(c));
  idle_.clear();
  open_ -= closing.size();
  discarded_ += closing.size();
  lock.unlock();
  returned_.notify_all();  // room for new connections: every waiter may open one
  closing.clear();         // mysql_close outside the lock
}

void MysqlPool::ping() {
  try {
    read([](Connection& c) {
      auto q = c.query(kPing);
      q.execute({});
      if (!q.fetch() || q.int64(0) != 1) throw ports::BackendUnavailable("mysql: ping returned no row");
    });
  } catch (const MysqlError& e) {
    // For readiness any failure means "not usable" (BackendUnavailable passes through as is).
    throw ports::BackendUnavailable(e.what());
  }
}

MysqlPool::Stats MysqlPool::stats() const {
  std::lock_guard lock(mutex_);
  return Stats{open_, idle_.size(), peak_open_, opened_, discarded_};
}

void MysqlPool::throw_conflicts_exhausted(const MysqlError& e) {
  throw ports::BackendUnavailable(fmt::format("mysql: transaction aborted {} times by lock conflicts (last: {})",
                                              kConflictRetries + 1, e.what()));
}

void MysqlPool::back_off(int attempt) {
  // Deadlock victims that retry in lockstep tend to collide again: wait a short random time.
  thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_int_distribution<int> jitter(1, 5 * attempt);
  std::this_thread::sleep_for(std::chrono::milliseconds(jitter(rng)));
}

}  // namespace registrar::adapters::mysql
