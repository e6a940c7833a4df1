#include "adapters/mysql/user_store.hpp"

namespace registrar::adapters::mysql {

namespace {

// Both rows in one transaction, in one round trip (the procedure of migration 3).
constexpr std::string_view kCreateUser =
    "CALL registrar_create_user(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

// A keyed sign-up: the procedure of migration 4 (the key's record first, then as kCreateUser).
constexpr std::string_view kCreateUserWithKey =
    "CALL registrar_create_user_with_key(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
constexpr std::string_view kSelectKey =
    "SELECT key_hash, fingerprint, user_id, expires_at FROM idempotency_keys WHERE key_hash = ? AND expires_at > ?";
// ER_DUP_ENTRY's name for a PRIMARY KEY. Of the keys a keyed sign-up inserts, only the key record's
// is a client's value; users.id is ours (a repeat, recognised before this) and outbox.seq is
// generated.
constexpr std::string_view kPrimaryKey = "PRIMARY";

// Email verification: only a row with an email not yet verified changes (affected rows tell
// whether this statement verified it; the outbox row is written only then, in the same transaction).
constexpr std::string_view kMarkEmailVerified =
    "UPDATE users SET email_verified_at = ? WHERE id = ? AND email IS NOT NULL AND email_verified_at IS NULL";
constexpr std::string_view kInsertOutbox =
    "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts) VALUES (?, ?, ?, ?, ?, ?)";

constexpr std::string_view kUserIdExists = "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)";
constexpr std::string_view kVerificationIdExists =
    "SELECT verification_id FROM users WHERE verification_id = ?";

// utf8mb4_bin compares like SQLite (bytes) except that it ignores trailing spaces ('a' = 'a ').
// So each lookup also returns the key column as stored (the last column, kKeyColumn), and the
// adapter keeps the row only if it equals the key exactly: a key with a trailing space finds
// nothing, as in SQLite. (Stored keys never end with a space; the index still does the work.)
#define REGISTRAR_USER_COLUMNS                                                                          \
  "SELECT id, email, email_verified_at, username, password_hash, phone_key_id, phone_ciphertext, phone_index, " \
  "image, verification_id, created_at, "
constexpr int kKeyColumn = 11;

constexpr std::string_view kSelectUserById = REGISTRAR_USER_COLUMNS "id FROM users WHERE id = ?";
constexpr std::string_view kSelectUserByEmail =
    REGISTRAR_USER_COLUMNS "email_canonical FROM users WHERE email_canonical = ?";
constexpr std::string_view kSelectUserByUsername =
    REGISTRAR_USER_COLUMNS "username_canonical FROM users WHERE username_canonical = ?";
constexpr std::string_view kSelectUserByPhoneIndex = REGISTRAR_USER_COLUMNS "phone_index FROM users WHERE phone_index = ?";
constexpr std::string_view kSelectUserByVerificationId =
    REGISTRAR_USER_COLUMNS "verification_id FROM users WHERE verification_id = ?";
#undef REGISTRAR_USER_COLUMNS

// The stored keys matching the given ones (NULL when none, and for a NULL key: `= NULL` is never
// true), compared exactly by the adapter.
constexpr std::string_view kContactOrUsernameTaken =
    "SELECT (SELECT email_canonical FROM users WHERE email_canonical = ?), "
    "       (SELECT username_canonical FROM users WHERE username_canonical = ?), "
    "       (SELECT phone_index FROM users WHERE phone_index = ?)";

// Key rotation: keyset paging by id (the primary key), so a row that cannot be re-sealed is
// passed over instead of being found again.
constexpr std::string_view kPhonesNotSealedUnder =
    "SELECT id, phone_key_id, phone_ciphertext FROM users "
    "WHERE phone_key_id IS NOT NULL AND phone_key_id <> ? AND id > ? ORDER BY id LIMIT ?";

// Compare-and-set: only where the row still holds what was read (key id and ciphertext; binary
// comparison for the ciphertext, VARBINARY).
constexpr std::string_view kResealPhone =
    "UPDATE users SET phone_key_id = ?, phone_ciphertext = ? "
    "WHERE id = ? AND phone_key_id = ? AND phone_ciphertext = ?";

constexpr std::string_view kPhoneKeyCounts =
    "SELECT phone_key_id, CAST(COUNT(*) AS SIGNED) FROM users WHERE phone_key_id IS NOT NULL "
    "GROUP BY phone_key_id ORDER BY phone_key_id";

bool user_id_exists(Connection& c, std::string_view id) {
  auto q = c.query(kUserIdExists);
  q.execute({id});
  return q.fetch() && q.int64(0) != 0;
}

// The UNIQUE keys of migrations 1 and 3, as ER_DUP_ENTRY names them.
constexpr std::string_view kEmailKey = "users_email_canonical";
constexpr std::string_view kUsernameKey = "users_username_canonical";
constexpr std::string_view kPhoneKey = "users_phone_index";
constexpr std::string_view kVerificationKey = "users_verification_id";

Param optional(const std::optional<std::string>& v) {
  if (v) return std::string_view(*v);
  return nullptr;
}

}  // namespace

ports::CreateUserOutcome MysqlUserStore::create_user(const domain::User& user,
                                                     std::optional<std::string_view> email_canonical,
                                                     std::string_view username_canonical,
                                                     const domain::EventEnvelope& event) {
  return create(user, email_canonical, username_canonical, event, nullptr, {});
}

ports::CreateUserOutcome MysqlUserStore::create_user_with_key(const domain::User& user,
                                                              std::optional<std::string_view> email_canonical,
                                                              std::string_view username_canonical,
                                                              const domain::EventEnvelope& event,
                                                              const ports::IdempotencyKeyRecord& key,
                                                              domain::Timestamp now) {
  return create(user, email_canonical, username_canonical, event, &key, now);
}

std::optional<ports::IdempotencyKeyRecord> MysqlUserStore::find_idempotency_key(std::string_view key_hash,
                                                                                domain::Timestamp now) {
  return pool_.read([&](Connection& c) -> std::optional<ports::IdempotencyKeyRecord> {
    auto q = c.query(kSelectKey);
    q.execute({key_hash, now});
    if (!q.fetch() || q.text(0) != key_hash) return std::nullopt;
    return ports::IdempotencyKeyRecord{q.text(0), q.text(1), q.text(2), q.timestamp(3)};
  });
}

ports::CreateUserOutcome MysqlUserStore::create(const domain::User& user,
                                                std::optional<std::string_view> email_canonical,
                                                std::string_view username_canonical,
                                                const domain::EventEnvelope& event,
                                                const ports::IdempotencyKeyRecord* key, domain::Timestamp now) {
  try {
    // One transaction for both rows (the transactional outbox): the event exists if and only if
    // the user does. Any failure rolls both back.
    pool_.atomic([&](Connection& c, bool repeat) {
      try {
        const Param params[] = {
            user.id,
            optional(user.email),
            email_canonical ? Param(*email_canonical) : Param(nullptr),
            user.email_verified_at ? Param(*user.email_verified_at) : Param(nullptr),
            user.username,
            username_canonical,
            user.password_hash,
            user.phone ? Param(std::string_view(user.phone->sealed.key_id)) : Param(nullptr),
            user.phone ? Param(Bytes{user.phone->sealed.ciphertext}) : Param(nullptr),
            user.phone ? Param(std::string_view(user.phone->blind_index)) : Param(nullptr),
            optional(user.image),
            optional(user.verification_id),
            user.created_at,
            event.id,
            event.type,
            event.aggregate_id,
            event.payload,
            event.occurred_at,
            std::int64_t{event.attempts},
            key ? Param(std::string_view(key->key_hash)) : Param(nullptr),
            key ? Param(std::string_view(key->fingerprint)) : Param(nullptr),
            key ? Param(key->expires_at) : Param(nullptr),
            key ? Param(now) : Param(nullptr),
        };
        if (key) c.query(kCreateUserWithKey).execute(params);
        else c.query(kCreateUser).execute(std::span<const Param>(params).first(19));
      } catch (const MysqlError& e) {
        // A repeat after a connection broke mid-call: if the first call was applied (only its
        // answer was lost), this one collides with its rows. The user's id is ours alone: if it is
        // there, this sign-up was created by the first call.
        if (repeat && e.is_duplicate_key() && user_id_exists(c, user.id)) return;
        throw;
      }
    });
    return ports::CreateUserOutcome::created;
  } catch (const MysqlError& e) {
    // The unique keys are the real guard against two concurrent sign-ups with one email: the
    // loser's transaction has been rolled back by now; tell which value was taken. InnoDB names
    // the first key it finds violated; a replay (same verification id) is told as such whatever
    // else it collides with, since its username and phone are the first run's too.
    if (e.is_duplicate_key()) {
      if (key && e.key() == kPrimaryKey) return ports::CreateUserOutcome::key_taken;
      if (user.verification_id && verification_id_exists(*user.verification_id))
        return ports::CreateUserOutcome::verification_taken;
      if (e.key() == kEmailKey) return ports::CreateUserOutcome::email_taken;
      if (e.key() == kUsernameKey) return ports::CreateUserOutcome::username_taken;
      if (e.key() == kPhoneKey) return ports::CreateUserOutcome::phone_taken;
      if (e.key() == kVerificationKey) return ports::CreateUserOutcome::verification_taken;
    }
    // Anything else (a duplicate user or event id, a row without contact) is a bug, not an
    // expected outcome.
    throw;
  }
}

bool MysqlUserStore::mark_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                                         const domain::EventEnvelope& event) {
  // One transaction: the event exists if and only if this call set the verification time. If the
  // connection breaks after COMMIT was sent, transact() reports BackendUnavailable (never applies
  // it twice); the client's retry then finds the address verified.
  return pool_.transact([&](Connection& c) {
    auto update = c.query(kMarkEmailVerified);
    update.execute({verified_at, user_id});
    if (update.affected_rows() != 1) return false;
    c.query(kInsertOutbox).execute({event.id, event.type, event.aggregate_id, event.payload, event.occurred_at,
                                    std::int64_t{event.attempts}});
    return true;
  });
}

bool MysqlUserStore::verification_id_exists(std::string_view verification_id) {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kVerificationIdExists);
    q.execute({verification_id});
    return q.fetch() && q.text(0) == verification_id;
  });
}

std::optional<domain::User> MysqlUserStore::find_one(std::string_view sql, std::string_view key) {
  return pool_.read([&](Connection& c) -> std::optional<domain::User> {
    auto q = c.query(sql);
    q.execute({key});
    if (!q.fetch() || q.text(kKeyColumn) != key) return std::nullopt;
    domain::User u;
    u.id = q.text(0);
    if (!q.is_null(1)) u.email = q.text(1);
    if (!q.is_null(2)) u.email_verified_at = q.timestamp(2);
    u.username = q.text(3);
    u.password_hash = q.text(4);
    if (!q.is_null(7)) u.phone = domain::StoredPhone{{q.text(5), q.text(6)}, q.text(7)};
    if (!q.is_null(8)) u.image = q.text(8);
    if (!q.is_null(9)) u.verification_id = q.text(9);
    u.created_at = q.timestamp(10);
    return u;
  });
}

std::optional<domain::User> MysqlUserStore::find_by_id(std::string_view id) { return find_one(kSelectUserById, id); }

std::optional<domain::User> MysqlUserStore::find_by_email(std::string_view email_canonical) {
  return find_one(kSelectUserByEmail, email_canonical);
}

std::optional<domain::User> MysqlUserStore::find_by_username(std::string_view username_canonical) {
  return find_one(kSelectUserByUsername, username_canonical);
}

std::optional<domain::User> MysqlUserStore::find_by_phone_index(std::string_view phone_index) {
  return find_one(kSelectUserByPhoneIndex, phone_index);
}

std::optional<domain::User> MysqlUserStore::find_by_verification_id(std::string_view verification_id) {
  return find_one(kSelectUserByVerificationId, verification_id);
}

bool MysqlUserStore::contact_or_username_taken(std::optional<std::string_view> email_canonical,
                                               std::string_view username_canonical,
                                               std::optional<std::string_view> phone_index) {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kContactOrUsernameTaken);
    q.execute({email_canonical ? Param(*email_canonical) : Param(nullptr), username_canonical,
               phone_index ? Param(*phone_index) : Param(nullptr)});
    if (!q.fetch()) return false;
    return (email_canonical && !q.is_null(0) && q.text(0) == *email_canonical) ||
           (!q.is_null(1) && q.text(1) == username_canonical) ||
           (phone_index && !q.is_null(2) && q.text(2) == *phone_index);
  });
}

std::vector<ports::SealedPhoneRow> MysqlUserStore::phones_not_sealed_under(std::string_view key_id,
                                                                           std::string_view after_user_id,
                                                                           std::size_t limit) {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kPhonesNotSealedUnder);
    q.execute({key_id, after_user_id, static_cast<std::int64_t>(limit)});
    std::vector<ports::SealedPhoneRow> rows;
    while (q.fetch()) rows.push_back({q.text(0), {q.text(1), q.text(2)}});
    return rows;
  });
}

std::size_t MysqlUserStore::reseal_phones(const std::vector<ports::Reseal>& batch) {
  return pool_.transact([&](Connection& c) {
    std::size_t changed = 0;
    for (const auto& r : batch) {
      auto q = c.query(kResealPhone);
      q.execute({std::string_view(r.to.key_id), Bytes{r.to.ciphertext}, std::string_view(r.user_id),
                 std::string_view(r.from.key_id), Bytes{r.from.ciphertext}});
      changed += static_cast<std::size_t>(q.affected_rows());
    }
    return changed;
  });
}

std::vector<std::pair<std::string, std::size_t>> MysqlUserStore::phone_key_counts() {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kPhoneKeyCounts);
    q.execute({});
    std::vector<std::pair<std::string, std::size_t>> out;
    while (q.fetch()) out.emplace_back(q.text(0), static_cast<std::size_t>(q.int64(1)));
    return out;
  });
}

void MysqlUserStore::ping() { pool_.ping(); }

}  // namespace registrar::adapters::mysql
