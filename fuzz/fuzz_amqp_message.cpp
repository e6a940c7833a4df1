// An AMQP delivery as the consumer runner sees it (properties + body, anyone may publish to the
// exchange) → decode_message() → what the built-in consumers do with the decoded event that is
// pure: the audit line (audit_line), the user.registered parser the welcome and webhook consumers
// share (app::parse_user_registered), the welcome consumer's handle() over in-memory mail and
// ProcessedEvents, its message rendering and the SMTP dot-stuffing of that message, and the webhook
// signature. No broker, no files, no network.
//
// Input (FuzzedDataProvider): flags for which properties are present, message_id and type (AMQP
// short strings, ≤ 255 bytes), the timestamp property (any 64-bit value), the x-attempts count, the
// body.
//
// Invariants (FUZZ_CHECK):
//  - decode: the payload is the body unchanged; the id is the message_id, else "body-" + 32 hex
//    digits that depend on the body only; poison (error) exactly when the body is not a JSON object,
//    no type can be found, or message_id/type are not UTF-8 text; decoding is deterministic;
//  - times: a "timestamp"/"createdAt" that parse_iso8601 accepts is in the year written, and
//    to_iso8601 of it parses back to the same instant;
//  - audit: the line is one line of JSON whose eventId/type are the event's and whose occurredAt
//    parses back to the event's time: the audit file's crash recovery re-reads these lines, so an
//    unparsable line would stop it;
//  - welcome: a body parse_user_registered accepts yields non-empty fields, exactly one message to
//    that address with the event id as idempotency key, and a redelivery sends nothing; the
//    dot-stuffed body is CRLF-only, ends with CRLF "." CRLF and un-stuffs to the original lines;
//  - webhook: the signature is "v1," + base64 of 32 bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <boost/json.hpp>
#include <vector>

#include "adapters/amqp/consumer_runner.hpp"
#include "adapters/consumers/audit_consumer.hpp"
#include "adapters/consumers/builtin.hpp"
#include "adapters/consumers/webhook_consumer.hpp"
#include "adapters/consumers/welcome_consumer.hpp"
#include "adapters/mail/smtp_mail_sender.hpp"
#include "app/events.hpp"
#include "domain/credentials.hpp"
#include "support/check.hpp"
#include "support/fakes.hpp"

using namespace registrar;
namespace amqp = adapters::amqp;
namespace consumers = adapters::consumers;
namespace json = boost::json;

namespace {

class RecordingMail final : public ports::MailSender {
 public:
  void send(const ports::MailMessage& m) override { sent.push_back(m); }
  std::vector<ports::MailMessage> sent;
};

bool is_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// An ISO 8601 time from a body: if parse_iso8601 accepts it, the time it gives is in the year the
// text says, and to_iso8601 writes it so that it parses back to the same instant.
void check_time_text(const json::value* v) {
  if (v == nullptr || !v->is_string()) return;
  const std::string_view s(v->get_string().data(), v->get_string().size());
  const auto t = domain::parse_iso8601(s);
  if (!t) return;
  FUZZ_CHECK(domain::parse_iso8601(domain::to_iso8601(*t)) == t, "to_iso8601 of a parsed time does not parse back");
  long long year = 0;
  std::size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  for (; i < s.size() && s[i] != '-'; ++i) year = year * 10 + (s[i] - '0');
  if (s[0] == '-') year = -year;
  const std::chrono::year_month_day ymd{std::chrono::floor<std::chrono::days>(*t)};
  FUZZ_CHECK(static_cast<int>(ymd.year()) == year, "parse_iso8601 gave a time in another year than the text");
}

void check_decoded(const amqp::InboundMessage& in, const amqp::DecodedMessage& out) {
  const domain::EventEnvelope& e = out.event;
  FUZZ_CHECK(e.payload == in.body, "the payload is not the body unchanged");
  FUZZ_CHECK(e.attempts == in.previous_failures, "attempts differ from x-attempts");
  const bool id_is_text = !in.message_id || domain::utf8_length(*in.message_id);
  const bool type_is_text = !in.type || domain::utf8_length(*in.type);
  if (in.message_id && !in.message_id->empty() && id_is_text) {
    FUZZ_CHECK(e.id == *in.message_id, "the id is not the message_id");
  } else {
    FUZZ_CHECK(e.id.size() == 5 + 32 && e.id.starts_with("body-") && is_hex(e.id.substr(5)),
               "a derived id that is not body-<32 hex>");
  }
  if (!id_is_text || !type_is_text) {
    FUZZ_CHECK(out.error.has_value(), "a message_id or type that is not UTF-8 text was not refused");
    return;
  }
  boost::system::error_code ec;
  const json::value body = json::parse(in.body, ec);
  const bool object = !ec && body.is_object();
  if (!object) {
    FUZZ_CHECK(out.error.has_value(), "a body that is not a JSON object was not refused");
    return;
  }
  check_time_text(body.as_object().if_contains("timestamp"));
  if (const json::value* d = body.as_object().if_contains("data"); d && d->is_object())
    check_time_text(d->as_object().if_contains("createdAt"));
  FUZZ_CHECK(out.error.has_value() == e.type.empty(), "refused with a type, or accepted without one");
  if (in.type && !in.type->empty()) FUZZ_CHECK(e.type == *in.type, "the type property was not used");
}

void check_audit_line(const domain::EventEnvelope& e, domain::Timestamp received_at) {
  const std::string line = adapters::consumers::audit_line(e, received_at);
  FUZZ_CHECK(line.find('\n') == std::string::npos, "an audit line with a raw newline");
  boost::system::error_code ec;
  const json::value v = json::parse(line, ec);
  FUZZ_CHECK(!ec && v.is_object(), "an audit line that is not a JSON object (recovery could not read it back)");
  const json::object& o = v.as_object();
  const json::value* id = o.if_contains("eventId");
  const json::value* type = o.if_contains("type");
  FUZZ_CHECK(id && id->is_string() && id->get_string() == e.id, "the audit line's eventId is not the event id");
  FUZZ_CHECK(type && type->is_string() && type->get_string() == e.type, "the audit line's type is not the event type");
  const json::value* at = o.if_contains("occurredAt");
  FUZZ_CHECK(at && at->is_string(), "no occurredAt");
  const auto back = domain::parse_iso8601(std::string_view(at->get_string().data(), at->get_string().size()));
  FUZZ_CHECK(back && *back == e.occurred_at, "occurredAt does not parse back to the event time");
}

// dot_stuff(): lines to CRLF, a leading '.' doubled, then CRLF "." CRLF.
void check_dot_stuffed(std::string_view text, std::string_view stuffed) {
  FUZZ_CHECK(stuffed.ends_with("\r\n.\r\n") || stuffed == ".\r\n", "dot-stuffed text does not end with CRLF . CRLF");
  std::vector<std::string_view> original;
  for (std::size_t start = 0, i = 0; i <= text.size(); ++i) {
    if (i == text.size()) {
      if (start < text.size()) original.push_back(text.substr(start));
      break;
    }
    if (text[i] != '\r' && text[i] != '\n') continue;
    original.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < stuffed.size(); ++i) {
    if (stuffed[i] == '\n') FUZZ_CHECK(i > 0 && stuffed[i - 1] == '\r', "a bare LF in dot-stuffed text");
    if (stuffed[i] == '\r') FUZZ_CHECK(i + 1 < stuffed.size() && stuffed[i + 1] == '\n', "a bare CR in dot-stuffed text");
    if (stuffed[i] == '\n') {
      lines.emplace_back(stuffed.substr(start, i - 1 - start));
      start = i + 1;
    }
  }
  FUZZ_CHECK(!lines.empty() && lines.back() == ".", "no terminating dot line");
  lines.pop_back();
  FUZZ_CHECK(lines.size() == original.size(), "dot-stuffing changed the number of lines");
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::string_view l = lines[i];
    if (l.starts_with('.')) {
      FUZZ_CHECK(l.starts_with(".."), "a line starting with a single dot (ends DATA early)");
      l.remove_prefix(1);
    }
    FUZZ_CHECK(l == original[i], "dot-stuffing changed a line's content");
  }
}

void check_welcome(const domain::EventEnvelope& event) {
  const auto user = app::parse_user_registered(event);
  RecordingMail mail;
  testing::MemoryProcessedEvents processed;
  consumers::WelcomeConsumer welcome(mail, processed, "registrar");
  bool malformed = false;
  try {
    welcome.handle(event);
  } catch (const consumers::MalformedEvent&) {
    malformed = true;
  }
  if (consumers::is_other_event_type(event)) {
    FUZZ_CHECK(mail.sent.empty() && !malformed, "the welcome consumer acted on another event type");
    return;
  }
  FUZZ_CHECK(malformed == !user.has_value() || (event.id.empty() && malformed),
             "the welcome consumer and parse_user_registered disagree on a body");
  if (!user) return;
  FUZZ_CHECK(!user->user_id.empty() && (!user->email || !user->email->empty()) && !user->username.empty(),
             "an empty field accepted");
  if (!user->email) {  // a phone account (data.email null): nothing to send
    FUZZ_CHECK(mail.sent.empty(), "a welcome message for an account without email");
    return;
  }
  FUZZ_CHECK(mail.sent.size() == 1 && mail.sent[0].to == *user->email && mail.sent[0].idempotency_key == event.id,
             "not exactly one welcome message to the user, keyed by the event id");
  welcome.handle(event);
  FUZZ_CHECK(mail.sent.size() == 1, "a redelivered event sent a second welcome message");

  const std::string stuffed = adapters::mail::dot_stuff(mail.sent[0].body);
  check_dot_stuffed(mail.sent[0].body, stuffed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  amqp::InboundMessage msg;
  const auto flags = in.ConsumeIntegral<std::uint8_t>();
  if (flags & 1) msg.message_id = in.ConsumeRandomLengthString(255);
  if (flags & 2) msg.type = in.ConsumeRandomLengthString(255);
  if (flags & 4) msg.timestamp = in.ConsumeIntegral<std::uint64_t>();
  if (flags & 8) msg.previous_failures = in.ConsumeIntegralInRange<int>(0, 1'000'000);
  msg.body = in.ConsumeRemainingBytesAsString();

  const amqp::DecodedMessage decoded = amqp::decode_message(msg);
  check_decoded(msg, decoded);
  const amqp::DecodedMessage again = amqp::decode_message(msg);
  FUZZ_CHECK(again.event.id == decoded.event.id && again.event.type == decoded.event.type &&
                 again.event.occurred_at == decoded.event.occurred_at && again.error == decoded.error,
             "decoding the same message twice differs");
  if (decoded.error) return 0;  // poison: the runner dead-letters it; no consumer sees it

  const domain::EventEnvelope& event = decoded.event;
  check_audit_line(event, testing::FixedClock{}.now());
  check_welcome(event);

  static const std::vector<unsigned char> key(32, 0x5a);
  const std::string sig = consumers::webhook_signature(key, event.id, 1'760'891'835, event.payload);
  FUZZ_CHECK(sig.size() == 3 + 44 && sig.starts_with("v1,"), "a webhook signature that is not v1,<base64 of 32 bytes>");
  return 0;
}
