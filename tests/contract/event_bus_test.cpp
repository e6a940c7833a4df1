// Contract tests of ports::EventBus: the embedded bus (InProcessEventBus) and RabbitMQ
// (AmqpEventBus on a private broker, tests/support/rabbitmq_server.hpp) must both
//   * return [] for an empty batch,
//   * confirm every event of a batch (ids in batch order) when the delivery path is healthy,
//   * deliver each confirmed event with its id, type and payload bytes unchanged, in order.
// Then what is specific to RabbitMQ: the wire format of DESIGN.md, byte for byte, with its AMQP
// properties; routing by event name; the NestJS sign-up service's log line.
//
// The broker is started once per test process, on first use (ctest runs each test in a process
// of its own, so each AMQP test pays a broker start of a few seconds; running the binary directly
// shares one). Every test uses names of its own, so tests sharing a broker do not interfere.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/amqp/event_bus.hpp"
#include "adapters/inproc/event_bus.hpp"
#include "adapters/logging/json_logger.hpp"
#include "app/events.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"
#include "support/events.hpp"
#include "support/rabbitmq_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using testing::make_event;
using testing::unique_name;

std::vector<domain::EventEnvelope> batch_of(int n, const std::string& prefix) {
  std::vector<domain::EventEnvelope> out;
  for (int i = 0; i < n; ++i) out.push_back(make_event(prefix + "-e" + std::to_string(i), prefix + "-u" + std::to_string(i % 7)));
  return out;
}

std::vector<std::string> ids_of(const std::vector<domain::EventEnvelope>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

// A log a test can read, at debug level: every line the bus writes.
struct CapturedLog : testing::CapturedLog {
  CapturedLog() : testing::CapturedLog(spdlog::level::debug, 100'000) {}
};

// ---------------------------------------------------------------------------------------------
// What each backend provides: the bus, and what reached "the other side" (a consumer).

class BusUnderTest {
 public:
  virtual ~BusUnderTest() = default;
  virtual ports::EventBus& bus() = 0;
  // Everything delivered so far, in delivery order (waits for at least `n`, up to a timeout).
  virtual std::vector<domain::EventEnvelope> delivered(std::size_t n) = 0;
};

class InProcessBus final : public BusUnderTest, public ports::EventConsumer {
 public:
  InProcessBus() : bus_({*this}, log_.logger) {}
  ports::EventBus& bus() override { return bus_; }
  std::vector<domain::EventEnvelope> delivered(std::size_t) override {
    std::lock_guard lock(mutex_);
    return handled_;
  }
  std::string name() const override { return "probe"; }
  void handle(const domain::EventEnvelope& e) override {
    std::lock_guard lock(mutex_);
    handled_.push_back(e);
  }

 private:
  CapturedLog log_;  // declared before the bus, which logs to it
  adapters::inproc::InProcessEventBus bus_;
  std::mutex mutex_;
  std::vector<domain::EventEnvelope> handled_;
};

// AmqpEventBus with an exchange and NestJS-service queue of its own; "delivered" = what the queue holds.
class RabbitMqBus final : public BusUnderTest {
 public:
  explicit RabbitMqBus(testing::RabbitMqServer& broker) : broker_(broker), client_(broker.port()) {
    options_.url = broker.url();
    options_.exchange = unique_name("contract-exchange");
    options_.queue = unique_name("contract-queue");
    bus_ = std::make_unique<adapters::amqp::AmqpEventBus>(options_, log_.logger);
  }
  ports::EventBus& bus() override { return *bus_; }
  std::vector<domain::EventEnvelope> delivered(std::size_t n) override {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (received_.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto m = client_.get(options_.queue);
      if (!m) {
        std::this_thread::sleep_for(5ms);
        continue;
      }
      domain::EventEnvelope e;
      e.id = m->message_id.value_or("");
      e.type = m->type.value_or("");
      e.payload = m->body;
      received_.push_back(std::move(e));
    }
    return received_;
  }

 private:
  testing::RabbitMqServer& broker_;
  testing::AmqpTestClient client_;
  CapturedLog log_;
  adapters::amqp::AmqpOptions options_;
  std::unique_ptr<adapters::amqp::AmqpEventBus> bus_;
  std::vector<domain::EventEnvelope> received_;
};

struct BusFactory {
  std::string name;
  std::function<std::unique_ptr<BusUnderTest>()> make;  // nullptr: backend not available here
};
void PrintTo(const BusFactory& f, std::ostream* os) { *os << f.name; }

const BusFactory kBackends[] = {
    {"inproc", [] { return std::make_unique<InProcessBus>(); }},
    {"rabbitmq",
     []() -> std::unique_ptr<BusUnderTest> {
       auto* broker = testing::shared_rabbitmq();
       if (broker == nullptr) return nullptr;
       return std::make_unique<RabbitMqBus>(*broker);
     }},
};

class EventBusContract : public ::testing::TestWithParam<BusFactory> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (!backend_) GTEST_SKIP() << GetParam().name << " is not available here";
  }
  std::unique_ptr<BusUnderTest> backend_;
};

// One test per backend (each RabbitMQ test process pays a broker start): empty batch, small
// batch, large batch.
TEST_P(EventBusContract, ConfirmsAndDeliversEveryEventUnchangedInOrder) {
  EXPECT_TRUE(backend_->bus().publish({}).empty());
  auto events = batch_of(5, "small");
  EXPECT_EQ(backend_->bus().publish(events), ids_of(events));
  auto more = batch_of(300, "large");  // several confirms, some of them `multiple`
  EXPECT_EQ(backend_->bus().publish(more), ids_of(more));

  auto got = backend_->delivered(305);
  ASSERT_EQ(got.size(), 305u);
  for (std::size_t i = 0; i < 305; ++i) {
    const auto& sent = i < 5 ? events[i] : more[i - 5];
    EXPECT_EQ(got[i].id, sent.id);
    EXPECT_EQ(got[i].type, sent.type);
    EXPECT_EQ(got[i].payload, sent.payload);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, EventBusContract, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// RabbitMQ specifics.

class AmqpEventBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::shared_rabbitmq();
    if (broker_ == nullptr) GTEST_SKIP() << "rabbitmq-server is not installed";
  }
  testing::RabbitMqServer* broker_ = nullptr;
};

TEST_F(AmqpEventBusTest, NestJsTopologyAndWireFormatAsInDesign) {
  // The defaults: exchange topic_validateJSON (topic, durable), key and queue topic_validateJSON.
  adapters::amqp::AmqpOptions options;
  options.url = broker_->url();
  CapturedLog log;
  adapters::amqp::AmqpEventBus bus(options, log.logger);
  bus.connect();  // declares the topology
  testing::AmqpTestClient client(broker_->port());
  client.purge("topic_validateJSON");

  domain::User u;
  u.id = "0192a0b4-9c1e-7d2f-8a3b-4c5d6e7f8091";
  u.email = "newuser@example.com";
  u.username = "newuser";
  u.created_at = domain::Timestamp(std::chrono::milliseconds(1'760'891'835'123));  // 2025-10-19T16:37:15.123Z
  auto event = app::make_user_registered(u, "0192a0b4-9c1e-7d2f-8a3b-4c5d6e7f8092",
                                         domain::Timestamp(std::chrono::milliseconds(1'760'891'835'456)));
  std::vector<domain::EventEnvelope> batch = {event};
  ASSERT_EQ(bus.publish(batch), std::vector<std::string>{event.id});

  auto m = client.get("topic_validateJSON");
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->body,
            R"({"event":"user.registered","pattern":"user.registered",)"
            R"("data":{"id":"0192a0b4-9c1e-7d2f-8a3b-4c5d6e7f8091","email":"newuser@example.com","username":"newuser","createdAt":"2025-10-19T16:37:15.123Z"},)"
            R"("timestamp":"2025-10-19T16:37:15.456Z"})");
  EXPECT_EQ(m->exchange, "topic_validateJSON");
  EXPECT_EQ(m->routing_key, "topic_validateJSON");
  EXPECT_EQ(m->message_id, event.id);
  EXPECT_EQ(m->content_type, "application/json");
  EXPECT_EQ(m->delivery_mode, 2);
  EXPECT_EQ(m->type, "user.registered");
  EXPECT_EQ(m->timestamp, 1'760'891'835u);
  EXPECT_FALSE(client.get("topic_validateJSON").has_value()) << "exactly one message";

  // The NestJS service's log line, at publish (after the confirm), at info level.
  auto text = log.text();
  EXPECT_NE(text.find("User registration sent to RabbitMQ: newuser@example.com"), std::string::npos) << text;
  EXPECT_NE(text.find(R"("level":"info")"), std::string::npos) << text;
}

TEST_F(AmqpEventBusTest, RoutesByEventNameWhenConfigured) {
  adapters::amqp::AmqpOptions options;
  options.url = broker_->url();
  options.exchange = unique_name("by-name");
  options.queue = unique_name("by-name-queue");
  options.routing = adapters::amqp::RoutingKeyMode::event_type;  // binding key defaults to "#"
  CapturedLog log;
  adapters::amqp::AmqpEventBus bus(options, log.logger);
  auto events = batch_of(3, "named");
  ASSERT_EQ(bus.publish(events), ids_of(events));

  testing::AmqpTestClient client(broker_->port());
  for (const auto& e : events) {
    auto m = client.get(options.queue);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->routing_key, "user.registered");
    EXPECT_EQ(m->message_id, e.id);
  }
}

TEST(AmqpUrl, BadUrlsAreRejectedWithoutEchoingThem) {
  CapturedLog log;
  for (const char* url : {"http://host", "amqps://u:secret@host/a/b", "not a url", "amqp://u:secret@host/a/b"}) {
    adapters::amqp::AmqpOptions o;
    o.url = url;
    try {
      adapters::amqp::AmqpEventBus bus(o, log.logger);
      ADD_FAILURE() << "accepted " << url;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).find("secret"), std::string::npos) << e.what();
    }
  }
}

TEST(AmqpUrl, ParsesPartsDecodedWithDefaults) {
  using adapters::amqp::parse_amqp_url;
  auto e = parse_amqp_url("amqp://us%40er:p%3Ass@broker.example:5673/v%2fh");
  EXPECT_EQ(e.host, "broker.example");
  EXPECT_EQ(e.port, 5673);
  EXPECT_EQ(e.user, "us@er");
  EXPECT_EQ(e.password, "p:ss");
  EXPECT_EQ(e.vhost, "v/h");
  EXPECT_EQ(e.redacted().find("p:ss"), std::string::npos);

  auto d = parse_amqp_url("amqp://localhost");
  EXPECT_EQ(d.port, 5672);
  EXPECT_EQ(d.user, "guest");
  EXPECT_EQ(d.password, "guest");
  EXPECT_EQ(d.vhost, "/");
  EXPECT_EQ(parse_amqp_url("amqp://h/").vhost, "/");
  EXPECT_EQ(parse_amqp_url("amqp://h/%2f").vhost, "/");
  EXPECT_EQ(parse_amqp_url("amqp://[::1]:5672/x").host, "::1");
}

}  // namespace
}  // namespace registrar
