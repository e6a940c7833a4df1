#pragma once
// Phone verification codes (issue 12): the use case that issues one, and the keyed hashes every
// user of the code store shares (issue here, check in the Create_User job). Ports only; no I/O.
#include <chrono>
#include <string>
#include <string_view>

#include "domain/errors.hpp"
#include "domain/expected.hpp"
#include "ports/mail_sender.hpp"
#include "ports/pii_cipher.hpp"
#include "ports/system.hpp"
#include "ports/token_service.hpp"
#include "ports/verification_codes.hpp"

namespace registrar::app {

// Codes are 6 decimal digits (DESIGN.md: ≥ 6), zero-padded.
inline constexpr int kCodeDigits = 6;

// The keyed hash a code is stored and checked under: blind_index("<session id>:<code>", "code").
// The session id is part of the hashed input, so one code's hash says nothing about the same
// digits under another session, and a table of the 10^6 hashes is of no use without the key.
std::string code_hash(ports::PiiCipher& keys, std::string_view session_id, std::string_view code);

// The keyed hash of a phone (E.164, canonical form) that its cooldown and cap are counted under:
// blind_index(phone, "phone"), the same index the account model looks phones up by.
std::string phone_subject_key(ports::PiiCipher& keys, std::string_view canonical_phone);

// A fresh code: kCodeDigits digits, uniform over 0 … 10^kCodeDigits − 1 (the random source does the
// rejection sampling), zero-padded.
std::string new_code(ports::RandomSource& random);

// A code's lifetime as the messages say it: whole minutes when it is a whole number of minutes
// ("10 minutes"), else seconds.
std::string describe(std::chrono::milliseconds d);

// The rate_limited error of a refused issue (cooldown or hourly cap), with its Retry-After (at
// least 1 s). `to` names the recipient in the message: "number", "address".
domain::DomainError code_rate_limited(const ports::IssueResult& refused, std::string_view to);

struct IssueCodeCommand {
  std::string phone;
};

struct VerificationSession {
  std::string id;             // the session id: the code's key, the token's subject
  ports::IssuedToken token;   // a verification token for it
  std::chrono::seconds expires_in{0};  // how long the code (and the token) are valid
};

// POST /auth/verification-codes: validates the phone, opens a session (new id), stores the hash of
// a fresh code under the rules, sends the code by SMS through the message sender and issues a
// verification token for the session.
//  - invalid phone → validation_failed (field "phone");
//  - the phone's cooldown or cap → rate_limited with retry_after (nothing sent);
//  - the sender fails → the code is withdrawn (it does not count against the phone) and the
//    exception goes on (ports::BackendUnavailable → 503, ports::MailRejected → the caller's call).
// The phone number goes only to the sender; the store sees keyed hashes.
struct IssueVerificationCode {
  ports::VerificationCodeStore& codes;
  ports::PiiCipher& keys;  // blind_index only
  ports::TokenService& tokens;
  ports::MailSender& sender;
  ports::IdGenerator& ids;
  ports::RandomSource& random;
  ports::CodeRules rules{};
  std::string product_name = "registrar";

  domain::Expected<VerificationSession, domain::DomainError> operator()(const IssueCodeCommand& cmd) const;
};

}  // namespace registrar::app
