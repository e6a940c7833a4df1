#include "app/email_verification.hpp"

#include <algorithm>
#include <exception>

#include "app/events.hpp"
#include "app/verification.hpp"
#include "domain/credentials.hpp"

namespace registrar::app {

using domain::DomainError;
using domain::ErrorKind;
using domain::Expected;

namespace {

DomainError unauthenticated() { return {ErrorKind::unauthenticated, "Missing, invalid or expired token", {}}; }

DomainError no_email() { return {ErrorKind::not_found, "This account has no email address", {}}; }

DomainError already_verified() { return {ErrorKind::already_verified, "The email address is already verified", {}}; }

DomainError code_problem(std::string code, std::string message) {
  return {ErrorKind::validation_failed, "The request has invalid fields", {{"code", std::move(code), std::move(message)}}};
}

bool six_digits(std::string_view code) {
  return code.size() == static_cast<std::size_t>(kCodeDigits) &&
         std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace

std::string email_code_session(std::string_view user_id) { return "email-verification:" + std::string(user_id); }

std::string email_subject_key(ports::PiiCipher& keys, std::string_view canonical_email) {
  return keys.blind_index(canonical_email, "email");
}

// A code issued for `email` (valid address, outside its cooldown and cap) and the message that
// carries it, not yet sent; or why none was issued.
struct SendEmailVerificationCode::Issued {
  std::string session, subject;
  ports::MailMessage message;
};

Expected<SendEmailVerificationCode::Issued, DomainError> SendEmailVerificationCode::issue(std::string_view user_id,
                                                                                       std::string_view email) const {
  auto address = domain::Email::parse(email);
  if (!address) return DomainError{ErrorKind::validation_failed, "The request has invalid fields", {address.error()}};

  Issued out;
  out.session = email_code_session(user_id);
  out.subject = email_subject_key(keys, address->canonical());
  const std::string code = new_code(random);
  const auto issued = codes.issue({.session_id = out.session,
                                   .subject_key = out.subject,
                                   .code_hash = code_hash(keys, out.session, code),
                                   .rules = rules});
  if (issued.outcome != ports::IssueOutcome::issued) return code_rate_limited(issued, "address");

  ports::MailMessage& message = out.message;
  message.channel = "email";
  message.to = address->value();
  message.subject = product_name + " email verification code";
  message.body = "Your " + product_name + " email verification code is " + code + ".\n"
                 "\n"
                 "It expires in " + describe(rules.ttl) + ". Do not share it.\n"
                 "\n"
                 "If you did not sign up, you can ignore this message.\n";
  message.code = code;
  // One issue, one message: a new code is a new message (not deduplicated against the last one).
  message.idempotency_key = "email-verification-" + ids.new_id();
  return out;
}

void SendEmailVerificationCode::withdraw(const Issued& issued) const {
  // Not sent: the user never saw this code, so it must not hold the address's cooldown or cap.
  try {
    codes.withdraw(issued.session, issued.subject);
  } catch (const std::exception&) {
    // The store is down too: the code expires by itself; the sender's failure is what counts.
  }
}

Expected<EmailCodeSent, DomainError> SendEmailVerificationCode::operator()(std::string_view user_id,
                                                                           std::string_view email) const {
  auto issued = issue(user_id, email);
  if (!issued) return issued.error();
  try {
    mail.send(issued->message);
  } catch (...) {
    withdraw(*issued);
    throw;
  }
  return EmailCodeSent{std::chrono::duration_cast<std::chrono::seconds>(rules.ttl)};
}

std::vector<Expected<EmailCodeSent, DomainError>> SendEmailVerificationCode::send_all(
    std::span<const EmailCodeRecipient> recipients) const {
  std::vector<Expected<EmailCodeSent, DomainError>> outcomes;
  std::vector<Issued> issued;
  std::vector<ports::MailMessage> messages;
  outcomes.reserve(recipients.size());
  auto withdraw_all = [&] {
    for (const auto& i : issued) withdraw(i);
  };
  try {
    for (const auto& r : recipients) {
      auto one = issue(r.user_id, r.email);
      if (!one) {
        outcomes.emplace_back(one.error());
        continue;
      }
      outcomes.emplace_back(EmailCodeSent{std::chrono::duration_cast<std::chrono::seconds>(rules.ttl)});
      messages.push_back(one->message);
      issued.push_back(std::move(*one));
    }
    mail.send_all(messages);
  } catch (...) {
    withdraw_all();
    throw;
  }
  return outcomes;
}

Expected<EmailCodeSent, DomainError> ResendEmailVerification::operator()(std::string_view bearer_token) const {
  auto claims = tokens.verify(bearer_token, ports::TokenType::access);
  if (!claims) return unauthenticated();
  auto user = users.find_by_id(claims->subject);
  if (!user) return unauthenticated();
  if (!user->email) return no_email();
  if (user->email_verified_at) return already_verified();
  return send(user->id, *user->email);
}

Expected<EmailVerified, DomainError> VerifyEmail::operator()(std::string_view bearer_token, std::string_view code) const {
  auto claims = tokens.verify(bearer_token, ports::TokenType::access);
  if (!claims) return unauthenticated();
  auto user = users.find_by_id(claims->subject);
  if (!user) return unauthenticated();
  if (!user->email) return no_email();
  if (user->email_verified_at) return already_verified();
  // Not a candidate at all: refused without spending one of the code's tries.
  if (!six_digits(code)) return code_problem("invalid_format", "The code is the 6 digits sent by email");

  const std::string session = email_code_session(user->id);
  const auto checked = codes.check(session, code_hash(keys, session, code), max_wrong_tries);
  switch (checked.outcome) {
    case ports::CheckOutcome::match:
      break;
    case ports::CheckOutcome::mismatch:
      return code_problem("incorrect", "The verification code is incorrect");
    case ports::CheckOutcome::exhausted:
      return code_problem("exhausted", "Too many wrong codes: ask for a new code");
    case ports::CheckOutcome::missing:
      return code_problem("expired", "No valid code: it expired or was already used; ask for a new code");
  }

  const auto now = clock.now();
  const bool verified = users.mark_email_verified(user->id, now, make_user_email_verified(user->id, now, ids.new_id(), now));
  // Single use, whichever call won: the address is verified now, the code has no further use.
  codes.consume(session);
  if (!verified) return already_verified();  // a concurrent request with the code got there first
  outbox_signal.notify();
  return EmailVerified{user->id, now};
}

}  // namespace registrar::app
