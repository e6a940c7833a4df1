#pragma once
// A bounded pool of MySQL/MariaDB connections shared by the adapter's stores, safe to use from
// many threads. Calls block (network round trips): run them off the I/O threads.
//
//  - Connections are opened lazily, up to `pool_size`; a caller finding them all busy waits up to
//    `acquire_timeout`, then gets ports::BackendUnavailable (→ 503 + Retry-After).
//  - The driver never reconnects by itself (a silently reconnected session would have lost its
//    open transaction). A connection that saw a connection-level error (server gone, lost, timed
//    out, killed) is closed instead of being returned, together with the idle ones (which most
//    likely died with it); the next caller opens a fresh one. So the pool recovers by itself when
//    the server comes back, without anyone recreating it.
//  - read(), transact() and atomic() run a unit of work and retry it where that is safe: on a
//    fresh connection when a pooled one turned out dead (before anything was committed, or, for
//    atomic(), telling the unit it may be a repeat), and (transact, atomic) when InnoDB aborted it
//    for a deadlock or a lock wait timeout. Everything else propagates.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "adapters/mysql/connection.hpp"
#include "adapters/mysql/options.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::mysql {

class MysqlPool {
 public:
  // Does not connect (connections open on first use): construction never fails for an
  // unreachable server. Throws std::invalid_argument for a pool_size of 0.
  explicit MysqlPool(MysqlOptions options);
  // All leases must have been returned.
  ~MysqlPool();
  MysqlPool(const MysqlPool&) = delete;
  MysqlPool& operator=(const MysqlPool&) = delete;

  // Exclusive use of one connection until destroyed; then it goes back to the pool, or is closed
  // if it broke.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(other.pool_), connection_(std::move(other.connection_)), reused_(other.reused_) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (connection_) pool_->release(std::move(connection_));
    }
    Connection& connection() const { return *connection_; }
    Connection* operator->() const { return connection_.get(); }
    // True if the connection was idle in the pool (it may have died meanwhile), false if it was
    // opened for this lease.
    bool reused() const { return reused_; }

   private:
    friend class MysqlPool;
    Lease(MysqlPool* pool, std::unique_ptr<Connection> connection, bool reused)
        : pool_(pool), connection_(std::move(connection)), reused_(reused) {}
    MysqlPool* pool_;
    std::unique_ptr<Connection> connection_;
    bool reused_;
  };

  // An idle connection, or a new one if fewer than pool_size are open, or the next one returned
  // within acquire_timeout. Throws BackendUnavailable on timeout or if connecting fails.
  Lease acquire();

  // Runs f(Connection&) in autocommit mode (single-statement reads). If a pooled connection turns
  // out to be dead, f runs again on a fresh one (a read has no effect to duplicate).
  template <class F>
  auto read(F&& f) -> std::invoke_result_t<F&, Connection&> {
    for (int attempt = 0;; ++attempt) {
      Lease lease = acquire();
      try {
        return f(lease.connection());
      } catch (const ports::BackendUnavailable&) {
        if (!lease.connection().broken() || !lease.reused() || attempt >= kStaleRetries) throw;
      }
    }
  }

  // Runs f(Connection&) between START TRANSACTION and COMMIT; rolls back and rethrows if f throws.
  // Runs f again (so f must have no effect outside the transaction) when:
  //  - InnoDB rolled it back for a deadlock or lock wait timeout (up to kConflictRetries times,
  //    then BackendUnavailable);
  //  - a pooled connection turned out dead before COMMIT was sent (nothing was applied: the
  //    server discards an uncommitted transaction with its connection).
  // If the connection breaks after COMMIT was sent, the outcome is unknown and BackendUnavailable
  // propagates: it is never silently retried (which could apply it twice).
  template <class F>
  auto transact(F&& f) -> std::invoke_result_t<F&, Connection&> {
    int conflicts = 0;
    for (int attempt = 0;; ++attempt) {
      Lease lease = acquire();
      Connection& c = lease.connection();
      try {
        Transaction tx(c);
        if constexpr (std::is_void_v<std::invoke_result_t<F&, Connection&>>) {
          f(c);
          tx.commit();
          return;
        } else {
          auto result = f(c);
          tx.commit();
          return result;
        }
      } catch (const MysqlError& e) {
        if (!e.is_conflict()) throw;
        if (++conflicts > kConflictRetries) throw_conflicts_exhausted(e);
        back_off(conflicts);
      } catch (const ports::BackendUnavailable&) {
        if (!c.broken() || !lease.reused() || c.commit_sent() || attempt >= kStaleRetries) throw;
      }
    }
  }

  // Runs f(Connection&, bool repeat) in autocommit mode, where f sends ONE statement that the
  // server applies whole or not at all: a CALL of a procedure that runs its own transaction, or a
  // single-statement write. It takes one round trip where transact() takes at least three. Runs f
  // again:
  //  - when the server rolled it back for a deadlock or lock wait timeout (as transact());
  //  - when a pooled connection turned out dead. Unlike in transact(), the statement may have
  //    been sent and applied before the connection broke (its answer lost), so f runs again on a
  //    fresh connection with repeat = true and must recognise its own earlier success (the row with
  //    its id already there); an idempotent statement needs nothing more.
  // Errors on a connection opened for this call are not retried: the server is really gone.
  template <class F>
  auto atomic(F&& f) -> std::invoke_result_t<F&, Connection&, bool> {
    int conflicts = 0;
    bool repeat = false;
    for (int attempt = 0;; ++attempt) {
      Lease lease = acquire();
      try {
        return f(lease.connection(), repeat);
      } catch (const MysqlError& e) {
        if (!e.is_conflict()) throw;
        if (++conflicts > kConflictRetries) throw_conflicts_exhausted(e);
        back_off(conflicts);
      } catch (const ports::BackendUnavailable&) {
        if (!lease.connection().broken() || !lease.reused() || attempt >= kStaleRetries) throw;
        repeat = true;
      }
    }
  }

  // Round trip to the server (for /readyz). Throws BackendUnavailable if it cannot be used.
  void ping();

  struct Stats {
    std::size_t open = 0;       // connections open now (idle + leased + being opened)
    std::size_t idle = 0;
    std::size_t peak_open = 0;  // the most ever open at once (never above pool_size)
    std::uint64_t opened = 0;   // connections opened so far
    std::uint64_t discarded = 0;  // connections closed because they broke (or died with one)
  };
  Stats stats() const;
  const MysqlOptions& options() const { return options_; }

  static constexpr int kConflictRetries = 3;
  static constexpr int kStaleRetries = 2;

 private:
  void release(std::unique_ptr<Connection> connection) noexcept;
  [[noreturn]] static void throw_conflicts_exhausted(const MysqlError& e);
  static void back_off(int attempt);

  MysqlOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::size_t open_ = 0;
  std::size_t peak_open_ = 0;
  std::uint64_t opened_ = 0;
  std::uint64_t discarded_ = 0;
};

}  // namespace registrar::adapters::mysql
