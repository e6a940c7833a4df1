#include "app/verification.hpp"

#include <algorithm>
#include <exception>

#include "domain/credentials.hpp"

namespace registrar::app {

using domain::DomainError;
using domain::ErrorKind;
using domain::Expected;

namespace {

constexpr std::uint32_t kCodeSpace = 1'000'000;  // 10^kCodeDigits
static_assert(kCodeDigits == 6, "kCodeSpace follows kCodeDigits");

}  // namespace

domain::DomainError code_rate_limited(const ports::IssueResult& refused, std::string_view to) {
  const std::string recipient(to);
  domain::DomainError e{domain::ErrorKind::rate_limited,
                        refused.outcome == ports::IssueOutcome::cooldown
                            ? "A code was sent to this " + recipient + " a moment ago; wait before asking again"
                            : "Too many codes were sent to this " + recipient + "; wait before asking again",
                        {}};
  e.retry_after = std::max(refused.retry_after, std::chrono::seconds{1});
  return e;
}

std::string describe(std::chrono::milliseconds d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  if (s >= 60 && s % 60 == 0) return std::to_string(s / 60) + (s == 60 ? " minute" : " minutes");
  return std::to_string(s) + (s == 1 ? " second" : " seconds");
}

std::string code_hash(ports::PiiCipher& keys, std::string_view session_id, std::string_view code) {
  std::string input;
  input.reserve(session_id.size() + 1 + code.size());
  input.append(session_id).append(":").append(code);
  return keys.blind_index(input, "code");
}

std::string phone_subject_key(ports::PiiCipher& keys, std::string_view canonical_phone) {
  return keys.blind_index(canonical_phone, "phone");
}

std::string new_code(ports::RandomSource& random) {
  const std::uint32_t n = random.uniform(kCodeSpace);
  std::string digits = std::to_string(n % kCodeSpace);  // (a port returning ≥ the bound stays 6 digits)
  return std::string(kCodeDigits - digits.size(), '0') + digits;
}

Expected<VerificationSession, DomainError> IssueVerificationCode::operator()(const IssueCodeCommand& cmd) const {
  auto phone = domain::Phone::parse(cmd.phone);
  if (!phone) return DomainError{ErrorKind::validation_failed, "The request has invalid fields", {phone.error()}};

  const std::string subject = phone_subject_key(keys, phone->canonical());
  const std::string session_id = ids.new_id();
  const std::string code = new_code(random);

  const auto issued = codes.issue({.session_id = session_id,
                                   .subject_key = subject,
                                   .code_hash = code_hash(keys, session_id, code),
                                   .rules = rules});
  if (issued.outcome != ports::IssueOutcome::issued) return code_rate_limited(issued, "number");

  ports::MailMessage message;
  message.channel = "sms";
  message.to = phone->canonical();
  message.subject = product_name + " verification code";
  message.body = "Your " + product_name + " verification code is " + code + ". It expires in " +
                 describe(rules.ttl) + ". Do not share it.";
  message.code = code;
  message.idempotency_key = "verification-code:" + session_id;
  message.session_id = session_id;
  try {
    sender.send(message);
  } catch (...) {
    // Not sent: the user never saw this code, so it must not hold the phone's cooldown or cap.
    try {
      codes.withdraw(session_id, subject);
    } catch (const std::exception&) {
      // The store is down too: the code expires by itself; the sender's failure is what we report.
    }
    throw;
  }

  auto token = tokens.issue(session_id, ports::TokenType::verification);
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(rules.ttl);
  const auto expires_in = std::min(token.expires_in, ttl);
  return VerificationSession{session_id, std::move(token), expires_in};
}

}  // namespace registrar::app
