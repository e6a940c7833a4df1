#pragma once
// Text messages (verification codes) through an HTTP webhook: the webhook IS the SMS gateway (a
// small relay in front of a provider, or the provider's own HTTP API behind an adapter), so it
// gets the real number. One POST per message:
//
//   POST <url>    Content-Type: application/json    Idempotency-Key: <key>    [Authorization: Bearer <secret>]
//   {"channel":"sms","to":"+33612345678","body":"…","code":"123456","session":"<id>","idempotencyKey":"<key>"}
//
// (`code` and `session` only when the message has them.) http:// or https://; over https the
// server's certificate is verified (chain against the system's CA store or `ca_file`, and the URL's
// host name or IP address), with SNI: the one-shot POST of adapters/http_client, which the event
// webhook uses too.
//
// Outcomes of send():
//  * a 2xx answer: accepted;
//  * ports::MailRejected — any other 4xx: the gateway refuses this message (bad number, …);
//  * ports::BackendUnavailable — cannot connect, TLS failure (incl. an unverifiable certificate),
//    timeout (the whole exchange is bounded by `timeout`), a 5xx, 408 or 429, or an answer that
//    is not HTTP. The message may or may not have gone out; a resend carries the same
//    Idempotency-Key for the gateway to drop duplicates.
// Only channel "sms" is for it: another channel is refused (std::invalid_argument).
// Each send() runs its own short-lived io_context on the calling thread (callers run it off the
// I/O threads); thread-safe.
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/http_client/post.hpp"
#include "ports/mail_sender.hpp"

namespace registrar::adapters::mail {

struct SmsWebhookOptions {
  std::string url;            // http://HOST[:PORT]/PATH or https://…
  std::string bearer_secret;  // empty: no Authorization header
  std::string ca_file;        // https: PEM bundle to verify the server with; empty: the system's CAs
  std::chrono::milliseconds timeout{10'000};
  std::string user_agent = "registrar";
};

class SmsWebhookSender final : public ports::MailSender {
 public:
  // Throws std::invalid_argument for a URL that is not http(s)://host…, with credentials in it, or
  // a non-positive timeout. The messages never quote the URL's query (it may hold a key).
  explicit SmsWebhookSender(SmsWebhookOptions options);
  ~SmsWebhookSender() override;

  void send(const ports::MailMessage& message) override;


 private:
  SmsWebhookOptions options_;
  http_client::PostUrl target_;
  http_client::Poster poster_;
};

// The JSON body POSTed for `message` (for tests and docs).
std::string sms_webhook_body(const ports::MailMessage& message);

}  // namespace registrar::adapters::mail
