#include "adapters/http/verification_api.hpp"

#include <boost/json.hpp>

#include "adapters/http/json_body.hpp"
#include "adapters/http/problem.hpp"
#include "ports/mail_sender.hpp"

namespace registrar::adapters::http {

namespace json = boost::json;
using beast_http::status;
using beast_http::verb;

void add_verification_routes(Router& router, VerificationApi api) {
  router.add(verb::post, "/auth/verification-codes",
             [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
               auto parsed = parse_json_object(req);
               if (auto* p = std::get_if<ProblemSpec>(&parsed)) co_return problem(req, ctx, std::move(*p));
               FieldReader fields(std::get<json::object>(parsed));
               app::IssueCodeCommand cmd{fields.required_string("phone")};
               if (!fields.errors().empty())
                 co_return problem(req, ctx, {problems::validation_failed, "The request has invalid fields", fields.errors()});
               // A named local, not a temporary in the co_await expression (GCC 12, see auth_api.cpp).
               auto job = [&issue = api.issue_code, cmd = std::move(cmd)]()
                   -> domain::Expected<app::VerificationSession, domain::DomainError> {
                 try {
                   return issue(cmd);
                 } catch (const ports::MailRejected&) {
                   // The gateway refuses to text this number for good: the number's fault.
                   return domain::DomainError{domain::ErrorKind::validation_failed,
                                              "The request has invalid fields",
                                              {{"phone", "undeliverable", "No text message can be sent to this number"}}};
                 }
               };
               auto result = co_await api.blocking.run(std::move(job));
               if (!result) co_return problem(req, ctx, result.error());
               json::object body{{"id", result->id},
                                 {"token", result->token.token},
                                 {"tokenType", "Bearer"},
                                 {"expiresIn", result->expires_in.count()}};
               co_return json_response(req, status::created, json::serialize(body));
             });
}

}  // namespace registrar::adapters::http
