#pragma once
// Email verification of /auth/register accounts, with the access token:
// POST /auth/email-verification {code} and POST /auth/email-verification/resend.
#include "adapters/http/router.hpp"
#include "adapters/threads/blocking_runner.hpp"
#include "app/email_verification.hpp"

namespace registrar::adapters::http {

struct EmailVerificationApi {
  const app::VerifyEmail& verify;
  const app::ResendEmailVerification& resend;
  // The use cases wait on the code store (Redis), the database and the mail sender: never on an
  // I/O thread.
  threads::BlockingRunner& blocking;
};

// POST /auth/email-verification {code}:
//  200 {"emailVerified":true,"emailVerifiedAt"} — the address is verified, user.email_verified is
//      in the outbox (same transaction), the code is used up;
//  400 validation_failed on "code": "required", "invalid_format" (not 6 digits; not counted),
//      "incorrect" (counted), "exhausted" (the 5th wrong try burnt the code), "expired" (no valid
//      code: expired, used, or never sent) — the last two: ask for a new code;
//  401 unauthenticated (no, or not an access, token); 404 not_found (an account without email);
//  409 already_verified; 400 malformed_json, 415.
// POST /auth/email-verification/resend (no body needed):
//  202 {"expiresIn"} — a new code is on its way (it replaces the previous one);
//  429 rate_limited with Retry-After (the address's resend cooldown or hourly cap), nothing sent;
//  401, 404, 409 as above; 503 when the code store or the mail sender is unavailable (the code is
//  withdrawn: it does not count against the address).
void add_email_verification_routes(Router& router, EmailVerificationApi api);

}  // namespace registrar::adapters::http
