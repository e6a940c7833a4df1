#pragma once
// A thin RAII layer over one SQLite connection: cached prepared statements, typed binds and
// columns, transactions, and the mapping of SQLite result codes to the project's exceptions.
// Not thread-safe: a Connection is used by one thread at a time (SqliteDatabase hands them out).
#include <sqlite3.h>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace registrar::adapters::sqlite {

// An SQLite error that is not an infrastructure outage: a constraint violation, a bug in our SQL,
// a corrupt database. `code()` is the extended result code (e.g. SQLITE_CONSTRAINT_UNIQUE).
// The message holds SQLite's text about our constant SQL, never bound values.
class SqliteError : public std::runtime_error {
 public:
  SqliteError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }
  int primary_code() const { return code_ & 0xff; }

 private:
  int code_;
};

// True for the result codes that mean "the database cannot be used right now" (locked beyond the
// busy timeout, I/O error, disk full, file cannot be opened, out of memory, read-only medium).
bool is_unavailable(int rc);

// Throws ports::BackendUnavailable for is_unavailable(rc), SqliteError otherwise. `context` is our
// own text (an operation name or SQL constant), so no user data ends up in the message.
[[noreturn]] void throw_error(sqlite3* db, int rc, std::string_view context);

// One use of a cached prepared statement. Resets the statement (and clears its bindings) when it
// goes out of scope, so the cache can hand it out again. Bind indexes are 1-based (?1, ?2, …),
// column indexes 0-based.
class Query {
 public:
  explicit Query(sqlite3_stmt* stmt, bool* in_use) : stmt_(stmt), in_use_(in_use) {}
  Query(Query&& other) noexcept;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& operator=(Query&&) = delete;
  ~Query();

  Query& bind(int index, std::string_view text);
  Query& bind(int index, std::int64_t value);
  Query& bind_null(int index);
  // Raw bytes as a BLOB (compares equal only to a BLOB, never to TEXT).
  Query& bind_blob(int index, std::string_view bytes);
  // Binds the value, or NULL.
  Query& bind_optional(int index, const std::optional<std::string>& text);

  // Advances to the next row: true if a row is available, false when done. Throws on error.
  bool step();
  // Runs a statement that returns no rows to completion.
  void run();

  bool is_null(int column) const;
  std::string text(int column) const;
  std::string blob(int column) const;
  std::optional<std::string> optional_text(int column) const;
  std::int64_t int64(int column) const;

 private:
  sqlite3_stmt* stmt_;
  bool* in_use_;
};

class Connection {
 public:
  enum class Mode {
    writer,  // creates the file if missing
    reader,  // PRAGMA query_only: a bug cannot write through a reader connection
  };

  Connection(const std::filesystem::path& path, Mode mode, std::chrono::milliseconds busy_timeout);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The statement for `sql`, prepared on first use and kept for the connection's lifetime.
  // `sql` must be one statement; pass the named constants of the adapter.
  Query query(std::string_view sql);
  // Runs a script of one or more statements without caching (DDL, PRAGMA, BEGIN/COMMIT).
  void exec(const char* sql);
  // Rows changed by the last INSERT/UPDATE/DELETE on this connection.
  std::int64_t changes() const;
  bool in_transaction() const;
  // Rolls back an open transaction, swallowing errors (used on unwinding paths).
  void rollback_quietly() noexcept;
  sqlite3* handle() const { return db_; }

 private:
  struct Cached {
    sqlite3_stmt* stmt = nullptr;
    bool in_use = false;
  };
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, std::unique_ptr<Cached>> statements_;
};

// BEGIN IMMEDIATE … COMMIT. IMMEDIATE takes the database's write lock up front, so the
// transaction never has to upgrade a read lock later (which in WAL mode can fail with
// SQLITE_BUSY_SNAPSHOT instead of waiting). Rolls back unless commit() was reached.
class Transaction {
 public:
  explicit Transaction(Connection& connection);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& connection_;
  bool done_ = false;
};

}  // namespace registrar::adapters::sqlite
