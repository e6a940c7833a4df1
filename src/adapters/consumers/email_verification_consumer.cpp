#include "adapters/consumers/email_verification_consumer.hpp"

#include <vector>

#include "app/events.hpp"
#include "domain/credentials.hpp"
#include "ports/mail_sender.hpp"

namespace registrar::adapters::consumers {

void EmailVerificationConsumer::handle(const domain::EventEnvelope& event) {
  if (is_other_event_type(event)) return;
  if (event.id.empty()) throw MalformedEvent("email-verification: the event has no id");
  if (processed_.is_processed(kName, event.id)) return;  // redelivery
  const auto user = app::parse_user_registered(event);
  if (!user) throw MalformedEvent(user.error());
  // A phone account has no address to verify (data.email null): nothing to send.
  if (!user->email) {
    processed_.try_mark_processed(kName, event.id);
    return;
  }
  domain::Expected<app::EmailCodeSent, domain::DomainError> sent = app::EmailCodeSent{};
  try {
    sent = send_(user->user_id, *user->email);
  } catch (const ports::MailRejected& e) {
    throw PermanentFailure(std::string("email-verification: the mail sender rejected the message: ") + e.what());
  }
  if (!sent) {
    switch (sent.error().kind) {
      case domain::ErrorKind::rate_limited:
        // A code went to this address a moment ago (this event's own, before a crash, or one the
        // user asked for): that code is the one to use.
        break;
      default:
        // Never quotes the address.
        throw PermanentFailure("email-verification: the event's address cannot get a code (" + sent.error().message + ")");
    }
  }
  processed_.try_mark_processed(kName, event.id);
}

bool EmailVerificationConsumer::handle_batch(std::span<const domain::EventEnvelope> events) {
  auto batch = sign_ups_to_apply(events, processed_, kName);
  if (!batch) return false;  // handle() says what is wrong, event by event
  std::vector<app::EmailCodeRecipient> recipients;
  for (const auto& [event, user] : batch->fresh) {
    if (!user.email) continue;  // a phone account: nothing to send
    if (!domain::Email::parse(*user.email)) return false;  // refused for good: handle() says so
    recipients.push_back({user.user_id, *user.email});
  }
  // A sender's failure throws, and the caller goes event by event. Otherwise each outcome is a code
  // sent or the address's cooldown (a code sent a moment ago, as in handle()): the events are done.
  for (const auto& sent : send_.send_all(recipients))
    if (!sent && sent.error().kind != domain::ErrorKind::rate_limited)
      throw PermanentFailure("email-verification: an address cannot get a code (" + sent.error().message + ")");
  processed_.mark_all_processed(kName, batch->ids);
  return true;
}

}  // namespace registrar::adapters::consumers
