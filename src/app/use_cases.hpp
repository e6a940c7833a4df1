#pragma once
// The use cases of the sign-up API. They depend on ports only; no I/O of their own.
// All are synchronous: transports run them off their I/O threads where they block (hashing).
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include "domain/credentials.hpp"
#include "domain/errors.hpp"
#include "domain/expected.hpp"
#include "domain/user.hpp"
#include "ports/event_bus.hpp"
#include "ports/password_hasher.hpp"
#include "ports/pii_cipher.hpp"
#include "ports/system.hpp"
#include "ports/token_service.hpp"
#include "ports/user_store.hpp"

namespace registrar::app {

// Each use case is a small struct that names exactly the ports it needs (references, set by the
// composition root with designated initializers) and runs with operator(). They keep no state
// of their own, so one instance serves all the threads that run it.

// The associated data a user's phone is sealed with: binds the ciphertext to its row, so a
// ciphertext copied into another user's row does not open.
std::string phone_seal_context(std::string_view user_id);
// The purpose (domain separation) of the phone's blind index.
inline constexpr std::string_view kPhoneIndexPurpose = "phone";

// Both ways an account is made: the email sign-up (/auth/register) and the phone account of a
// Create_User job.
struct CreateAccountCommand {
  std::string username;
  std::string password;
  std::optional<std::string> email;          // as given; validated here
  std::optional<domain::Phone> phone;        // already parsed, and proven by the caller (a code)
  std::string image;                         // as given; "" = none; validated here
  std::optional<std::string> verification_id;  // the verification session a phone account comes from
};

struct Account {
  domain::User user;
  // false: an account had already been created from this verification id (a job run twice); it is
  // returned as it is and nothing was written (no second user.registered event).
  bool created = true;
};

// Validates, hashes the password, seals the phone (PiiCipher, with its blind index), writes user +
// user.registered event in one transaction and wakes the outbox relay. At least one contact (email
// or phone) is required. Throws ports::KeyUnavailable when no PII key can seal the phone (the
// Create_User message "Error encrypting your credentials. Please try again"), BackendUnavailable
// when the store is down.
struct CreateAccount {
  ports::UserStore& users;
  ports::PasswordHasher& hasher;
  ports::PiiCipher& pii;
  ports::Clock& clock;
  ports::IdGenerator& ids;
  ports::OutboxSignal& outbox_signal;
  domain::PasswordPolicy password_policy{};

  domain::Expected<Account, domain::DomainError> operator()(const CreateAccountCommand& cmd) const;
};

struct RegisterCommand {
  std::string email, username, password;
  std::string image;  // "" = none
};

struct AuthResult {
  ports::IssuedToken token;
  domain::User user;
  std::optional<std::string> phone_masked;  // domain::Phone::masked(), for a phone account
};

// The email sign-up: CreateAccount with an email, then an access token.
struct RegisterUser {
  const CreateAccount& create_account;
  ports::TokenService& tokens;

  domain::Expected<AuthResult, domain::DomainError> operator()(const RegisterCommand& cmd) const;
};

struct LoginCommand {
  std::string login;  // an email, a username or (starting with '+') a phone number
  std::string password;
  bool phone = false;  // `login` is a phone number whatever it looks like ({phone, password})
};

// One answer (invalid_credentials) for every failure, and the same argon2 work whether or not
// the user exists. A phone is looked up by its blind index (no decryption).
struct Login {
  ports::UserStore& users;
  ports::PasswordHasher& hasher;
  ports::TokenService& tokens;
  ports::PiiCipher& pii;

  domain::Expected<AuthResult, domain::DomainError> operator()(const LoginCommand& cmd) const;
};

struct Profile {
  domain::User user;
  std::optional<std::string> phone_masked;  // domain::Phone::masked(), for a phone account
};

// The user a valid access token names.
struct CurrentUser {
  ports::TokenService& tokens;
  ports::UserStore& users;
  ports::PiiCipher& pii;

  domain::Expected<Profile, domain::DomainError> operator()(std::string_view bearer_token) const;
};

// The masked phone of `user` (opened with `pii`), or none when it has no phone or when the key it
// is sealed under is not available here (the profile is still served; `keys status` tells).
std::optional<std::string> masked_phone(ports::PiiCipher& pii, const domain::User& user);

struct RotationProgress {
  std::size_t scanned = 0;     // phones found under another key
  std::size_t resealed = 0;    // re-sealed under the target key
  std::size_t changed = 0;     // changed by someone else meanwhile (compare-and-set lost): run again
  std::size_t unreadable = 0;  // could not be opened (key missing, or tampered): left as they are
};

// `registrar keys rotate`: re-seals every phone not sealed under pii.current_key_id() with that
// key, `batch_size` rows per transaction, each row compare-and-set (UserStore::reseal_phones), so
// it runs safely beside a serving registrar that writes. Resumable: it only ever looks at rows not
// under the target key, so running it again finishes an interrupted run. `on_batch` is called
// after each batch with the totals so far.
struct RotatePhoneKeys {
  ports::UserStore& users;
  ports::PiiCipher& pii;
  std::size_t batch_size = 200;

  RotationProgress operator()(const std::function<void(const RotationProgress&)>& on_batch = {}) const;
};

}  // namespace registrar::app
