#include "adapters/consumers/builtin.hpp"

#include <array>
#include <unordered_set>

#include "adapters/consumers/audit_consumer.hpp"
#include "adapters/consumers/email_verification_consumer.hpp"
#include "adapters/consumers/socketio_consumer.hpp"
#include "adapters/consumers/webhook_consumer.hpp"
#include "adapters/consumers/welcome_consumer.hpp"

namespace registrar::adapters::consumers {

namespace {

constexpr std::array<BuiltinConsumerInfo, 5> kBuiltins{{
    {"audit", "appends one JSON line per event to <data-dir>/audit.jsonl"},
    {"welcome", "sends a welcome message through the mail sender (default: <data-dir>/spool/mail, messages.jsonl)"},
    {"webhook", "POSTs each event, signed (Standard Webhooks), to the configured URLs"},
    {"email-verification", "mails each new email account a verification code (POST /auth/email-verification)"},
    {"socketio", "pushes each event as `user.registered` to the account's Socket.IO sockets and the admins room (serve only)"},
}};

}  // namespace

bool is_other_event_type(const domain::EventEnvelope& event) {
  return !event.type.empty() && event.type != domain::kUserRegistered;
}

std::span<const BuiltinConsumerInfo> builtin_consumers() { return kBuiltins; }

std::optional<SignUpBatch> sign_ups_to_apply(std::span<const domain::EventEnvelope> events,
                                             ports::ProcessedEvents& processed, std::string_view consumer) {
  SignUpBatch batch;
  batch.ids.reserve(events.size());
  for (const auto& event : events) {
    if (is_other_event_type(event)) continue;
    if (event.id.empty()) return std::nullopt;
    batch.ids.push_back(event.id);
  }
  const auto recorded = processed.processed_among(consumer, batch.ids);  // one query for the batch
  std::unordered_set<std::string_view> seen;
  for (const auto& event : events) {
    if (is_other_event_type(event) || recorded.contains(event.id) || !seen.insert(event.id).second) continue;
    auto user = app::parse_user_registered(event);
    if (!user) return std::nullopt;
    batch.fresh.emplace_back(&event, std::move(*user));
  }
  return batch;
}

std::unique_ptr<ports::EventConsumer> make_builtin_consumer(std::string_view name, const BuiltinConsumerDeps& deps) {
  if (name == AuditConsumer::kName)
    return std::make_unique<AuditConsumer>(deps.data_dir / "audit.jsonl", deps.processed, deps.clock, deps.log,
                                           AuditRotation{.max_bytes = deps.audit_max_bytes, .keep = deps.audit_keep});
  if (name == WelcomeConsumer::kName)
    return std::make_unique<WelcomeConsumer>(deps.mail, deps.processed, deps.product_name);
  if (name == WebhookConsumer::kName) {
    WebhookOptions options;
    options.urls = deps.webhook_urls;
    options.secret = deps.webhook_secret;
    options.ca_file = deps.webhook_ca_file;
    options.timeout = deps.webhook_timeout;
    options.attempts = deps.webhook_attempts;
    options.backoff = deps.webhook_backoff;
    return std::make_unique<WebhookConsumer>(std::move(options), deps.processed, deps.clock);
  }
  if (name == EmailVerificationConsumer::kName) {
    if (deps.email_verification == nullptr)
      throw std::invalid_argument("needs the verification code store of the API (--redis-url when it runs apart; not with --code-layout node)");
    return std::make_unique<EmailVerificationConsumer>(*deps.email_verification, deps.processed);
  }
  if (name == SocketIoConsumer::kName) {
    if (deps.socketio == nullptr)
      throw std::invalid_argument("runs inside `serve` only: it pushes to the Socket.IO clients connected to that process");
    return std::make_unique<SocketIoConsumer>(*deps.socketio);
  }
  std::string known;
  for (const auto& c : kBuiltins) (known += known.empty() ? "" : ", ") += c.name;
  throw std::invalid_argument("unknown consumer \"" + std::string(name) + "\" (built-in: " + known + ")");
}

}  // namespace registrar::adapters::consumers
