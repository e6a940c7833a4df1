#include "adapters/mysql/connection.hpp"

#include <errmsg.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "ports/errors.hpp"

namespace registrar::adapters::mysql {

namespace {

// Session setup, run by the driver right after connecting (MYSQL_INIT_COMMAND), before the
// connection is handed out:
//  - utf8mb4 end to end (the client character set is also set through MYSQL_SET_CHARSET_NAME);
//    utf8mb4_unicode_ci only governs literals: every column has its own explicit collation;
//  - UTC, so NOW()/UTC_TIMESTAMP agree and DATETIME values mean UTC;
//  - autocommit on (explicit transactions are opened where needed);
//  - a strict SQL mode: an over-long or malformed value is an error, never silently truncated;
//  - READ COMMITTED: every statement sees the latest committed data (as SQLite in WAL mode does
//    for each read), and InnoDB takes no gap locks, so concurrent sign-ups do not deadlock on
//    the unique indexes' gaps.
constexpr std::string_view kSessionSetup =
    "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci, time_zone = '+00:00', autocommit = 1, "
    "sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', "
    "innodb_lock_wait_timeout = {}";
constexpr const char* kIsolation = "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED";

constexpr std::string_view kBegin = "START TRANSACTION";
constexpr std::string_view kCommit = "COMMIT";
constexpr std::string_view kRollback = "ROLLBACK";

// Room for a typical text column; a longer value grows its buffer on first sight.
constexpr std::size_t kInitialTextBuffer = 256;

std::string_view first_line(std::string_view s) {
  while (!s.empty() && (s.front() == '\n' || s.front() == ' ')) s.remove_prefix(1);
  return s.substr(0, s.find('\n'));
}

unsigned whole_seconds(std::chrono::milliseconds d) {
  auto s = (d.count() + 999) / 1000;
  return static_cast<unsigned>(std::max<std::int64_t>(s, 1));
}

void library_init() {
  // mysql_library_init is not thread-safe; mysql_init calls it implicitly, so do it once up front.
  static const bool done = [] {
    if (mysql_library_init(0, nullptr, nullptr) != 0)
      throw ports::BackendUnavailable("mysql: the client library could not be initialized");
    return true;
  }();
  (void)done;
}

enum class Kind { integer, time, text };

Kind kind_of(enum_field_types type) {
  switch (type) {
    case MYSQL_TYPE_TINY:
    case MYSQL_TYPE_SHORT:
    case MYSQL_TYPE_LONG:
    case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
      return Kind::integer;
    case MYSQL_TYPE_DATETIME:
    case MYSQL_TYPE_TIMESTAMP:
    case MYSQL_TYPE_DATE:
    case MYSQL_TYPE_NEWDATE:
      return Kind::time;
    default:
      return Kind::text;
  }
}

}  // namespace

// One prepared statement with its parameter and result buffers (reused across executions).
struct PreparedStatement {
  struct Column {
    Kind kind = Kind::text;
    std::vector<char> text;
    long long integer = 0;
    MYSQL_TIME time{};
    unsigned long length = 0;
    my_bool is_null = 0;
    my_bool error = 0;
  };

  MYSQL_STMT* stmt = nullptr;
  std::string sql;
  bool in_use = false;
  bool has_result = false;
  std::vector<Column> columns;
  std::vector<MYSQL_BIND> result_binds;
  std::vector<MYSQL_BIND> param_binds;
  std::vector<unsigned long> param_lengths;
  std::vector<long long> param_ints;
  std::vector<MYSQL_TIME> param_times;

  ~PreparedStatement() {
    if (stmt != nullptr) mysql_stmt_close(stmt);
  }

  void bind_result_buffers() {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      auto& c = columns[i];
      auto& b = result_binds[i];
      b = MYSQL_BIND{};
      b.length = &c.length;
      b.is_null = &c.is_null;
      b.error = &c.error;
      switch (c.kind) {
        case Kind::integer:
          b.buffer_type = MYSQL_TYPE_LONGLONG;
          b.buffer = &c.integer;
          b.buffer_length = sizeof c.integer;
          break;
        case Kind::time:
          b.buffer_type = MYSQL_TYPE_DATETIME;
          b.buffer = &c.time;
          b.buffer_length = sizeof c.time;
          break;
        case Kind::text:
          b.buffer_type = MYSQL_TYPE_STRING;
          b.buffer = c.text.data();
          b.buffer_length = c.text.size();
          break;
      }
    }
  }
};

// ---- error classification ----

bool MysqlError::is_conflict() const { return code_ == 1205 || code_ == 1213; }

bool is_connection_error(unsigned code) {
  switch (code) {
    // client side: cannot connect, connection gone or lost, handshake/TLS failure, timeouts
    case CR_SOCKET_CREATE_ERROR:
    case CR_CONNECTION_ERROR:
    case CR_CONN_HOST_ERROR:
    case CR_IPSOCK_ERROR:
    case CR_UNKNOWN_HOST:
    case CR_SERVER_GONE_ERROR:
    case CR_SERVER_HANDSHAKE_ERR:
    case CR_SERVER_LOST:
    case CR_SSL_CONNECTION_ERROR:
    case CR_SERVER_LOST_EXTENDED:
    case CR_ERR_NET_READ:
    case CR_ERR_NET_WRITE:
    // server side, about this connection
    case 1040:  // ER_CON_COUNT_ERROR: too many connections
    case 1042:  // ER_BAD_HOST_ERROR
    case 1043:  // ER_HANDSHAKE_ERROR
    case 1053:  // ER_SERVER_SHUTDOWN
    case 1152:  // ER_ABORTING_CONNECTION
    case 1154:  // ER_NET_READ_ERROR_FROM_PIPE
    case 1155:  // ER_NET_FCNTL_ERROR
    case 1156:  // ER_NET_PACKETS_OUT_OF_ORDER
    case 1157:  // ER_NET_UNCOMPRESS_ERROR
    case 1158:  // ER_NET_READ_ERROR
    case 1159:  // ER_NET_READ_INTERRUPTED
    case 1160:  // ER_NET_ERROR_ON_WRITE
    case 1161:  // ER_NET_WRITE_INTERRUPTED
    case 1203:  // ER_TOO_MANY_USER_CONNECTIONS
    case 1226:  // ER_USER_LIMIT_REACHED
    case 1927:  // ER_CONNECTION_KILLED (MariaDB)
    case 3169:  // ER_SESSION_WAS_KILLED (MySQL 8)
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8: idle connection closed by the server)
      return true;
    default:
      return false;
  }
}

bool is_unavailable_error(unsigned code) {
  if (is_connection_error(code)) return true;
  switch (code) {
    case 1021:  // ER_DISK_FULL
    case 1037:  // ER_OUTOFMEMORY
    case 1038:  // ER_OUT_OF_SORTMEMORY
    case 1041:  // ER_OUT_OF_RESOURCES
    case 1114:  // ER_RECORD_FILE_FULL (table full)
    case 1290:  // ER_OPTION_PREVENTS_STATEMENT (--read-only: a replica, or a failover in progress)
    case 1317:  // ER_QUERY_INTERRUPTED (KILL QUERY, shutdown)
    case 1792:  // ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    case 1836:  // ER_READ_ONLY_MODE
    case 1969:  // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    case 3024:  // ER_QUERY_TIMEOUT (MySQL max_execution_time)
      return true;
    default:
      return false;
  }
}

std::string duplicate_key_name(std::string_view message) {
  constexpr std::string_view marker = "for key '";
  auto at = message.rfind(marker);
  if (at == std::string_view::npos) return {};
  auto rest = message.substr(at + marker.size());
  auto end = rest.rfind('\'');
  if (end == std::string_view::npos) return {};
  auto key = rest.substr(0, end);
  if (auto dot = key.rfind('.'); dot != std::string_view::npos) key.remove_prefix(dot + 1);
  return std::string(key);
}

std::string redact_literals(std::string_view message) {
  std::string out;
  out.reserve(message.size());
  bool inside = false;
  for (char c : message) {
    if (c == '\'') {
      out.push_back(c);
      if (!inside) out.push_back('?');
      inside = !inside;
    } else if (!inside) {
      out.push_back(c);
    }
  }
  return out;
}

// ---- time ----

domain::Timestamp from_mysql_time(const MYSQL_TIME& t) {
  using namespace std::chrono;
  auto day = sys_days(year_month_day(year(static_cast<int>(t.year)), month(t.month), std::chrono::day(t.day)));
  auto ms = day.time_since_epoch() + hours(t.hour) + minutes(t.minute) + seconds(t.second) +
            milliseconds(t.second_part / 1000);
  return domain::Timestamp(duration_cast<milliseconds>(ms));
}

MYSQL_TIME to_mysql_time(domain::Timestamp t) {
  using namespace std::chrono;
  auto day = floor<days>(t);
  year_month_day ymd(sys_days(day.time_since_epoch()));
  auto ms = (t - day).count();  // milliseconds into the day, 0 … 86'399'999
  MYSQL_TIME out{};
  out.year = static_cast<unsigned>(static_cast<int>(ymd.year()));
  out.month = static_cast<unsigned>(ymd.month());
  out.day = static_cast<unsigned>(ymd.day());
  out.hour = static_cast<unsigned>(ms / 3'600'000);
  out.minute = static_cast<unsigned>(ms / 60'000 % 60);
  out.second = static_cast<unsigned>(ms / 1000 % 60);
  out.second_part = static_cast<unsigned long>(ms % 1000) * 1000;  // microseconds
  out.neg = 0;
  out.time_type = MYSQL_TIMESTAMP_DATETIME;
  return out;
}

// ---- Query ----

Query::Query(Connection& connection, PreparedStatement& statement) : connection_(&connection), statement_(&statement) {}

Query::Query(Query&& other) noexcept : connection_(other.connection_), statement_(other.statement_) {
  other.statement_ = nullptr;
}

Query::~Query() {
  if (statement_ == nullptr) return;
  if (statement_->has_result && !connection_->broken()) mysql_stmt_free_result(statement_->stmt);
  statement_->in_use = false;
}

void Query::fail() { connection_->fail(statement_->stmt, statement_->sql); }

Query& Query::execute(std::span<const Param> params) {
  auto& s = *statement_;
  if (params.size() != s.param_binds.size())
    throw std::logic_error(fmt::format("mysql: {} parameters for a statement with {}: {}", params.size(),
                                       s.param_binds.size(), first_line(s.sql)));
  static char empty[] = "";
  for (std::size_t i = 0; i < params.size(); ++i) {
    auto& b = s.param_binds[i];
    b = MYSQL_BIND{};
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>) {
            b.buffer_type = MYSQL_TYPE_NULL;
          } else if constexpr (std::is_same_v<T, std::string_view>) {
            s.param_lengths[i] = static_cast<unsigned long>(v.size());
            b.buffer_type = MYSQL_TYPE_STRING;
            b.buffer = v.empty() ? empty : const_cast<char*>(v.data());
            b.buffer_length = s.param_lengths[i];
            b.length = &s.param_lengths[i];
          } else if constexpr (std::is_same_v<T, std::int64_t>) {
            s.param_ints[i] = v;
            b.buffer_type = MYSQL_TYPE_LONGLONG;
            b.buffer = &s.param_ints[i];
          } else if constexpr (std::is_same_v<T, Bytes>) {
            s.param_lengths[i] = static_cast<unsigned long>(v.data.size());
            b.buffer_type = MYSQL_TYPE_BLOB;
            b.buffer = v.data.empty() ? empty : const_cast<char*>(v.data.data());
            b.buffer_length = s.param_lengths[i];
            b.length = &s.param_lengths[i];
          } else {
            s.param_times[i] = to_mysql_time(v);
            b.buffer_type = MYSQL_TYPE_DATETIME;
            b.buffer = &s.param_times[i];
          }
        },
        params[i]);
  }
  if (!s.param_binds.empty() && mysql_stmt_bind_param(s.stmt, s.param_binds.data()) != 0) fail();
  if (mysql_stmt_execute(s.stmt) != 0) fail();
  if (s.has_result) {
    s.bind_result_buffers();
    if (mysql_stmt_bind_result(s.stmt, s.result_binds.data()) != 0) fail();
    if (mysql_stmt_store_result(s.stmt) != 0) fail();
  } else {
    // A CALL answers with more than one packet (the procedure's results, then the CALL's own
    // status); an error raised inside the procedure may only arrive with a later one. Read them all
    // so that the connection is in sync and no error goes unseen.
    while (mysql_stmt_more_results(s.stmt)) {
      int rc = mysql_stmt_next_result(s.stmt);
      if (rc > 0) fail();
      if (rc < 0) break;
      mysql_stmt_free_result(s.stmt);
    }
  }
  return *this;
}

bool Query::fetch() {
  auto& s = *statement_;
  if (!s.has_result) return false;
  int rc = mysql_stmt_fetch(s.stmt);
  if (rc == 0) return true;
  if (rc == MYSQL_NO_DATA) return false;
  if (rc == MYSQL_DATA_TRUNCATED) {
    // A text value longer than its buffer: grow the buffer and fetch that column again.
    bool rebound = false;
    for (std::size_t i = 0; i < s.columns.size(); ++i) {
      auto& c = s.columns[i];
      if (c.kind != Kind::text || c.is_null || c.length <= c.text.size()) continue;
      c.text.resize(c.length);
      auto& b = s.result_binds[i];
      b.buffer = c.text.data();
      b.buffer_length = c.text.size();
      if (mysql_stmt_fetch_column(s.stmt, &b, static_cast<unsigned>(i), 0) != 0) fail();
      rebound = true;
    }
    if (rebound && mysql_stmt_bind_result(s.stmt, s.result_binds.data()) != 0) fail();
    return true;
  }
  fail();
}

std::uint64_t Query::affected_rows() const { return mysql_stmt_affected_rows(statement_->stmt); }

bool Query::is_null(int column) const { return statement_->columns.at(column).is_null != 0; }

std::string Query::text(int column) const {
  const auto& c = statement_->columns.at(column);
  if (c.is_null) return {};
  if (c.kind == Kind::integer) return std::to_string(c.integer);
  return std::string(c.text.data(), std::min<std::size_t>(c.length, c.text.size()));
}

std::int64_t Query::int64(int column) const {
  const auto& c = statement_->columns.at(column);
  if (c.kind != Kind::integer) throw std::logic_error("mysql: column is not an integer");
  return c.is_null ? 0 : c.integer;
}

domain::Timestamp Query::timestamp(int column) const {
  const auto& c = statement_->columns.at(column);
  if (c.kind != Kind::time) throw std::logic_error("mysql: column is not a DATETIME");
  if (c.is_null) return {};
  return from_mysql_time(c.time);
}

// ---- Connection ----

Connection::Connection(const MysqlOptions& options) {
  library_init();
  mysql_ = mysql_init(nullptr);
  if (mysql_ == nullptr) throw ports::BackendUnavailable("mysql: out of memory creating a connection");
  unsigned connect_timeout = whole_seconds(options.connect_timeout);
  unsigned read_timeout = whole_seconds(options.read_timeout);
  unsigned write_timeout = whole_seconds(options.write_timeout);
  my_bool reconnect = 0;  // a silently reconnected session would lose its transaction: we discard instead
  std::string setup = fmt::format(fmt::runtime(kSessionSetup), whole_seconds(options.lock_wait_timeout));
  mysql_options(mysql_, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
  mysql_options(mysql_, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
  mysql_options(mysql_, MYSQL_OPT_WRITE_TIMEOUT, &write_timeout);
  mysql_options(mysql_, MYSQL_OPT_RECONNECT, &reconnect);
  mysql_options(mysql_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(mysql_, MYSQL_INIT_COMMAND, setup.c_str());
  mysql_options(mysql_, MYSQL_INIT_COMMAND, kIsolation);
  configure_tls(options);
  const char* socket = options.unix_socket.empty() ? nullptr : options.unix_socket.c_str();
  if (mysql_real_connect(mysql_, options.host.c_str(), options.user.c_str(), options.password.c_str(),
                         options.database.empty() ? nullptr : options.database.c_str(), options.port, socket, 0) == nullptr) {
    // Every failure to connect (refused, timed out, access denied, unknown database) makes the
    // backend unusable for this request; the message names the server, never a user's data.
    std::string message =
        fmt::format("mysql: cannot connect to {}:{}: error {}: {}", options.host, options.port,
                    mysql_errno(mysql_), mysql_error(mysql_));
    mysql_close(mysql_);
    mysql_ = nullptr;
    throw ports::BackendUnavailable(message);
  }
  // libmariadb 3.3 asked for TLS goes on in plaintext when the server does not offer it, unless
  // the certificate is to be verified against the host name (MYSQL_OPT_SSL_ENFORCE does not stop
  // it): so whatever the mode, a session without a cipher is refused here, before any statement.
  if (options.ssl_mode != SslMode::disabled && mysql_get_ssl_cipher(mysql_) == nullptr) {
    mysql_close(mysql_);
    mysql_ = nullptr;
    throw ports::BackendUnavailable(fmt::format(
        "mysql: cannot connect to {}:{}: the server does not offer TLS, which the TLS mode requires; no plaintext "
        "connection is made",
        options.host, options.port));
  }
}

void check_tls_options(const MysqlOptions& options) {
  if (options.ca_file.empty()) return;
  if (options.ssl_mode != SslMode::verify_ca && options.ssl_mode != SslMode::verify_identity)
    throw std::invalid_argument("a CA file is used by verify-ca and verify-identity only");
  std::unique_ptr<X509_STORE, decltype(&X509_STORE_free)> store(X509_STORE_new(), X509_STORE_free);
  if (!store || X509_STORE_load_file(store.get(), options.ca_file.c_str()) != 1) {
    ERR_clear_error();
    throw std::invalid_argument("cannot load the CA file " + options.ca_file + " (PEM certificates)");
  }
}

void Connection::configure_tls(const MysqlOptions& options) {
  if (options.ssl_mode == SslMode::disabled) return;
  my_bool on = 1;
  // TLS 1.2 or later, and TLS for the whole session (refused when the server does not offer it;
  // checked again after connecting, see above).
  mysql_optionsv(mysql_, MARIADB_OPT_TLS_VERSION, "TLSv1.2,TLSv1.3");
  mysql_optionsv(mysql_, MYSQL_OPT_SSL_ENFORCE, &on);
  if (options.ssl_mode == SslMode::required) return;
  // The chain: with a CA file or directory, libmariadb sets SSL_VERIFY_PEER; OpenSSL's default
  // directory stands for "the system's CAs" (Debian's ca-certificates).
  if (!options.ca_file.empty()) mysql_optionsv(mysql_, MYSQL_OPT_SSL_CA, options.ca_file.c_str());
  else mysql_optionsv(mysql_, MYSQL_OPT_SSL_CAPATH, X509_get_default_cert_dir());
  // The name: X509_check_host, then X509_check_ip_asc, against the host of the URL.
  if (options.ssl_mode == SslMode::verify_identity) mysql_optionsv(mysql_, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
}

Connection::~Connection() {
  statements_.clear();  // mysql_stmt_close before mysql_close
  if (mysql_ != nullptr) mysql_close(mysql_);
}

Query Connection::query(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it == statements_.end()) {
    auto s = std::make_unique<PreparedStatement>();
    s->sql = std::string(sql);
    s->stmt = mysql_stmt_init(mysql_);
    if (s->stmt == nullptr) fail(nullptr, sql);
    if (mysql_stmt_prepare(s->stmt, s->sql.data(), static_cast<unsigned long>(s->sql.size())) != 0) fail(s->stmt, sql);
    auto params = mysql_stmt_param_count(s->stmt);
    s->param_binds.resize(params);
    s->param_lengths.resize(params);
    s->param_ints.resize(params);
    s->param_times.resize(params);
    if (MYSQL_RES* meta = mysql_stmt_result_metadata(s->stmt)) {
      unsigned n = mysql_num_fields(meta);
      MYSQL_FIELD* fields = mysql_fetch_fields(meta);
      s->columns.resize(n);
      for (unsigned i = 0; i < n; ++i) {
        s->columns[i].kind = kind_of(fields[i].type);
        if (s->columns[i].kind == Kind::text) s->columns[i].text.resize(kInitialTextBuffer);
      }
      mysql_free_result(meta);
      s->result_binds.resize(n);
      s->has_result = true;
    }
    it = statements_.emplace(s->sql, std::move(s)).first;
  }
  auto& s = *it->second;
  // A statement can only be used by one caller at a time; nested use is a programming error.
  if (s.in_use) throw std::logic_error("mysql: statement already in use on this connection");
  s.in_use = true;
  return Query(*this, s);
}

void Connection::exec(std::string_view sql) {
  if (mysql_real_query(mysql_, sql.data(), static_cast<unsigned long>(sql.size())) != 0) fail(nullptr, sql);
  // Constant control statements return no rows; drain anything unexpected to keep the protocol in
  // sync, including the further results of a CALL (a migration runs one), whose errors may only
  // arrive with a later result.
  if (MYSQL_RES* r = mysql_store_result(mysql_)) mysql_free_result(r);
  for (;;) {
    int rc = mysql_next_result(mysql_);
    if (rc > 0) fail(nullptr, sql);
    if (rc < 0) break;
    if (MYSQL_RES* r = mysql_store_result(mysql_)) mysql_free_result(r);
  }
}

void Connection::begin() {
  commit_sent_ = false;
  exec(kBegin);
}

void Connection::commit() {
  commit_sent_ = true;
  exec(kCommit);
}

void Connection::rollback_quietly() noexcept {
  if (broken_ || mysql_ == nullptr) return;
  if (mysql_real_query(mysql_, kRollback.data(), static_cast<unsigned long>(kRollback.size())) != 0) {
    // If even ROLLBACK fails the session state is unknown: do not reuse it.
    broken_ = true;
  }
}

void Connection::fail(MYSQL_STMT* stmt, std::string_view context) {
  unsigned code = stmt != nullptr ? mysql_stmt_errno(stmt) : mysql_errno(mysql_);
  std::string message = stmt != nullptr ? mysql_stmt_error(stmt) : mysql_error(mysql_);
  std::string sqlstate = stmt != nullptr ? mysql_stmt_sqlstate(stmt) : mysql_sqlstate(mysql_);
  auto what = first_line(context);
  if (is_unavailable_error(code)) {
    if (is_connection_error(code)) broken_ = true;
    throw ports::BackendUnavailable(
        fmt::format("mysql: {}: error {} ({}): {}", what, code, sqlstate, redact_literals(message)));
  }
  // Any other client-side error leaves the protocol state uncertain: drop the connection.
  if ((code >= CR_MIN_ERROR && code <= CR_MAX_ERROR) || code >= 5000 || code == 0) broken_ = true;
  if (code == 1062) {
    auto key = duplicate_key_name(message);
    throw MysqlError(code, sqlstate, key,
                     fmt::format("mysql: {}: error 1062 ({}): duplicate entry for key '{}'", what, sqlstate, key));
  }
  throw MysqlError(code, sqlstate, {},
                   fmt::format("mysql: {}: error {} ({}): {}", what, code, sqlstate, redact_literals(message)));
}

// ---- Transaction ----

Transaction::Transaction(Connection& connection) : connection_(connection) { connection_.begin(); }

Transaction::~Transaction() {
  if (!done_) connection_.rollback_quietly();
}

void Transaction::commit() {
  connection_.commit();
  done_ = true;
}

}  // namespace registrar::adapters::mysql
