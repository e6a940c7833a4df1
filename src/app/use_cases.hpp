#pragma once
// The use cases of the sign-up API. They depend on ports only; no I/O of their own.
// All are synchronous: transports run them off their I/O threads where they block (hashing).
#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include "app/idempotency.hpp"
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
  // Recorded with the account in the same transaction (UserStore::create_user_with_key; its
  // user_id is filled in here). A live record of that key gives the conflict answer: the caller
  // (RegisterUser) looks the key up again to tell its own earlier request from another account.
  std::optional<ports::IdempotencyKeyRecord> idempotency_key;
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
  // The request's Idempotency-Key, as the transport validated it (1–255 printable characters).
  std::optional<std::string> idempotency_key;
};

struct AuthResult {
  ports::IssuedToken token;
  domain::User user;
  std::optional<std::string> phone_masked;  // domain::Phone::masked(), for a phone account
  bool replayed = false;  // a retry with an Idempotency-Key: the account its first request created
};

// The purposes (domain separation) of the keyed hashes an Idempotency-Key is stored as.
inline constexpr std::string_view kIdempotencyKeyPurpose = "idempotency-key";
inline constexpr std::string_view kIdempotencyFingerprintPurpose = "idempotency-request";

// The email sign-up: CreateAccount with an email, then an access token.
//
// With an Idempotency-Key (draft-ietf-httpapi-idempotency-key-header), the key is stored with the
// account in the sign-up's transaction, as keyed hashes (PiiCipher::blind_index) of the key and
// of the request's fingerprint: email, username and image as validated, never the password. A
// retry of a request whose answer was lost (a 503 after the commit, a dropped connection) then
// gets the first one's outcome instead of a 409 for its own account:
//  - same key, same fields, and a password that verifies against the account's argon2 hash:
//    that account and a fresh token (replayed). The key alone never yields a token.
//  - same key, other fields or a password that does not verify: idempotency_key_mismatch (one
//    answer for both; nothing is created).
//  - the same key while a request with it runs in this process (`in_flight`), or while another
//    process holds it uncommitted: idempotency_key_in_flight (retry later).
// A key expires `idempotency_ttl` after its sign-up; an expired record is ignored and replaced.
// A request that failed (invalid input, conflict, outage) recorded nothing: its retry runs anew.
struct RegisterUser {
  const CreateAccount& create_account;
  ports::TokenService& tokens;
  KeysInFlight* in_flight = nullptr;  // required for requests with a key
  std::chrono::seconds idempotency_ttl{std::chrono::hours{24}};

  domain::Expected<AuthResult, domain::DomainError> operator()(const RegisterCommand& cmd) const;

 private:
  domain::Expected<AuthResult, domain::DomainError> with_key(const RegisterCommand& cmd) const;
  domain::Expected<AuthResult, domain::DomainError> replay(const ports::IdempotencyKeyRecord& record,
                                                            std::string_view fingerprint,
                                                            const RegisterCommand& cmd) const;
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
