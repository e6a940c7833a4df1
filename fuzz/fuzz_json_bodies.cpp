// The JSON bodies of the endpoints that take one (POST /auth/register, POST /auth/login) → the real
// route handlers: media-type check, strict JSON parse (depth, UTF-8), field extraction, the domain
// rules (email, username, password policy), the use cases over in-memory ports, and the answers.
// Skips HTTP framing (fuzz_http_request covers it) so every execution is spent on the body.
//
// Input: byte 0 picks the endpoint (bit 0) and a Content-Type from kMediaTypes (bits 1–3); the rest
// is the body.
//
// Invariants (FUZZ_CHECK), besides check_response() on every answer:
//  - a non-JSON media type is 415; a body that is not a JSON object is 400 malformed_json, and one
//    that is never gets either;
//  - register answers only 201/400/409, login only 200/400/401; 409 only for the seeded account;
//  - after a 201: the user in the answer is the normalised input; logging in with the email as
//    given, or with the username in upper case, finds that user; a wrong password does not;
//    registering again is 409; the access token verifies to the user's id; the outbox holds one
//    user.registered event that the consumers' parser (app::parse_user_registered) and the audit line
//    accept, naming the same user.
#include "adapters/consumers/audit_consumer.hpp"
#include "app/events.hpp"
#include "domain/credentials.hpp"
#include "support/harness.hpp"

using namespace registrar;
using namespace registrar::fuzz;

namespace {

struct MediaType {
  std::string_view value;  // "" = no Content-Type header
  bool is_json;            // what the API must make of it
};
constexpr MediaType kMediaTypes[8] = {
    {"application/json", true},       {"application/json; charset=utf-8", true},
    {"Application/JSON", true},       {"application/json ;charset=UTF-8", true},
    {"application/json\t", true},     {"text/plain", false},
    {"", false},                      {"application/problem+json", false},
};

std::string problem_code(const http::Response& res) {
  const auto body = parse_json(res.body());
  const json::string* code = string_at(body->as_object(), "code");
  return code ? std::string(*code) : std::string();
}

http::Response post(World& world, std::string_view target, const json::object& body) {
  const http::Request req = json_request(beast_http::verb::post, target, json::serialize(body));
  http::RequestContext ctx{.request_id = http::request_id_for(req), .client_ip = "127.0.0.1", .peer_ip = "127.0.0.1"};
  http::Response res = world.handle(req, ctx);
  check_response(res, ctx);
  return res;
}

std::string ascii_upper(std::string s) {
  for (char& c : s)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  return s;
}

void after_registration(World& world, const json::object& sent, const http::Response& res) {
  const std::string email(sent.at("email").as_string());
  const std::string username(sent.at("username").as_string());
  const std::string password(sent.at("password").as_string());
  const auto body = parse_json(res.body());
  const json::object& user = body->as_object().at("user").as_object();
  // An email sign-up: no phone, no image, the address not verified yet.
  const auto* verified = user.if_contains("emailVerified");
  const auto* phone = user.if_contains("phone");
  const auto* image = user.if_contains("image");
  FUZZ_CHECK(user.size() == 7 && user.contains("id") && user.contains("email") && user.contains("username") &&
                 user.contains("createdAt") && verified != nullptr && verified->is_bool() && !verified->get_bool() &&
                 phone != nullptr && phone->is_null() && image != nullptr && image->is_null(),
             "the user in a 201 is not exactly {id, email, emailVerified: false, username, phone: null, image: null, "
             "createdAt}");
  const auto parsed_email = domain::Email::parse(email);
  FUZZ_CHECK(parsed_email && user.at("email").as_string() == parsed_email->value(), "201 for an email the rules refuse, or not normalised");
  FUZZ_CHECK(user.at("username").as_string() == username, "201 with another username than given");
  const std::string id(user.at("id").as_string());

  const auto token = world.tokens.verify(std::string(body->as_object().at("accessToken").as_string()),
                                         ports::TokenType::access);
  FUZZ_CHECK(token && token->subject == id, "the access token of a 201 does not verify to the new user");

  auto login_finds_user = [&](json::object login) {
    const http::Response r = post(world, "/auth/login", login);
    if (r.result_int() != 200) return false;
    return parse_json(r.body())->as_object().at("user").as_object().at("id").as_string() == id;
  };
  FUZZ_CHECK(login_finds_user({{"email", email}, {"password", password}}), "cannot log in with the email registered");
  FUZZ_CHECK(login_finds_user({{"username", ascii_upper(username)}, {"password", password}}),
             "cannot log in with the username in another case");
  FUZZ_CHECK(post(world, "/auth/login", {{"username", username}, {"password", password + "x"}}).result_int() == 401,
             "a wrong password is not 401");
  FUZZ_CHECK(post(world, "/auth/register", sent).result_int() == 409, "registering the same account twice is not 409");

  const auto outbox = world.users.outbox();
  FUZZ_CHECK(outbox.size() == 1, "a 201 without exactly one outbox event");
  const domain::EventEnvelope& event = outbox.front().event;
  FUZZ_CHECK(event.type == domain::kUserRegistered && event.aggregate_id == id, "the event is not user.registered of the user");
  const auto parsed = app::parse_user_registered(event);
  FUZZ_CHECK(parsed.has_value(), "the consumers' parser refuses the event of a registration");
  const app::UserRegistered& seen = *parsed;
  FUZZ_CHECK(seen.user_id == id && seen.email && user.at("email").as_string() == *seen.email && seen.username == username,
             "the consumers read another user from the event than the one registered");
  const auto line = parse_json(adapters::consumers::audit_line(event, world.clock.now()));
  FUZZ_CHECK(line && line->is_object() && line->as_object().at("payload").is_object(),
             "the audit line of a registration is not JSON with the event as payload");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool is_register = (data[0] & 1) == 0;
  const MediaType& media = kMediaTypes[(data[0] >> 1) & 7];
  const std::string_view target = is_register ? "/auth/register" : "/auth/login";
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  World world;
  const http::Request req = json_request(beast_http::verb::post, target, text, media.value);
  http::RequestContext ctx{.request_id = http::request_id_for(req), .client_ip = "127.0.0.1", .peer_ip = "127.0.0.1"};
  const http::Response res = world.handle(req, ctx);
  check_response(res, ctx);
  const unsigned status = res.result_int();

  if (!media.is_json) {
    FUZZ_CHECK(status == 415, "a body that is not application/json is not 415");
    return 0;
  }
  FUZZ_CHECK(status != 415, "415 for application/json");

  // An independent reading of the body: the same parser settings the API documents (depth 16).
  json::parse_options opts;
  opts.max_depth = 16;
  boost::system::error_code ec;
  const json::value sent = json::parse(text, ec, {}, opts);
  const bool is_object = !ec && sent.is_object();
  FUZZ_CHECK(is_object == !(status == 400 && problem_code(res) == "malformed_json"),
             "malformed_json exactly when the body is not a JSON object");
  if (!is_object) return 0;

  if (is_register) {
    FUZZ_CHECK(status == 201 || status == 400 || status == 409, "register answered another status");
    if (status == 409) {
      const json::object& o = sent.as_object();
      const auto email = domain::Email::parse(std::string(o.at("email").as_string()));
      const auto name = domain::Username::parse(std::string(o.at("username").as_string()));
      FUZZ_CHECK((email && email->canonical() == "seed@example.com") || (name && name->canonical() == "seeduser"),
                 "409 for an account that does not exist");
    }
    if (status == 201) after_registration(world, sent.as_object(), res);
  } else {
    FUZZ_CHECK(status == 200 || status == 400 || status == 401, "login answered another status");
    if (status == 200) {
      const json::string* password = string_at(sent.as_object(), "password");
      FUZZ_CHECK(password && *password == kSeedPassword, "login succeeded without the seeded user's password");
      const auto body = parse_json(res.body());
      FUZZ_CHECK(body->as_object().at("user").as_object().at("id").as_string() == "user-seed", "login found another user");
    }
  }
  return 0;
}
