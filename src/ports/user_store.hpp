#pragma once
#include <optional>
#include <string_view>
#include "domain/event.hpp"
#include "domain/user.hpp"

namespace registrar::ports {

enum class CreateUserOutcome { created, email_taken, username_taken };

// Storage of users and of the outbox they write to. Throws BackendUnavailable on infrastructure
// failure. Every adapter (SQLite, MySQL) passes the same contract tests.
class UserStore {
 public:
  virtual ~UserStore() = default;

  // Writes the user and its event into the outbox in ONE transaction: both or neither.
  // Uniqueness of email (canonical) and username (case-insensitive) is enforced by the database.
  virtual CreateUserOutcome create_user(const domain::User& user, std::string_view email_canonical,
                                        std::string_view username_canonical,
                                        const domain::EventEnvelope& event) = 0;

  virtual std::optional<domain::User> find_by_id(std::string_view id) = 0;
  virtual std::optional<domain::User> find_by_email(std::string_view email_canonical) = 0;
  virtual std::optional<domain::User> find_by_username(std::string_view username_canonical) = 0;
  // Cheap pre-check before spending an argon2 hash on a sign-up that would conflict anyway.
  virtual bool email_or_username_taken(std::string_view email_canonical,
                                       std::string_view username_canonical) = 0;

  // Throws BackendUnavailable if the database cannot be used (for /readyz).
  virtual void ping() = 0;
};

}  // namespace registrar::ports
