#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>
#include "domain/event.hpp"
#include "domain/user.hpp"

namespace registrar::ports {

enum class CreateUserOutcome {
  created,
  email_taken,
  username_taken,
  phone_taken,         // another account has this phone (same blind index)
  verification_taken,  // an account was already created from this verification session
  key_taken,           // create_user_with_key: the Idempotency-Key is recorded already (not expired)
};

// An Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) recorded with the account its
// request created. Only keyed hashes are stored: `key_hash` of the key as the client sent it,
// `fingerprint` of the request's fields that are not secret (never the password: a retry proves
// it against the account's argon2 hash instead). A record is valid until `expires_at`; after
// that it is ignored, and the key may be used again.
struct IdempotencyKeyRecord {
  std::string key_hash;
  std::string fingerprint;
  std::string user_id;
  domain::Timestamp expires_at{};
  bool operator==(const IdempotencyKeyRecord&) const = default;
};

// A user's sealed phone, as `registrar keys rotate` reads it.
struct SealedPhoneRow {
  std::string user_id;
  domain::SealedValue sealed;
};

// A phone re-sealed under another key: applied only where the row still holds `from` (both the
// key id and the ciphertext), so a concurrent change of that phone is never overwritten.
struct Reseal {
  std::string user_id;
  domain::SealedValue from;
  domain::SealedValue to;
};

// Storage of users and of the outbox they write to. Throws BackendUnavailable on infrastructure
// failure. Every adapter (SQLite, MySQL) passes the same contract tests.
class UserStore {
 public:
  virtual ~UserStore() = default;

  // Writes the user and its event into the outbox in ONE transaction: both or neither.
  // Uniqueness of email (canonical, when there is one), username (case-insensitive), phone (blind
  // index, when there is one) and verification id (when there is one) is enforced by the
  // database. `email_canonical` is present exactly when user.email is. A user with neither email
  // nor phone is refused (a bug of the caller: an exception, not an outcome). When several values
  // are taken, which one the outcome names is unspecified, except that verification_taken wins
  // (a replayed job must be recognised as such).
  virtual CreateUserOutcome create_user(const domain::User& user, std::optional<std::string_view> email_canonical,
                                        std::string_view username_canonical,
                                        const domain::EventEnvelope& event) = 0;

  // create_user, and the Idempotency-Key `key` (its user_id is user.id) recorded in the SAME
  // transaction: the user, its event and the key exist together or not at all. A record of that
  // key_hash that expired at or before `now` is replaced; a live one gives key_taken and nothing is
  // written. Each call also deletes a few other expired records, so the table stays bounded by
  // the keyed sign-ups of one TTL. Outcomes otherwise as create_user's.
  virtual CreateUserOutcome create_user_with_key(const domain::User& user,
                                                 std::optional<std::string_view> email_canonical,
                                                 std::string_view username_canonical,
                                                 const domain::EventEnvelope& event, const IdempotencyKeyRecord& key,
                                                 domain::Timestamp now) = 0;
  // The record of `key_hash` if there is one that expires after `now` (an expired one is ignored).
  virtual std::optional<IdempotencyKeyRecord> find_idempotency_key(std::string_view key_hash,
                                                                   domain::Timestamp now) = 0;

  // Email verification: sets the user's email_verified_at to `verified_at` and writes `event`
  // (user.email_verified) into the outbox, in ONE transaction, if and only if the user exists, has
  // an email and it is not verified yet. Returns true when it did (this call verified the address),
  // false when nothing was written (no such user, no email, or already verified — also by a
  // concurrent call: exactly one of several gets true).
  virtual bool mark_email_verified(std::string_view user_id, domain::Timestamp verified_at,
                                   const domain::EventEnvelope& event) = 0;

  virtual std::optional<domain::User> find_by_id(std::string_view id) = 0;
  virtual std::optional<domain::User> find_by_email(std::string_view email_canonical) = 0;
  virtual std::optional<domain::User> find_by_username(std::string_view username_canonical) = 0;
  virtual std::optional<domain::User> find_by_phone_index(std::string_view phone_index) = 0;
  virtual std::optional<domain::User> find_by_verification_id(std::string_view verification_id) = 0;
  // Cheap pre-check before spending an argon2 hash on a sign-up that would conflict anyway: true
  // if any given value (email, username, phone index) belongs to an account.
  virtual bool contact_or_username_taken(std::optional<std::string_view> email_canonical,
                                         std::string_view username_canonical,
                                         std::optional<std::string_view> phone_index) = 0;

  // --- key rotation (`registrar keys rotate`) ---
  // Up to `limit` users whose phone is sealed under a key other than `key_id`, with ids greater
  // than `after_user_id` ("" for the start), in id order: a caller pages through them by passing
  // the last id it got, and so never sees a row twice even if it cannot re-seal it.
  virtual std::vector<SealedPhoneRow> phones_not_sealed_under(std::string_view key_id, std::string_view after_user_id,
                                                              std::size_t limit) = 0;
  // Applies a batch in one transaction, each one compare-and-set (see Reseal); returns how many
  // rows were changed. The phone's blind index is not touched: the index key never rotates.
  virtual std::size_t reseal_phones(const std::vector<Reseal>& batch) = 0;
  // How many users have their phone sealed under each key id, by key id.
  virtual std::vector<std::pair<std::string, std::size_t>> phone_key_counts() = 0;

  // Throws BackendUnavailable if the database cannot be used (for /readyz).
  virtual void ping() = 0;
};

}  // namespace registrar::ports
