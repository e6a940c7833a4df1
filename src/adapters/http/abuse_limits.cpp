#include "adapters/http/abuse_limits.hpp"

#include <exception>
#include <optional>

#include "adapters/http/bearer.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/problem.hpp"
#include "adapters/sodium/secret_compare.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::http::middleware {

namespace asio = boost::asio;
namespace json = boost::json;
using app::IdentifierKind;
using app::LimitedRoute;

namespace {

std::optional<LimitedRoute> limited_route(const Request& req) {
  if (req.method() != beast_http::verb::post) return std::nullopt;
  const std::string_view path = target_path(req.target());
  if (path == "/auth/register") return LimitedRoute::register_user;
  if (path == "/auth/login") return LimitedRoute::login;
  if (path == "/auth/verification-codes" || path == "/auth/email-verification" ||
      path == "/auth/email-verification/resend")
    return LimitedRoute::codes;
  if (path == "/users") return LimitedRoute::jobs;
  return std::nullopt;
}

std::optional<std::string_view> string_field(const json::object& body, std::string_view name) {
  const json::value* v = body.if_contains(name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string_view(v->get_string().data(), v->get_string().size());
}

// The canonical identifiers a request names (nothing when the body is not a JSON object: the
// handler answers that with its 4xx, and the per-IP bucket has been charged for it).
std::vector<std::string> identifiers_of(LimitedRoute route, const Request& req) {
  std::vector<std::string> ids;
  if (route == LimitedRoute::codes) return ids;
  auto parsed = parse_json_object(req);
  const auto* body = std::get_if<json::object>(&parsed);
  if (body == nullptr) return ids;
  auto add = [&](std::string_view field, IdentifierKind kind) {
    if (auto v = string_field(*body, field); v && !v->empty())
      ids.push_back(app::canonical_identifier(kind, *v));
  };
  switch (route) {
    case LimitedRoute::register_user:
      add("email", IdentifierKind::email);
      add("username", IdentifierKind::username);
      break;
    case LimitedRoute::login:
      // The identifier the login use case will look up (auth_api.cpp): email, else username, else phone.
      if (string_field(*body, "email")) add("email", IdentifierKind::login);
      else if (string_field(*body, "username")) add("username", IdentifierKind::login);
      else add("phone", IdentifierKind::phone);
      break;
    case LimitedRoute::jobs:
      add("phone", IdentifierKind::phone);
      break;
    case LimitedRoute::codes:
      break;
  }
  return ids;
}

template <class F>
asio::awaitable<std::invoke_result_t<F>> run_on(threads::BlockingRunner* runner, F f) {
  if (runner == nullptr) co_return f();
  co_return co_await runner->run(std::move(f));
}

}  // namespace

Middleware abuse_limits(AbuseLimitOptions options) {
  return [o = std::move(options)](const Request& req, RequestContext& ctx, Next next) -> asio::awaitable<Response> {
    const auto route = limited_route(req);
    if (!route) co_return co_await next(req, ctx);

    std::string client_ip = ctx.client_ip;
    if (!o.admin_token.empty()) {
      const std::string_view presented = bearer_token(req);
      if (!presented.empty() && sodium::same_secret(presented, o.admin_token)) client_ip.clear();
    }
    if (!client_ip.empty() && !o.trusted_proxies.empty()) {
      boost::system::error_code ec;
      auto address = asio::ip::make_address(client_ip, ec);
      if (!ec && o.trusted_proxies.trusts(unmapped(address))) client_ip.clear();
    }
    std::vector<std::string> ids = identifiers_of(*route, req);

    auto admit = [&limits = o.limits, r = *route, client_ip, ids] { return limits.admit(r, client_ip, ids); };
    const app::Admission admission = co_await run_on(o.runner, std::move(admit));
    if (!admission.allowed) {
      std::string detail = admission.locked_out
                               ? "Too many failed logins for this account; retry after the time given"
                               : "Too many requests; retry after the time given";
      co_return problem(req, ctx, {problems::rate_limited, std::move(detail), {},
                                   app::retry_after_seconds(admission.retry_after)});
    }

    // Not served (an outage surfaces as an exception that map_exceptions, further out, turns into
    // a 503; or as a 5xx answer): the identifiers' buckets are refilled (AbuseLimits::not_served).
    std::optional<Response> answered;
    std::exception_ptr failure;
    try {
      answered.emplace(co_await next(req, ctx));
    } catch (...) {
      failure = std::current_exception();
    }
    if ((failure || answered->result_int() >= 500) && !ids.empty()) {
      auto refill = [&limits = o.limits, r = *route, ids] {
        try {
          limits.not_served(r, ids);
        } catch (const ports::BackendUnavailable&) {  // the limiter's own store is down too: nothing to refill
        }
        return 0;
      };
      co_await run_on(o.runner, std::move(refill));
    }
    if (failure) std::rethrow_exception(failure);
    Response res = std::move(*answered);

    if (*route == LimitedRoute::login && !ids.empty() &&
        (res.result() == beast_http::status::unauthorized || res.result() == beast_http::status::ok)) {
      const bool failed = res.result() == beast_http::status::unauthorized;
      auto record = [&limits = o.limits, id = ids.front(), ip = std::move(client_ip), failed] {
        // The answer is decided: a store outage here loses one failure's count, never the answer.
        try {
          failed ? limits.login_failed(id, ip) : limits.login_succeeded(id, ip);
        } catch (const ports::BackendUnavailable&) {
        }
        return 0;
      };
      co_await run_on(o.runner, std::move(record));
    }
    co_return res;
  };
}

}  // namespace registrar::adapters::http::middleware
