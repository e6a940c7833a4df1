#include "adapters/http/email_verification_api.hpp"

#include <boost/json.hpp>

#include "adapters/http/bearer.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/problem.hpp"
#include "ports/mail_sender.hpp"

namespace registrar::adapters::http {

namespace json = boost::json;
using beast_http::status;
using beast_http::verb;

void add_email_verification_routes(Router& router, EmailVerificationApi api) {
  router.add(verb::post, "/auth/email-verification",
             [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
               auto parsed = parse_json_object(req);
               if (auto* p = std::get_if<ProblemSpec>(&parsed)) co_return problem(req, ctx, std::move(*p));
               FieldReader fields(std::get<json::object>(parsed));
               std::string code = fields.required_string("code");
               // The token is checked first (in the use case): without one, 401 whatever the body.
               auto job = [&verify = api.verify, token = std::string(bearer_token(req)), code = std::move(code),
                           field_errors = fields.errors()]() -> domain::Expected<app::EmailVerified, domain::DomainError> {
                 if (!field_errors.empty()) {
                   auto unauthenticated = verify(token, "");  // the token's verdict first
                   if (!unauthenticated && unauthenticated.error().kind != domain::ErrorKind::validation_failed)
                     return unauthenticated.error();
                   return domain::DomainError{domain::ErrorKind::validation_failed, "The request has invalid fields", field_errors};
                 }
                 return verify(token, code);
               };
               // A named local, not a temporary in the co_await expression (GCC 12, see auth_api.cpp).
               auto result = co_await api.blocking.run(std::move(job));
               if (!result) co_return problem(req, ctx, result.error());
               json::object body{{"emailVerified", true}, {"emailVerifiedAt", domain::to_iso8601(result->verified_at)}};
               co_return json_response(req, status::ok, json::serialize(body));
             });

  router.add(verb::post, "/auth/email-verification/resend",
             [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
               auto job = [&resend = api.resend, token = std::string(bearer_token(req))]()
                   -> domain::Expected<app::EmailCodeSent, domain::DomainError> {
                 try {
                   return resend(token);
                 } catch (const ports::MailRejected&) {
                   // The mail relay refuses this address for good: the address's fault.
                   return domain::DomainError{domain::ErrorKind::validation_failed,
                                              "The request has invalid fields",
                                              {{"email", "undeliverable", "No message can be sent to this address"}}};
                 }
               };
               auto result = co_await api.blocking.run(std::move(job));
               if (!result) co_return problem(req, ctx, result.error());
               json::object body{{"expiresIn", result->expires_in.count()}};
               co_return json_response(req, status::accepted, json::serialize(body));
             });
}

}  // namespace registrar::adapters::http
