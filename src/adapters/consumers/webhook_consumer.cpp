#include "adapters/consumers/webhook_consumer.hpp"

#include <sodium.h>

#include <boost/beast/http.hpp>

#include <algorithm>
#include <set>
#include <span>
#include <stdexcept>
#include <thread>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"
#include "app/events.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::consumers {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kSecretPrefix = "whsec_";
constexpr std::size_t kMinKeyBytes = 24;  // the Standard Webhooks spec: secrets of 24 to 64 bytes

// An id we can put in a header and in the signed content unchanged: printable ASCII, no spaces.
bool valid_event_id(std::string_view id) {
  return !id.empty() && id.size() <= 255 && std::all_of(id.begin(), id.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
}

WebhookConsumer::Target parse_target(const std::string& url) {
  WebhookConsumer::Target t;
  t.url = url;
  t.key = webhook_url_key(url);
  t.post = http_client::parse_post_url(url, "webhook");
  return t;
}

}  // namespace

std::vector<unsigned char> decode_webhook_secret(std::string_view secret) {
  sodium::ensure_sodium();
  if (secret.starts_with(kSecretPrefix)) secret.remove_prefix(kSecretPrefix.size());
  if (secret.empty()) throw std::invalid_argument("webhook: the secret is empty");
  std::optional<std::string> decoded = sodium::base64_decode(secret, sodium_base64_VARIANT_ORIGINAL);
  if (!decoded) decoded = sodium::base64_decode(secret, sodium_base64_VARIANT_ORIGINAL_NO_PADDING);
  if (!decoded) throw std::invalid_argument("webhook: the secret is not whsec_<base64>");
  std::vector<unsigned char> key(decoded->begin(), decoded->end());
  if (key.size() < kMinKeyBytes)
    throw std::invalid_argument("webhook: the secret is too short (at least " + std::to_string(kMinKeyBytes) +
                                " bytes of key, base64-encoded after whsec_)");
  return key;
}

std::string webhook_signature(std::span<const unsigned char> key, std::string_view id, std::int64_t timestamp,
                              std::string_view body) {
  sodium::ensure_sodium();
  const std::string ts = std::to_string(timestamp);
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, key.data(), key.size());
  auto update = [&](std::string_view part) {
    crypto_auth_hmacsha256_update(&state, reinterpret_cast<const unsigned char*>(part.data()), part.size());
  };
  update(id);
  update(".");
  update(ts);
  update(".");
  update(body);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_final(&state, mac);
  sodium_memzero(&state, sizeof state);
  return "v1," + sodium::base64_encode(mac, sodium_base64_VARIANT_ORIGINAL);
}

std::string webhook_url_key(std::string_view url) {
  sodium::ensure_sodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(url.data()), url.size());
  return std::string(WebhookConsumer::kName) + ":" + sodium::hex_encode(std::span(digest, 16));
}

WebhookConsumer::WebhookConsumer(WebhookOptions options, ports::ProcessedEvents& processed, ports::Clock& clock)
    : options_(std::move(options)), processed_(processed), clock_(clock) {
  if (options_.urls.empty()) throw std::invalid_argument("webhook: no URL configured");
  if (options_.secret.empty()) throw std::invalid_argument("webhook: no signing secret configured");
  if (options_.attempts < 1) throw std::invalid_argument("webhook: attempts must be at least 1");
  if (options_.timeout <= std::chrono::milliseconds::zero()) throw std::invalid_argument("webhook: timeout must be positive");
  if (options_.backoff < std::chrono::milliseconds::zero()) throw std::invalid_argument("webhook: backoff must not be negative");
  key_ = decode_webhook_secret(options_.secret);
  std::set<std::string> seen;
  for (const auto& url : options_.urls) {
    if (!seen.insert(url).second) throw std::invalid_argument("webhook: a URL is listed twice");
    targets_.push_back(parse_target(url));
  }
  const bool https = std::any_of(targets_.begin(), targets_.end(), [](const Target& t) { return t.post.tls; });
  if (!https && !options_.ca_file.empty())
    throw std::invalid_argument("webhook: a CA file is set but no URL is https://");
  // Loads the CA certificates now: a file that does not load stops the start, not the first event.
  poster_ = http_client::Poster({.https = https, .ca_file = options_.ca_file}, "webhook");
  if (!options_.sleep) options_.sleep = [](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); };
}

WebhookConsumer::Outcome WebhookConsumer::post_once(const Target& t, const domain::EventEnvelope& event,
                                                    std::string& error) {
  const auto now = std::chrono::floor<std::chrono::seconds>(clock_.now()).time_since_epoch().count();
  http::request<http::string_body> request{http::verb::post, t.post.target, 11};
  request.set(http::field::host, t.post.host_header);
  request.set(http::field::user_agent, options_.user_agent);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::connection, "close");
  request.set("webhook-id", event.id);
  request.set("webhook-timestamp", std::to_string(now));
  request.set("webhook-signature", webhook_signature(key_, event.id, now, event.payload));
  request.body() = event.payload;
  request.prepare_payload();

  unsigned status = 0;
  try {
    status = poster_.post(t.post, request, options_.timeout);
  } catch (const http_client::PostFailed& e) {
    error = e.what();
    error += " (" + t.key + ")";
    return Outcome::transient;
  }
  if (status >= 200 && status < 300) return Outcome::delivered;
  error = t.post.display + " (" + t.key + "): HTTP " + std::to_string(status);
  if (status == 408 || status == 429 || status >= 500) return Outcome::transient;
  return Outcome::permanent;
}

WebhookConsumer::Outcome WebhookConsumer::deliver(const Target& t, const domain::EventEnvelope& event,
                                                  std::string& error) {
  auto wait = options_.backoff;
  for (int attempt = 1;; ++attempt) {
    const Outcome outcome = post_once(t, event, error);
    if (outcome != Outcome::transient || attempt >= options_.attempts) return outcome;
    options_.sleep(wait);
    wait *= 2;
  }
}

void WebhookConsumer::handle(const domain::EventEnvelope& event) {
  if (is_other_event_type(event)) return;
  if (!valid_event_id(event.id)) throw MalformedEvent("webhook: the event id is missing or not printable ASCII");
  if (processed_.is_processed(kName, event.id)) return;  // redelivery of a fully delivered event
  // Only well-formed events are sent on: receivers get the format DESIGN.md promises.
  if (auto user = app::parse_user_registered(event); !user) throw MalformedEvent(user.error());

  bool transient = false;
  std::size_t failed = 0;
  std::string errors;
  for (const auto& t : targets_) {
    if (processed_.is_processed(t.key, event.id)) continue;  // this URL has it already
    std::string error;
    switch (deliver(t, event, error)) {
      case Outcome::delivered:
        processed_.try_mark_processed(t.key, event.id);
        continue;
      case Outcome::transient:
        transient = true;
        break;
      case Outcome::permanent:
        break;
    }
    ++failed;
    (errors += errors.empty() ? "" : "; ") += error;
  }
  if (failed == 0) {
    processed_.try_mark_processed(kName, event.id);
    return;
  }
  const std::string what = "webhook: event " + event.id + " not delivered to " + std::to_string(failed) + " of " +
                           std::to_string(targets_.size()) + " URLs: " + errors;
  if (transient) throw ports::BackendUnavailable(what);
  throw PermanentFailure(what);
}

}  // namespace registrar::adapters::consumers
