#pragma once
// The catalog of problem types (RFC 9457): every error answer of the API is made from one of these.
// `code` is stable (clients switch on it; the problem's `type` is urn:registrar:problem:<code>),
// `title` is the type's short human summary. The occurrence's `detail` is given where it happens.
#include <array>
#include <boost/beast/http/status.hpp>
#include <string_view>

namespace registrar::adapters::http {

struct ProblemType {
  boost::beast::http::status status;
  std::string_view code;
  std::string_view title;
};

namespace problems {
using s = boost::beast::http::status;
// The request itself
inline constexpr ProblemType bad_request{s::bad_request, "bad_request", "Bad request"};
inline constexpr ProblemType headers_too_large{s::request_header_fields_too_large, "headers_too_large",
                                               "Request header fields too large"};
inline constexpr ProblemType payload_too_large{s::payload_too_large, "payload_too_large", "Payload too large"};
inline constexpr ProblemType unsupported_transfer_coding{s::not_implemented, "unsupported_transfer_coding",
                                                         "Transfer coding not implemented"};
inline constexpr ProblemType unsupported_media_type{s::unsupported_media_type, "unsupported_media_type",
                                                    "Unsupported media type"};
// Part of a request came, not its whole head, within the head timeout (--header-timeout).
inline constexpr ProblemType request_timeout{s::request_timeout, "request_timeout", "Request timeout"};
inline constexpr ProblemType malformed_json{s::bad_request, "malformed_json", "Malformed JSON"};
inline constexpr ProblemType validation_failed{s::bad_request, "validation_failed", "Invalid input"};
// An Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header) that is not one key of
// 1–255 printable ASCII characters (a structured-field string, or the bare characters).
inline constexpr ProblemType invalid_idempotency_key{s::bad_request, "invalid_idempotency_key",
                                                     "Invalid Idempotency-Key"};
// Routing
inline constexpr ProblemType not_found{s::not_found, "not_found", "Not found"};
inline constexpr ProblemType method_not_allowed{s::method_not_allowed, "method_not_allowed", "Method not allowed"};
// Outcomes of the use cases
inline constexpr ProblemType conflict{s::conflict, "conflict", "Account already exists"};
inline constexpr ProblemType invalid_credentials{s::unauthorized, "invalid_credentials", "Invalid credentials"};
inline constexpr ProblemType unauthenticated{s::unauthorized, "unauthenticated", "Authentication required"};
// Asked to verify what is already verified (an email address): 409, nothing changed.
inline constexpr ProblemType already_verified{s::conflict, "already_verified", "Already verified"};
// The draft's two refusals of a key: reused with another request (422), and retried while the
// first request with it is still being processed (409; retry once it has its answer).
inline constexpr ProblemType idempotency_key_mismatch{s::unprocessable_entity, "idempotency_key_mismatch",
                                                      "Idempotency-Key reused with another request"};
inline constexpr ProblemType idempotency_key_in_flight{s::conflict, "idempotency_key_in_flight",
                                                       "A request with this Idempotency-Key is in progress"};
// Per-subject limits (a verification code's resend cooldown, its hourly cap): with Retry-After.
inline constexpr ProblemType rate_limited{s::too_many_requests, "rate_limited", "Too many requests"};
// The service
inline constexpr ProblemType overloaded{s::service_unavailable, "overloaded", "Service busy"};
inline constexpr ProblemType backend_unavailable{s::service_unavailable, "backend_unavailable", "Service unavailable"};
inline constexpr ProblemType shutting_down{s::service_unavailable, "shutting_down", "Shutting down"};
inline constexpr ProblemType internal_error{s::internal_server_error, "internal_error", "Internal error"};

// Every type, for listings (OpenAPI) and for the tests that keep codes unique.
inline constexpr std::array all{bad_request,      headers_too_large, payload_too_large, unsupported_transfer_coding,
                                unsupported_media_type, malformed_json, validation_failed, not_found,
                                method_not_allowed, conflict,     invalid_credentials, unauthenticated, request_timeout,
                                already_verified, invalid_idempotency_key, idempotency_key_mismatch,
                                idempotency_key_in_flight, rate_limited,     overloaded,       backend_unavailable, shutting_down,  internal_error};
}  // namespace problems

}  // namespace registrar::adapters::http
