#pragma once
// RFC 9457 problem details: the one place where failures become HTTP responses, each made from a
// type of the catalog (problem_types.hpp).
#include <chrono>
#include <exception>
#include <string>
#include <vector>
#include "adapters/http/problem_types.hpp"
#include "adapters/http/types.hpp"
#include "domain/errors.hpp"

namespace registrar::adapters::http {

// One occurrence of a problem type.
struct ProblemSpec {
  ProblemType type;
  std::string detail;  // this occurrence; never an internal message
  std::vector<domain::FieldError> errors{};
  // Retry-After in seconds: set for rate_limited; a 503 without it says 1.
  std::chrono::seconds retry_after{0};
};

Response problem(const Request& req, const RequestContext& ctx, ProblemSpec spec);
// Expected failures of the use cases.
Response problem(const Request& req, const RequestContext& ctx, const domain::DomainError& error);
// Infrastructure failures (exceptions) → 503 with Retry-After, or 500 with no detail.
Response problem(const Request& req, const RequestContext& ctx, std::exception_ptr error);
// The problem type an exception is answered with (overloaded, backend_unavailable, internal_error).
const ProblemType& problem_type_of(std::exception_ptr error);

// The internal message of a failure, for logs only (never for a client).
std::string internal_message(std::exception_ptr error);

// A JSON 2xx response.
Response json_response(const Request& req, beast_http::status status, std::string body);

}  // namespace registrar::adapters::http
