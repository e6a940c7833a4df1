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

// A code for `email`, not yet issued nor sent: the store's request and the message that carries it.
struct SendEmailVerificationCode::Prepared {
  ports::IssueCodeRequest request;
  ports::MailMessage message;
};

Expected<SendEmailVerificationCode::Prepared, DomainError> SendEmailVerificationCode::prepare(
    std::string_view user_id, std::string_view email) const {
  auto address = domain::Email::parse(email);
  if (!address) return DomainError{ErrorKind::validation_failed, "The request has invalid fields", {address.error()}};

  Prepared out;
  const std::string session = email_code_session(user_id);
  const std::string code = new_code(random);
  out.request = {.session_id = session,
                 .subject_key = email_subject_key(keys, address->canonical()),
                 .code_hash = code_hash(keys, session, code),
                 .rules = rules};

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

void SendEmailVerificationCode::withdraw(const ports::IssueCodeRequest& issued) const {
  // Not sent: the user never saw this code, so it must not hold the address's cooldown or cap.
  try {
    codes.withdraw(issued.session_id, issued.subject_key);
  } catch (const std::exception&) {
    // The store is down too: the code expires by itself; the sender's failure is what counts.
  }
}

Expected<EmailCodeSent, DomainError> SendEmailVerificationCode::operator()(std::string_view user_id,
                                                                           std::string_view email) const {
  const EmailCodeRecipient recipient{std::string(user_id), std::string(email)};
  return std::move(send_all(std::span(&recipient, 1)).front());
}

std::vector<Expected<EmailCodeSent, DomainError>> SendEmailVerificationCode::send_all(
    std::span<const EmailCodeRecipient> recipients) const {
  const EmailCodeSent sent{std::chrono::duration_cast<std::chrono::seconds>(rules.ttl)};
  std::vector<Expected<EmailCodeSent, DomainError>> outcomes(recipients.size(), sent);
  std::vector<Prepared> prepared;
  std::vector<std::size_t> index;  // prepared[k] is for recipients[index[k]]
  for (std::size_t i = 0; i < recipients.size(); ++i) {
    auto one = prepare(recipients[i].user_id, recipients[i].email);
    if (!one) {
      outcomes[i] = one.error();
      continue;
    }
    prepared.push_back(std::move(*one));
    index.push_back(i);
  }
  std::vector<ports::IssueCodeRequest> requests;  // requests[k] is prepared[k]'s
  requests.reserve(prepared.size());
  for (auto& p : prepared) requests.push_back(std::move(p.request));
  std::vector<ports::IssueResult> issued;
  try {
    issued = codes.issue_all(requests);
  } catch (...) {
    // Any of them may have been issued before the store failed: none is sent, so none may hold its
    // address's cooldown (where the store lets us say so; else they expire by themselves).
    for (const auto& request : requests) withdraw(request);
    throw;
  }

  std::vector<ports::MailMessage> messages;
  std::vector<const ports::IssueCodeRequest*> held;  // issued, to withdraw if the mail fails
  for (std::size_t k = 0; k < prepared.size(); ++k) {
    if (issued[k].outcome != ports::IssueOutcome::issued) {
      outcomes[index[k]] = code_rate_limited(issued[k], "address");
      continue;
    }
    messages.push_back(std::move(prepared[k].message));
    held.push_back(&requests[k]);
  }
  try {
    mail.send_all(messages);
  } catch (...) {
    for (const auto* request : held) withdraw(*request);
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
