#pragma once
// Email verification of /auth/register accounts (issue 12): a code sent to the new address (by the
// `email-verification` consumer of user.registered, or on request), and the check that marks the
// address verified and announces user.email_verified through the outbox. Same code rules and same
// store as the phone verification codes (app/verification.hpp): a 6-digit CSPRNG code kept only as
// a keyed hash, TTL, single use, limited wrong tries, resend cooldown and hourly cap. Ports only;
// no I/O.
#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "domain/errors.hpp"
#include "domain/expected.hpp"
#include "domain/time.hpp"
#include "ports/event_bus.hpp"
#include "ports/mail_sender.hpp"
#include "ports/pii_cipher.hpp"
#include "ports/system.hpp"
#include "ports/token_service.hpp"
#include "ports/user_store.hpp"
#include "ports/verification_codes.hpp"

namespace registrar::app {

// The code store key of a user's email code: "email-verification:<user id>". One code per user at
// a time (a new one replaces the old); the user id is part of the code's keyed hash (code_hash).
std::string email_code_session(std::string_view user_id);

// The keyed hash of an address (canonical form) that its cooldown and cap are counted under:
// blind_index(address, "email").
std::string email_subject_key(ports::PiiCipher& keys, std::string_view canonical_email);

struct EmailCodeSent {
  std::chrono::seconds expires_in{0};  // how long the code is valid
};

struct EmailCodeRecipient {
  std::string user_id;
  std::string email;
};

// Sends a fresh code to `email`, the address of account `user_id`: stores its keyed hash under
// email_code_session(user_id) under the rules, then mails it (channel "email", the code in the
// message's `code`, idempotency key "email-verification:<issue id>").
//  - an invalid address → validation_failed (field "email");
//  - the address's cooldown or cap → rate_limited with retry_after (nothing sent);
//  - the sender fails → the code is withdrawn (it does not count against the address) and the
//    exception goes on (ports::MailRejected, ports::BackendUnavailable, …).
struct SendEmailVerificationCode {
  ports::VerificationCodeStore& codes;
  ports::PiiCipher& keys;  // blind_index only
  ports::MailSender& mail;
  ports::IdGenerator& ids;
  ports::RandomSource& random;
  ports::CodeRules rules{};
  std::string product_name = "registrar";

  domain::Expected<EmailCodeSent, domain::DomainError> operator()(std::string_view user_id, std::string_view email) const;

  // The same for several accounts at once, one outcome per recipient in their order: the codes are
  // issued together (VerificationCodeStore::issue_all: one round trip on Redis) and their messages
  // handed to the sender together (MailSender::send_all). If the sender fails, every code issued
  // here is withdrawn and the exception goes on.
  std::vector<domain::Expected<EmailCodeSent, domain::DomainError>> send_all(
      std::span<const EmailCodeRecipient> recipients) const;

 private:
  struct Prepared;
  domain::Expected<Prepared, domain::DomainError> prepare(std::string_view user_id, std::string_view email) const;
  void withdraw(const ports::IssueCodeRequest& issued) const;
};

// POST /auth/email-verification/resend (access token): a new code for the caller's address.
//  - missing/invalid token, or a user that no longer exists → unauthenticated;
//  - an account without email (a phone account) → not_found;
//  - an address already verified → already_verified (nothing sent);
//  - otherwise SendEmailVerificationCode's outcomes (rate_limited with retry_after, …).
struct ResendEmailVerification {
  ports::TokenService& tokens;
  ports::UserStore& users;
  const SendEmailVerificationCode& send;

  domain::Expected<EmailCodeSent, domain::DomainError> operator()(std::string_view bearer_token) const;
};

struct EmailVerified {
  std::string user_id;
  domain::Timestamp verified_at{};
};

// POST /auth/email-verification {code} (access token): checks the code; the right one marks the
// address verified and writes user.email_verified into the outbox in the same transaction
// (UserStore::mark_email_verified), then the code is consumed (single use) and the relay woken.
//  - missing/invalid token, unknown user → unauthenticated;
//  - a phone account → not_found; already verified → already_verified;
//  - a code that is not 6 digits → validation_failed on "code" (code "invalid_format"; not a try);
//  - a wrong code → validation_failed on "code" ("incorrect"), counted: the max_wrong_tries-th
//    burns the code ("exhausted": even the right one is refused, ask for a new code);
//  - no code (never sent, expired, used, burnt and gone) → validation_failed on "code" ("expired").
struct VerifyEmail {
  ports::TokenService& tokens;
  ports::UserStore& users;
  ports::VerificationCodeStore& codes;
  ports::PiiCipher& keys;  // blind_index only
  ports::Clock& clock;
  ports::IdGenerator& ids;
  ports::OutboxSignal& outbox_signal;
  int max_wrong_tries = 5;

  domain::Expected<EmailVerified, domain::DomainError> operator()(std::string_view bearer_token, std::string_view code) const;
};

}  // namespace registrar::app
