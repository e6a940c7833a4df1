#include "adapters/http/problem.hpp"

#include <algorithm>
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
      return {problems::validation_failed, e.message, e.fields};
    case ErrorKind::conflict:
      return {problems::conflict, e.message};
    case ErrorKind::invalid_credentials:
      return {problems::invalid_credentials, e.message};
    case ErrorKind::unauthenticated:
      return {problems::unauthenticated, e.message};
    case ErrorKind::not_found:
      return {problems::not_found, e.message};
    case ErrorKind::already_verified:
      return {problems::already_verified, e.message};
    case ErrorKind::idempotency_key_mismatch:
      return {problems::idempotency_key_mismatch, e.message};
    case ErrorKind::idempotency_key_in_flight:
      return {problems::idempotency_key_in_flight, e.message};
    case ErrorKind::rate_limited:
      return {problems::rate_limited, e.message, {}, std::max(e.retry_after, std::chrono::seconds{1})};
  }
  return {problems::internal_error, "The request could not be completed"};
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
  body["type"] = "urn:registrar:problem:" + std::string(spec.type.code);
  body["title"] = spec.type.title;
  body["status"] = static_cast<int>(spec.type.status);
  body["detail"] = spec.detail;
  body["code"] = spec.type.code;
  body["requestId"] = ctx.request_id;
  if (!spec.errors.empty()) {
    json::array errors;
    for (const auto& f : spec.errors) errors.push_back({{"field", f.field}, {"code", f.code}, {"message", f.message}});
    body["errors"] = std::move(errors);
  }
  // An extension member (RFC 9457 §3.2) beside the header, for clients that read only the body.
  if (spec.retry_after.count() > 0) body["retryAfter"] = spec.retry_after.count();
  Response res{spec.type.status, req.version()};
  res.set(beast_http::field::content_type, "application/problem+json");
  res.set(beast_http::field::cache_control, "no-store");
  if (spec.type.status == status::unauthorized) res.set(beast_http::field::www_authenticate, "Bearer");
  if (spec.retry_after.count() > 0) {
    res.set(beast_http::field::retry_after, std::to_string(spec.retry_after.count()));
  } else if (spec.type.status == status::service_unavailable) {
    res.set(beast_http::field::retry_after, "1");
  }
  res.body() = json::serialize(body);
  res.prepare_payload();
  return res;
}

Response problem(const Request& req, const RequestContext& ctx, const domain::DomainError& error) {
  return problem(req, ctx, spec_for(error));
}

const ProblemType& problem_type_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ports::Overloaded&) {
    return problems::overloaded;
  } catch (const ports::BackendUnavailable&) {
    return problems::backend_unavailable;
  } catch (...) {
    return problems::internal_error;
  }
}

std::string internal_message(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

Response problem(const Request& req, const RequestContext& ctx, std::exception_ptr error) {
  const ProblemType& type = problem_type_of(error);
  std::string detail = "The request could not be completed";
  if (&type == &problems::overloaded) detail = "Too many requests in progress; retry shortly";
  if (&type == &problems::backend_unavailable) detail = "A backend is unavailable; the request was not applied, retry shortly";
  return problem(req, ctx, {type, std::move(detail)});
}

}  // namespace registrar::adapters::http
