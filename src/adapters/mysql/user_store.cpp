#include "adapters/mysql/user_store.hpp"

namespace registrar::adapters::mysql {

namespace {

constexpr std::string_view kInsertUser =
    "INSERT INTO users (id, email, email_canonical, username, username_canonical, password_hash, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)";

constexpr std::string_view kInsertOutbox =
    "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts) "
    "VALUES (?, ?, ?, ?, ?, ?)";

// utf8mb4_bin compares like SQLite (bytes) except that it ignores trailing spaces ('a' = 'a ').
// So each lookup also returns the key column as stored (the last column), and the adapter keeps
// the row only if it equals the key exactly: a key with a trailing space finds nothing, as in
// SQLite. (Stored keys never end with a space; the index still does the work.)
constexpr std::string_view kSelectUserById =
    "SELECT id, email, username, password_hash, created_at, id FROM users WHERE id = ?";
constexpr std::string_view kSelectUserByEmail =
    "SELECT id, email, username, password_hash, created_at, email_canonical FROM users WHERE email_canonical = ?";
constexpr std::string_view kSelectUserByUsername =
    "SELECT id, email, username, password_hash, created_at, username_canonical FROM users "
    "WHERE username_canonical = ?";

// The stored canonical forms matching the keys (NULL when none), compared exactly by the adapter.
constexpr std::string_view kEmailOrUsernameTaken =
    "SELECT (SELECT email_canonical FROM users WHERE email_canonical = ?), "
    "       (SELECT username_canonical FROM users WHERE username_canonical = ?)";

// The UNIQUE keys of migration 1, as ER_DUP_ENTRY names them.
constexpr std::string_view kEmailKey = "users_email_canonical";
constexpr std::string_view kUsernameKey = "users_username_canonical";

}  // namespace

ports::CreateUserOutcome MysqlUserStore::create_user(const domain::User& user, std::string_view email_canonical,
                                                     std::string_view username_canonical,
                                                     const domain::EventEnvelope& event) {
  try {
    // One transaction for both rows (the transactional outbox): the event exists if and only if
    // the user does. Any failure rolls both back.
    pool_.transact([&](Connection& c) {
      c.query(kInsertUser)
          .execute({user.id, user.email, email_canonical, user.username, username_canonical, user.password_hash,
                    user.created_at});
      c.query(kInsertOutbox)
          .execute({event.id, event.type, event.aggregate_id, event.payload, event.occurred_at,
                    std::int64_t{event.attempts}});
    });
    return ports::CreateUserOutcome::created;
  } catch (const MysqlError& e) {
    // The unique keys are the real guard against two concurrent sign-ups with one email: the
    // loser's transaction has been rolled back by now; tell which value was taken.
    if (e.is_duplicate_key()) {
      if (e.key() == kEmailKey) return ports::CreateUserOutcome::email_taken;
      if (e.key() == kUsernameKey) return ports::CreateUserOutcome::username_taken;
    }
    // Anything else (a duplicate user or event id) is a bug, not an expected outcome.
    throw;
  }
}

std::optional<domain::User> MysqlUserStore::find_one(std::string_view sql, std::string_view key) {
  return pool_.read([&](Connection& c) -> std::optional<domain::User> {
    auto q = c.query(sql);
    q.execute({key});
    if (!q.fetch() || q.text(5) != key) return std::nullopt;
    domain::User u;
    u.id = q.text(0);
    u.email = q.text(1);
    u.username = q.text(2);
    u.password_hash = q.text(3);
    u.created_at = q.timestamp(4);
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

bool MysqlUserStore::email_or_username_taken(std::string_view email_canonical, std::string_view username_canonical) {
  return pool_.read([&](Connection& c) {
    auto q = c.query(kEmailOrUsernameTaken);
    q.execute({email_canonical, username_canonical});
    if (!q.fetch()) return false;
    return (!q.is_null(0) && q.text(0) == email_canonical) || (!q.is_null(1) && q.text(1) == username_canonical);
  });
}

void MysqlUserStore::ping() { pool_.ping(); }

}  // namespace registrar::adapters::mysql
