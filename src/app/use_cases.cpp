#include "app/use_cases.hpp"
#include "app/events.hpp"
#include "app/image_url.hpp"

namespace registrar::app {

using domain::DomainError;
using domain::ErrorKind;
using domain::Expected;

namespace {

DomainError conflict(bool phone_account) {
  // Same answer whichever value is taken: no more detail than needed.
  return {ErrorKind::conflict,
          phone_account ? "An account with this phone or username already exists"
                        : "An account with this email or username already exists",
          {}};
}

DomainError invalid_credentials() {
  return {ErrorKind::invalid_credentials, "Invalid login or password", {}};
}

// One answer whether the fields or the password differ from the key's first request.
DomainError key_mismatch() {
  return {ErrorKind::idempotency_key_mismatch,
          "This Idempotency-Key was used for a different request; a retry must repeat the first request's fields "
          "and password exactly (or use a new key for a new request)",
          {}};
}

DomainError key_in_flight() {
  return {ErrorKind::idempotency_key_in_flight,
          "A request with this Idempotency-Key is still being processed; retry once it has finished",
          {}};
}

// What a retry must repeat, as validated (so "a@B.com " and "a@b.com" are one request), each
// value length-prefixed so that no two different requests give one text. Never the password.
std::string fingerprint_text(std::string_view email, std::string_view username, std::string_view image) {
  std::string out;
  for (std::string_view v : {email, username, image}) {
    out += std::to_string(v.size());
    out += ':';
    out += v;
  }
  return out;
}

}  // namespace

std::string phone_seal_context(std::string_view user_id) { return "users.phone:" + std::string(user_id); }

std::optional<std::string> masked_phone(ports::PiiCipher& pii, const domain::User& user) {
  if (!user.phone) return std::nullopt;
  std::string clear;
  try {
    clear = pii.open(user.phone->sealed, phone_seal_context(user.id));
  } catch (const ports::KeyUnavailable&) {
    return std::nullopt;
  }
  auto phone = domain::Phone::parse(clear);
  if (!phone) throw std::runtime_error("a stored phone is not in E.164 form");  // never quotes it
  return phone->masked();
}

Expected<Account, DomainError> CreateAccount::operator()(const CreateAccountCommand& cmd) const {
  std::vector<domain::FieldError> fields;
  std::optional<domain::Email> email;
  if (cmd.email) {
    auto parsed = domain::Email::parse(*cmd.email);
    if (parsed) email = std::move(*parsed);
    else fields.push_back(parsed.error());
  } else if (!cmd.phone) {
    fields.push_back({"email", "required", "Give an email or a phone"});
  }
  auto username = domain::Username::parse(cmd.username);
  if (!username) fields.push_back(username.error());
  if (auto bad = password_policy.check(cmd.password)) fields.push_back(*bad);
  auto image = parse_image_url(cmd.image);
  if (!image) fields.push_back(image.error());
  if (!fields.empty()) return DomainError{ErrorKind::validation_failed, "The request has invalid fields", std::move(fields)};

  // A job run twice (stall, retry, a second submit) finds the account its first run made.
  if (cmd.verification_id)
    if (auto existing = users.find_by_verification_id(*cmd.verification_id)) return Account{std::move(*existing), false};

  std::optional<std::string> phone_index;
  if (cmd.phone) phone_index = pii.blind_index(cmd.phone->canonical(), kPhoneIndexPurpose);
  const std::optional<std::string_view> email_canonical =
      email ? std::optional<std::string_view>(email->canonical()) : std::nullopt;
  const std::optional<std::string_view> index_view =
      phone_index ? std::optional<std::string_view>(*phone_index) : std::nullopt;

  // Pre-check so a conflicting sign-up does not cost a hash; the database's unique indexes
  // remain the real guard against races.
  if (users.contact_or_username_taken(email_canonical, username->canonical(), index_view))
    return conflict(cmd.phone.has_value());

  domain::User user;
  user.id = ids.new_id();
  if (email) user.email = email->value();
  user.username = username->value();
  user.password_hash = hasher.hash(cmd.password);
  if (cmd.phone)
    user.phone = domain::StoredPhone{pii.seal(cmd.phone->canonical(), phone_seal_context(user.id)), *phone_index};
  user.image = std::move(*image);
  user.verification_id = cmd.verification_id;
  user.created_at = clock.now();
  auto event = make_user_registered(user, ids.new_id(), clock.now());

  ports::CreateUserOutcome outcome;
  if (cmd.idempotency_key) {
    ports::IdempotencyKeyRecord key = *cmd.idempotency_key;
    key.user_id = user.id;
    outcome = users.create_user_with_key(user, email_canonical, username->canonical(), event, key, user.created_at);
  } else {
    outcome = users.create_user(user, email_canonical, username->canonical(), event);
  }
  switch (outcome) {
    case ports::CreateUserOutcome::key_taken:
      return key_in_flight();
    case ports::CreateUserOutcome::created:
      outbox_signal.notify();
      return Account{std::move(user), true};
    case ports::CreateUserOutcome::verification_taken:
      // Two runs of one job raced past the lookup above: the other one made the account.
      if (auto existing = users.find_by_verification_id(*cmd.verification_id)) return Account{std::move(*existing), false};
      return conflict(cmd.phone.has_value());
    default:
      return conflict(cmd.phone.has_value());
  }
}

Expected<AuthResult, DomainError> RegisterUser::operator()(const RegisterCommand& cmd) const {
  if (cmd.idempotency_key) return with_key(cmd);
  auto account = create_account({.username = cmd.username,
                                 .password = cmd.password,
                                 .email = cmd.email,
                                 .phone = std::nullopt,
                                 .image = cmd.image,
                                 .verification_id = std::nullopt,
                                 .idempotency_key = std::nullopt});
  if (!account) return account.error();
  return AuthResult{tokens.issue(account->user.id, ports::TokenType::access), std::move(account->user), std::nullopt};
}

Expected<AuthResult, DomainError> RegisterUser::with_key(const RegisterCommand& cmd) const {
  if (in_flight == nullptr) throw std::logic_error("RegisterUser: an Idempotency-Key needs the keys in flight");
  const CreateAccountCommand create{.username = cmd.username,
                                    .password = cmd.password,
                                    .email = cmd.email,
                                    .phone = std::nullopt,
                                    .image = cmd.image,
                                    .verification_id = std::nullopt,
                                    .idempotency_key = std::nullopt};
  // A request that cannot create anything (invalid fields) has nothing to replay or record: it
  // gets its validation problem, whatever its key.
  auto email = domain::Email::parse(cmd.email);
  auto username = domain::Username::parse(cmd.username);
  auto image = parse_image_url(cmd.image);
  if (!email || !username || !image) {
    auto refused = create_account(create);
    if (!refused) return refused.error();
    throw std::logic_error("RegisterUser: CreateAccount accepted fields the domain refuses");
  }
  ports::PiiCipher& keyed = create_account.pii;
  std::string key_hash = keyed.blind_index(*cmd.idempotency_key, kIdempotencyKeyPurpose);
  const std::string fingerprint = keyed.blind_index(
      fingerprint_text(email->value(), username->value(), image->value_or("")), kIdempotencyFingerprintPurpose);

  KeysInFlight::Hold hold(*in_flight, key_hash);
  if (!hold.held()) return key_in_flight();
  ports::UserStore& users = create_account.users;
  const domain::Timestamp now = create_account.clock.now();
  if (auto record = users.find_idempotency_key(key_hash, now)) return replay(*record, fingerprint, cmd);

  CreateAccountCommand keyed_create = create;
  keyed_create.idempotency_key = ports::IdempotencyKeyRecord{
      .key_hash = key_hash, .fingerprint = fingerprint, .user_id = {}, .expires_at = now + idempotency_ttl};
  auto account = create_account(keyed_create);
  if (account)
    return AuthResult{tokens.issue(account->user.id, ports::TokenType::access), std::move(account->user), std::nullopt};
  const ErrorKind kind = account.error().kind;
  if (kind == ErrorKind::conflict || kind == ErrorKind::idempotency_key_in_flight) {
    // Taken by whom? Another process may have committed a request with this very key since the
    // lookup above (its account then holds our email and username): that is our own account.
    if (auto record = users.find_idempotency_key(key_hash, create_account.clock.now()))
      return replay(*record, fingerprint, cmd);
  }
  return account.error();
}

Expected<AuthResult, DomainError> RegisterUser::replay(const ports::IdempotencyKeyRecord& record,
                                                       std::string_view fingerprint,
                                                       const RegisterCommand& cmd) const {
  ports::PasswordHasher& hasher = create_account.hasher;
  // The fingerprints are keyed hashes of what the client itself sent, not secrets: a plain
  // comparison tells nothing. A mismatch still costs one argon2 verification, as a wrong password
  // does, so the time of the answer does not tell which of the two differed.
  if (record.fingerprint != fingerprint) {
    hasher.verify_dummy(cmd.password);
    return key_mismatch();
  }
  auto user = create_account.users.find_by_id(record.user_id);
  if (!user) {
    hasher.verify_dummy(cmd.password);
    return key_mismatch();
  }
  if (!hasher.verify(user->password_hash, cmd.password)) return key_mismatch();
  return AuthResult{tokens.issue(user->id, ports::TokenType::access), std::move(*user), std::nullopt, true};
}

Expected<AuthResult, DomainError> Login::operator()(const LoginCommand& cmd) const {
  std::optional<domain::User> user;
  std::optional<std::string> phone_masked;
  // Lookups use the canonical forms (a phone its blind index); a login that is none of the three
  // finds nobody but still costs one hash below.
  if (cmd.phone || cmd.login.starts_with('+')) {
    if (auto phone = domain::Phone::parse(cmd.login)) {
      user = users.find_by_phone_index(pii.blind_index(phone->canonical(), kPhoneIndexPurpose));
      phone_masked = phone->masked();
    }
  } else if (cmd.login.find('@') != std::string::npos) {
    if (auto email = domain::Email::parse(cmd.login)) user = users.find_by_email(email->canonical());
  } else if (auto name = domain::Username::parse(cmd.login)) {
    user = users.find_by_username(name->canonical());
  }
  if (!user) {
    hasher.verify_dummy(cmd.password);
    return invalid_credentials();
  }
  if (!hasher.verify(user->password_hash, cmd.password)) return invalid_credentials();
  if (!phone_masked) phone_masked = masked_phone(pii, *user);
  return AuthResult{tokens.issue(user->id, ports::TokenType::access), std::move(*user), std::move(phone_masked)};
}

Expected<Profile, DomainError> CurrentUser::operator()(std::string_view bearer_token) const {
  auto claims = tokens.verify(bearer_token, ports::TokenType::access);
  if (!claims) return DomainError{ErrorKind::unauthenticated, "Missing, invalid or expired token", {}};
  auto user = users.find_by_id(claims->subject);
  // A valid token for a user that no longer exists is no longer a credential.
  if (!user) return DomainError{ErrorKind::unauthenticated, "Missing, invalid or expired token", {}};
  auto masked = masked_phone(pii, *user);
  return Profile{std::move(*user), std::move(masked)};
}

RotationProgress RotatePhoneKeys::operator()(const std::function<void(const RotationProgress&)>& on_batch) const {
  const std::string target = pii.current_key_id();
  RotationProgress progress;
  std::string after;
  for (;;) {
    auto rows = users.phones_not_sealed_under(target, after, batch_size);
    if (rows.empty()) break;
    std::vector<ports::Reseal> batch;
    batch.reserve(rows.size());
    for (auto& row : rows) {
      after = row.user_id;
      ++progress.scanned;
      const std::string context = phone_seal_context(row.user_id);
      std::string clear;
      try {
        clear = pii.open(row.sealed, context);
      } catch (const std::runtime_error&) {
        // KeyUnavailable (the old key is gone) or a ciphertext that does not authenticate: the
        // row stays as it is, counted; `keys status` still shows it under its key.
        ++progress.unreadable;
        continue;
      }
      batch.push_back({row.user_id, std::move(row.sealed), pii.seal(clear, context)});
    }
    const std::size_t applied = batch.empty() ? 0 : users.reseal_phones(batch);
    progress.resealed += applied;
    progress.changed += batch.size() - applied;
    if (on_batch) on_batch(progress);
  }
  return progress;
}

}  // namespace registrar::app
