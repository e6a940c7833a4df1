// decode_message(): what the AMQP consumer runner makes of a delivery, without a broker. Regression
// tests for what fuzz/fuzz_amqp_message found (the broker-backed cases are in tests/contract/amqp_test.cpp).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>

#include "adapters/amqp/consumer_runner.hpp"
#include "adapters/consumers/audit_consumer.hpp"
#include "domain/time.hpp"

namespace {

using registrar::adapters::amqp::decode_message;
using registrar::adapters::amqp::InboundMessage;

const std::string kBody =
    R"({"event":"user.registered","pattern":"user.registered",)"
    R"("data":{"id":"u1","email":"a@example.com","username":"alice","createdAt":"2025-10-19T16:37:15.123Z"},)"
    R"("timestamp":"2025-10-19T16:37:15.456Z"})";

// A message_id that is not UTF-8 text went into the audit line as raw bytes: the line was not JSON,
// and the audit log's crash recovery, which re-reads its last lines, stopped at it.
TEST(AmqpDecode, MessageIdThatIsNotUtf8IsPoisonAndNotUsedAsTheId) {
  InboundMessage m;
  m.message_id = std::string("\xff\xfe\0id", 5);
  m.body = kBody;
  const auto d = decode_message(m);
  ASSERT_TRUE(d.error.has_value());
  EXPECT_TRUE(d.event.id.starts_with("body-")) << "the log line names the body-derived id";
}

TEST(AmqpDecode, TypeThatIsNotUtf8IsPoison) {
  InboundMessage m;
  m.message_id = "evt-1";
  m.type = "user.\xc0\xae";  // an overlong '.'
  m.body = kBody;
  const auto d = decode_message(m);
  ASSERT_TRUE(d.error.has_value());
  EXPECT_EQ(d.event.id, "evt-1");
  EXPECT_TRUE(d.event.type.empty());
}

TEST(AmqpDecode, Utf8PropertiesReachTheAuditLineIntact) {
  InboundMessage m;
  m.message_id = "évt-\x01\"1";  // UTF-8 with characters JSON must escape
  m.type = "user.registered";
  m.body = kBody;
  const auto d = decode_message(m);
  ASSERT_FALSE(d.error.has_value());
  const auto line = boost::json::parse(registrar::adapters::consumers::audit_line(d.event, d.event.occurred_at));
  EXPECT_EQ(line.at("eventId").as_string(), *m.message_id);
}

// The timestamp property is any 64-bit value; in milliseconds the largest overflowed (undefined
// behaviour, UBSan under fuzz/fuzz_amqp_message). Past the year 9999 it is ignored now.
TEST(AmqpDecode, TimestampPropertyPastYear9999IsIgnored) {
  InboundMessage m;
  m.message_id = "evt-1";
  m.type = "user.registered";
  m.body = R"({"event":"user.registered","data":{"id":"u1"}})";  // no "timestamp" in the body
  m.timestamp = 253'402'300'799;  // 9999-12-31T23:59:59Z
  EXPECT_EQ(registrar::domain::to_iso8601(decode_message(m).event.occurred_at), "9999-12-31T23:59:59.000Z");
  for (std::uint64_t t : {253'402'300'800ull, 9'300'000'000'000'000ull, 0x8000'0000'0000'0005ull, ~0ull}) {
    m.timestamp = t;
    const auto d = decode_message(m);
    EXPECT_FALSE(d.error.has_value());
    EXPECT_EQ(d.event.occurred_at, registrar::domain::Timestamp{}) << t;
  }
}

}  // namespace
