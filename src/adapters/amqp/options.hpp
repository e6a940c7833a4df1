#pragma once
// Settings of the RabbitMQ adapter (AMQP 0-9-1 on rabbitmq-c): where the broker is, the topology
// (DESIGN.md "user.registered on RabbitMQ"), and how a consumer runner retries.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "domain/event.hpp"

namespace registrar::adapters::amqp {

// How a published event is routed on the exchange.
enum class RoutingKeyMode {
  fixed,       // every event with AmqpOptions::routing_key (by default "topic_validateJSON")
  event_type,  // each event with its name ("user.registered")
};

struct AmqpOptions {
  // amqp[s]://USER:PASS@HOST[:PORT][/VHOST], parts percent-decoded; defaults guest:guest, port
  // 5672 (amqps: 5671), vhost "/" ("amqp://h" and "amqp://h/" both mean "/", "amqp://h/%2f" too).
  std::string url = "amqp://guest:guest@127.0.0.1:5672/";
  // amqps:// only (refused with amqp://, which would not use them). TLS 1.2 or later; the broker's
  // certificate is always verified, chain and host name (or IP address) of the URL, against
  // `ca_file` (PEM), else the system's trusted CAs. `cert_file` + `key_file` (PEM, the key
  // unencrypted): a client certificate for brokers that ask for one (fail_if_no_peer_cert).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  // Heartbeat interval asked for at login (the broker may lower it; 0 turns heartbeats off). A
  // connection that sends nothing for two intervals is considered dead by both sides.
  std::chrono::seconds heartbeat{10};
  // Bound on TCP connect + AMQP handshake, and on each setup RPC (declare, bind, qos, …).
  std::chrono::milliseconds connect_timeout{5000};
  // How long publish() waits for the broker's confirms of a batch before giving up on the rest.
  std::chrono::milliseconds confirm_timeout{5000};

  // Topology, by default that of the NestJS sign-up service whose message structure we keep
  // (DESIGN.md "Wire formats"). The exchange is declared durable with this type on every
  // (re)connect.
  std::string exchange = "topic_validateJSON";
  std::string exchange_type = "topic";
  RoutingKeyMode routing = RoutingKeyMode::fixed;
  std::string routing_key = "topic_validateJSON";  // used in RoutingKeyMode::fixed
  // The NestJS service's queue, declared durable and bound to the exchange by the publisher so that
  // its consumers (NestJS @EventPattern handlers) find their events. Empty: declare none.
  std::string queue = "topic_validateJSON";
  // The key that binds queues (the NestJS service's and each consumer's) to the exchange. Unset:
  // the routing key in RoutingKeyMode::fixed, "#" (every event) in RoutingKeyMode::event_type.
  std::optional<std::string> binding_key;

  // Shown as the connection name in RabbitMQ's management UI (a suffix tells publisher/consumer).
  std::string connection_name = "registrar";

  // Work queues of consumers known to this process (registrar.<name>), declared and bound by the
  // publisher too, exactly as their runners declare them (durable, classic): a message is routed
  // only to queues that exist when it is published, so an event relayed before a consumer first
  // connected would otherwise never reach that consumer.
  std::vector<std::string> consumer_queues;

  std::string routing_key_for(const domain::EventEnvelope& event) const {
    return routing == RoutingKeyMode::event_type ? event.type : routing_key;
  }
  std::string effective_binding_key() const {
    if (binding_key) return *binding_key;
    return routing == RoutingKeyMode::event_type ? std::string("#") : routing_key;
  }
};

// The parsed broker address. `password` is a secret: never log it (see redacted()).
struct Endpoint {
  std::string host;
  bool tls = false;  // amqps://
  std::uint16_t port = 5672;
  std::string user = "guest";
  std::string password = "guest";
  std::string vhost = "/";

  // amqp[s]://user@host:port/vhost, for logs (no password).
  std::string redacted() const;
};

// Parses AmqpOptions::url. Throws std::invalid_argument naming the problem (never echoing the URL,
// which may hold a password).
Endpoint parse_amqp_url(std::string_view url);

// A built-in consumer run on RabbitMQ by AmqpConsumerRunner. Its queues, for name N and the
// default prefix:
//   registrar.N             durable work queue, bound to the exchange with the binding key
//   registrar.N.retry.<ms>  durable delay queues, one per distinct retry delay: no consumer; each
//                           message waits the queue's x-message-ttl, then is dead-lettered (by the
//                           broker) back to registrar.N through the default exchange
//   registrar.N.dlq         durable dead-letter queue: messages that failed max_attempts times
struct ConsumerOptions {
  std::string name;  // empty → the consumer's name()
  std::string queue_prefix = "registrar.";
  std::uint16_t prefetch = 16;  // basic.qos: unacknowledged deliveries the broker sends ahead
  int max_attempts = 5;         // deliveries of one message (1 + retries) before the DLQ
  std::chrono::milliseconds retry_initial{1000};  // delay after the 1st failure, doubling …
  std::chrono::milliseconds retry_max{60'000};    // … up to this
  std::chrono::milliseconds reconnect_initial{500};  // after a connection failure, doubling (jittered) …
  std::chrono::milliseconds reconnect_max{30'000};   // … up to this
  std::chrono::milliseconds poll{200};  // longest wait for a delivery before checking stop()
  // Queue type for the work, retry and dead-letter queues: empty = the broker's default (classic),
  // or "quorum" (replicated; for clusters). Changing it for existing queues needs them deleted.
  std::string queue_type;

  std::string work_queue() const { return queue_prefix + name; }
  std::string dead_letter_queue() const { return queue_prefix + name + ".dlq"; }
  // Delay before the delivery that follows the `failures`-th failure (failures >= 1).
  std::chrono::milliseconds retry_delay(int failures) const;
  std::string retry_queue(std::chrono::milliseconds delay) const {
    return queue_prefix + name + ".retry." + std::to_string(delay.count());
  }
  // The distinct delays used for failures 1 .. max_attempts-1 (ascending).
  std::vector<std::chrono::milliseconds> retry_delays() const;
};

}  // namespace registrar::adapters::amqp
