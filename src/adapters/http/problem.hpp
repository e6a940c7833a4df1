#pragma once
// RFC 9457 problem details: the one place where failures become HTTP responses.
#include <exception>
#include <string_view>
#include <vector>
#include "adapters/http/types.hpp"
#include "domain/errors.hpp"

namespace registrar::adapters::http {

// A transport-level failure (bad JSON, wrong media type, …) with its stable code.
struct ProblemSpec {
  beast_http::status status;
  std::string_view code;   // stable, machine-readable: "validation_failed", "conflict", …
  std::string_view title;  // short, human-readable summary of the problem type
  std::string detail;      // this occurrence; never an internal message
  std::vector<domain::FieldError> errors{};
};

Response problem(const Request& req, const RequestContext& ctx, ProblemSpec spec);
// Expected failures of the use cases.
Response problem(const Request& req, const RequestContext& ctx, const domain::DomainError& error);
// Infrastructure failures (exceptions) → 503 with Retry-After, or 500 with no detail.
Response problem(const Request& req, const RequestContext& ctx, std::exception_ptr error);

// A JSON 2xx response.
Response json_response(const Request& req, beast_http::status status, std::string body);

}  // namespace registrar::adapters::http
