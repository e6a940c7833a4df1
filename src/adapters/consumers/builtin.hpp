#pragma once
// The built-in consumers of `user.registered` (audit, welcome, webhook, email-verification, socketio): their registry for
// `consume --list` / `consume NAME` / `serve --consumers`, and what they share (the failure that
// retrying cannot fix). The event's body is read with app::parse_user_registered (app/events.hpp).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "app/email_verification.hpp"
#include "app/events.hpp"
#include "domain/event.hpp"
#include "ports/event_bus.hpp"
#include "ports/mail_sender.hpp"
#include "ports/processed_events.hpp"
#include "ports/room_broadcaster.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::consumers {

// Thrown by a consumer's handle() when retrying the same event cannot succeed: the body is
// malformed, a webhook receiver answered 4xx (other than 408/429), the mail relay refused the
// recipient. A runner MAY dead-letter such an event at once instead of retrying it with backoff;
// treating it like any other exception (retry, then dead-letter) is also correct, only slower.
struct PermanentFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The event has no usable id, or its body is not the `user.registered` wire format of DESIGN.md
// (the reason from app::parse_user_registered).
struct MalformedEvent : PermanentFailure {
  using PermanentFailure::PermanentFailure;
};

// True for an envelope this package's consumers must leave alone: its `type` is set and names
// another event (a queue bound to a shared routing key may carry future event kinds). An empty
// type (a producer that set no AMQP `type`) is decided by the body.
bool is_other_event_type(const domain::EventEnvelope& event);

// What a consumer that takes batches (handle_batch) must still do with one: `fresh`, the sign-ups
// not yet recorded for `consumer`, each once (a delivery may come twice within a batch), parsed;
// and `ids`, every sign-up's id, to record once the batch is applied. Other event types are left
// out. nullopt when an event has no id or a malformed body: the batch is then left to handle(),
// which tells each event's fault (one query of ProcessedEvents either way).
struct SignUpBatch {
  std::vector<std::string> ids;
  std::vector<std::pair<const domain::EventEnvelope*, app::UserRegistered>> fresh;
};
std::optional<SignUpBatch> sign_ups_to_apply(std::span<const domain::EventEnvelope> events,
                                             ports::ProcessedEvents& processed, std::string_view consumer);

struct BuiltinConsumerInfo {
  std::string_view name;
  std::string_view description;
};

// audit, welcome, webhook, email-verification, socketio — in that order.
std::span<const BuiltinConsumerInfo> builtin_consumers();

// Everything a built-in consumer may need. The references must outlive the consumers made.
struct BuiltinConsumerDeps {
  std::filesystem::path data_dir{};        // audit → <data-dir>/audit.jsonl
  ports::ProcessedEvents& processed;
  ports::Clock& clock;
  const logging::Logger& log;              // audit: what its crash repair did
  ports::MailSender& mail;                 // welcome
  std::string product_name = "registrar";  // welcome: "Welcome to <product name>"
  std::vector<std::string> webhook_urls{}; // webhook: http(s):// URLs, at least one
  std::string webhook_secret{};            // webhook: "whsec_<base64>" (Standard Webhooks)
  std::string webhook_ca_file{};           // webhook: https: PEM CA bundle; empty: the system's CAs
  std::chrono::milliseconds webhook_timeout{10'000};  // one POST: connect + send + response head
  int webhook_attempts = 3;                            // tries per URL within one handle()
  std::chrono::milliseconds webhook_backoff{200};      // before the 2nd try; doubled after each
  // email-verification: the use case that stores and mails a code (its code store must be the one
  // the API checks codes in); none where this process cannot issue codes.
  const app::SendEmailVerificationCode* email_verification = nullptr;
  // socketio: the Socket.IO hub of this process; none where it has none (`consume`).
  ports::RoomBroadcaster* socketio = nullptr;
  // audit: rotate audit.jsonl past this size (0: never), keeping this many rotated files.
  std::uint64_t audit_max_bytes = 0;
  unsigned audit_keep = 5;
};

// Builds the named consumer. Throws std::invalid_argument for an unknown name or a consumer whose
// settings are missing/invalid (webhook without URLs or secret, …), with a message fit for the
// user; std::system_error if the audit file cannot be opened.
std::unique_ptr<ports::EventConsumer> make_builtin_consumer(std::string_view name, const BuiltinConsumerDeps& deps);

}  // namespace registrar::adapters::consumers
