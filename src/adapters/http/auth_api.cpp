#include "adapters/http/auth_api.hpp"

#include <boost/json.hpp>
#include "adapters/http/bearer.hpp"
#include "adapters/http/idempotency_key.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/problem.hpp"

namespace registrar::adapters::http {

namespace json = boost::json;
using beast_http::status;
using beast_http::verb;

namespace {

// The account as its owner sees it. `email` and `image` are null when there is none. `phone` is
// masked (+33••••••78) or null: enough for the owner to recognise the number, while a leaked
// access token (or a shoulder-surfed screen) does not give the number away; the full number is
// never needed by a client, which already knows it. Always the same keys, so clients need not
// probe for them.
json::object user_json(const domain::User& u, const std::optional<std::string>& phone_masked) {
  json::object o{{"id", u.id}};
  o["email"] = u.email ? json::value(*u.email) : json::value(nullptr);
  // Whether the address was proven (POST /auth/email-verification); false without one.
  o["emailVerified"] = u.email.has_value() && u.email_verified_at.has_value();
  o["username"] = u.username;
  o["phone"] = phone_masked ? json::value(*phone_masked) : json::value(nullptr);
  o["image"] = u.image ? json::value(*u.image) : json::value(nullptr);
  o["createdAt"] = domain::to_iso8601(u.created_at);
  return o;
}

Response auth_response(const Request& req, status st, const app::AuthResult& r) {
  json::object body{{"accessToken", r.token.token},
                    {"tokenType", "Bearer"},
                    {"expiresIn", r.token.expires_in.count()},
                    {"user", user_json(r.user, r.phone_masked)}};
  return json_response(req, st, json::serialize(body));
}

Response validation_problem(const Request& req, const RequestContext& ctx, std::vector<domain::FieldError> errors) {
  return problem(req, ctx, domain::DomainError{domain::ErrorKind::validation_failed, "The request has invalid fields", std::move(errors)});
}

}  // namespace

void add_auth_routes(Router& router, AuthApi api) {
  router.add(verb::post, "/auth/register", [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    auto key = idempotency_key(req);
    if (auto* bad = std::get_if<InvalidIdempotencyKey>(&key))
      co_return problem(req, ctx, ProblemSpec{problems::invalid_idempotency_key, std::move(bad->detail)});
    auto parsed = parse_json_object(req);
    if (auto* p = std::get_if<ProblemSpec>(&parsed)) co_return problem(req, ctx, std::move(*p));
    FieldReader fields(std::get<json::object>(parsed));
    app::RegisterCommand cmd{fields.required_string("email"), fields.required_string("username"), fields.required_string("password")};
    cmd.image = fields.optional_string("image").value_or("");
    if (auto* k = std::get_if<std::string>(&key)) cmd.idempotency_key = std::move(*k);
    if (!fields.errors().empty()) co_return validation_problem(req, ctx, fields.errors());
    // The job is a named local, not a temporary inside the co_await expression: GCC 12 destroys
    // such temporaries twice when the coroutine suspends.
    auto job = [&register_user = api.register_user, cmd = std::move(cmd)] { return register_user(cmd); };
    auto result = co_await api.cpu.run(std::move(job));
    if (!result) co_return problem(req, ctx, result.error());
    auto res = auth_response(req, status::created, *result);
    res.set(beast_http::field::location, "/users/me");
    // A retry with an Idempotency-Key answered with its first request's account (the name many
    // APIs use; the draft leaves the marking open).
    if (result->replayed) res.set("Idempotent-Replayed", "true");
    co_return res;
  });

  router.add(verb::post, "/auth/login", [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    auto parsed = parse_json_object(req);
    if (auto* p = std::get_if<ProblemSpec>(&parsed)) co_return problem(req, ctx, std::move(*p));
    FieldReader fields(std::get<json::object>(parsed));
    auto email = fields.optional_string("email");
    auto username = fields.optional_string("username");
    auto phone = fields.optional_string("phone");
    auto password = fields.required_string("password");
    if (!email && !username && !phone && fields.errors().empty())
      co_return validation_problem(req, ctx, {{"email", "required", "Give an email, a username or a phone"}});
    if (!fields.errors().empty()) co_return validation_problem(req, ctx, fields.errors());
    // {phone, password} for phone accounts; {email|username, password} as before.
    app::LoginCommand cmd = phone && !email && !username
                                ? app::LoginCommand{std::move(*phone), std::move(password), true}
                                : app::LoginCommand{email ? *email : *username, std::move(password)};
    auto job = [&login = api.login, cmd = std::move(cmd)] { return login(cmd); };
    auto result = co_await api.cpu.run(std::move(job));
    if (!result) co_return problem(req, ctx, result.error());
    co_return auth_response(req, status::ok, *result);
  });

  router.add(verb::get, "/users/me", [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    std::string token(bearer_token(req));
    auto job = [&current_user = api.current_user, token = std::move(token)] { return current_user(token); };
    auto result = co_await api.store.run(std::move(job));
    if (!result) co_return problem(req, ctx, result.error());
    co_return json_response(req, status::ok, json::serialize(user_json(result->user, result->phone_masked)));
  });

  router.add(verb::get, "/healthz", [](const Request& req, RequestContext&) -> boost::asio::awaitable<Response> {
    co_return json_response(req, status::ok, R"({"status":"ok"})");
  });

  router.add(verb::get, "/readyz", [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    auto job = [&api] { api.readiness_check(); return 0; };
    co_await api.store.run(std::move(job));
    co_return json_response(req, status::ok, R"({"status":"ready"})");
  });
}

}  // namespace registrar::adapters::http
