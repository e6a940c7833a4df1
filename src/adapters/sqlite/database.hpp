#pragma once
// One SQLite database file shared by the adapter's stores, safe to use from many threads.
//
// SQLite allows one writer at a time per file, and in WAL mode readers never block it nor are
// blocked by it. So: ONE writer connection behind a mutex (every write is a BEGIN IMMEDIATE
// transaction; other processes on the same file wait up to busy_timeout), and a small pool of
// reader connections that run concurrently. Each connection caches its prepared statements.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "adapters/sqlite/connection.hpp"

namespace registrar::adapters::sqlite {

struct SqliteOptions {
  // How long a write waits for another process holding the file's write lock before
  // BackendUnavailable.
  std::chrono::milliseconds busy_timeout{5000};
  // Reader connections opened at most (lazily); readers beyond this wait for a free one.
  std::size_t max_readers = 4;
};

class SqliteDatabase {
 public:
  // Opens (creating if missing, with mode 0600, and its parent directory) the database at `path`,
  // and switches it to WAL. Does not migrate: see migrations.hpp. Throws BackendUnavailable if the
  // file cannot be opened.
  explicit SqliteDatabase(std::filesystem::path path, SqliteOptions options = {});
  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Runs f(Connection&) in a BEGIN IMMEDIATE transaction on the writer connection and commits;
  // rolls back and rethrows if f throws. Writers are serialized within the process by a mutex.
  template <class F>
  auto write(F&& f) {
    std::lock_guard lock(writer_mutex_);
    Transaction tx(*writer_);
    if constexpr (std::is_void_v<std::invoke_result_t<F&, Connection&>>) {
      f(*writer_);
      tx.commit();
    } else {
      auto result = f(*writer_);
      tx.commit();
      return result;
    }
  }

  // Runs f(Connection&) on the writer connection without opening a transaction (for code that
  // manages its own, such as the migration runner).
  template <class F>
  auto with_writer(F&& f) {
    std::lock_guard lock(writer_mutex_);
    return f(*writer_);
  }

  // Runs f(Connection&) on a reader connection from the pool. Each statement outside an explicit
  // transaction sees the latest committed state.
  template <class F>
  auto read(F&& f) {
    ReaderLease lease(*this);
    return f(*lease.connection);
  }

 private:
  struct ReaderLease {
    explicit ReaderLease(SqliteDatabase& db) : db(db), connection(db.acquire_reader()) {}
    ~ReaderLease() { db.release_reader(std::move(connection)); }
    SqliteDatabase& db;
    std::unique_ptr<Connection> connection;
  };
  std::unique_ptr<Connection> acquire_reader();
  void release_reader(std::unique_ptr<Connection> connection) noexcept;

  std::filesystem::path path_;
  SqliteOptions options_;

  std::mutex writer_mutex_;
  std::unique_ptr<Connection> writer_;

  std::mutex readers_mutex_;
  std::condition_variable reader_returned_;
  std::vector<std::unique_ptr<Connection>> idle_readers_;
  std::size_t open_readers_ = 0;
};

}  // namespace registrar::adapters::sqlite
