#include "adapters/http/problem.hpp"

#include <boost/json.hpp>
#include "ports/errors.hpp"

namespace registrar::adapters::http {

namespace json = boost::json;
using beast_http::status;

namespace {

ProblemSpec spec_for(const domain::DomainError& e) {
  using domain::ErrorKind;
  switch (e.kind) {
    case ErrorKind::validation_failed:
      return {status::bad_request, "validation_failed", "Invalid input", e.message, e.fields};
    case ErrorKind::conflict:
      return {status::conflict, "conflict", "Account already exists", e.message};
    case ErrorKind::invalid_credentials:
      return {status::unauthorized, "invalid_credentials", "Invalid credentials", e.message};
    case ErrorKind::unauthenticated:
      return {status::unauthorized, "unauthenticated", "Authentication required", e.message};
    case ErrorKind::not_found:
      return {status::not_found, "not_found", "Not found", e.message};
  }
  return {status::internal_server_error, "internal_error", "Internal error", "The request could not be completed"};
}

}  // namespace

Response json_response(const Request& req, beast_http::status st, std::string body) {
  Response res{st, req.version()};
  res.set(beast_http::field::content_type, "application/json");
  res.set(beast_http::field::cache_control, "no-store");
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

Response problem(const Request& req, const RequestContext& ctx, ProblemSpec spec) {
  json::object body;
  body["type"] = "urn:registrar:problem:" + std::string(spec.code);
  body["title"] = spec.title;
  body["status"] = static_cast<int>(spec.status);
  body["detail"] = spec.detail;
  body["code"] = spec.code;
  body["requestId"] = ctx.request_id;
  if (!spec.errors.empty()) {
    json::array errors;
    for (const auto& f : spec.errors) errors.push_back({{"field", f.field}, {"code", f.code}, {"message", f.message}});
    body["errors"] = std::move(errors);
  }
  Response res{spec.status, req.version()};
  res.set(beast_http::field::content_type, "application/problem+json");
  res.set(beast_http::field::cache_control, "no-store");
  if (spec.status == status::unauthorized) res.set(beast_http::field::www_authenticate, "Bearer");
  if (spec.status == status::service_unavailable) res.set(beast_http::field::retry_after, "1");
  res.body() = json::serialize(body);
  res.prepare_payload();
  return res;
}

Response problem(const Request& req, const RequestContext& ctx, const domain::DomainError& error) {
  return problem(req, ctx, spec_for(error));
}

Response problem(const Request& req, const RequestContext& ctx, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ports::Overloaded&) {
    return problem(req, ctx, {status::service_unavailable, "overloaded", "Service busy", "Too many requests in progress; retry shortly"});
  } catch (const ports::BackendUnavailable&) {
    return problem(req, ctx, {status::service_unavailable, "backend_unavailable", "Service unavailable", "A backend is unavailable; the request was not applied, retry shortly"});
  } catch (...) {
    return problem(req, ctx, {status::internal_server_error, "internal_error", "Internal error", "The request could not be completed"});
  }
}

}  // namespace registrar::adapters::http
