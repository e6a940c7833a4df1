#pragma once
// The built-in "welcome" consumer: one welcome message per registered user.
#include <span>
#include <string>
#include <string_view>

#include "adapters/consumers/builtin.hpp"
#include "app/events.hpp"
#include "ports/event_bus.hpp"
#include "ports/mail_sender.hpp"
#include "ports/processed_events.hpp"

namespace registrar::adapters::consumers {

// For each `user.registered` event: renders a plain-text welcome message and hands it to the
// MailSender, with idempotency_key = the event id; then records the event in ProcessedEvents.
//
// Idempotency: an event already recorded is skipped without sending. The effect comes first and
// the record second, so a crash (or a ProcessedEvents outage) between them means the redelivery
// sends again — with the same idempotency key, which the file sender turns into a no-op (its
// spool file exists) and the SMTP sender into the same Message-ID. Recording first could lose
// the message for good; this order can only repeat it, and mostly not even that.
//
// Failures: a malformed body → MalformedEvent; a message the sender rejects for good
// (ports::MailRejected) → PermanentFailure; anything else the sender throws passes through
// (retry later). Events whose envelope type names another event are ignored.
//
// Batches (handle_batch): the events not yet recorded are checked in one query, their messages go
// to the sender together (MailSender::send_all: one sync for all with the file sender) and their
// ids are recorded in one transaction, in that order, so a batch keeps the guarantees above at
// the cost of about one event. A batch with a malformed event is left to handle(), event by event.
class WelcomeConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "welcome";

  // `product_name` must be non-empty, one line. `mail` and `processed` must outlive the consumer.
  WelcomeConsumer(ports::MailSender& mail, ports::ProcessedEvents& processed, std::string product_name = "registrar");

  std::string name() const override { return kName; }
  void handle(const domain::EventEnvelope& event) override;
  bool handle_batch(std::span<const domain::EventEnvelope> events) override;

 private:
  ports::MailSender& mail_;
  ports::ProcessedEvents& processed_;
  std::string product_name_;
};

// The welcome message for `user` (subject "Welcome to <product>", body greeting the username).
ports::MailMessage render_welcome(const app::UserRegistered& user, std::string_view product_name, std::string_view event_id);

}  // namespace registrar::adapters::consumers
