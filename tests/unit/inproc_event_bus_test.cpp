// The in-process event bus alone: every consumer gets every event in order, only events that all
// consumers handled are confirmed, per-aggregate order survives a failing consumer, and batching
// consumers get the whole batch. (tests/unit/relay_loop_test.cpp drives it from the relay loop;
// tests/contract/event_bus_test.cpp holds it to the EventBus contract next to RabbitMQ.)
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adapters/inproc/event_bus.hpp"
#include "support/captured_log.hpp"
#include "support/recording_consumer.hpp"

namespace registrar {
namespace {

using adapters::inproc::InProcessEventBus;
using testing::BatchingConsumer;
using testing::CapturedLog;
using testing::event;
using testing::ids_of;
using testing::RecordingConsumer;

TEST(InProcessEventBus, DeliversEveryEventToEveryConsumerInOrder) {
  RecordingConsumer audit("audit"), welcome("welcome");
  CapturedLog log;
  InProcessEventBus bus({audit, welcome}, log.logger);
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2"), event("e3", "u1")};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(ids_of(welcome.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_TRUE(bus.publish({}).empty());
}

TEST(InProcessEventBus, ConfirmsOnlyEventsThatAllConsumersHandled) {
  RecordingConsumer audit("audit"), welcome("welcome");
  welcome.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "e1"; };
  std::vector<std::string> logged;
  CapturedLog log;
  InProcessEventBus bus({audit, welcome}, log.logger,
                        [&](const std::string& consumer, const domain::EventEnvelope& e, const std::string&) {
                          logged.push_back(consumer + ":" + e.id);
                        });
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2")};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e2"}));
  // The healthy consumer still got both (it deduplicates the redelivery of e1 itself).
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(logged, (std::vector<std::string>{"welcome:e1"}));
}

TEST(InProcessEventBus, WithoutAFailureHookAFailedEventIsLoggedByIdAndTheErrorOnlyAtDebugLevel) {
  RecordingConsumer welcome("welcome");
  welcome.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "e1"; };
  CapturedLog info;
  InProcessEventBus bus({welcome}, info.logger);
  EXPECT_TRUE(bus.publish(std::vector{event("e1", "u1")}).empty());
  EXPECT_EQ(info.count(R"("msg":"consumer failed an event; it will be retried","consumer":"welcome","eventId":"e1")"),
            1u)
      << info.text();
  EXPECT_EQ(info.count(R"("error":)"), 0u) << info.text();  // an exception's text may quote the payload

  CapturedLog debug(spdlog::level::debug);
  InProcessEventBus verbose({welcome}, debug.logger);
  verbose.publish(std::vector{event("e1", "u1")});
  EXPECT_EQ(debug.count(R"("msg":"consumer failure","consumer":"welcome","eventId":"e1","error":)"), 1u) << debug.text();
}

TEST(InProcessEventBus, KeepsPerAggregateOrderWhenAConsumerFails) {
  RecordingConsumer audit("audit"), welcome("welcome");
  welcome.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "u1-first"; };
  CapturedLog log;
  InProcessEventBus bus({audit, welcome}, log.logger, [](auto&&...) {});
  std::vector<domain::EventEnvelope> batch = {event("u1-first", "u1"), event("u1-second", "u1"),
                                              event("u2-first", "u2")};
  // welcome never sees u1-second before u1-first, so neither is confirmed.
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"u2-first"}));
  EXPECT_EQ(ids_of(welcome.handled()), (std::vector<std::string>{"u2-first"}));
  EXPECT_EQ(welcome.attempts("u1-second"), 0);
}

TEST(InProcessEventBus, GivesABatchingConsumerTheWholeBatchInOneCall) {
  BatchingConsumer audit("audit");
  RecordingConsumer welcome("welcome");
  CapturedLog log;
  InProcessEventBus bus({audit, welcome}, log.logger);
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2"), event("e3", "u1")};
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(audit.batch_sizes(), (std::vector<std::size_t>{3}));
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
  EXPECT_EQ(ids_of(welcome.handled()), (std::vector<std::string>{"e1", "e2", "e3"}));
}

TEST(InProcessEventBus, AFailedBatchIsRetriedEventByEvent) {
  BatchingConsumer audit("audit");
  audit.fail_batches = true;
  audit.fail_when = [](const domain::EventEnvelope& e, int) { return e.id == "e2"; };
  std::vector<std::string> logged;
  CapturedLog log;
  InProcessEventBus bus({audit}, log.logger,
                        [&](const std::string& consumer, const domain::EventEnvelope& e, const std::string&) {
                          logged.push_back(consumer + ":" + e.id);
                        });
  std::vector<domain::EventEnvelope> batch = {event("e1", "u1"), event("e2", "u2"), event("e3", "u3")};
  // Only the event that fails on its own is held back.
  EXPECT_EQ(bus.publish(batch), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(ids_of(audit.handled()), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(logged, (std::vector<std::string>{"audit:e2"}));
}

}  // namespace
}  // namespace registrar
