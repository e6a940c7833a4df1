#include "adapters/mail/webhook_sms_sender.hpp"

#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <stdexcept>

#include "ports/errors.hpp"

namespace registrar::adapters::mail {

namespace http = boost::beast::http;

std::string sms_webhook_body(const ports::MailMessage& message) {
  boost::json::object o;
  o["channel"] = message.channel;
  o["to"] = message.to;
  o["body"] = message.body;
  if (message.code) o["code"] = *message.code;
  if (!message.session_id.empty()) o["session"] = message.session_id;
  o["idempotencyKey"] = message.idempotency_key;
  return boost::json::serialize(o);
}

SmsWebhookSender::SmsWebhookSender(SmsWebhookOptions options)
    : options_(std::move(options)),
      target_(http_client::parse_post_url(options_.url, "sms webhook")),
      poster_({.https = target_.tls, .ca_file = options_.ca_file}, "sms webhook") {
  if (options_.timeout <= std::chrono::milliseconds::zero())
    throw std::invalid_argument("sms webhook: the timeout must be positive");
}

SmsWebhookSender::~SmsWebhookSender() = default;

void SmsWebhookSender::send(const ports::MailMessage& message) {
  if (message.channel != "sms")
    throw std::invalid_argument("sms webhook: cannot send a message of channel \"" + message.channel + "\"");
  http::request<http::string_body> request{http::verb::post, target_.target, 11};
  request.set(http::field::host, target_.host_header);
  request.set(http::field::user_agent, options_.user_agent);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::connection, "close");
  if (!message.idempotency_key.empty()) request.set("Idempotency-Key", message.idempotency_key);
  if (!options_.bearer_secret.empty()) request.set(http::field::authorization, "Bearer " + options_.bearer_secret);
  request.body() = sms_webhook_body(message);
  request.prepare_payload();

  // Messages name the gateway by scheme and host, never the number or the code.
  unsigned status = 0;
  try {
    status = poster_.post(target_, request, options_.timeout);
  } catch (const http_client::PostFailed& e) {
    throw ports::BackendUnavailable(std::string("sms webhook ") + e.what());
  }
  if (status >= 200 && status < 300) return;
  const std::string what = "sms webhook " + target_.display + ": HTTP " + std::to_string(status);
  if (status == 408 || status == 429 || status >= 500 || status < 200) throw ports::BackendUnavailable(what);
  throw ports::MailRejected(what);
}

}  // namespace registrar::adapters::mail
