#include "adapters/sqlite/user_store.hpp"

#include "adapters/sqlite/time_columns.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::sqlite {

namespace {

constexpr std::string_view kInsertUser =
    "INSERT INTO users (id, email, email_canonical, username, username_canonical, password_hash, created_at) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

constexpr std::string_view kInsertOutbox =
    "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, attempts) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

constexpr std::string_view kSelectUserById =
    "SELECT id, email, username, password_hash, created_at FROM users WHERE id = ?1";
constexpr std::string_view kSelectUserByEmail =
    "SELECT id, email, username, password_hash, created_at FROM users WHERE email_canonical = ?1";
constexpr std::string_view kSelectUserByUsername =
    "SELECT id, email, username, password_hash, created_at FROM users WHERE username_canonical = ?1";

constexpr std::string_view kEmailOrUsernameTaken =
    "SELECT EXISTS (SELECT 1 FROM users WHERE email_canonical = ?1) "
    "    OR EXISTS (SELECT 1 FROM users WHERE username_canonical = ?2)";

constexpr std::string_view kPing = "SELECT 1";

// SQLite reports a UNIQUE violation as "UNIQUE constraint failed: <table>.<column>".
constexpr std::string_view kEmailConstraint = "users.email_canonical";
constexpr std::string_view kUsernameConstraint = "users.username_canonical";

}  // namespace

ports::CreateUserOutcome SqliteUserStore::create_user(const domain::User& user, std::string_view email_canonical,
                                                      std::string_view username_canonical,
                                                      const domain::EventEnvelope& event) {
  try {
    // One transaction for both rows (the transactional outbox): the event exists if and only if
    // the user does. Any failure rolls both back.
    db_.write([&](Connection& c) {
      c.query(kInsertUser)
          .bind(1, user.id)
          .bind(2, user.email)
          .bind(3, email_canonical)
          .bind(4, user.username)
          .bind(5, username_canonical)
          .bind(6, user.password_hash)
          .bind(7, domain::to_iso8601(user.created_at))
          .run();
      c.query(kInsertOutbox)
          .bind(1, event.id)
          .bind(2, event.type)
          .bind(3, event.aggregate_id)
          .bind(4, event.payload)
          .bind(5, domain::to_iso8601(event.occurred_at))
          .bind(6, std::int64_t{event.attempts})
          .run();
    });
    return ports::CreateUserOutcome::created;
  } catch (const SqliteError& e) {
    // The unique indexes are the real guard against two concurrent sign-ups with one email: the
    // loser's transaction has been rolled back by now; tell which value was taken.
    if (e.code() == SQLITE_CONSTRAINT_UNIQUE) {
      std::string_view what = e.what();
      if (what.find(kEmailConstraint) != std::string_view::npos) return ports::CreateUserOutcome::email_taken;
      if (what.find(kUsernameConstraint) != std::string_view::npos) return ports::CreateUserOutcome::username_taken;
    }
    // Anything else (a duplicate user or event id) is a bug, not an expected outcome.
    throw;
  }
}

std::optional<domain::User> SqliteUserStore::find_one(std::string_view sql, std::string_view key) {
  return db_.read([&](Connection& c) -> std::optional<domain::User> {
    auto q = c.query(sql);
    q.bind(1, key);
    if (!q.step()) return std::nullopt;
    domain::User u;
    u.id = q.text(0);
    u.email = q.text(1);
    u.username = q.text(2);
    u.password_hash = q.text(3);
    u.created_at = timestamp_column(q, 4);
    return u;
  });
}

std::optional<domain::User> SqliteUserStore::find_by_id(std::string_view id) { return find_one(kSelectUserById, id); }

std::optional<domain::User> SqliteUserStore::find_by_email(std::string_view email_canonical) {
  return find_one(kSelectUserByEmail, email_canonical);
}

std::optional<domain::User> SqliteUserStore::find_by_username(std::string_view username_canonical) {
  return find_one(kSelectUserByUsername, username_canonical);
}

bool SqliteUserStore::email_or_username_taken(std::string_view email_canonical, std::string_view username_canonical) {
  return db_.read([&](Connection& c) {
    auto q = c.query(kEmailOrUsernameTaken);
    q.bind(1, email_canonical).bind(2, username_canonical);
    q.step();
    return q.int64(0) != 0;
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
