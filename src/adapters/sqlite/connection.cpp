#include "adapters/sqlite/connection.hpp"

#include <fmt/format.h>

#include "ports/errors.hpp"

namespace registrar::adapters::sqlite {

bool is_unavailable(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return true;
    default:
      return false;
  }
}

void throw_error(sqlite3* db, int rc, std::string_view context) {
  // The first line of a statement is enough to tell which one failed.
  auto what = context.substr(0, context.find('\n'));
  if (is_unavailable(rc))
    throw ports::BackendUnavailable(fmt::format("sqlite: {}: {}", what, sqlite3_errstr(rc)));
  // sqlite3_errmsg names tables, columns and constraints (e.g. "UNIQUE constraint failed:
  // users.email_canonical"), never the bound values, so it is safe to carry.
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw SqliteError(rc, fmt::format("sqlite: {}: {}", what, detail));
}

// ---- Query ----

Query::Query(Query&& other) noexcept : stmt_(other.stmt_), in_use_(other.in_use_) {
  other.stmt_ = nullptr;
  other.in_use_ = nullptr;
}

Query::~Query() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  *in_use_ = false;
}

Query& Query::bind(int index, std::string_view text) {
  // SQLITE_TRANSIENT: SQLite copies the bytes, so callers may pass temporaries.
  int rc = sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
  return *this;
}

Query& Query::bind(int index, std::int64_t value) {
  int rc = sqlite3_bind_int64(stmt_, index, value);
  if (rc != SQLITE_OK) throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
  return *this;
}

Query& Query::bind_null(int index) {
  int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK) throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
  return *this;
}

Query& Query::bind_blob(int index, std::string_view bytes) {
  // A zero-length blob still binds as a BLOB (not NULL) with a non-null pointer.
  static const char empty = 0;
  int rc = sqlite3_bind_blob(stmt_, index, bytes.empty() ? &empty : bytes.data(), static_cast<int>(bytes.size()),
                             SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
  return *this;
}

Query& Query::bind_optional(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind_null(index);
}

bool Query::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_error(sqlite3_db_handle(stmt_), rc, sqlite3_sql(stmt_));
}

void Query::run() {
  while (step()) {
  }
}

bool Query::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

std::string Query::text(int column) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::string Query::blob(int column) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, column));
  if (p == nullptr) return {};
  return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column)));
}

std::optional<std::string> Query::optional_text(int column) const {
  if (is_null(column)) return std::nullopt;
  return text(column);
}

std::int64_t Query::int64(int column) const { return sqlite3_column_int64(stmt_, column); }

// ---- Connection ----

Connection::Connection(const std::filesystem::path& path, Mode mode, std::chrono::milliseconds busy_timeout) {
  // NOMUTEX: SQLite's per-connection mutex is redundant, each Connection is used by one thread at
  // a time. The writer may create the file; readers only open what the writer created.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
  if (mode == Mode::writer) flags |= SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    // The error names the operation, not the path (which may reveal the deployment layout);
    // callers log the path they passed if they need to.
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw_error(nullptr, rc, "open database");
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  try {
    // Both are per-connection settings, so every connection sets them.
    // synchronous=FULL: in WAL mode, NORMAL only syncs the WAL at checkpoints, so a power loss can
    // drop the last commits even though the caller was told "created". FULL fsyncs the WAL on
    // every commit: once create_user returns (and the API answers 201) the user and its event
    // survive kill -9 and power loss. The cost is one fsync per write transaction.
    exec("PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL;");
    if (mode == Mode::reader) exec("PRAGMA query_only = ON;");
  } catch (...) {
    sqlite3_close_v2(db_);
    throw;
  }
}

Connection::~Connection() {
  for (auto& [sql, cached] : statements_) sqlite3_finalize(cached->stmt);
  sqlite3_close_v2(db_);
}

Query Connection::query(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it == statements_.end()) {
    auto cached = std::make_unique<Cached>();
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                &cached->stmt, &tail);
    if (rc != SQLITE_OK) throw_error(db_, rc, sql);
    if (cached->stmt == nullptr) throw SqliteError(SQLITE_MISUSE, "sqlite: empty statement");
    it = statements_.emplace(std::string(sql), std::move(cached)).first;
  }
  Cached& c = *it->second;
  // A statement can only be stepped by one user at a time; nested use is a programming error.
  if (c.in_use) throw std::logic_error("sqlite: statement already in use on this connection");
  c.in_use = true;
  return Query(c.stmt, &c.in_use);
}

void Connection::exec(const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  sqlite3_free(message);
  if (rc != SQLITE_OK) throw_error(db_, rc, sql);
}

std::int64_t Connection::changes() const { return sqlite3_changes64(db_); }

bool Connection::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

void Connection::rollback_quietly() noexcept {
  // After some errors (e.g. SQLITE_FULL, SQLITE_IOERR) SQLite has already rolled back.
  if (in_transaction()) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

// ---- Transaction ----

Transaction::Transaction(Connection& connection) : connection_(connection) { connection_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) connection_.rollback_quietly();
}

void Transaction::commit() {
  connection_.exec("COMMIT");
  done_ = true;
}

}  // namespace registrar::adapters::sqlite
