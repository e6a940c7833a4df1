#include "adapters/mysql/migrations.hpp"

#include <fmt/format.h>

namespace registrar::adapters::mysql {

namespace {

constexpr std::string_view kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT NOT NULL,
  name       VARCHAR(200) NOT NULL,
  applied_at DATETIME(3) NOT NULL,
  PRIMARY KEY (version)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin)sql";

constexpr std::string_view kTableExists =
    "SELECT COUNT(*) FROM information_schema.TABLES "
    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'schema_migrations'";

constexpr std::string_view kSelectVersion = "SELECT CAST(COALESCE(MAX(version), 0) AS SIGNED) FROM schema_migrations";

constexpr std::string_view kInsertMigration =
    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(3))";

// Advisory locks are server-wide: the name carries the database (hashed: names are limited to
// 64 characters) so that databases on one server migrate independently.
constexpr std::string_view kGetLock =
    "SELECT GET_LOCK(CONCAT('registrar.migrate.', LEFT(SHA1(DATABASE()), 32)), ?)";
constexpr std::string_view kReleaseLock =
    "SELECT RELEASE_LOCK(CONCAT('registrar.migrate.', LEFT(SHA1(DATABASE()), 32)))";

// Migration 1: users, the transactional outbox, and consumer deduplication (as SQLite's v1).
//  - Every table is InnoDB, utf8mb4 with the binary collation utf8mb4_bin: ids and canonical forms
//    compare as bytes, as in SQLite. The domain lower-cases the canonical email and username, and
//    their UNIQUE keys make uniqueness case-insensitive while the displayed values keep their case.
//    (A case-insensitive collation would also fold accents, and make the display forms keys.)
//    utf8mb4_bin ignores trailing spaces in comparisons; canonical forms never end with one (the
//    domain trims emails and refuses spaces in usernames).
//  - Timestamps are DATETIME(3), UTC, millisecond precision.
//  - outbox: seq gives the global order (InnoDB persists the AUTO_INCREMENT counter, so a value
//    is never reused). A row is pending while sent_at IS NULL; claimed_by/claimed_until are the
//    relay lease. outbox_pending serves the relay's scan of pending rows in seq order;
//    outbox_pending_by_aggregate its per-aggregate ordering checks.
//  - processed_events: one row per (consumer, event id) a consumer has applied. Event ids may come
//    from other producers (AMQP message ids): VARBINARY keys compare exactly, trailing spaces and
//    all, and accept any bytes.
constexpr std::string_view kCreateUsers = R"sql(
CREATE TABLE IF NOT EXISTS users (
  id                 CHAR(36) NOT NULL,
  email              VARCHAR(254) NOT NULL,
  email_canonical    VARCHAR(254) NOT NULL,
  username           VARCHAR(32) NOT NULL,
  username_canonical VARCHAR(32) NOT NULL,
  password_hash      VARCHAR(255) NOT NULL,
  created_at         DATETIME(3) NOT NULL,
  PRIMARY KEY (id),
  UNIQUE KEY users_email_canonical (email_canonical),
  UNIQUE KEY users_username_canonical (username_canonical)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin)sql";

constexpr std::string_view kCreateOutbox = R"sql(
CREATE TABLE IF NOT EXISTS outbox (
  seq           BIGINT NOT NULL AUTO_INCREMENT,
  event_id      VARCHAR(64) NOT NULL,
  event_type    VARCHAR(128) NOT NULL,
  aggregate_id  VARCHAR(64) NOT NULL,
  payload       MEDIUMTEXT NOT NULL,
  occurred_at   DATETIME(3) NOT NULL,
  attempts      INT NOT NULL DEFAULT 0,
  claimed_by    VARCHAR(128) NULL,
  claimed_until DATETIME(3) NULL,
  sent_at       DATETIME(3) NULL,
  PRIMARY KEY (seq),
  UNIQUE KEY outbox_event_id (event_id),
  KEY outbox_pending (sent_at, seq),
  KEY outbox_pending_by_aggregate (aggregate_id, sent_at, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin)sql";

constexpr std::string_view kCreateProcessedEvents = R"sql(
CREATE TABLE IF NOT EXISTS processed_events (
  consumer     VARBINARY(255) NOT NULL,
  event_id     VARBINARY(255) NOT NULL,
  processed_at DATETIME(3) NOT NULL,
  PRIMARY KEY (consumer, event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin)sql";

constexpr std::string_view kMigration1[] = {kCreateUsers, kCreateOutbox, kCreateProcessedEvents};

constexpr Migration kMigrations[] = {
    {1, "users, outbox, processed_events", kMigration1},
};

int read_version(Connection& c) {
  {
    auto q = c.query(kTableExists);
    q.execute({});
    if (!q.fetch() || q.int64(0) == 0) return 0;
  }
  auto q = c.query(kSelectVersion);
  q.execute({});
  q.fetch();
  return static_cast<int>(q.int64(0));
}

// Holds the migration lock for a scope. The server also releases it if the connection dies.
class MigrationLock {
 public:
  MigrationLock(Connection& c, std::chrono::seconds timeout) : c_(c) {
    auto q = c_.query(kGetLock);
    q.execute({std::int64_t{timeout.count()}});
    if (!q.fetch() || q.is_null(0))
      throw ports::BackendUnavailable("mysql: GET_LOCK failed for the migration lock");
    if (q.int64(0) != 1)
      throw ports::BackendUnavailable(
          fmt::format("mysql: another process held the migration lock for more than {} s", timeout.count()));
  }
  ~MigrationLock() {
    if (c_.broken()) return;
    try {
      auto q = c_.query(kReleaseLock);
      q.execute({});
      while (q.fetch()) {
      }
    } catch (...) {
      // The lock goes with the connection anyway.
    }
  }
  MigrationLock(const MigrationLock&) = delete;
  MigrationLock& operator=(const MigrationLock&) = delete;

 private:
  Connection& c_;
};

}  // namespace

std::span<const Migration> builtin_migrations() { return kMigrations; }

int schema_version(MysqlPool& pool) {
  return pool.read([](Connection& c) { return read_version(c); });
}

std::vector<AppliedMigration> apply_migrations(MysqlPool& pool, std::span<const Migration> migrations) {
  const auto plan = ports::SchemaPlan::of(migrations);
  plan.check_numbering("mysql");
  std::vector<AppliedMigration> applied;
  auto lease = pool.acquire();
  Connection& c = lease.connection();
  MigrationLock lock(c, pool.options().migration_lock_timeout);
  c.query(kCreateMigrationsTable).execute({});
  int current = read_version(c);
  plan.refuse_newer(current);
  for (const auto& m : migrations) {
    if (!plan.pending(m.version, current)) continue;
    for (auto statement : m.statements) c.query(statement).execute({});
    c.query(kInsertMigration).execute({std::int64_t{m.version}, m.name});
    applied.push_back({m.version, std::string(m.name)});
  }
  return applied;
}

void require_current_schema(MysqlPool& pool, std::span<const Migration> migrations) {
  ports::SchemaPlan::of(migrations).require_current(schema_version(pool));
}

}  // namespace registrar::adapters::mysql
