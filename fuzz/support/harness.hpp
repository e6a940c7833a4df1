#pragma once
// What the fuzz targets share: the invariant check, a silent logger, and an in-memory sign-up API
// (the real Router, auth routes, use cases and HS256 token service over the fakes of
// tests/support/fakes.hpp), plus the checks every HTTP response must pass.
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

#include "adapters/http/auth_api.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/middleware.hpp"
#include "adapters/http/server.hpp"
#include "adapters/jwt/hs256_token_service.hpp"
#include "adapters/logging/json_logger.hpp"
#include "support/check.hpp"
#include "support/fakes.hpp"


namespace registrar::fuzz {

namespace http = adapters::http;
namespace beast_http = boost::beast::http;
namespace json = boost::json;

// Logs nowhere (the router logs the internal message of a failed request).
inline const adapters::logging::Logger& null_logger() {
  static const adapters::logging::Logger log{
      std::make_shared<spdlog::logger>("fuzz", std::make_shared<spdlog::sinks::null_sink_mt>())};
  return log;
}

// The JWT key of the fuzz world (32 bytes, the minimum).
inline constexpr std::string_view kJwtSecret = "fuzz-secret-fuzz-secret-fuzz-sec";

inline adapters::jwt::Hs256Options jwt_options() {
  adapters::jwt::Hs256Options o;
  o.secret = std::string(kJwtSecret);
  return o;
}

// A user that exists in every fresh World: log in as "seeduser" / "seed@example.com" with
// kSeedPassword, or use the token seed_token() gives.
inline constexpr std::string_view kSeedPassword = "correct horse battery staple";

// The sign-up API over in-memory ports, fresh per input so that every run is deterministic.
// Hashing is the fake ("hash:" + password): argon2 would cost ~50 ms a run and parses nothing.
struct World {
  testing::FakeUserStore users;
  testing::FakeHasher hasher;
  testing::FixedClock clock;
  adapters::jwt::Hs256TokenService tokens{jwt_options(), clock};
  testing::SequentialIds ids{"id-"};
  testing::CountingSignal signal;
  testing::FakePiiCipher pii;
  app::CreateAccount create_account{users, hasher, pii, clock, ids, signal};
  app::KeysInFlight keys_in_flight;
  app::RegisterUser register_user{create_account, tokens, &keys_in_flight};
  app::Login login{users, hasher, tokens, pii};
  app::CurrentUser current_user{tokens, users, pii};
  adapters::threads::BlockingRunner inline_runner{0, 0};  // 0 threads: runs the use case inline
  http::Router router;
  http::Pipeline pipeline{router};  // the service's middleware, as `registrar serve` runs it

  World() {
    http::middleware::use_standard(pipeline, null_logger(), {});
    http::add_auth_routes(router, {register_user, login, current_user, inline_runner, inline_runner, [] {}});
    domain::User seed;
    seed.id = "user-seed";
    seed.email = "seed@example.com";
    seed.username = "seeduser";
    seed.password_hash = "hash:" + std::string(kSeedPassword);
    seed.created_at = clock.now();
    users.seed(seed, "seed@example.com", "seeduser");
  }

  std::string seed_token() { return tokens.issue("user-seed", ports::TokenType::access).token; }

  // The request through the pipeline to completion (the handlers never wait on I/O here).
  http::Response handle(const http::Request& req, http::RequestContext& ctx) {
    boost::asio::io_context ioc;
    std::optional<http::Response> out;
    std::exception_ptr error;
    boost::asio::co_spawn(ioc, pipeline.handle(req, ctx), [&](std::exception_ptr e, http::Response r) {
      error = e;
      out = std::move(r);
    });
    ioc.run();
    FUZZ_CHECK(!error, "the pipeline let an exception escape (it must map every failure to a response)");
    FUZZ_CHECK(out.has_value(), "the pipeline did not complete");
    return std::move(*out);
  }

  http::Response handle(const http::Request& req) {
    http::RequestContext ctx{.request_id = http::request_id_for(req), .client_ip = "127.0.0.1", .peer_ip = "127.0.0.1"};
    return handle(req, ctx);
  }
};

inline http::Request json_request(beast_http::verb method, std::string_view target, std::string body,
                                  std::string_view content_type = "application/json") {
  http::Request req{method, target, 11};
  if (!content_type.empty()) req.set(beast_http::field::content_type, content_type);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

inline std::optional<json::value> parse_json(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return std::nullopt;
  return v;
}

inline const json::string* string_at(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v ? v->if_string() : nullptr;
}

// What every response of the API must satisfy, whatever the request:
//  - no 5xx: the fakes never fail, so a 500/503 means an exception nobody expected;
//  - Content-Length matches the body; the media type is JSON or problem+json;
//  - a problem body is RFC 9457 as the README documents it: type = urn:registrar:problem:<code>,
//    status = the HTTP status, requestId = the request's id, errors = [{field, code, message}];
//  - the response, serialised as the server writes it, parses back to the same status and body.
inline void check_response(const http::Response& res, const http::RequestContext& ctx) {
  const unsigned status = res.result_int();
  FUZZ_CHECK(status >= 200 && status < 500, "a response with an unexpected status (5xx with fake backends)");
  FUZZ_CHECK(res[beast_http::field::content_length] == std::to_string(res.body().size()),
             "Content-Length differs from the body size");
  const std::string_view type = res[beast_http::field::content_type];
  FUZZ_CHECK(type == "application/json" || type == "application/problem+json", "unexpected Content-Type");
  const auto body = parse_json(res.body());
  FUZZ_CHECK(body && body->is_object(), "a response body that is not a JSON object");
  const json::object& o = body->as_object();
  if (type == "application/problem+json") {
    FUZZ_CHECK(status >= 400, "problem+json on a success status");
    const json::string* code = string_at(o, "code");
    const json::string* ptype = string_at(o, "type");
    const json::string* rid = string_at(o, "requestId");
    FUZZ_CHECK(code && !code->empty() && string_at(o, "title") && string_at(o, "detail"), "problem fields missing");
    FUZZ_CHECK(ptype && *ptype == "urn:registrar:problem:" + std::string(*code), "problem type is not urn:…:<code>");
    FUZZ_CHECK(rid && *rid == ctx.request_id, "problem requestId differs from the request's id");
    const json::value* st = o.if_contains("status");
    FUZZ_CHECK(st && st->is_int64() && st->get_int64() == status, "problem status differs from the HTTP status");
    if (const json::value* errors = o.if_contains("errors")) {
      FUZZ_CHECK(status == 400 && errors->is_array() && !errors->get_array().empty(), "bad problem errors");
      for (const auto& e : errors->get_array()) {
        FUZZ_CHECK(e.is_object() && string_at(e.get_object(), "field") && string_at(e.get_object(), "code") &&
                       string_at(e.get_object(), "message"),
                   "a field error without field/code/message");
      }
    }
    if (status == 401)
      FUZZ_CHECK(res[beast_http::field::www_authenticate] == "Bearer", "401 without WWW-Authenticate: Bearer");
  } else {
    FUZZ_CHECK(status < 300, "a JSON (non-problem) body on an error status");
  }

  // Serialise as Beast writes it to the socket, and parse that back.
  std::ostringstream wire;
  wire << res;
  beast_http::response_parser<beast_http::string_body> parser;
  parser.eager(true);
  boost::beast::error_code ec;
  const std::string bytes = wire.str();
  parser.put(boost::asio::buffer(bytes), ec);
  FUZZ_CHECK(!ec && parser.is_done(), "the serialised response does not parse");
  FUZZ_CHECK(parser.get().result_int() == status && parser.get().body() == res.body(),
             "the serialised response parses to another status or body");
}

}  // namespace registrar::fuzz
