#include "adapters/sqlite/user_store.hpp"

#include "adapters/sqlite/time_columns.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::sqlite {

namespace {

constexpr std::string_view kInsertUser =
    "INSERT INTO users (id, email, email_canonical, email_verified_at, username, username_canonical, password_hash, "
    "phone_key_id, phone_ciphertext, phone_index, image, verification_id, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

constexpr std::string_view kInsertOutbox =
    "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

// Idempotency-Keys (migration 4). expires_at is Unix ms, compared in SQL. A key's expired record
// is replaced in the transaction that uses the key again; each keyed sign-up also removes up to
// kExpiredKeysPerSignUp other expired records (SQLite has no DELETE … LIMIT without a compile
// option: the rows are chosen by a sub-select on the expires_at index).
constexpr std::string_view kDeleteExpiredKey =
    "DELETE FROM idempotency_keys WHERE key_hash = ?1 AND expires_at <= ?2";
constexpr std::string_view kDeleteExpiredKeys =
    "DELETE FROM idempotency_keys WHERE key_hash IN "
    "(SELECT key_hash FROM idempotency_keys WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2)";
constexpr std::int64_t kExpiredKeysPerSignUp = 8;
constexpr std::string_view kInsertKey =
    "INSERT INTO idempotency_keys (key_hash, fingerprint, user_id, expires_at) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kSelectKey =
    "SELECT key_hash, fingerprint, user_id, expires_at FROM idempotency_keys WHERE key_hash = ?1 AND expires_at > ?2";
constexpr std::string_view kKeyConstraint = "idempotency_keys.key_hash";

// Email verification: only a row with an email not yet verified changes (changes() tells whether
// this statement verified it; the outbox row is written only then, in the same transaction).
constexpr std::string_view kMarkEmailVerified =
    "UPDATE users SET email_verified_at = ?2 WHERE id = ?1 AND email IS NOT NULL AND email_verified_at IS NULL";

// The columns of a domain::User, in the order read_user() expects.
#define REGISTRAR_USER_COLUMNS                                                                          \
  "SELECT id, email, email_verified_at, username, password_hash, phone_key_id, phone_ciphertext, phone_index, " \
  "image, verification_id, created_at FROM users "

constexpr std::string_view kSelectUserById = REGISTRAR_USER_COLUMNS "WHERE id = ?1";
constexpr std::string_view kSelectUserByEmail = REGISTRAR_USER_COLUMNS "WHERE email_canonical = ?1";
constexpr std::string_view kSelectUserByUsername = REGISTRAR_USER_COLUMNS "WHERE username_canonical = ?1";
constexpr std::string_view kSelectUserByPhoneIndex = REGISTRAR_USER_COLUMNS "WHERE phone_index = ?1";
constexpr std::string_view kSelectUserByVerificationId = REGISTRAR_USER_COLUMNS "WHERE verification_id = ?1";
#undef REGISTRAR_USER_COLUMNS

// A NULL key (no email, no phone given) matches nothing: `= NULL` is never true.
constexpr std::string_view kContactOrUsernameTaken =
    "SELECT EXISTS (SELECT 1 FROM users WHERE email_canonical = ?1) "
    "    OR EXISTS (SELECT 1 FROM users WHERE username_canonical = ?2) "
    "    OR EXISTS (SELECT 1 FROM users WHERE phone_index = ?3)";

// Key rotation: keyset paging by id (the primary key), so a row that cannot be re-sealed is
// passed over instead of being found again.
constexpr std::string_view kPhonesNotSealedUnder =
    "SELECT id, phone_key_id, phone_ciphertext FROM users "
    "WHERE phone_key_id IS NOT NULL AND phone_key_id <> ?1 AND id > ?2 ORDER BY id LIMIT ?3";

// Compare-and-set: only where the row still holds what was read (key id and ciphertext).
constexpr std::string_view kResealPhone =
    "UPDATE users SET phone_key_id = ?1, phone_ciphertext = ?2 "
    "WHERE id = ?3 AND phone_key_id = ?4 AND phone_ciphertext = ?5";

constexpr std::string_view kPhoneKeyCounts =
    "SELECT phone_key_id, count(*) FROM users WHERE phone_key_id IS NOT NULL GROUP BY phone_key_id ORDER BY phone_key_id";

constexpr std::string_view kPing = "SELECT 1";

// SQLite reports a UNIQUE violation as "UNIQUE constraint failed: <table>.<column>".
constexpr std::string_view kEmailConstraint = "users.email_canonical";
constexpr std::string_view kUsernameConstraint = "users.username_canonical";
constexpr std::string_view kPhoneConstraint = "users.phone_index";
constexpr std::string_view kVerificationConstraint = "users.verification_id";

domain::User read_user(const Query& q) {
  domain::User u;
  u.id = q.text(0);
  u.email = q.optional_text(1);
  if (!q.is_null(2)) u.email_verified_at = timestamp_column(q, 2);
  u.username = q.text(3);
  u.password_hash = q.text(4);
  if (!q.is_null(7)) u.phone = domain::StoredPhone{{q.text(5), q.blob(6)}, q.text(7)};
  u.image = q.optional_text(8);
  u.verification_id = q.optional_text(9);
  u.created_at = timestamp_column(q, 10);
  return u;
}

// The outbox row of `event`, in the caller's transaction (a sign-up, an email verification).
void insert_outbox(Connection& c, const domain::EventEnvelope& event) {
  c.query(kInsertOutbox)
      .bind(1, event.id)
      .bind(2, event.type)
      .bind(3, event.aggregate_id)
      .bind(4, event.payload)
      .bind(5, domain::to_iso8601(event.occurred_at))
      .bind(6, std::int64_t{event.attempts})
      .run();
}

}  // namespace

ports::CreateUserOutcome SqliteUserStore::create_user(const domain::User& user,
                                                      std::optional<std::string_view> email_canonical,
                                                      std::string_view username_canonical,
                                                      const domain::EventEnvelope& event) {
  return create(user, email_canonical, username_canonical, event, nullptr, {});
}

ports::CreateUserOutcome SqliteUserStore::create_user_with_key(const domain::User& user,
                                                               std::optional<std::string_view> email_canonical,
                                                               std::string_view username_canonical,
                                                               const domain::EventEnvelope& event,
                                                               const ports::IdempotencyKeyRecord& key,
                                                               domain::Timestamp now) {
  return create(user, email_canonical, username_canonical, event, &key, now);
}

std::optional<ports::IdempotencyKeyRecord> SqliteUserStore::find_idempotency_key(std::string_view key_hash,
                                                                                 domain::Timestamp now) {
  return db_.read([&](Connection& c) -> std::optional<ports::IdempotencyKeyRecord> {
    auto q = c.query(kSelectKey);
    q.bind(1, key_hash).bind(2, unix_ms(now));
    if (!q.step()) return std::nullopt;
    return ports::IdempotencyKeyRecord{q.text(0), q.text(1), q.text(2),
                                       domain::Timestamp{std::chrono::milliseconds{q.int64(3)}}};
  });
}

ports::CreateUserOutcome SqliteUserStore::create(const domain::User& user,
                                                 std::optional<std::string_view> email_canonical,
                                                 std::string_view username_canonical,
                                                 const domain::EventEnvelope& event,
                                                 const ports::IdempotencyKeyRecord* key, domain::Timestamp now) {
  try {
    // One transaction for both rows (the transactional outbox): the event exists if and only if
    // the user does; and the Idempotency-Key, when there is one, with them. Any failure rolls all
    // back. The key goes first, so that a key already recorded is told as such (key_taken) even
    // when its account also holds this email and username (a retry of a committed request).
    db_.write([&](Connection& c) {
      if (key) {
        c.query(kDeleteExpiredKey).bind(1, key->key_hash).bind(2, unix_ms(now)).run();
        c.query(kDeleteExpiredKeys).bind(1, unix_ms(now)).bind(2, kExpiredKeysPerSignUp).run();
        c.query(kInsertKey)
            .bind(1, key->key_hash)
            .bind(2, key->fingerprint)
            .bind(3, key->user_id)
            .bind(4, unix_ms(key->expires_at))
            .run();
      }
      auto insert = c.query(kInsertUser);
      insert.bind(1, user.id).bind_optional(2, user.email);
      if (email_canonical) insert.bind(3, *email_canonical);
      else insert.bind_null(3);
      if (user.email_verified_at) insert.bind(4, domain::to_iso8601(*user.email_verified_at));
      else insert.bind_null(4);
      insert.bind(5, user.username).bind(6, username_canonical).bind(7, user.password_hash);
      if (user.phone) {
        insert.bind(8, user.phone->sealed.key_id).bind_blob(9, user.phone->sealed.ciphertext).bind(10, user.phone->blind_index);
      } else {
        insert.bind_null(8).bind_null(9).bind_null(10);
      }
      insert.bind_optional(11, user.image).bind_optional(12, user.verification_id);
      insert.bind(13, domain::to_iso8601(user.created_at)).run();
      insert_outbox(c, event);
    });
    return ports::CreateUserOutcome::created;
  } catch (const SqliteError& e) {
    // The unique indexes are the real guard against two concurrent sign-ups with one email: the
    // loser's transaction has been rolled back by now; tell which value was taken. SQLite names
    // the first constraint it finds violated; a replay (same verification id) is told as such
    // whatever else it collides with, since its username and phone are the first run's too.
    // The key's PRIMARY KEY (a WITHOUT ROWID table reports it as SQLITE_CONSTRAINT_PRIMARYKEY).
    if ((e.code() == SQLITE_CONSTRAINT_PRIMARYKEY || e.code() == SQLITE_CONSTRAINT_UNIQUE) && key &&
        std::string_view(e.what()).find(kKeyConstraint) != std::string_view::npos)
      return ports::CreateUserOutcome::key_taken;
    if (e.code() == SQLITE_CONSTRAINT_UNIQUE) {
      std::string_view what = e.what();
      if (user.verification_id && find_one(kSelectUserByVerificationId, *user.verification_id))
        return ports::CreateUserOutcome::verification_taken;
      if (what.find(kEmailConstraint) != std::string_view::npos) return ports::CreateUserOutcome::email_taken;
      if (what.find(kUsernameConstraint) != std::string_view::npos) return ports::CreateUserOutcome::username_taken;
      if (what.find(kPhoneConstraint) != std::string_view::npos) return ports::CreateUserOutcome::phone_taken;
      if (what.find(kVerificationConstraint) != std::string_view::npos)
        return ports::CreateUserOutcome::verification_taken;
    }
    // Anything else (a duplicate user or event id, a row without contact) is a bug, not an
    // expected outcome.
    throw;
  }
}

bool SqliteUserStore::mark_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                                          const domain::EventEnvelope& event) {
  // One transaction: the event exists if and only if this call set the verification time.
  return db_.write([&](Connection& c) {
    c.query(kMarkEmailVerified).bind(1, user_id).bind(2, domain::to_iso8601(verified_at)).run();
    if (c.changes() != 1) return false;
    insert_outbox(c, event);
    return true;
  });
}

std::optional<domain::User> SqliteUserStore::find_one(std::string_view sql, std::string_view key) {
  return db_.read([&](Connection& c) -> std::optional<domain::User> {
    auto q = c.query(sql);
    q.bind(1, key);
    if (!q.step()) return std::nullopt;
    return read_user(q);
  });
}

std::optional<domain::User> SqliteUserStore::find_by_id(std::string_view id) { return find_one(kSelectUserById, id); }

std::optional<domain::User> SqliteUserStore::find_by_email(std::string_view email_canonical) {
  return find_one(kSelectUserByEmail, email_canonical);
}

std::optional<domain::User> SqliteUserStore::find_by_username(std::string_view username_canonical) {
  return find_one(kSelectUserByUsername, username_canonical);
}

std::optional<domain::User> SqliteUserStore::find_by_phone_index(std::string_view phone_index) {
  return find_one(kSelectUserByPhoneIndex, phone_index);
}

std::optional<domain::User> SqliteUserStore::find_by_verification_id(std::string_view verification_id) {
  return find_one(kSelectUserByVerificationId, verification_id);
}

bool SqliteUserStore::contact_or_username_taken(std::optional<std::string_view> email_canonical,
                                                std::string_view username_canonical,
                                                std::optional<std::string_view> phone_index) {
  return db_.read([&](Connection& c) {
    auto q = c.query(kContactOrUsernameTaken);
    if (email_canonical) q.bind(1, *email_canonical);
    else q.bind_null(1);
    q.bind(2, username_canonical);
    if (phone_index) q.bind(3, *phone_index);
    else q.bind_null(3);
    q.step();
    return q.int64(0) != 0;
  });
}

std::vector<ports::SealedPhoneRow> SqliteUserStore::phones_not_sealed_under(std::string_view key_id,
                                                                            std::string_view after_user_id,
                                                                            std::size_t limit) {
  return db_.read([&](Connection& c) {
    auto q = c.query(kPhonesNotSealedUnder);
    q.bind(1, key_id).bind(2, after_user_id).bind(3, static_cast<std::int64_t>(limit));
    std::vector<ports::SealedPhoneRow> rows;
    while (q.step()) rows.push_back({q.text(0), {q.text(1), q.blob(2)}});
    return rows;
  });
}

std::size_t SqliteUserStore::reseal_phones(const std::vector<ports::Reseal>& batch) {
  return db_.write([&](Connection& c) {
    std::size_t changed = 0;
    for (const auto& r : batch) {
      c.query(kResealPhone)
          .bind(1, r.to.key_id)
          .bind_blob(2, r.to.ciphertext)
          .bind(3, r.user_id)
          .bind(4, r.from.key_id)
          .bind_blob(5, r.from.ciphertext)
          .run();
      changed += static_cast<std::size_t>(c.changes());
    }
    return changed;
  });
}

std::vector<std::pair<std::string, std::size_t>> SqliteUserStore::phone_key_counts() {
  return db_.read([&](Connection& c) {
    auto q = c.query(kPhoneKeyCounts);
    std::vector<std::pair<std::string, std::size_t>> out;
    while (q.step()) out.emplace_back(q.text(0), static_cast<std::size_t>(q.int64(1)));
    return out;
  });
}

void SqliteUserStore::ping() {
  try {
    db_.read([](Connection& c) {
      auto q = c.query(kPing);
      if (!q.step() || q.int64(0) != 1) throw SqliteError(SQLITE_ERROR, "sqlite: ping returned no row");
    });
  } catch (const SqliteError& e) {
    // For readiness any failure means "not usable" (BackendUnavailable passes through as is).
    throw ports::BackendUnavailable(e.what());
  }
}

}  // namespace registrar::adapters::sqlite
