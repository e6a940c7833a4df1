#pragma once
// Phone verification: POST /auth/verification-codes {phone} → 201 {id, token, expiresIn}.
#include "adapters/http/router.hpp"
#include "adapters/threads/blocking_runner.hpp"
#include "app/verification.hpp"

namespace registrar::adapters::http {

struct VerificationApi {
  const app::IssueVerificationCode& issue_code;
  // The use case waits on the code store (Redis) and on the message sender (a file sync, an HTTP
  // gateway): never on an I/O thread.
  threads::BlockingRunner& blocking;
};

// Answers:
//  201 {"id","token","tokenType":"Bearer","expiresIn"} (`token` is a verification token: typ "verification", subject = id, refused as an access token);
//  400 validation_failed (field "phone": required, invalid_format) or malformed_json, 415;
//  429 rate_limited with Retry-After (the phone's resend cooldown or cap), nothing sent;
//  400 validation_failed on "phone" (code "undeliverable") when the SMS gateway refuses the number
//      for good (ports::MailRejected);
//  503 when the store or the sender is unavailable (the code is withdrawn: it does not count
//      against the phone's cooldown and cap).
void add_verification_routes(Router& router, VerificationApi api);

}  // namespace registrar::adapters::http
