#include "adapters/sqlite/migrations.hpp"

namespace registrar::adapters::sqlite {

namespace {

constexpr const char* kCreateMigrationsTable = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INTEGER PRIMARY KEY,
  name       TEXT NOT NULL,
  applied_at TEXT NOT NULL
))sql";

constexpr std::string_view kSelectVersion = "SELECT coalesce(max(version), 0) FROM schema_migrations";

// applied_at in the same ISO 8601 form as the rest of the data (2025-10-19T16:37:15.123Z).
constexpr std::string_view kInsertMigration =
    "INSERT INTO schema_migrations (version, name, applied_at) "
    "VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";

constexpr std::string_view kTableExists =
    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'";

// Migration 1: users, the transactional outbox, and consumer deduplication.
//  - users: canonical (lower-cased) email/username carry the UNIQUE constraints, so uniqueness is
//    case-insensitive while the displayed values keep their case. created_at is ISO 8601 UTC ms.
//  - outbox: seq gives the global order (AUTOINCREMENT: never reused, even after deletes, so a
//    relay can never confuse an old row with a new one). A row is pending while sent_at IS NULL;
//    claimed_by/claimed_until (Unix ms) are the relay lease. The partial indexes only hold pending
//    rows, so they stay small however many sent rows accumulate.
//  - processed_events: one row per (consumer, event id) a consumer has applied.
constexpr std::string_view kMigration1 = R"sql(
CREATE TABLE users (
  id                 TEXT PRIMARY KEY NOT NULL,
  email              TEXT NOT NULL,
  email_canonical    TEXT NOT NULL UNIQUE,
  username           TEXT NOT NULL,
  username_canonical TEXT NOT NULL UNIQUE,
  password_hash      TEXT NOT NULL,
  created_at         TEXT NOT NULL
);
CREATE TABLE outbox (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  event_id      TEXT NOT NULL UNIQUE,
  event_type    TEXT NOT NULL,
  aggregate_id  TEXT NOT NULL,
  payload       TEXT NOT NULL,
  occurred_at   TEXT NOT NULL,
  attempts      INTEGER NOT NULL DEFAULT 0,
  claimed_by    TEXT,
  claimed_until INTEGER,
  sent_at       TEXT
);
CREATE INDEX outbox_pending ON outbox (seq) WHERE sent_at IS NULL;
CREATE INDEX outbox_pending_by_aggregate ON outbox (aggregate_id, seq) WHERE sent_at IS NULL;
CREATE TABLE processed_events (
  consumer     TEXT NOT NULL,
  event_id     TEXT NOT NULL,
  processed_at TEXT NOT NULL,
  PRIMARY KEY (consumer, event_id)
) WITHOUT ROWID;
)sql";

// Migration 2 is MySQL's stored procedure for a sign-up's write in one round trip
// (adapters/mysql/migrations.cpp). SQLite runs in-process, where a statement costs no round trip:
// nothing to change here, but the version is recorded so both backends number their schemas alike.
constexpr std::string_view kMigration2 = "";

// Migration 3: the account model of issue 12, keeping every existing row.
//  - email becomes optional (a phone account has none) and stays unique when present: a UNIQUE
//    column in SQLite admits any number of NULLs (NULLs are distinct), so the index is unchanged.
//  - email_verified_at (ISO 8601, NULL until verified), image (URL, NULL = none).
//  - the phone: phone_key_id + phone_ciphertext (nonce ‖ ciphertext ‖ tag, BLOB) under the PII
//    keyring, and phone_index, its keyed blind index (hex), UNIQUE: it carries uniqueness and
//    lookups; the three are all set or all NULL.
//  - verification_id: the verification session a phone account was created from, UNIQUE, so a
//    Create_User job run twice cannot make a second account.
//  - CHECK: a row has an email or a phone.
//  - users_phone_key_id serves `registrar keys status/rotate` (rows per key id).
// SQLite cannot drop NOT NULL or add a CHECK in place: the table is rebuilt (create the new one,
// copy, drop, rename: https://sqlite.org/lang_altertable.html#otheralter), inside the migration's
// transaction. Nothing references users (no foreign keys), and after the rename the constraint
// messages name "users.<column>" as before.
constexpr std::string_view kMigration3 = R"sql(
CREATE TABLE users_v3 (
  id                 TEXT PRIMARY KEY NOT NULL,
  email              TEXT,
  email_canonical    TEXT UNIQUE,
  email_verified_at  TEXT,
  username           TEXT NOT NULL,
  username_canonical TEXT NOT NULL UNIQUE,
  password_hash      TEXT NOT NULL,
  phone_key_id       TEXT,
  phone_ciphertext   BLOB,
  phone_index        TEXT UNIQUE,
  image              TEXT,
  verification_id    TEXT UNIQUE,
  created_at         TEXT NOT NULL,
  CHECK ((email IS NULL) = (email_canonical IS NULL)),
  CHECK ((phone_key_id IS NULL) = (phone_index IS NULL) AND (phone_ciphertext IS NULL) = (phone_index IS NULL)),
  CHECK (email_canonical IS NOT NULL OR phone_index IS NOT NULL)
);
INSERT INTO users_v3 (id, email, email_canonical, username, username_canonical, password_hash, created_at)
  SELECT id, email, email_canonical, username, username_canonical, password_hash, created_at FROM users;
DROP TABLE users;
ALTER TABLE users_v3 RENAME TO users;
CREATE INDEX users_phone_key_id ON users (phone_key_id) WHERE phone_key_id IS NOT NULL;
)sql";

// Migration 4: Idempotency-Keys of sign-ups (draft-ietf-httpapi-idempotency-key-header), each
// written in the transaction of the account it created (UserStore::create_user_with_key).
//  - key_hash, fingerprint: keyed hashes (BLAKE2b, hex) of the key and of the request's fields
//    that are not secret; neither the key nor any field is stored in clear, never the password.
//  - expires_at: Unix ms; a record past it is ignored and replaced, and swept by later sign-ups
//    through idempotency_keys_expires_at.
// No foreign key to users (the schema has none): the record is written with its user, and a
// replay whose user is gone is refused like a mismatch.
constexpr std::string_view kMigration4 = R"sql(
CREATE TABLE idempotency_keys (
  key_hash    TEXT PRIMARY KEY NOT NULL,
  fingerprint TEXT NOT NULL,
  user_id     TEXT NOT NULL,
  expires_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_expires_at ON idempotency_keys (expires_at);
)sql";

// Migration 5: indexes for the retention sweep (issue 14). Both only serve the sweep's "oldest
// first" scans, so a batch reads the rows it deletes and no others:
//  - outbox_sent_at: sent rows by sent time. Partial (sent rows only), so the relay's writes to
//    pending rows never touch it, and it holds only as many rows as the retention keeps.
//  - processed_events_processed_at: records by age.
constexpr std::string_view kMigration5 = R"sql(
CREATE INDEX outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX processed_events_processed_at ON processed_events (processed_at);
)sql";

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
    q.step();
    if (q.int64(0) == 0) return 0;
  }
  auto q = c.query(kSelectVersion);
  q.step();
  return static_cast<int>(q.int64(0));
}

}  // namespace

std::span<const Migration> builtin_migrations() { return kMigrations; }

int schema_version(SqliteDatabase& db) {
  return db.read([](Connection& c) { return read_version(c); });
}

std::vector<AppliedMigration> apply_migrations(SqliteDatabase& db, std::span<const Migration> migrations) {
  const auto plan = app::SchemaPlan::of(migrations);
  plan.check_numbering("sqlite");
  std::vector<AppliedMigration> applied;
  db.with_writer([&](Connection& c) {
    {
      Transaction tx(c);
      c.exec(kCreateMigrationsTable);
      tx.commit();
    }
    for (const auto& m : migrations) {
      // The version is re-read inside each IMMEDIATE transaction: another process may have
      // migrated in the meantime, and holding the write lock makes the check-then-apply atomic.
      Transaction tx(c);
      int current = read_version(c);
      plan.refuse_newer(current);
      if (!plan.pending(m.version, current)) continue;
      c.exec(std::string(m.sql).c_str());
      c.query(kInsertMigration).bind(1, std::int64_t{m.version}).bind(2, m.name).run();
      tx.commit();
      applied.push_back({m.version, std::string(m.name)});
    }
    // Also refuse when there was nothing to apply (empty list) but the database is ahead.
    plan.refuse_newer(read_version(c));
  });
  return applied;
}

bool ensure_incremental_vacuum(SqliteDatabase& db) {
  return db.with_writer([](Connection& c) {
    {
      auto q = c.query("PRAGMA auto_vacuum");
      if (q.step() && q.int64(0) == 2) return false;
    }
    // The mode is stored in the file's header. A file without tables yet takes it at once; on one
    // that has tables it takes effect only through VACUUM, which rebuilds the file (and cannot
    // run inside a transaction).
    auto mode = [&] {
      auto q = c.query("PRAGMA auto_vacuum");
      return q.step() ? q.int64(0) : -1;
    };
    c.exec("PRAGMA auto_vacuum = INCREMENTAL");
    if (mode() == 2) return false;
    c.exec("VACUUM");
    if (mode() != 2)
      throw SqliteError(SQLITE_ERROR, "sqlite: could not switch the database to auto_vacuum = INCREMENTAL");
    return true;
  });
}

}  // namespace registrar::adapters::sqlite
