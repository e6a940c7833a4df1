#pragma once
// A thin RAII layer over one libmariadb connection: prepared statements (cached per connection),
// typed parameters and columns, transaction control, and the mapping of MySQL error codes to the
// project's exceptions. Not thread-safe: a Connection is used by one thread at a time (MysqlPool
// hands them out).
//
// Every statement that carries data goes through the binary protocol (mysql_stmt_prepare /
// bind_param / bind_result): values never become part of SQL text. Only constant control
// statements (START TRANSACTION, COMMIT, ROLLBACK) and the session setup use the text protocol.
#include <mysql.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "adapters/mysql/options.hpp"
#include "domain/time.hpp"

namespace registrar::adapters::mysql {

// A MySQL error that is not an infrastructure outage: a duplicate key, a bug in our SQL, a value
// the schema refuses. The message holds our statement's first line, the error number, SQLSTATE
// and the server's text with every quoted literal blanked out ('?'), so no bound value (user data)
// ends up in logs. For ER_DUP_ENTRY, `key()` is the name of the violated unique key.
class MysqlError : public std::runtime_error {
 public:
  MysqlError(unsigned code, std::string sqlstate, std::string key, const std::string& message)
      : std::runtime_error(message), code_(code), sqlstate_(std::move(sqlstate)), key_(std::move(key)) {}
  unsigned code() const { return code_; }
  const std::string& sqlstate() const { return sqlstate_; }
  const std::string& key() const { return key_; }
  bool is_duplicate_key() const { return code_ == 1062; }  // ER_DUP_ENTRY
  // Lock wait timeout (1205) or deadlock (1213): the statement (or, for a deadlock, the whole
  // transaction) was rolled back by the server; the transaction may be run again.
  bool is_conflict() const;

 private:
  unsigned code_;
  std::string sqlstate_;
  std::string key_;
};

// Error numbers that mean "the server cannot be used through this connection right now": it is
// unreachable, gone, shutting down, out of connections or disk, read-only (a failover in progress),
// or a network timeout. These become ports::BackendUnavailable and the connection is discarded.
bool is_connection_error(unsigned code);
bool is_unavailable_error(unsigned code);  // the above, plus server-side "try later" states

// The name of the key in an ER_DUP_ENTRY message ("Duplicate entry '…' for key 'NAME'"; MySQL 8
// writes 'table.NAME'): the text after the LAST "for key '", without a table prefix.
std::string duplicate_key_name(std::string_view message);

// The server's message with the contents of every '…' literal replaced by '?'.
std::string redact_literals(std::string_view message);

// Raw bytes for a binary column (VARBINARY/BLOB): bound as MYSQL_TYPE_BLOB, so the server never
// treats them as text in the connection's character set.
struct Bytes {
  std::string_view data;
};

// A statement parameter. Timestamps are bound as DATETIME (UTC, millisecond precision).
using Param = std::variant<std::nullptr_t, std::string_view, std::int64_t, domain::Timestamp, Bytes>;

domain::Timestamp from_mysql_time(const MYSQL_TIME& t);
MYSQL_TIME to_mysql_time(domain::Timestamp t);

class Connection;

// One use of a cached prepared statement: execute it, then read its rows (stored client-side, so
// the connection may run other statements while they are read). Frees the result when it goes out
// of scope. Column indexes are 0-based.
class Query {
 public:
  Query(Connection& connection, struct PreparedStatement& statement);
  Query(Query&& other) noexcept;
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;
  Query& operator=(Query&&) = delete;
  ~Query();

  Query& execute(std::span<const Param> params);
  Query& execute(std::initializer_list<Param> params) { return execute(std::span<const Param>(params.begin(), params.size())); }

  // Advances to the next row: true if a row is available, false when done.
  bool fetch();
  std::uint64_t affected_rows() const;

  bool is_null(int column) const;
  std::string text(int column) const;
  std::int64_t int64(int column) const;
  domain::Timestamp timestamp(int column) const;

 private:
  [[noreturn]] void fail();
  Connection* connection_;
  PreparedStatement* statement_;
};

// Checks the TLS options for start-up (the CA file loads, and goes with a verifying mode): throws
// std::invalid_argument naming the problem.
void check_tls_options(const MysqlOptions& options);

class Connection {
 public:
  // Connects and sets up the session (utf8mb4, UTC, strict SQL mode, READ COMMITTED, the lock wait
  // timeout). Throws ports::BackendUnavailable if the server cannot be reached or refuses us, or
  // if TLS (options.ssl_mode) fails: the certificate refused, or the server offers no TLS.
  explicit Connection(const MysqlOptions& options);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // The prepared statement for `sql`, prepared on first use and kept for the connection's
  // lifetime. `sql` must be one statement; pass the adapter's named constants.
  Query query(std::string_view sql);
  // Runs a constant statement (no parameters, no result) over the text protocol.
  void exec(std::string_view sql);

  void begin();
  void commit();
  // Rolls back an open transaction, swallowing errors (used on unwinding paths). On a broken
  // connection it does nothing (the server rolls back when the connection goes away).
  void rollback_quietly() noexcept;

  // True once a connection-level error was seen: the pool must not hand this connection out again.
  bool broken() const { return broken_; }
  // True from the moment COMMIT was sent until begin(): if the connection broke in between, the
  // transaction's outcome is unknown and it must not be retried.
  bool commit_sent() const { return commit_sent_; }

  MYSQL* handle() const { return mysql_; }

  // Throws for the connection's (or `stmt`'s) last error: BackendUnavailable for outages (marking
  // the connection broken), MysqlError otherwise. `context` is our own constant SQL or an
  // operation name.
  [[noreturn]] void fail(MYSQL_STMT* stmt, std::string_view context);

 private:
  void configure_tls(const MysqlOptions& options);  // the options of options.ssl_mode, before connecting

  MYSQL* mysql_ = nullptr;
  bool broken_ = false;
  bool commit_sent_ = false;
  std::unordered_map<std::string, std::unique_ptr<PreparedStatement>> statements_;
};

// START TRANSACTION … COMMIT; rolls back unless commit() was reached.
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

}  // namespace registrar::adapters::mysql
