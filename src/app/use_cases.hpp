#pragma once
// The use cases of the sign-up API. They depend on ports only; no I/O of their own.
// All are synchronous: transports run them off their I/O threads where they block (hashing).
#include <string>
#include "domain/credentials.hpp"
#include "domain/errors.hpp"
#include "domain/expected.hpp"
#include "domain/user.hpp"
#include "ports/event_bus.hpp"
#include "ports/password_hasher.hpp"
#include "ports/system.hpp"
#include "ports/token_service.hpp"
#include "ports/user_store.hpp"

namespace registrar::app {

// Each use case is a small struct that names exactly the ports it needs (references, set by the
// composition root with designated initializers) and runs with operator(). They keep no state
// of their own, so one instance serves all the threads that run it.

struct RegisterCommand {
  std::string email, username, password;
};

struct AuthResult {
  ports::IssuedToken token;
  domain::User user;
};

// Validates, hashes the password, writes user + user.registered event in one transaction,
// wakes the outbox relay and issues an access token.
struct RegisterUser {
  ports::UserStore& users;
  ports::PasswordHasher& hasher;
  ports::TokenService& tokens;
  ports::Clock& clock;
  ports::IdGenerator& ids;
  ports::OutboxSignal& outbox_signal;
  domain::PasswordPolicy password_policy{};

  domain::Expected<AuthResult, domain::DomainError> operator()(const RegisterCommand& cmd) const;
};

struct LoginCommand {
  std::string login;  // an email or a username
  std::string password;
};

// One answer (invalid_credentials) for every failure, and the same argon2 work whether or not
// the user exists.
struct Login {
  ports::UserStore& users;
  ports::PasswordHasher& hasher;
  ports::TokenService& tokens;

  domain::Expected<AuthResult, domain::DomainError> operator()(const LoginCommand& cmd) const;
};

// The user a valid access token names.
struct CurrentUser {
  ports::TokenService& tokens;
  ports::UserStore& users;

  domain::Expected<domain::User, domain::DomainError> operator()(std::string_view bearer_token) const;
};

}  // namespace registrar::app
