#include "adapters/consumers/welcome_consumer.hpp"

#include <stdexcept>
#include <vector>

namespace registrar::adapters::consumers {

ports::MailMessage render_welcome(const app::UserRegistered& user, std::string_view product_name, std::string_view event_id) {
  const std::string product(product_name);
  ports::MailMessage m;
  m.channel = "email";
  m.to = user.email.value_or("");
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
  const auto user = app::parse_user_registered(event);
  if (!user) throw MalformedEvent(user.error());
  // A phone account has no address to welcome (data.email null): nothing to send, and the event is
  // done for this consumer.
  if (!user->email) {
    processed_.try_mark_processed(kName, event.id);
    return;
  }
  try {
    mail_.send(render_welcome(*user, product_name_, event.id));
  } catch (const ports::MailRejected& e) {
    throw PermanentFailure(std::string("welcome: the mail sender rejected the message: ") + e.what());
  }
  processed_.try_mark_processed(kName, event.id);
}

bool WelcomeConsumer::handle_batch(std::span<const domain::EventEnvelope> events) {
  auto batch = sign_ups_to_apply(events, processed_, kName);
  if (!batch) return false;  // handle() says what is wrong, event by event
  std::vector<ports::MailMessage> messages;
  for (const auto& [event, user] : batch->fresh)
    if (user.email) messages.push_back(render_welcome(user, product_name_, event->id));
  mail_.send_all(messages);  // a throw: the caller goes event by event, and handle() tells each
  processed_.mark_all_processed(kName, batch->ids);
  return true;
}

}  // namespace registrar::adapters::consumers
