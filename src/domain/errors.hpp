#pragma once
#include <chrono>
#include <string>
#include <vector>

namespace registrar::domain {

// A rule broken by one input field. `code` is stable (clients switch on it); `message` is for humans.
struct FieldError {
  std::string field;
  std::string code;
  std::string message;
  bool operator==(const FieldError&) const = default;
};

// The expected failures of the use cases. Each maps to one stable problem type on every transport.
enum class ErrorKind {
  validation_failed,    // input breaks a rule (see fields)
  conflict,             // email or username already taken (deliberately not saying which)
  invalid_credentials,  // login failed, for whatever reason
  unauthenticated,      // missing, malformed, expired or forged token
  not_found,            // no such thing, or not the caller's to see (said the same way)
  rate_limited,         // too many requests for one subject (a code's resend cooldown or cap): retry_after
  already_verified,     // the thing to verify is already verified (an email address): nothing to do
  idempotency_key_mismatch,   // an Idempotency-Key reused with another request (fields or password)
  idempotency_key_in_flight,  // a request with this Idempotency-Key is still being processed
};

struct DomainError {
  ErrorKind kind;
  std::string message;
  std::vector<FieldError> fields;
  std::chrono::seconds retry_after{0};  // rate_limited: when to try again
};

}  // namespace registrar::domain
