#pragma once
// The built-in "webhook" consumer: POSTs each `user.registered` event, signed per the Standard
// Webhooks convention (https://www.standardwebhooks.com), to every configured URL.
//
// Transport: http:// or https://, per URL: the one-shot POST of adapters/http_client. Over https
// the receiver's certificate is verified (chain against the system's CA store or `ca_file`, and
// the URL's host name or IP address), with SNI; a TLS failure (an unverifiable certificate, a
// plain-HTTP port) is a failed try like a refused connection, never a retry in plain text.
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/consumers/builtin.hpp"  // PermanentFailure, MalformedEvent
#include "adapters/http_client/post.hpp"
#include "ports/event_bus.hpp"
#include "ports/processed_events.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::consumers {

struct WebhookOptions {
  std::vector<std::string> urls;  // http[s]://host[:port]/path[?query], at least one
  std::string secret;             // "whsec_<base64>" (the prefix may be omitted); ≥ 24 key bytes
  std::string ca_file;            // https: PEM bundle to verify receivers with; empty: the system's CAs
  std::chrono::milliseconds timeout{10'000};  // one POST: resolve, connect, send, response head
  int attempts = 3;                            // tries per URL within one handle()
  std::chrono::milliseconds backoff{200};      // wait before the 2nd try; doubled after each
  std::function<void(std::chrono::milliseconds)> sleep;  // empty → std::this_thread::sleep_for
  std::string user_agent = "registrar-webhook/0.1";
};

// Request: POST <url>, body = the event body exactly as received (event.payload), headers
//   content-type: application/json
//   webhook-id: <event id>                      (the same on every retry, so receivers dedupe)
//   webhook-timestamp: <unix seconds, at this try>
//   webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>
// where key = the base64-decoded part of the secret after "whsec_".
//
// Outcome per URL: 2xx → delivered. 408, 429, 5xx, connection refused/reset, timeout, a failed TLS
// handshake (its reason in the message: "certificate verify failed (…)", …) → transient:
// tried again after backoff, up to `attempts` tries. Other answers (3xx: redirects are not
// followed; 4xx) → permanent for this event.
//
// Idempotency: each URL that answered 2xx is recorded in ProcessedEvents under the consumer key
// webhook_url_key(url) ("webhook:<hash of the URL>"), so a redelivered event is not POSTed again
// to URLs that already have it; when every URL has it, the event is recorded under "webhook" and
// later deliveries are skipped at once. A crash between a 2xx and its record means one repeat
// POST with the same webhook-id, which the receiver can drop.
//
// handle() tries every URL that still needs the event, then:
//   all delivered → returns;
//   some transient failure left → throws ports::BackendUnavailable (the runner retries later);
//   otherwise (only permanent failures left) → throws PermanentFailure: the runner may
//   dead-letter the event at once.
// A malformed body throws MalformedEvent (a PermanentFailure) before anything is sent. Error
// messages name a URL by scheme://host:port and its hash only: a path or query may hold a token.
// Events whose envelope type names another event are ignored.
class WebhookConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "webhook";

  // Throws std::invalid_argument on bad options (no URL, a URL that is not http(s)://, a bad
  // secret, a CA file that does not load or that no https:// URL would use). `processed` and
  // `clock` (for webhook-timestamp) must outlive the consumer.
  WebhookConsumer(WebhookOptions options, ports::ProcessedEvents& processed, ports::Clock& clock);

  std::string name() const override { return kName; }
  void handle(const domain::EventEnvelope& event) override;

  struct Target {
    std::string url;              // as configured
    std::string key;              // webhook_url_key(url)
    http_client::PostUrl post;    // where to (its display: scheme://host:port, safe to log)
  };

 private:
  enum class Outcome { delivered, transient, permanent };
  Outcome post_once(const Target& t, const domain::EventEnvelope& event, std::string& error);
  Outcome deliver(const Target& t, const domain::EventEnvelope& event, std::string& error);

  WebhookOptions options_;
  ports::ProcessedEvents& processed_;
  ports::Clock& clock_;
  std::vector<unsigned char> key_;
  std::vector<Target> targets_;
  http_client::Poster poster_;
};

// The key bytes of a Standard Webhooks secret "whsec_<base64>" (or bare base64). Throws
// std::invalid_argument if it is not base64 or shorter than 24 bytes.
std::vector<unsigned char> decode_webhook_secret(std::string_view secret);

// "v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>"
std::string webhook_signature(std::span<const unsigned char> key, std::string_view id, std::int64_t timestamp,
                              std::string_view body);

// The ProcessedEvents consumer key of one URL: "webhook:" + 32 hex digits of SHA-256(url).
std::string webhook_url_key(std::string_view url);

}  // namespace registrar::adapters::consumers
