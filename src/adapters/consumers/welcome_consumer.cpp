#include "adapters/consumers/welcome_consumer.hpp"

#include <boost/json.hpp>

#include <stdexcept>

namespace registrar::adapters::consumers {

namespace json = boost::json;

// parse_user_registered() and is_other_event_type() (declared in builtin.hpp) live here, not in
// builtin.cpp: builtin.cpp's factory references every consumer, the audit adapter included, and a
// static link of just the welcome or webhook consumer must not drag the registry in with it.

namespace {

const json::string& required_string(const json::object& o, std::string_view key, std::string_view where) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) throw MalformedEvent("user.registered: missing " + std::string(where) + std::string(key));
  const json::string* s = v->if_string();
  if (s == nullptr || s->empty())
    throw MalformedEvent("user.registered: " + std::string(where) + std::string(key) + " is not a non-empty string");
  return *s;
}

domain::Timestamp required_time(const json::object& o, std::string_view key, std::string_view where) {
  const json::string& s = required_string(o, key, where);
  auto t = domain::parse_iso8601(std::string_view(s.data(), s.size()));
  if (!t) throw MalformedEvent("user.registered: " + std::string(where) + std::string(key) + " is not an ISO 8601 time");
  return *t;
}

}  // namespace

UserRegistered parse_user_registered(const domain::EventEnvelope& event) {
  std::error_code ec;
  json::value body = json::parse(event.payload, ec);
  if (ec) throw MalformedEvent("user.registered: the body is not JSON");
  const json::object* o = body.if_object();
  if (o == nullptr) throw MalformedEvent("user.registered: the body is not a JSON object");
  if (required_string(*o, "event", "") != domain::kUserRegistered)
    throw MalformedEvent("user.registered: \"event\" is not \"user.registered\"");
  if (required_string(*o, "pattern", "") != domain::kUserRegistered)
    throw MalformedEvent("user.registered: \"pattern\" is not \"user.registered\"");
  const json::value* data_value = o->if_contains("data");
  const json::object* data = data_value ? data_value->if_object() : nullptr;
  if (data == nullptr) throw MalformedEvent("user.registered: \"data\" is missing or not an object");
  UserRegistered u;
  u.user_id = std::string(required_string(*data, "id", "data."));
  u.email = std::string(required_string(*data, "email", "data."));
  u.username = std::string(required_string(*data, "username", "data."));
  u.created_at = required_time(*data, "createdAt", "data.");
  u.timestamp = required_time(*o, "timestamp", "");
  return u;
}

bool is_other_event_type(const domain::EventEnvelope& event) {
  return !event.type.empty() && event.type != domain::kUserRegistered;
}

ports::MailMessage render_welcome(const UserRegistered& user, std::string_view product_name, std::string_view event_id) {
  const std::string product(product_name);
  ports::MailMessage m;
  m.channel = "email";
  m.to = user.email;
  m.subject = "Welcome to " + product;
  m.body = "Hello " + user.username + ",\n"
           "\n"
           "welcome to " + product + "! Your account has been created and you can sign in now.\n"
           "\n"
           "If you did not sign up, you can ignore this message.\n"
           "\n"
           "The " + product + " team\n";
  m.idempotency_key = std::string(event_id);
  return m;
}

WelcomeConsumer::WelcomeConsumer(ports::MailSender& mail, ports::ProcessedEvents& processed, std::string product_name)
    : mail_(mail), processed_(processed), product_name_(std::move(product_name)) {
  if (product_name_.empty() || product_name_.find_first_of("\r\n") != std::string::npos)
    throw std::invalid_argument("welcome consumer: the product name must be one non-empty line");
}

void WelcomeConsumer::handle(const domain::EventEnvelope& event) {
  if (is_other_event_type(event)) return;
  if (event.id.empty()) throw MalformedEvent("welcome: the event has no id");
  if (processed_.is_processed(kName, event.id)) return;  // redelivery
  const UserRegistered user = parse_user_registered(event);
  try {
    mail_.send(render_welcome(user, product_name_, event.id));
  } catch (const ports::MailRejected& e) {
    throw PermanentFailure(std::string("welcome: the mail sender rejected the message: ") + e.what());
  }
  processed_.try_mark_processed(kName, event.id);
}

}  // namespace registrar::adapters::consumers
