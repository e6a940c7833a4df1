#include "adapters/amqp/consumer_runner.hpp"

#include <sodium.h>

#include <boost/json.hpp>

#include <algorithm>
#include <stdexcept>

#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"
#include "domain/credentials.hpp"  // utf8_length
#include "ports/errors.hpp"

namespace registrar::adapters::amqp {

namespace json = boost::json;

namespace {

constexpr std::string_view kAttemptsHeader = "x-attempts";
constexpr std::size_t kMaxErrorHeader = 512;
constexpr std::uint64_t kMaxTimestampSeconds = 253'402'300'799;  // 9999-12-31T23:59:59Z

std::string body_id(std::string_view body) {
  sodium::ensure_sodium();
  unsigned char digest[16];
  crypto_generichash(digest, sizeof digest, reinterpret_cast<const unsigned char*>(body.data()), body.size(), nullptr, 0);
  return "body-" + sodium::hex_encode(digest);
}

const json::string* string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr ? v->if_string() : nullptr;
}

// An integer header value of any AMQP integer kind (or digits in a string); nullopt otherwise.
std::optional<long long> integer_of(const amqp_field_value_t& v) {
  switch (v.kind) {
    case AMQP_FIELD_KIND_I8: return v.value.i8;
    case AMQP_FIELD_KIND_U8: return v.value.u8;
    case AMQP_FIELD_KIND_I16: return v.value.i16;
    case AMQP_FIELD_KIND_U16: return v.value.u16;
    case AMQP_FIELD_KIND_I32: return v.value.i32;
    case AMQP_FIELD_KIND_U32: return v.value.u32;
    case AMQP_FIELD_KIND_I64: return v.value.i64;
    case AMQP_FIELD_KIND_U64: return static_cast<long long>(std::min<std::uint64_t>(v.value.u64, 1'000'000));
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES: {
      std::string s = string_of(v.value.bytes);
      if (s.empty() || s.size() > 9 || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
      return std::stoll(s);
    }
    default: return std::nullopt;
  }
}

bool is_death_header(std::string_view key) {
  // Added by the broker when it dead-letters (from our delay queues); not carried over, so
  // headers do not grow with every retry.
  return key == "x-death" || key.starts_with("x-first-death-") || key.starts_with("x-last-death-");
}

std::optional<std::string> property_string(const amqp_basic_properties_t& p, amqp_flags_t flag, amqp_bytes_t value) {
  if ((p._flags & flag) == 0) return std::nullopt;
  return string_of(value);
}

InboundMessage inbound_of(const amqp_envelope_t& envelope) {
  const amqp_basic_properties_t& p = envelope.message.properties;
  InboundMessage m;
  m.message_id = property_string(p, AMQP_BASIC_MESSAGE_ID_FLAG, p.message_id);
  m.type = property_string(p, AMQP_BASIC_TYPE_FLAG, p.type);
  if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) m.timestamp = p.timestamp;
  m.body = string_of(envelope.message.body);
  if (p._flags & AMQP_BASIC_HEADERS_FLAG)
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const auto& entry = p.headers.entries[i];
      if (string_of(entry.key) == kAttemptsHeader)
        if (auto n = integer_of(entry.value); n && *n > 0) m.previous_failures = static_cast<int>(std::min(*n, 1'000'000LL));
    }
  return m;
}

}  // namespace

DecodedMessage decode_message(const InboundMessage& message) {
  DecodedMessage out;
  auto& e = out.event;
  e.payload = message.body;
  e.attempts = message.previous_failures;
  // AMQP short strings are bytes, but the id and type go into JSON (audit lines, log lines) and must
  // read back the same (the audit log's crash recovery matches ids it re-reads): bytes that are not
  // UTF-8 text make the message poison, and such an id is not used, even in the log.
  const bool id_is_text = !message.message_id || domain::utf8_length(*message.message_id).has_value();
  const bool type_is_text = !message.type || domain::utf8_length(*message.type).has_value();
  e.id = message.message_id && !message.message_id->empty() && id_is_text ? *message.message_id : body_id(message.body);
  if (message.type && !message.type->empty() && type_is_text) e.type = *message.type;
  if (!id_is_text || !type_is_text) {
    out.error = !id_is_text ? "the message_id property is not UTF-8 text" : "the type property is not UTF-8 text";
    return out;
  }
  // The property is any 64-bit count of seconds; past year 9999 it is ignored (in milliseconds the
  // largest values overflow: undefined behaviour, found by fuzz/fuzz_amqp_message).
  if (message.timestamp && *message.timestamp <= kMaxTimestampSeconds)
    e.occurred_at = domain::Timestamp(std::chrono::seconds(static_cast<long long>(*message.timestamp)));

  std::error_code ec;
  json::value body = json::parse(message.body, ec);
  if (ec || !body.is_object()) {
    out.error = "the message body is not a JSON object";
    return out;
  }
  const json::object& o = body.as_object();
  if (e.type.empty()) {
    if (const auto* s = string_field(o, "event"); s != nullptr && !s->empty())
      e.type = std::string(*s);
    else if (const auto* s2 = string_field(o, "pattern"); s2 != nullptr && !s2->empty())
      e.type = std::string(*s2);
  }
  if (const auto* data = o.if_contains("data"); data != nullptr && data->is_object())
    if (const auto* id = string_field(data->as_object(), "id")) e.aggregate_id = std::string(*id);
  if (const auto* ts = string_field(o, "timestamp"))
    if (auto t = domain::parse_iso8601(std::string_view(ts->data(), ts->size()))) e.occurred_at = *t;
  if (e.type.empty()) out.error = "the message has no event type (no type property, event or pattern field)";
  return out;
}

AmqpConsumerRunner::AmqpConsumerRunner(AmqpOptions amqp, ConsumerOptions options, ports::EventConsumer& consumer,
                                       const logging::Logger& log, logging::FailureEpisodes& episodes)
    : amqp_(std::move(amqp)),
      endpoint_(parse_amqp_url(amqp_.url)),
      options_(std::move(options)),
      consumer_(consumer),
      log_(log),
      episodes_(episodes),
      republisher_(endpoint_, amqp_, "republisher " + (options_.name.empty() ? consumer.name() : options_.name)),
      loop_(threads::Backoff(options_.reconnect_initial, options_.reconnect_max), [this](bool) { session(); },
            [this](std::string_view error, std::chrono::milliseconds retry_in) {
              connection_failures_.fetch_add(1);
              if (loop_.stopping()) return;  // no reconnect follows
              log_.warn("consumer connection to RabbitMQ failed; reconnecting",
                        {{"consumer", options_.name}, {"error", error}, {"retryInMs", retry_in.count()}});
            }) {
  if (options_.name.empty()) options_.name = consumer.name();
  if (options_.name.empty()) throw std::invalid_argument("consumer runner: the consumer has no name");
  failing_kind_ = "consumer:" + options_.name;
  dead_letter_kind_ = "dead_letter:" + options_.name;
  if (options_.prefetch == 0) throw std::invalid_argument("consumer runner: prefetch must be at least 1");
  if (options_.max_attempts < 1) throw std::invalid_argument("consumer runner: max_attempts must be at least 1");
  if (options_.retry_initial.count() <= 0 || options_.retry_max < options_.retry_initial)
    throw std::invalid_argument("consumer runner: retry delays must be positive, initial <= max");
  if (options_.poll.count() <= 0) options_.poll = std::chrono::milliseconds(200);
}

AmqpConsumerRunner::~AmqpConsumerRunner() { stop(); }

void AmqpConsumerRunner::start() { loop_.start(); }

void AmqpConsumerRunner::stop() {
  loop_.stop();
  republisher_.disconnect();  // the loop's thread, its only other user, is joined
}

bool AmqpConsumerRunner::wait_consuming(std::chrono::milliseconds timeout) {
  std::unique_lock lock(consuming_mutex_);
  return consuming_cv_.wait_for(lock, timeout, [&] { return consuming_; });
}

void AmqpConsumerRunner::set_consuming(bool v) {
  {
    std::lock_guard lock(consuming_mutex_);
    consuming_ = v;
  }
  consuming_cv_.notify_all();
}

RunnerCounters AmqpConsumerRunner::counters() const {
  return {delivered_.load(), handled_.load(), retried_.load(), dead_lettered_.load(), requeued_.load(),
          connection_failures_.load()};
}

void AmqpConsumerRunner::declare_topology(Connection& c) {
  std::vector<amqp_table_entry_t> type_args;
  if (!options_.queue_type.empty()) type_args.push_back(table_string("x-queue-type", options_.queue_type));

  const std::string work = options_.work_queue();
  c.declare_exchange(amqp_.exchange, amqp_.exchange_type);
  c.declare_queue(work, type_args);
  c.bind_queue(work, amqp_.exchange, amqp_.effective_binding_key());
  static const std::string kDefaultExchange;  // "": the default exchange routes by queue name
  for (auto delay : options_.retry_delays()) {
    auto args = type_args;
    args.push_back(table_i64("x-message-ttl", delay.count()));
    args.push_back(table_string("x-dead-letter-exchange", kDefaultExchange));
    args.push_back(table_string("x-dead-letter-routing-key", work));
    c.declare_queue(options_.retry_queue(delay), args);
  }
  c.declare_queue(options_.dead_letter_queue(), type_args);
}

void AmqpConsumerRunner::session() {
  struct Leaving {
    AmqpConsumerRunner& runner;
    ~Leaving() { runner.set_consuming(false); }
  } leaving{*this};
  Connection c(endpoint_, amqp_, "consumer " + options_.name);
  declare_topology(c);
  c.qos(options_.prefetch);
  c.consume(options_.work_queue());
  set_consuming(true);
  loop_.reset_backoff();  // it works: if the connection drops later, reconnect soon
  log_.info("consuming from RabbitMQ",
            {{"consumer", options_.name}, {"queue", options_.work_queue()}, {"prefetch", options_.prefetch},
             {"broker", endpoint_.redacted()}});

  const timeval poll{static_cast<time_t>(options_.poll.count() / 1000),
                     static_cast<suseconds_t>((options_.poll.count() % 1000) * 1000)};
  const timeval no_wait{0, 0};
  const std::size_t batch_limit = std::max<std::size_t>(1, std::min<std::size_t>(options_.prefetch, kMaxBatch));
  std::vector<Delivery> batch;
  batch.reserve(batch_limit);
  while (!loop_.stopping()) {
    republisher_.keepalive();  // its connection idles between failures: keep its heartbeats going
    amqp_maybe_release_buffers(c.state());
    batch.clear();
    if (!receive(c, poll, batch)) continue;
    // Then whatever else has already arrived, without waiting: under load the broker keeps up to
    // `prefetch` deliveries in flight, and they are handled as one batch (one write, one sync,
    // one commit for the consumer; one ack for all). When idle, a batch is the one delivery.
    while (batch.size() < batch_limit && receive(c, no_wait, batch)) {
    }
    process_batch(c, batch);
  }
  // Leaving: the Connection closes the channel; deliveries prefetched but not acked go back to
  // the queue (for another runner, or this one's next start).
}

bool AmqpConsumerRunner::receive(Connection& c, const timeval& timeout, std::vector<Delivery>& into) {
  amqp_envelope_t envelope;
  amqp_rpc_reply_t res = amqp_consume_message(c.state(), &envelope, &timeout, 0);
  if (res.reply_type == AMQP_RESPONSE_NORMAL) {
    into.emplace_back(envelope);
    return true;
  }
  if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && res.library_error == AMQP_STATUS_TIMEOUT) return false;
  if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION && res.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
    // Something other than a delivery: read it and see whether it ends the session.
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame(c.state(), &frame);
    if (rc != AMQP_STATUS_OK) c.fail("reading from the broker", rc);
    if (frame.frame_type == AMQP_FRAME_METHOD && frame.payload.method.id == AMQP_BASIC_CANCEL_METHOD) {
      c.mark_broken();
      throw ports::BackendUnavailable("RabbitMQ (consumer " + options_.name +
                                      "): the broker cancelled the consumer (queue deleted?)");
    }
    c.handle_unsolicited(frame);  // throws for channel.close / connection.close
    return false;
  }
  if (res.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) c.fail("waiting for deliveries", res.library_error);
  c.mark_broken();
  throw ports::BackendUnavailable("RabbitMQ (consumer " + options_.name + "): unexpected reply while consuming");
}

void AmqpConsumerRunner::process_batch(Connection& c, std::vector<Delivery>& batch) {
  std::vector<Received> received;
  received.reserve(batch.size());
  bool all_events = true;
  for (auto& d : batch) {
    delivered_.fetch_add(1);
    received.push_back(receive_log(d.envelope));
    all_events = all_events && !received.back().decoded.error;
  }
  if (batch.size() > 1 && all_events) {
    std::vector<domain::EventEnvelope> events;
    events.reserve(received.size());
    for (auto& r : received) events.push_back(std::move(r.decoded.event));
    bool done = false;
    try {
      done = consumer_.handle_batch(events);
    } catch (const std::exception& e) {
      // Part of the batch may have been applied: one by one below, where idempotency makes the
      // repeat harmless and each failing event gets its own retry.
      log_.debug("consumer batch failed; handling its events one by one",
                 {{"consumer", options_.name}, {"events", events.size()}, {"error", e.what()}});
    } catch (...) {
    }
    if (done) {
      // Every earlier delivery of this channel is settled: one ack with `multiple` settles the batch.
      if (int rc = amqp_basic_ack(c.state(), Connection::kChannel, batch.back().envelope.delivery_tag, /*multiple=*/1);
          rc != AMQP_STATUS_OK)
        c.fail("ack", rc);  // the broker redelivers them; the consumer deduplicates
      handled_.fetch_add(batch.size());
      episodes_.success(failing_kind_);
      return;
    }
    for (std::size_t i = 0; i < batch.size(); ++i) received[i].decoded.event = std::move(events[i]);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) settle(c, batch[i].envelope, received[i]);
}

AmqpConsumerRunner::Received AmqpConsumerRunner::receive_log(const amqp_envelope_t& envelope) {
  Received r{inbound_of(envelope), {}};
  r.decoded = decode_message(r.in);
  log_.info("Received message", {{"consumer", options_.name},
                                 {"eventId", r.decoded.event.id},
                                 {"type", r.decoded.event.type},
                                 {"attempt", r.in.previous_failures + 1},
                                 {"redelivered", envelope.redelivered != 0}});
  return r;
}

void AmqpConsumerRunner::settle(Connection& c, const amqp_envelope_t& envelope, const Received& received) {
  const DecodedMessage& decoded = received.decoded;
  const int attempt = received.in.previous_failures + 1;
  std::string error;
  bool ok = false;
  if (decoded.error) {
    error = *decoded.error;
  } else {
    try {
      consumer_.handle(decoded.event);
      ok = true;
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "unknown exception";
    }
  }

  if (ok) {
    if (int rc = amqp_basic_ack(c.state(), Connection::kChannel, envelope.delivery_tag, 0); rc != AMQP_STATUS_OK)
      c.fail("ack", rc);  // the broker redelivers it; the consumer deduplicates
    handled_.fetch_add(1);
    episodes_.success(failing_kind_);
    return;
  }

  const int failures = attempt;
  const bool dead = failures >= options_.max_attempts;
  const auto delay = options_.retry_delay(failures);
  const std::string target = dead ? options_.dead_letter_queue() : options_.retry_queue(delay);
  // The exception text may quote user data: debug level only, like the in-process bus.
  log_.debug("consumer failure detail", {{"consumer", options_.name}, {"eventId", decoded.event.id}, {"error", error}});

  if (republish(envelope, target, failures, error, dead)) {
    if (int rc = amqp_basic_ack(c.state(), Connection::kChannel, envelope.delivery_tag, 0); rc != AMQP_STATUS_OK)
      c.fail("ack", rc);  // the copy exists and the original comes back: a duplicate, never a loss
    if (dead) {
      dead_lettered_.fetch_add(1);
      episodes_.failure(dead_letter_kind_, "message moved to the dead-letter queue",
                        {{"consumer", options_.name}, {"eventId", decoded.event.id}, {"attempts", failures},
                         {"queue", target}, {"poison", decoded.error.has_value()}},
                        logging::Level::error, options_.retry_max);
    } else {
      retried_.fetch_add(1);
      episodes_.failure(failing_kind_, "consumer failed a message; it will be retried",
                        {{"consumer", options_.name}, {"eventId", decoded.event.id}, {"attempt", failures},
                         {"retryInMs", delay.count()}, {"poison", decoded.error.has_value()}},
                        logging::Level::warn, options_.retry_max);
    }
    return;
  }
  // The copy was not confirmed: keep the original (requeue) and slow down.
  if (int rc = amqp_basic_nack(c.state(), Connection::kChannel, envelope.delivery_tag, 0, /*requeue=*/1);
      rc != AMQP_STATUS_OK)
    c.fail("nack", rc);
  requeued_.fetch_add(1);
  log_.warn("could not move a failed message to its retry/dead-letter queue; requeued it",
            {{"consumer", options_.name}, {"eventId", decoded.event.id}, {"queue", target}});
  loop_.wait_for(options_.retry_initial, threads::SupervisedLoop::WakeOn::stop);
}

bool AmqpConsumerRunner::republish(const amqp_envelope_t& envelope, const std::string& queue, int failures,
                                   const std::string& error, bool dead_letter) {
  // Same body and properties (message_id, type, timestamp, content_type …) as received; headers
  // carried over except the broker's x-death bookkeeping and our own, which are set afresh.
  amqp_basic_properties_t p = envelope.message.properties;  // shallow: points into `envelope`
  std::vector<amqp_table_entry_t> headers;
  bool has_original = false;
  if (p._flags & AMQP_BASIC_HEADERS_FLAG)
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const auto& entry = p.headers.entries[i];
      std::string key = string_of(entry.key);
      if (key == kAttemptsHeader || key == "x-last-error" || is_death_header(key)) continue;
      if (key == "x-original-exchange") has_original = true;
      headers.push_back(entry);
    }
  // Where the message first came from (its first failure; later ones arrive from a delay queue).
  const std::string original_exchange = string_of(envelope.exchange);
  const std::string original_key = string_of(envelope.routing_key);
  if (!has_original) {
    headers.push_back(table_string("x-original-exchange", original_exchange));
    headers.push_back(table_string("x-original-routing-key", original_key));
  }
  headers.push_back(table_i32(kAttemptsHeader.data(), failures));
  const std::string last_error = error.substr(0, kMaxErrorHeader);
  if (dead_letter) headers.push_back(table_string("x-last-error", last_error));
  p.headers = amqp_table_t{static_cast<int>(headers.size()), headers.data()};
  p._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  p.delivery_mode = 2;
  p._flags &= ~AMQP_BASIC_EXPIRATION_FLAG;  // the delay queue's TTL decides

  const std::string message_id =
      (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) ? string_of(p.message_id) : std::string();
  const std::string body = string_of(envelope.message.body);
  OutgoingMessage m{"", queue, &p, body, message_id};
  // Two tries: the republisher's connection is idle most of the time and may have been dropped;
  // the second try reconnects. A duplicate copy is harmless (consumers deduplicate).
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      auto settled = republisher_.publish(std::span<const OutgoingMessage>(&m, 1));
      if (settled[0].outcome == Confirm::acked) return true;
      log_.warn("RabbitMQ did not confirm a retry/dead-letter copy",
                {{"consumer", options_.name}, {"queue", queue}, {"reply", settled[0].detail}});
      return false;
    } catch (const ports::BackendUnavailable& e) {
      if (attempt == 1 || loop_.stopping()) {
        log_.warn("cannot publish a retry/dead-letter copy", {{"consumer", options_.name}, {"error", e.what()}});
        return false;
      }
    }
  }
  return false;
}

}  // namespace registrar::adapters::amqp
