#include "adapters/http/jobs_api.hpp"

#include <boost/json.hpp>
#include "adapters/http/bearer.hpp"
#include "adapters/http/json_body.hpp"
#include "adapters/http/problem.hpp"
#include "domain/time.hpp"

namespace registrar::adapters::http {

namespace json = boost::json;
using beast_http::status;
using beast_http::verb;

namespace {

std::string_view state_name(ports::JobState s) {
  switch (s) {
    case ports::JobState::waiting: return "waiting";
    case ports::JobState::active: return "active";
    case ports::JobState::delayed: return "delayed";
    case ports::JobState::completed: return "completed";
    case ports::JobState::failed: return "failed";
    case ports::JobState::paused: return "paused";
    case ports::JobState::unknown: break;
  }
  return "unknown";
}

}  // namespace

void add_jobs_routes(Router& router, JobsApi api) {
  router.add(verb::post, "/users", [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    auto parsed = parse_json_object(req);
    if (auto* p = std::get_if<ProblemSpec>(&parsed)) co_return problem(req, ctx, std::move(*p));
    json::object& body = std::get<json::object>(parsed);
    // The fields of a Node producer's job. Their values are the pipeline's to judge (its messages
    // are the contract); here only their presence and types, so a client learns of a typo at once.
    FieldReader fields(body);
    for (auto name : {"id", "token", "phone", "password", "username"}) fields.required_string(name);
    fields.optional_string("image");
    std::vector<domain::FieldError> errors = fields.errors();
    const json::value* code = body.if_contains("code");
    if (code == nullptr || !(code->is_string() || code->is_int64() || code->is_uint64()))
      errors.push_back({"code", "required", "code is required (a string of digits)"});
    if (!errors.empty())
      co_return problem(req, ctx, domain::DomainError{domain::ErrorKind::validation_failed, "The request has invalid fields", errors});
    // Only the job's fields go into the queue (nothing else a client sends is stored).
    json::object data;
    for (auto name : {"id", "token", "code", "phone", "password", "username", "image"}) {
      if (const auto* v = body.if_contains(name)) data[name] = *v;
    }
    auto job = [&submit = api.submit, text = json::serialize(data)] { return submit(text); };
    std::string job_id = co_await api.queue_io.run(std::move(job));
    Response res = json_response(req, status::accepted, json::serialize(json::object{{"jobId", job_id}}));
    res.set(beast_http::field::location, "/jobs/" + job_id);
    co_return res;
  });

  router.add(verb::get, "/jobs/{id}", [api](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    auto job = [&get = api.get, id = std::string(ctx.param("id")), token = std::string(bearer_token(req))] { return get(id, token); };
    auto view = co_await api.queue_io.run(std::move(job));
    if (!view) co_return problem(req, ctx, view.error());
    json::object body{{"jobId", view->status.id},
                      {"state", state_name(view->status.state)},
                      {"attemptsMade", view->status.attempts_made}};
    if (view->status.finished_on) {
      body["finishedOn"] = domain::to_iso8601(domain::Timestamp{std::chrono::milliseconds{*view->status.finished_on}});
    }
    if (view->outcome) body["outcome"] = json::parse(app::outcome_json(*view->outcome));
    co_return json_response(req, status::ok, json::serialize(body));
  });
}

}  // namespace registrar::adapters::http
