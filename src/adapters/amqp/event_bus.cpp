#include "adapters/amqp/event_bus.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>

namespace registrar::adapters::amqp {

namespace json = boost::json;

namespace {

constexpr std::string_view kContentType = "application/json";

// data.email of a user.registered body, or "" (never throws: the body was written by us, but a
// log line is not worth failing a publish over).
std::string email_of(const std::string& payload) {
  std::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return {};
  const auto* data = v.as_object().if_contains("data");
  if (data == nullptr || !data->is_object()) return {};
  const auto* email = data->as_object().if_contains("email");
  if (email == nullptr || !email->is_string()) return {};
  return std::string(email->as_string());
}

}  // namespace

void declare_publisher_topology(Connection& connection, const AmqpOptions& options) {
  connection.declare_exchange(options.exchange, options.exchange_type);
  if (!options.queue.empty()) {
    connection.declare_queue(options.queue);
    connection.bind_queue(options.queue, options.exchange, options.effective_binding_key());
  }
  for (const auto& queue : options.consumer_queues) {
    connection.declare_queue(queue);
    connection.bind_queue(queue, options.exchange, options.effective_binding_key());
  }
}

AmqpEventBus::AmqpEventBus(AmqpOptions options, const logging::Logger& log)
    : options_(std::move(options)),
      endpoint_(parse_amqp_url(options_.url)),
      log_(log),
      publisher_(endpoint_, options_, "publisher",
                 [opts = options_](Connection& c) { declare_publisher_topology(c, opts); }) {
  if (options_.heartbeat.count() > 0) keepalive_ = std::thread([this] { keepalive_loop(); });
}

AmqpEventBus::~AmqpEventBus() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (keepalive_.joinable()) keepalive_.join();
}

void AmqpEventBus::keepalive_loop() {
  const auto period = std::max<std::chrono::milliseconds>(options_.heartbeat / 2, std::chrono::milliseconds(100));
  std::unique_lock lock(mutex_);
  while (!stop_cv_.wait_for(lock, period, [&] { return stopping_; })) publisher_.keepalive();
}

void AmqpEventBus::connect() {
  std::lock_guard lock(mutex_);
  publisher_.connect();
}

bool AmqpEventBus::connected() const {
  std::lock_guard lock(mutex_);
  return publisher_.connected();
}

std::vector<std::string> AmqpEventBus::publish(std::span<const domain::EventEnvelope> events) {
  if (events.empty()) return {};
  const std::size_t n = events.size();
  // Everything the messages point to lives in these vectors until publish() returns.
  std::vector<std::string> routing_keys;
  routing_keys.reserve(n);
  std::vector<amqp_basic_properties_t> properties(n);
  std::vector<OutgoingMessage> messages(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& e = events[i];
    routing_keys.push_back(options_.routing_key_for(e));
    auto& p = properties[i];
    p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG |
               AMQP_BASIC_TYPE_FLAG | AMQP_BASIC_TIMESTAMP_FLAG;
    p.content_type = bytes_of(kContentType);
    p.delivery_mode = 2;  // persistent: written to disk by durable queues before the confirm
    p.message_id = bytes_of(e.id);
    p.type = bytes_of(e.type);
    p.timestamp = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::seconds>(e.occurred_at.time_since_epoch()).count());
    messages[i] = OutgoingMessage{options_.exchange, routing_keys.back(), &p, e.payload, e.id};
  }

  std::vector<Settled> settled;
  {
    std::lock_guard lock(mutex_);
    settled = publisher_.publish(messages);  // throws BackendUnavailable
  }

  std::vector<std::string> confirmed;
  confirmed.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& e = events[i];
    switch (settled[i].outcome) {
      case Confirm::acked:
        confirmed.push_back(e.id);
        if (e.type == domain::kUserRegistered) {
          // The NestJS sign-up service's log line (at publish), kept for operators who grep for it.
          log_.info("User registration sent to RabbitMQ: " + email_of(e.payload), {{"eventId", e.id}});
        } else {
          log_.debug("event sent to RabbitMQ", {{"eventId", e.id}, {"type", e.type}});
        }
        break;
      case Confirm::returned:
        log_.warn("RabbitMQ returned an event as unroutable (no queue bound for its routing key); it stays in the outbox",
                  {{"eventId", e.id},
                   {"type", e.type},
                   {"exchange", options_.exchange},
                   {"routingKey", routing_keys[i]},
                   {"reply", settled[i].detail}});
        break;
      case Confirm::nacked:
        log_.warn("RabbitMQ refused an event (nack); it stays in the outbox", {{"eventId", e.id}, {"type", e.type}});
        break;
      case Confirm::unknown:
        break;  // the connection failed mid-batch (already dropped); the relay retries these
    }
  }
  return confirmed;
}

}  // namespace registrar::adapters::amqp
