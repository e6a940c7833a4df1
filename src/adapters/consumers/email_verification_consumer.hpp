#pragma once
// The built-in "email-verification" consumer: a verification code to each new email account.
#include <span>
#include <string>

#include "adapters/consumers/builtin.hpp"
#include "app/email_verification.hpp"
#include "ports/event_bus.hpp"
#include "ports/processed_events.hpp"

namespace registrar::adapters::consumers {

// For each `user.registered` event with an email (data.email not null): sends that address a
// fresh verification code (app::SendEmailVerificationCode: the code store keeps its keyed hash
// under the user's id, the mail sender gets the code), then records the event in ProcessedEvents.
// A phone account (data.email null) gets nothing; its event is recorded as done.
//
// Idempotency: an event already recorded is skipped without sending. A crash between the mail and
// the record makes the redelivery ask for a code again while the address is in its resend
// cooldown: refused (rate_limited), nothing sent, and the event is recorded as done. So one
// event never sends two codes within the cooldown, and at most one code exists per user anyway
// (a new one replaces the old).
//
// Failures: a malformed body → MalformedEvent; an address the use case refuses
// (validation_failed) or the sender rejects for good (ports::MailRejected) → PermanentFailure;
// anything else passes through (retry later; the code was withdrawn, so it does not count against
// the address). Events whose envelope type names another event are ignored.
//
// Batches (handle_batch): the events not yet recorded are checked in one query, their codes are
// issued and mailed together (SendEmailVerificationCode::send_all: one sync for all the messages
// with the file sender), and their ids recorded in one transaction. A batch with an event that
// handle() would refuse (malformed, an address that cannot get a code) is left to handle(), event
// by event, before anything is sent.
class EmailVerificationConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "email-verification";

  // `send` and `processed` must outlive the consumer.
  EmailVerificationConsumer(const app::SendEmailVerificationCode& send, ports::ProcessedEvents& processed)
      : send_(send), processed_(processed) {}

  std::string name() const override { return kName; }
  void handle(const domain::EventEnvelope& event) override;
  bool handle_batch(std::span<const domain::EventEnvelope> events) override;

 private:
  const app::SendEmailVerificationCode& send_;
  ports::ProcessedEvents& processed_;
};

}  // namespace registrar::adapters::consumers
