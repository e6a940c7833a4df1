// The RabbitMQ adapter against a real broker (a private node per test process, started on first
// use: tests/support/rabbitmq_server.hpp):
//   * AmqpEventBus under faults: broker stopped → BackendUnavailable, restarted → the same bus
//     object publishes again; unroutable (mandatory) → not confirmed.
//   * AmqpConsumerRunner: success acks once; failures retried with backoff through the delay
//     queues; poison and hopeless messages end in the DLQ after N deliveries while others flow;
//     a backlog goes to handle_batch() in batches (in order, acked once), a failed batch falls
//     back to one by one;
//     competing runners split a queue, different consumers each get everything.
//   * The relay: OutboxRelayLoop + SQLite outbox + AmqpEventBus delivers 500 events, also with
//     the broker stopped mid-run (count in = count out, each applied once by the audit consumer).
// Tests wait for conditions with deadlines; retry delays are tens of milliseconds.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "adapters/amqp/consumer_runner.hpp"
#include "adapters/amqp/event_bus.hpp"
#include "adapters/consumers/audit_consumer.hpp"
#include "adapters/logging/failure_episodes.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/relay/outbox_relay_loop.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/processed_events.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "adapters/system/system_clock.hpp"
#include "app/events.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"
#include "support/events.hpp"
#include "support/rabbitmq_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::amqp::AmqpConsumerRunner;
using adapters::amqp::AmqpEventBus;
using adapters::amqp::AmqpOptions;
using adapters::amqp::ConsumerOptions;
using Clock = std::chrono::steady_clock;
using testing::CapturedLog;
using testing::make_event;
using testing::unique_name;

constexpr auto kTimeout = 30s;  // only reached when a test fails

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = kTimeout) {
  auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// Records every delivery (with its time and attempt count); can be told to fail.
class RecordingConsumer : public ports::EventConsumer {
 public:
  struct Delivery {
    domain::EventEnvelope event;
    Clock::time_point at;
  };
  explicit RecordingConsumer(std::string name) : name_(std::move(name)) {}
  // (event, how many times this consumer saw the id before) → true makes handle() throw.
  std::function<bool(const domain::EventEnvelope&, int)> fail_when;
  std::chrono::milliseconds work{0};

  std::string name() const override { return name_; }
  void handle(const domain::EventEnvelope& e) override {
    if (work.count() > 0) std::this_thread::sleep_for(work);
    std::lock_guard lock(mutex_);
    int seen = seen_[e.id]++;
    deliveries_.push_back({e, Clock::now()});
    if (fail_when && fail_when(e, seen)) throw std::runtime_error("test failure for " + e.id);
    ++handled_[e.id];
  }
  std::vector<Delivery> deliveries() const {
    std::lock_guard lock(mutex_);
    return deliveries_;
  }
  std::map<std::string, int> handled() const {
    std::lock_guard lock(mutex_);
    return handled_;
  }
  std::size_t handled_ids() const {
    std::lock_guard lock(mutex_);
    return handled_.size();
  }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::vector<Delivery> deliveries_;
  std::map<std::string, int> seen_, handled_;
};

// A consumer that takes batches, as the audit consumer does, and is idempotent on the event id as
// real consumers are (a repeat after a failed batch has no second effect). Records each batch's size.
class BatchingConsumer : public ports::EventConsumer {
 public:
  explicit BatchingConsumer(std::string name) : name_(std::move(name)) {}
  std::function<bool(std::size_t call)> batch_fails;  // the call's index → apply one event, then throw

  std::string name() const override { return name_; }
  void handle(const domain::EventEnvelope& e) override {
    std::lock_guard lock(mutex_);
    apply(e);
  }
  bool handle_batch(std::span<const domain::EventEnvelope> events) override {
    std::lock_guard lock(mutex_);
    const std::size_t call = batch_sizes_.size();
    batch_sizes_.push_back(events.size());
    if (batch_fails && batch_fails(call)) {
      apply(events[0]);
      throw std::runtime_error("test: the batch failed half-way");
    }
    for (const auto& e : events) apply(e);
    return true;
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(mutex_);
    return batch_sizes_;
  }
  std::vector<std::string> applied() const {
    std::lock_guard lock(mutex_);
    return applied_;
  }
  std::size_t applied_count() const {
    std::lock_guard lock(mutex_);
    return applied_.size();
  }

 private:
  void apply(const domain::EventEnvelope& e) {
    if (seen_.insert(e.id).second) applied_.push_back(e.id);
  }
  std::string name_;
  mutable std::mutex mutex_;
  std::vector<std::size_t> batch_sizes_;
  std::vector<std::string> applied_;
  std::set<std::string> seen_;
};

class AmqpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_ = testing::shared_rabbitmq();
    if (broker_ == nullptr) GTEST_SKIP() << "rabbitmq-server is not installed";
    if (!broker_->running()) broker_->start();  // a previous test's outage left it stopped
    options_.url = broker_->url();
    options_.exchange = unique_name("exchange");
    options_.queue = "";  // no NestJS-service queue: each test reads what it needs
    options_.heartbeat = 2s;
    options_.connect_timeout = 2s;
    options_.confirm_timeout = 5s;
    client_ = std::make_unique<testing::AmqpTestClient>(broker_->port());
  }

  ConsumerOptions fast_consumer(std::string name) const {
    ConsumerOptions c;
    c.name = std::move(name);
    c.max_attempts = 3;
    c.retry_initial = 50ms;
    c.retry_max = 1s;
    c.reconnect_initial = 50ms;
    c.reconnect_max = 500ms;
    c.poll = 50ms;
    return c;
  }

  std::vector<domain::EventEnvelope> publish(AmqpEventBus& bus, int n, const std::string& prefix) {
    std::vector<domain::EventEnvelope> events;
    for (int i = 0; i < n; ++i) events.push_back(make_event(prefix + "-" + std::to_string(i), prefix + "-user" + std::to_string(i)));
    auto confirmed = bus.publish(events);
    EXPECT_EQ(confirmed.size(), events.size());
    return events;
  }

  testing::RabbitMqServer* broker_ = nullptr;
  AmqpOptions options_;
  std::unique_ptr<testing::AmqpTestClient> client_;
  CapturedLog log_;
  adapters::logging::FailureEpisodes episodes_{log_.logger};
};

// ---------------------------------------------------------------------------------------------
// What the runner hands to consumers (no broker needed).

TEST(AmqpDecode, EnvelopeFromPropertiesAndBody) {
  auto e = make_event("evt-1", "user-1");
  adapters::amqp::InboundMessage m;
  m.message_id = "evt-1";
  m.type = "user.registered";
  m.timestamp = 1'760'891'835;
  m.body = e.payload;
  m.previous_failures = 2;
  auto d = adapters::amqp::decode_message(m);
  EXPECT_FALSE(d.error.has_value());
  EXPECT_EQ(d.event.id, "evt-1");
  EXPECT_EQ(d.event.type, "user.registered");
  EXPECT_EQ(d.event.aggregate_id, "user-1");
  EXPECT_EQ(d.event.payload, e.payload);
  EXPECT_EQ(d.event.occurred_at, e.occurred_at);  // the body's timestamp, to the millisecond
  EXPECT_EQ(d.event.attempts, 2);
}

TEST(AmqpDecode, NestJsMessagesWithoutPropertiesGetAStableIdAndTheBodysType) {
  // What the NestJS sign-up service sends: no message_id, no type property.
  adapters::amqp::InboundMessage m;
  m.body = make_event("ignored", "user-2").payload;
  auto a = adapters::amqp::decode_message(m), b = adapters::amqp::decode_message(m);
  EXPECT_FALSE(a.error.has_value());
  EXPECT_EQ(a.event.type, "user.registered");  // from "event"
  EXPECT_TRUE(a.event.id.starts_with("body-")) << a.event.id;
  EXPECT_EQ(a.event.id, b.event.id) << "a redelivery of the same bytes has the same id";
  m.body = R"({"pattern":"user.registered","data":{}})";
  EXPECT_EQ(adapters::amqp::decode_message(m).event.type, "user.registered");
  EXPECT_NE(adapters::amqp::decode_message(m).event.id, a.event.id);
}

TEST(AmqpDecode, PoisonIsReportedNotThrown) {
  adapters::amqp::InboundMessage m;
  m.message_id = "p";
  for (const char* body : {"", "not json", "[1,2]", "\"string\"", R"({"data":{"email":"x@example.com"}})"}) {
    m.body = body;
    auto d = adapters::amqp::decode_message(m);
    ASSERT_TRUE(d.error.has_value()) << body;
    EXPECT_EQ(d.error->find("example.com"), std::string::npos) << "no user data in the error";
    EXPECT_EQ(d.event.id, "p");
  }
}

// ---------------------------------------------------------------------------------------------
// The publisher under faults.

TEST_F(AmqpTest, BrokerStoppedPublishThrowsAndTheSameBusRecoversAfterRestart) {
  options_.queue = unique_name("nestjs-queue");
  AmqpEventBus bus(options_, log_.logger);
  publish(bus, 1, "before");

  auto t0 = Clock::now();
  broker_->stop();
  auto stopped_in = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  auto batch = std::vector<domain::EventEnvelope>{make_event("during", "u-during")};
  EXPECT_THROW(bus.publish(batch), ports::BackendUnavailable);
  EXPECT_THROW(bus.publish(batch), ports::BackendUnavailable);  // still down: still throws
  EXPECT_FALSE(bus.connected());

  broker_->start();
  std::cout << "[ timing   ] broker stop " << stopped_in.count() << " ms, restart " << broker_->last_start_duration().count()
            << " ms\n";
  EXPECT_EQ(bus.publish(batch), std::vector<std::string>{"during"});
  // The durable queue kept the persistent message published before the outage.
  testing::AmqpTestClient client(broker_->port());
  EXPECT_EQ(client.count(options_.queue), 2u);
}

TEST_F(AmqpTest, AnIdlePublisherKeepsItsConnectionAndPublishesAfterwards) {
  // The relay's bus sits idle between bursts; rabbitmq-c only services heartbeats inside library
  // calls, so the bus's keepalive thread does it meanwhile, and a connection dropped anyway is
  // noticed by the next publish before it sends anything: no error, nothing lost.
  options_.heartbeat = 1s;
  options_.queue = unique_name("idle-queue");
  AmqpEventBus bus(options_, log_.logger);
  publish(bus, 1, "first");
  std::this_thread::sleep_for(3500ms);
  publish(bus, 1, "after-idle");
  EXPECT_EQ(client_->count(options_.queue), 2u);
}

TEST_F(AmqpTest, UnroutableEventsAreNotConfirmed) {
  // Routing by event name; the only queue binds "user.registered": another event type has no route.
  options_.routing = adapters::amqp::RoutingKeyMode::event_type;
  options_.queue = unique_name("registered-only");
  options_.binding_key = "user.registered";
  AmqpEventBus bus(options_, log_.logger);
  auto routable = make_event("routable", "u1");
  auto unroutable = make_event("unroutable", "u2");
  unroutable.type = "user.deleted";
  auto routable2 = make_event("routable-2", "u3");
  std::vector<domain::EventEnvelope> batch = {routable, unroutable, routable2};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"routable", "routable-2"}));
  EXPECT_EQ(log_.count("unroutable"), 1u) << log_.text();

  // A fixed key that nothing binds: nothing is confirmed, and the bus stays usable.
  AmqpOptions nowhere = options_;
  nowhere.routing = adapters::amqp::RoutingKeyMode::fixed;
  nowhere.routing_key = "no-queue-binds-this";
  nowhere.queue = "";
  AmqpEventBus lost(nowhere, log_.logger);
  std::vector<domain::EventEnvelope> two = {make_event("a", "ua"), make_event("b", "ub")};
  EXPECT_TRUE(lost.publish(two).empty());
  EXPECT_TRUE(lost.connected());
}

// ---------------------------------------------------------------------------------------------
// The consumer runner.

TEST_F(AmqpTest, RunnerHandlesEachMessageOnceAndAcksIt) {
  RecordingConsumer consumer("audit");
  auto copts = fast_consumer(unique_name("ok"));
  CapturedLog runner_log;
  adapters::logging::FailureEpisodes runner_episodes(runner_log.logger);
  AmqpConsumerRunner runner(options_, copts, consumer, runner_log.logger, runner_episodes);
  runner.start();
  ASSERT_TRUE(runner.wait_consuming(kTimeout));
  AmqpEventBus bus(options_, log_.logger);
  auto events = publish(bus, 20, "ok");

  ASSERT_TRUE(wait_until([&] { return consumer.handled_ids() == 20; }));
  ASSERT_TRUE(wait_until([&] { return runner.counters().handled == 20; }));
  runner.stop();
  // Acked: nothing went back to the queue when the runner's channel closed; nothing retried.
  EXPECT_EQ(client_->count(copts.work_queue()), 0u);
  EXPECT_EQ(client_->count(copts.dead_letter_queue()), 0u);
  for (const auto& [id, n] : consumer.handled()) EXPECT_EQ(n, 1) << id;
  auto d = consumer.deliveries();
  ASSERT_EQ(d.size(), 20u);
  EXPECT_EQ(d[0].event.id, "ok-0");
  EXPECT_EQ(d[0].event.type, "user.registered");
  EXPECT_EQ(d[0].event.aggregate_id, "ok-user0");
  EXPECT_EQ(d[0].event.payload, events[0].payload);
  EXPECT_EQ(d[0].event.attempts, 0);
  // One "Received message" per delivery, with the event id, never the body (it holds e-mails).
  EXPECT_EQ(runner_log.count("Received message"), 20u);
  EXPECT_NE(runner_log.text().find("\"eventId\":\"ok-7\""), std::string::npos);
  EXPECT_EQ(runner_log.text().find("@example.com"), std::string::npos);
}

TEST_F(AmqpTest, RunnerRetriesAFailureWithGrowingBackoff) {
  RecordingConsumer consumer("welcome");
  consumer.fail_when = [](const domain::EventEnvelope&, int seen) { return seen < 2; };  // fails twice
  auto copts = fast_consumer(unique_name("retry"));
  copts.max_attempts = 5;
  copts.retry_initial = 200ms;
  AmqpConsumerRunner runner(options_, copts, consumer, log_.logger, episodes_);
  runner.start();
  ASSERT_TRUE(runner.wait_consuming(kTimeout));
  AmqpEventBus bus(options_, log_.logger);
  publish(bus, 1, "flaky");

  ASSERT_TRUE(wait_until([&] { return consumer.handled_ids() == 1; }));
  auto d = consumer.deliveries();
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].event.attempts, 0);
  EXPECT_EQ(d[1].event.attempts, 1);
  EXPECT_EQ(d[2].event.attempts, 2);
  EXPECT_GE(d[1].at - d[0].at, 200ms);  // delay queue registrar.<name>.retry.200
  EXPECT_GE(d[2].at - d[1].at, 400ms);  // then .retry.400
  for (const auto& x : d) EXPECT_EQ(x.event.payload, d[0].event.payload);
  ASSERT_TRUE(wait_until([&] { return runner.counters().handled == 1; }));
  EXPECT_EQ(runner.counters().retried, 2u);
  runner.stop();
  EXPECT_EQ(client_->count(copts.work_queue()), 0u);
  EXPECT_EQ(client_->count(copts.retry_queue(200ms)), 0u);
  EXPECT_EQ(client_->count(copts.dead_letter_queue()), 0u);
}

TEST_F(AmqpTest, PoisonAndHopelessMessagesEndInTheDeadLetterQueueWhileOthersFlow) {
  RecordingConsumer consumer("webhook");
  consumer.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "hopeless"; };
  auto copts = fast_consumer(unique_name("dlq"));  // 3 attempts
  AmqpConsumerRunner runner(options_, copts, consumer, log_.logger, episodes_);
  runner.start();
  ASSERT_TRUE(runner.wait_consuming(kTimeout));

  // Poison: not JSON, and JSON without an event type. Then a consumer that always fails one id.
  client_->publish(options_.exchange, options_.routing_key, "this is not json", std::string("poison-1"));
  client_->publish(options_.exchange, options_.routing_key, R"({"hello":"world"})", std::string("poison-2"));
  AmqpEventBus bus(options_, log_.logger);
  std::vector<domain::EventEnvelope> hopeless = {make_event("hopeless", "u-hopeless")};
  ASSERT_EQ(bus.publish(hopeless).size(), 1u);
  auto good = publish(bus, 10, "good");

  ASSERT_TRUE(wait_until([&] { return consumer.handled_ids() == 10; }));
  ASSERT_TRUE(wait_until([&] { return client_->count(copts.dead_letter_queue()) == 3; }));
  // The runner counts a dead letter after the broker confirmed it, so the queue can show it first.
  ASSERT_TRUE(wait_until([&] { return runner.counters().dead_lettered >= 3u; }));
  EXPECT_EQ(runner.counters().dead_lettered, 3u);
  EXPECT_EQ(consumer.handled().count("hopeless"), 0u);
  // The consumer saw the hopeless event 3 times and never the poison (it is not an event).
  int hopeless_seen = 0;
  for (const auto& d : consumer.deliveries()) {
    EXPECT_NE(d.event.id.rfind("poison", 0), 0u);
    hopeless_seen += d.event.id == "hopeless";
  }
  EXPECT_EQ(hopeless_seen, 3);

  std::map<std::string, testing::ReceivedMessage> dead;
  while (auto m = client_->get(copts.dead_letter_queue())) dead[m->message_id.value_or("")] = *m;
  ASSERT_EQ(dead.size(), 3u);
  EXPECT_EQ(dead["poison-1"].body, "this is not json");
  EXPECT_EQ(dead["poison-1"].header("x-attempts"), "3");
  EXPECT_NE(dead["poison-1"].header("x-last-error").value_or("").find("not a JSON object"), std::string::npos);
  EXPECT_EQ(dead["poison-1"].header("x-original-exchange"), options_.exchange);
  EXPECT_EQ(dead["hopeless"].header("x-attempts"), "3");
  EXPECT_EQ(dead["hopeless"].type, "user.registered");
  EXPECT_EQ(dead["hopeless"].delivery_mode, 2);
  EXPECT_FALSE(dead["hopeless"].header("x-death").has_value()) << "broker bookkeeping is not carried over";
  runner.stop();
  EXPECT_EQ(client_->count(copts.work_queue()), 0u);

  // The log: one dead-letter episode for the three, at error level, not an error line each.
  episodes_.close();
  const std::string kind = "\"episode\":\"dead_letter:" + copts.name + "\"";
  std::size_t started = 0, errors = 0;
  std::int64_t total = -1;
  for (const auto& line : log_.sink->last_formatted()) {
    if (line.find(kind) == std::string::npos) continue;
    auto json = boost::json::parse(line).as_object();
    EXPECT_EQ(json.at("level").as_string(), "error") << line;
    ++errors;
    started += json.at("msg").as_string() == "failure episode started";
    if (json.at("msg").as_string() == "failure episode ended") total = json.at("total").to_number<std::int64_t>();
  }
  EXPECT_EQ(started, 1u) << log_.text();
  EXPECT_EQ(total, 3) << log_.text();
  EXPECT_LE(errors, 3u) << log_.text();
  EXPECT_EQ(log_.count("\"msg\":\"message moved to the dead-letter queue\""), 0u) << "each one at debug level only";
}

// A backlog (as after an outage) goes to handle_batch() several deliveries at a time, in queue
// order, each applied once and all acked (one basic.ack with `multiple` per batch): nothing is left
// in the queue or redelivered when the runner stops.
TEST_F(AmqpTest, ABacklogIsHandledInBatchesInOrderAndAckedOnce) {
  const std::string name = unique_name("batch");
  auto copts = fast_consumer(name);
  copts.prefetch = 64;
  BatchingConsumer consumer(name);
  {
    AmqpConsumerRunner declare(options_, copts, consumer, log_.logger, episodes_);  // the queue and binding
    declare.start();
    ASSERT_TRUE(declare.wait_consuming(kTimeout));
  }
  AmqpEventBus bus(options_, log_.logger);
  auto events = publish(bus, 300, "b");
  ASSERT_TRUE(wait_until([&] { return client_->count(copts.work_queue()) == 300; }));

  CapturedLog runner_log;
  adapters::logging::FailureEpisodes runner_episodes(runner_log.logger);
  AmqpConsumerRunner runner(options_, copts, consumer, runner_log.logger, runner_episodes);
  runner.start();
  ASSERT_TRUE(wait_until([&] { return runner.counters().handled == 300; }));
  runner.stop();
  EXPECT_EQ(client_->count(copts.work_queue()), 0u) << "every delivery acked";
  auto applied = consumer.applied();
  ASSERT_EQ(applied.size(), 300u);
  for (std::size_t i = 0; i < applied.size(); ++i) EXPECT_EQ(applied[i], events[i].id) << "queue order";
  auto sizes = consumer.batch_sizes();
  ASSERT_FALSE(sizes.empty()) << "handle_batch() was never called";
  EXPECT_LT(sizes.size(), 300u) << "a backlog is not taken one delivery at a time";
  EXPECT_GT(*std::max_element(sizes.begin(), sizes.end()), 1u);
  for (auto n : sizes) EXPECT_LE(n, copts.prefetch);
  EXPECT_EQ(runner.counters().delivered, 300u);
  EXPECT_EQ(runner.counters().retried + runner.counters().requeued + runner.counters().dead_lettered, 0u);
  EXPECT_EQ(runner_log.count("Received message"), 300u) << "still one line per delivery";
}

// A batch that throws half-way is handled again delivery by delivery: the consumer's idempotency
// absorbs the repeat, nothing is retried or lost. A poison message among a backlog goes to the
// dead-letter queue on its own while the events around it are applied.
TEST_F(AmqpTest, AFailedBatchFallsBackToOneByOneAndPoisonLeavesTheRestAlone) {
  const std::string name = unique_name("batchfail");
  auto copts = fast_consumer(name);
  copts.prefetch = 32;
  copts.max_attempts = 1;  // poison straight to the dead-letter queue
  BatchingConsumer consumer(name);
  consumer.batch_fails = [](std::size_t call) { return call == 0; };
  {
    AmqpConsumerRunner declare(options_, copts, consumer, log_.logger, episodes_);
    declare.start();
    ASSERT_TRUE(declare.wait_consuming(kTimeout));
  }
  AmqpEventBus bus(options_, log_.logger);
  auto first = publish(bus, 40, "f");
  client_->publish(options_.exchange, options_.routing_key, "this is not json", std::string("poison-batch"));
  auto second = publish(bus, 40, "g");
  ASSERT_TRUE(wait_until([&] { return client_->count(copts.work_queue()) == 81; }));

  AmqpConsumerRunner runner(options_, copts, consumer, log_.logger, episodes_);
  runner.start();
  ASSERT_TRUE(wait_until([&] { return consumer.applied_count() == 80; }));
  ASSERT_TRUE(wait_until([&] { return runner.counters().handled == 80 && runner.counters().dead_lettered == 1; }));
  runner.stop();
  EXPECT_EQ(client_->count(copts.work_queue()), 0u);
  EXPECT_EQ(client_->count(copts.dead_letter_queue()), 1u);
  EXPECT_EQ(runner.counters().retried + runner.counters().requeued, 0u);
  auto applied = consumer.applied();
  std::vector<std::string> want;
  for (const auto& e : first) want.push_back(e.id);
  for (const auto& e : second) want.push_back(e.id);
  EXPECT_EQ(applied, want) << "each once, in order";
}

TEST_F(AmqpTest, RunnersOfOneConsumerCompeteAndDifferentConsumersEachGetEverything) {
  const std::string name = unique_name("shared");
  RecordingConsumer first(name), second(name), other("other");
  first.work = second.work = 2ms;
  auto copts = fast_consumer(name);
  copts.prefetch = 4;
  AmqpConsumerRunner r1(options_, copts, first, log_.logger, episodes_), r2(options_, copts, second, log_.logger, episodes_),
      r3(options_, fast_consumer(unique_name("other")), other, log_.logger, episodes_);
  r1.start();
  r2.start();
  r3.start();
  ASSERT_TRUE(r1.wait_consuming(kTimeout) && r2.wait_consuming(kTimeout) && r3.wait_consuming(kTimeout));
  AmqpEventBus bus(options_, log_.logger);
  publish(bus, 100, "c");

  ASSERT_TRUE(wait_until([&] { return first.handled_ids() + second.handled_ids() == 100; }));
  ASSERT_TRUE(wait_until([&] { return other.handled_ids() == 100; }));
  r1.stop();
  r2.stop();
  r3.stop();
  auto a = first.handled(), b = second.handled();
  EXPECT_GT(a.size(), 10u);
  EXPECT_GT(b.size(), 10u);
  for (const auto& [id, n] : a) {
    EXPECT_EQ(n, 1);
    EXPECT_FALSE(b.contains(id)) << id << " handled by both runners";
  }
  for (const auto& [id, n] : b) EXPECT_EQ(n, 1);
  for (const auto& [id, n] : other.handled()) EXPECT_EQ(n, 1);
}

// ---------------------------------------------------------------------------------------------
// The relay: OutboxRelayLoop(SQLite outbox, AmqpEventBus) → exchange → runner(audit consumer).

class RelayTest : public AmqpTest {
 protected:
  void SetUp() override {
    AmqpTest::SetUp();
    if (IsSkipped()) return;
    dir_ = std::filesystem::temp_directory_path() / unique_name("registrar-relay");
    std::filesystem::create_directories(dir_);
    db_ = std::make_unique<adapters::sqlite::SqliteDatabase>(dir_ / "registrar.db");
    adapters::sqlite::apply_migrations(*db_);
    users_ = std::make_unique<adapters::sqlite::SqliteUserStore>(*db_);
    outbox_ = std::make_unique<adapters::sqlite::SqliteOutboxStore>(*db_);
    processed_ = std::make_unique<adapters::sqlite::SqliteProcessedEvents>(*db_);
    audit_ = std::make_unique<adapters::consumers::AuditConsumer>(dir_ / "audit.jsonl", *processed_, clock_, log_.logger);
  }
  void TearDown() override {
    audit_.reset();
    processed_.reset();
    outbox_.reset();
    users_.reset();
    db_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  void register_users(int from, int to) {
    for (int i = from; i < to; ++i) {
      domain::User u;
      u.id = "user-" + std::to_string(i);
      u.email = "user" + std::to_string(i) + "@example.com";
      u.username = "user" + std::to_string(i);
      u.password_hash = "$argon2id$…";
      u.created_at = clock_.now();
      auto e = app::make_user_registered(u, "event-" + std::to_string(i), clock_.now());
      ASSERT_EQ(users_->create_user(u, u.email, u.username, e), ports::CreateUserOutcome::created);
      if (signal_) signal_->notify();
    }
  }

  // Event ids in the audit file, and how many lines each has.
  std::map<std::string, int> audited() {
    std::map<std::string, int> ids;
    std::ifstream in(dir_ / "audit.jsonl");
    for (std::string line; std::getline(in, line);)
      ids[std::string(boost::json::parse(line).as_object().at("eventId").as_string())]++;
    return ids;
  }

  static adapters::relay::RelayLoopOptions relay_options() {
    adapters::relay::RelayLoopOptions o;
    o.relay.batch_size = 64;
    o.poll_interval = 200ms;
    o.backoff_initial = 50ms;
    o.backoff_max = 500ms;
    return o;
  }

  std::filesystem::path dir_;
  adapters::system::SystemClock clock_;
  std::unique_ptr<adapters::sqlite::SqliteDatabase> db_;
  std::unique_ptr<adapters::sqlite::SqliteUserStore> users_;
  std::unique_ptr<adapters::sqlite::SqliteOutboxStore> outbox_;
  std::unique_ptr<adapters::sqlite::SqliteProcessedEvents> processed_;
  std::unique_ptr<adapters::consumers::AuditConsumer> audit_;
  ports::OutboxSignal* signal_ = nullptr;
};

TEST_F(RelayTest, DeliversEveryOutboxEventAndEmptiesTheOutbox) {
  options_.queue = unique_name("nestjs");  // the NestJS service's queue gets every event too
  auto copts = fast_consumer("audit");
  copts.queue_prefix = unique_name("relay") + ".";
  AmqpConsumerRunner runner(options_, copts, *audit_, log_.logger, episodes_);
  runner.start();
  ASSERT_TRUE(runner.wait_consuming(kTimeout));

  AmqpEventBus bus(options_, log_.logger);  // used by the relay loop's thread only
  adapters::relay::OutboxRelayLoop relay(*outbox_, bus, log_.logger, relay_options());
  signal_ = &relay;
  relay.start();
  auto t0 = Clock::now();
  register_users(0, 500);

  auto written = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ASSERT_TRUE(wait_until([&] { return relay.counters().sent >= 500; })) << relay.counters().sent;
  auto relayed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ASSERT_TRUE(wait_until([&] { return runner.counters().handled >= 500; })) << runner.counters().handled;
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  ASSERT_TRUE(relay.wait_idle(kTimeout));
  relay.stop();
  runner.stop();
  std::cout << "[ timing   ] 500 sign-ups written in " << written.count() << " ms, all confirmed by RabbitMQ after "
            << relayed.count() << " ms, all audited (fdatasync each) after " << elapsed.count() << " ms\n";
  EXPECT_EQ(outbox_->pending_count(), 0u);
  EXPECT_EQ(relay.counters().sent, 500u);
  auto ids = audited();
  EXPECT_EQ(ids.size(), 500u);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  EXPECT_EQ(client_->count(options_.queue), 500u);
  EXPECT_EQ(log_.count("User registration sent to RabbitMQ: user"), 500u);
}

TEST_F(RelayTest, NothingIsLostWhenTheBrokerIsDownMidRun) {
  auto copts = fast_consumer("audit");
  copts.queue_prefix = unique_name("outage") + ".";
  AmqpConsumerRunner runner(options_, copts, *audit_, log_.logger, episodes_);
  runner.start();
  ASSERT_TRUE(runner.wait_consuming(kTimeout));
  AmqpEventBus bus(options_, log_.logger);
  adapters::relay::OutboxRelayLoop relay(*outbox_, bus, log_.logger, relay_options());
  signal_ = &relay;
  relay.start();

  register_users(0, 200);
  ASSERT_TRUE(wait_until([&] { return runner.counters().handled >= 50; }));
  broker_->stop();  // mid-run: some events sent, some in the queue, some still in the outbox
  register_users(200, 400);  // sign-ups go on while RabbitMQ is down
  std::this_thread::sleep_for(1s);  // the outage lasts a while: relay and runner keep retrying
  EXPECT_GT(outbox_->pending_count(), 0u);
  broker_->start();
  register_users(400, 500);

  ASSERT_TRUE(wait_until([&] { return audited().size() == 500; }, 60s)) << audited().size();
  ASSERT_TRUE(relay.wait_idle(kTimeout));
  relay.stop();
  runner.stop();
  EXPECT_EQ(outbox_->pending_count(), 0u);
  EXPECT_GT(relay.counters().failures, 0u) << "the relay saw the outage";
  EXPECT_GT(runner.counters().connection_failures, 0u) << "the runner saw the outage";
  auto ids = audited();  // count in = count out, each applied once despite redeliveries
  ASSERT_EQ(ids.size(), 500u);
  for (const auto& [id, n] : ids) EXPECT_EQ(n, 1) << id;
  testing::AmqpTestClient client(broker_->port());  // the fixture's client died with the broker
  EXPECT_EQ(client.count(copts.work_queue()), 0u);
  EXPECT_EQ(client.count(copts.dead_letter_queue()), 0u);
}

}  // namespace
}  // namespace registrar
