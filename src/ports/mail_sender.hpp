#pragma once
#include <optional>
#include <span>
#include <stdexcept>
#include <string>

namespace registrar::ports {

// One out-of-band message (verification code, welcome mail, …).
struct MailMessage {
  std::string channel = "email";    // "email" (an SMS sender would use "sms")
  std::string to{};                 // recipient address (or phone number for "sms")
  std::string subject{};
  std::string body{};               // plain text, UTF-8, lines separated by '\n'
  std::optional<std::string> code{};  // a verification code carried by the message, if any
  // Stable for one logical message (e.g. the event id that caused it). A sender uses it to make a
  // resend harmless where it can (a spool file of that name, a Message-ID header). Empty: the
  // message has no identity and every send is a new message.
  std::string idempotency_key{};
  // The verification session a code belongs to (channel "sms"), if any: lets a development sender
  // file the message under it without writing the phone number (adapters/mail/file_mail_sender.hpp),
  // and a gateway correlate deliveries.
  std::string session_id{};
};

// The message itself can never be sent (bad address, recipient refused with a permanent SMTP
// 5xx, …): retrying will not help.
struct MailRejected : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Hands messages to whatever delivers them: a file spool in development, SMTP, an HTTP webhook.
class MailSender {
 public:
  virtual ~MailSender() = default;
  // Returns once the message is durably accepted (written, or accepted by the relay). Sending a
  // message again with the same non-empty idempotency_key is a no-op where the transport allows
  // it. Throws MailRejected for a permanent failure, and ports::BackendUnavailable (or another
  // std::exception) when retrying later may succeed.
  virtual void send(const MailMessage& message) = 0;
  // Sends every message, as send() does each, and returns once all are durably accepted. A sender
  // that can share the cost of a batch (one sync for all) overrides it; this default sends them
  // one by one. On a throw, any of them may have been sent: sending them again is harmless where
  // their idempotency keys make it so.
  virtual void send_all(std::span<const MailMessage> messages) {
    for (const auto& m : messages) send(m);
  }
};

}  // namespace registrar::ports
