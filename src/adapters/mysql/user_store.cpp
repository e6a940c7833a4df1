#include "adapters/mysql/user_store.hpp"

namespace registrar::adapters::mysql {

namespace {

// Both rows in one transaction, in one round trip (the procedure of migration 2).
constexpr std::string_view kCreateUser = "CALL registrar_create_user(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

constexpr std::string_view kUserIdExists = "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?)";

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

bool user_id_exists(Connection& c, std::string_view id) {
  auto q = c.query(kUserIdExists);
  q.execute({id});
  return q.fetch() && q.int64(0) != 0;
}

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
    pool_.atomic([&](Connection& c, bool repeat) {
      try {
        c.query(kCreateUser)
            .execute({user.id, user.email, email_canonical, user.username, username_canonical, user.password_hash,
                      user.created_at, event.id, event.type, event.aggregate_id, event.payload, event.occurred_at,
                      std::int64_t{event.attempts}});
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
