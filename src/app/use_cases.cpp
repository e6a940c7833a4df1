#include "app/use_cases.hpp"
#include "app/events.hpp"

namespace registrar::app {

using domain::DomainError;
using domain::ErrorKind;
using domain::Expected;

namespace {

DomainError conflict() {
  // Same answer whether the email or the username is taken: no more detail than needed.
  return {ErrorKind::conflict, "An account with this email or username already exists", {}};
}

DomainError invalid_credentials() {
  return {ErrorKind::invalid_credentials, "Invalid login or password", {}};
}

}  // namespace

Expected<AuthResult, DomainError> RegisterUser::operator()(const RegisterCommand& cmd) const {
  std::vector<domain::FieldError> fields;
  auto email = domain::Email::parse(cmd.email);
  if (!email) fields.push_back(email.error());
  auto username = domain::Username::parse(cmd.username);
  if (!username) fields.push_back(username.error());
  if (auto bad = password_policy.check(cmd.password)) fields.push_back(*bad);
  if (!fields.empty()) return DomainError{ErrorKind::validation_failed, "The request has invalid fields", std::move(fields)};

  // Pre-check so a conflicting sign-up does not cost a hash; the database's unique indexes
  // remain the real guard against races.
  if (users.email_or_username_taken(email->canonical(), username->canonical())) return conflict();

  domain::User user;
  user.id = ids.new_id();
  user.email = email->value();
  user.username = username->value();
  user.password_hash = hasher.hash(cmd.password);
  user.created_at = clock.now();
  auto event = make_user_registered(user, ids.new_id(), clock.now());

  if (users.create_user(user, email->canonical(), username->canonical(), event) !=
      ports::CreateUserOutcome::created)
    return conflict();
  outbox_signal.notify();
  return AuthResult{tokens.issue(user.id, ports::TokenType::access), std::move(user)};
}

Expected<AuthResult, DomainError> Login::operator()(const LoginCommand& cmd) const {
  std::optional<domain::User> user;
  // Lookups use the canonical forms; a login that is neither a valid email nor a valid username
  // finds nobody but still costs one hash below.
  if (cmd.login.find('@') != std::string::npos) {
    if (auto email = domain::Email::parse(cmd.login)) user = users.find_by_email(email->canonical());
  } else if (auto name = domain::Username::parse(cmd.login)) {
    user = users.find_by_username(name->canonical());
  }
  if (!user) {
    hasher.verify_dummy(cmd.password);
    return invalid_credentials();
  }
  if (!hasher.verify(user->password_hash, cmd.password)) return invalid_credentials();
  return AuthResult{tokens.issue(user->id, ports::TokenType::access), std::move(*user)};
}

Expected<domain::User, DomainError> CurrentUser::operator()(std::string_view bearer_token) const {
  auto claims = tokens.verify(bearer_token, ports::TokenType::access);
  if (!claims) return DomainError{ErrorKind::unauthenticated, "Missing, invalid or expired token", {}};
  auto user = users.find_by_id(claims->subject);
  // A valid token for a user that no longer exists is no longer a credential.
  if (!user) return DomainError{ErrorKind::unauthenticated, "Missing, invalid or expired token", {}};
  return std::move(*user);
}

}  // namespace registrar::app
