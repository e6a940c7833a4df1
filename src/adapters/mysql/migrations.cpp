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

// Migration 2: a sign-up's write in one round trip. START TRANSACTION, two INSERTs and COMMIT sent
// one by one cost four round trips and as many statement dispatches in the server, which on a
// server sharing the host's cores is a large part of a sign-up's CPU besides the hash. The
// procedure runs the same transaction server-side:
//  - both rows or neither: any error rolls the transaction back, then RESIGNAL passes the error on
//    unchanged (ER_DUP_ENTRY with its key name, strict-mode refusals, lock conflicts), so the
//    adapter maps errors as it did for the separate statements;
//  - the parameters have the columns' types, so strict mode refuses an over-long value at the call
//    rather than truncating it; a procedure keeps the sql_mode of the session that created it,
//    which is the adapter's strict session (connection.cpp);
//  - SQL SECURITY INVOKER: it runs with the caller's privileges (INSERT on both tables) and does
//    not depend on the account that ran the migration;
//  - values stay parameters all the way (never spliced into SQL text).
// MySQL has no CREATE OR REPLACE PROCEDURE: DROP IF EXISTS + CREATE makes it re-runnable.
constexpr std::string_view kDropCreateUser = "DROP PROCEDURE IF EXISTS registrar_create_user";
constexpr std::string_view kCreateCreateUser = R"sql(
CREATE PROCEDURE registrar_create_user(
  IN p_id                 CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email              VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email_canonical    VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_username           VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_username_canonical VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_password_hash      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_created_at         DATETIME(3),
  IN p_event_id           VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_event_type         VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_aggregate_id       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_payload            MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_occurred_at        DATETIME(3),
  IN p_attempts           INT)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    ROLLBACK;
    RESIGNAL;
  END;
  START TRANSACTION;
  INSERT INTO users (id, email, email_canonical, username, username_canonical, password_hash, created_at)
    VALUES (p_id, p_email, p_email_canonical, p_username, p_username_canonical, p_password_hash, p_created_at);
  INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts)
    VALUES (p_event_id, p_event_type, p_aggregate_id, p_payload, p_occurred_at, p_attempts);
  COMMIT;
END)sql";

constexpr std::string_view kMigration2[] = {kDropCreateUser, kCreateCreateUser};

// Migration 3: the account model of issue 12, keeping every existing row (as SQLite's v3).
//  - email/email_canonical become NULLable (a phone account has none); the UNIQUE key stays: InnoDB
//    admits any number of NULLs in a UNIQUE index (NULLs are distinct), like SQLite.
//  - email_verified_at (NULL until verified), image (URL, NULL = none).
//  - the phone: phone_key_id + phone_ciphertext (nonce ‖ ciphertext ‖ tag; VARBINARY: a phone's
//    is 40 to 55 bytes, kept in the row rather than off-page like a BLOB) and phone_index, its
//    keyed blind index (64 hex digits), UNIQUE. users_phone_key_id serves `keys status/rotate`.
//  - verification_id UNIQUE: one verification session, one account.
//  - CHECK constraints (enforced by MariaDB ≥ 10.2 and MySQL ≥ 8.0.16): a row has an email or a
//    phone; the email pair and the phone parts are each all set or all NULL.
// MySQL commits DDL implicitly and has no ADD COLUMN IF NOT EXISTS (MariaDB has), so to stay
// re-runnable after a crash between the change and its record, the change is ONE ALTER TABLE
// (atomic in InnoDB: all of it or nothing) run by a throw-away procedure only if the columns are
// not there yet.
constexpr std::string_view kDropMigration3 = "DROP PROCEDURE IF EXISTS registrar_migration_3";
constexpr std::string_view kCreateMigration3 = R"sql(
CREATE PROCEDURE registrar_migration_3()
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.COLUMNS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'users' AND COLUMN_NAME = 'phone_index') THEN
    ALTER TABLE users
      MODIFY email VARCHAR(254) NULL,
      MODIFY email_canonical VARCHAR(254) NULL,
      ADD COLUMN email_verified_at DATETIME(3) NULL AFTER email_canonical,
      ADD COLUMN phone_key_id VARCHAR(64) NULL AFTER password_hash,
      ADD COLUMN phone_ciphertext VARBINARY(255) NULL AFTER phone_key_id,
      ADD COLUMN phone_index CHAR(64) NULL AFTER phone_ciphertext,
      ADD COLUMN image VARCHAR(2048) NULL AFTER phone_index,
      ADD COLUMN verification_id VARCHAR(128) NULL AFTER image,
      ADD UNIQUE KEY users_phone_index (phone_index),
      ADD UNIQUE KEY users_verification_id (verification_id),
      ADD KEY users_phone_key_id (phone_key_id),
      ADD CONSTRAINT users_email_pair CHECK ((email IS NULL) = (email_canonical IS NULL)),
      ADD CONSTRAINT users_phone_parts
        CHECK ((phone_key_id IS NULL) = (phone_index IS NULL) AND (phone_ciphertext IS NULL) = (phone_index IS NULL)),
      ADD CONSTRAINT users_has_contact CHECK (email_canonical IS NOT NULL OR phone_index IS NOT NULL);
  END IF;
END)sql";
constexpr std::string_view kCallMigration3 = "CALL registrar_migration_3()";

// The sign-up procedure of migration 2, with the new columns (same reasons as there).
constexpr std::string_view kCreateCreateUser3 = R"sql(
CREATE PROCEDURE registrar_create_user(
  IN p_id                 CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email              VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email_canonical    VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email_verified_at  DATETIME(3),
  IN p_username           VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_username_canonical VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_password_hash      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_phone_key_id       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_phone_ciphertext   VARBINARY(255),
  IN p_phone_index        CHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_image              VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_verification_id    VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_created_at         DATETIME(3),
  IN p_event_id           VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_event_type         VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_aggregate_id       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_payload            MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_occurred_at        DATETIME(3),
  IN p_attempts           INT)
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    ROLLBACK;
    RESIGNAL;
  END;
  START TRANSACTION;
  INSERT INTO users (id, email, email_canonical, email_verified_at, username, username_canonical, password_hash,
                     phone_key_id, phone_ciphertext, phone_index, image, verification_id, created_at)
    VALUES (p_id, p_email, p_email_canonical, p_email_verified_at, p_username, p_username_canonical, p_password_hash,
            p_phone_key_id, p_phone_ciphertext, p_phone_index, p_image, p_verification_id, p_created_at);
  INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts)
    VALUES (p_event_id, p_event_type, p_aggregate_id, p_payload, p_occurred_at, p_attempts);
  COMMIT;
END)sql";

constexpr std::string_view kMigration3[] = {kDropMigration3, kCreateMigration3, kCallMigration3, kDropMigration3,
                                            kDropCreateUser, kCreateCreateUser3};

// Migration 4: Idempotency-Keys of sign-ups (draft-ietf-httpapi-idempotency-key-header), as
// SQLite's v4: keyed hashes of the key and of the request's fields that are not secret (never the
// password), the account's id, and when the record expires (DATETIME(3) UTC; a record past it is
// ignored, replaced when its key is used again, and swept by later keyed sign-ups through
// idempotency_keys_expires_at). The key's PRIMARY KEY is what refuses a second request with it.
constexpr std::string_view kCreateIdempotencyKeys = R"sql(
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key_hash    VARCHAR(128) NOT NULL,
  fingerprint VARCHAR(128) NOT NULL,
  user_id     CHAR(36) NOT NULL,
  expires_at  DATETIME(3) NOT NULL,
  PRIMARY KEY (key_hash),
  KEY idempotency_keys_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin)sql";

// A keyed sign-up in one round trip, for the reasons of migration 2: the key's record with the
// user and its event, one transaction, all or nothing (RESIGNAL passes ER_DUP_ENTRY on with its
// key name: PRIMARY for the key, which is inserted first, so a key already recorded is told as
// such even when its account also holds this email and username). Before inserting, the key's
// own expired record is deleted (it may be reused), and up to 8 other expired records (the sweep
// that bounds the table; READ COMMITTED, so it locks only the rows it deletes).
constexpr std::string_view kDropCreateUserWithKey = "DROP PROCEDURE IF EXISTS registrar_create_user_with_key";
constexpr std::string_view kCreateCreateUserWithKey = R"sql(
CREATE PROCEDURE registrar_create_user_with_key(
  IN p_id                 CHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email              VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email_canonical    VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_email_verified_at  DATETIME(3),
  IN p_username           VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_username_canonical VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_password_hash      VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_phone_key_id       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_phone_ciphertext   VARBINARY(255),
  IN p_phone_index        CHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_image              VARCHAR(2048) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_verification_id    VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_created_at         DATETIME(3),
  IN p_event_id           VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_event_type         VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_aggregate_id       VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_payload            MEDIUMTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_occurred_at        DATETIME(3),
  IN p_attempts           INT,
  IN p_key_hash           VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_fingerprint        VARCHAR(128) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  IN p_key_expires_at     DATETIME(3),
  IN p_now                DATETIME(3))
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  DECLARE EXIT HANDLER FOR SQLEXCEPTION
  BEGIN
    ROLLBACK;
    RESIGNAL;
  END;
  START TRANSACTION;
  DELETE FROM idempotency_keys WHERE key_hash = p_key_hash AND expires_at <= p_now;
  DELETE FROM idempotency_keys WHERE expires_at <= p_now ORDER BY expires_at LIMIT 8;
  INSERT INTO idempotency_keys (key_hash, fingerprint, user_id, expires_at)
    VALUES (p_key_hash, p_fingerprint, p_id, p_key_expires_at);
  INSERT INTO users (id, email, email_canonical, email_verified_at, username, username_canonical, password_hash,
                     phone_key_id, phone_ciphertext, phone_index, image, verification_id, created_at)
    VALUES (p_id, p_email, p_email_canonical, p_email_verified_at, p_username, p_username_canonical, p_password_hash,
            p_phone_key_id, p_phone_ciphertext, p_phone_index, p_image, p_verification_id, p_created_at);
  INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts)
    VALUES (p_event_id, p_event_type, p_aggregate_id, p_payload, p_occurred_at, p_attempts);
  COMMIT;
END)sql";

constexpr std::string_view kMigration4[] = {kCreateIdempotencyKeys, kDropCreateUserWithKey, kCreateCreateUserWithKey};

// Migration 5: the retention sweep's index (as SQLite's v5). processed_events_processed_at lets the sweep read its oldest
// records without scanning the table. (The outbox needs none: outbox_pending (sent_at, seq) already
// orders the sent rows by sent time.) Re-runnable as migration 3 is: one ALTER TABLE, run by a
// throw-away procedure only if the index is not there yet.
constexpr std::string_view kDropMigration5 = "DROP PROCEDURE IF EXISTS registrar_migration_5";
constexpr std::string_view kCreateMigration5 = R"sql(
CREATE PROCEDURE registrar_migration_5()
MODIFIES SQL DATA
SQL SECURITY INVOKER
BEGIN
  IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'processed_events'
                   AND INDEX_NAME = 'processed_events_processed_at') THEN
    ALTER TABLE processed_events ADD KEY processed_events_processed_at (processed_at);
  END IF;
END)sql";
constexpr std::string_view kCallMigration5 = "CALL registrar_migration_5()";
constexpr std::string_view kMigration5[] = {kDropMigration5, kCreateMigration5, kCallMigration5, kDropMigration5};

constexpr Migration kMigrations[] = {
    {1, "users, outbox, processed_events", kMigration1},
    {2, "create_user in one round trip", kMigration2},
    {3, "accounts: optional email, sealed phone, image, verification id", kMigration3},
    {4, "idempotency keys of sign-ups", kMigration4},
    {5, "retention: sweep indexes", kMigration5},
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
  const auto plan = app::SchemaPlan::of(migrations);
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
    for (auto statement : m.statements) c.exec(statement);
    c.query(kInsertMigration).execute({std::int64_t{m.version}, m.name});
    applied.push_back({m.version, std::string(m.name)});
  }
  return applied;
}

}  // namespace registrar::adapters::mysql
