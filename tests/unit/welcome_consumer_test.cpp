// The welcome consumer (one welcome message per user.registered event, idempotent on the event
// id) and the registry of built-in consumers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "adapters/consumers/audit_consumer.hpp"
#include "adapters/consumers/builtin.hpp"
#include "adapters/consumers/webhook_consumer.hpp"
#include "adapters/consumers/welcome_consumer.hpp"
#include "adapters/inproc/code_store.hpp"
#include "adapters/mail/file_mail_sender.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"
#include "support/events.hpp"
#include "support/fakes.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

using adapters::consumers::MalformedEvent;
using adapters::consumers::PermanentFailure;
using adapters::consumers::WelcomeConsumer;
using testing::MemoryProcessedEvents;
using testing::TempDir;
using testing::user_registered;

// Records every message handed to it; `fail_with` makes the next send throw that.
class RecordingMailSender : public ports::MailSender {
 public:
  enum class Fail { none, transient, rejected };
  Fail fail_with = Fail::none;

  void send(const ports::MailMessage& m) override {
    std::lock_guard lock(mutex_);
    const Fail f = std::exchange(fail_with, Fail::none);
    if (f == Fail::transient) throw ports::BackendUnavailable("mail relay down for a test");
    if (f == Fail::rejected) throw ports::MailRejected("550 no such user");
    sent_.push_back(m);
  }
  void send_all(std::span<const ports::MailMessage> messages) override {
    {
      std::lock_guard lock(mutex_);
      batches_.push_back(messages.size());
    }
    ports::MailSender::send_all(messages);
  }
  std::vector<ports::MailMessage> sent() const {
    std::lock_guard lock(mutex_);
    return sent_;
  }
  std::vector<std::size_t> batches() const {
    std::lock_guard lock(mutex_);
    return batches_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<ports::MailMessage> sent_;
  std::vector<std::size_t> batches_;
};

domain::EventEnvelope with_payload(std::string payload) {
  auto e = user_registered("evt-bad");
  e.payload = std::move(payload);
  return e;
}

class WelcomeConsumerTest : public ::testing::Test {
 protected:
  MemoryProcessedEvents processed_;
  RecordingMailSender mail_;
  WelcomeConsumer consumer_{mail_, processed_, "Acme"};
};

TEST_F(WelcomeConsumerTest, SendsOneWelcomeMessageKeyedByTheEventId) {
  EXPECT_EQ(consumer_.name(), "welcome");
  consumer_.handle(user_registered("evt-1"));
  const auto sent = mail_.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].channel, "email");
  EXPECT_EQ(sent[0].to, "newuser@example.com");
  EXPECT_EQ(sent[0].subject, "Welcome to Acme");
  EXPECT_TRUE(sent[0].body.starts_with("Hello newuser,\n")) << sent[0].body;
  EXPECT_NE(sent[0].body.find("Acme"), std::string::npos);
  EXPECT_FALSE(sent[0].code.has_value());
  EXPECT_EQ(sent[0].idempotency_key, "evt-1");
  EXPECT_TRUE(processed_.is_processed("welcome", "evt-1"));
}

TEST_F(WelcomeConsumerTest, ARedeliveryIsSkipped) {
  consumer_.handle(user_registered("evt-1"));
  consumer_.handle(user_registered("evt-1"));
  consumer_.handle(user_registered("evt-2", "other"));
  consumer_.handle(user_registered("evt-1"));
  const auto sent = mail_.sent();
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_EQ(sent[1].to, "other@example.com");
}

TEST_F(WelcomeConsumerTest, ASendFailureLeavesTheEventUnprocessedForTheRetry) {
  mail_.fail_with = RecordingMailSender::Fail::transient;
  EXPECT_THROW(consumer_.handle(user_registered("evt-1")), ports::BackendUnavailable);
  EXPECT_FALSE(processed_.is_processed("welcome", "evt-1"));
  consumer_.handle(user_registered("evt-1"));
  EXPECT_EQ(mail_.sent().size(), 1u);
  EXPECT_TRUE(processed_.is_processed("welcome", "evt-1"));
}

TEST_F(WelcomeConsumerTest, ARejectedMessageIsAPermanentFailure) {
  mail_.fail_with = RecordingMailSender::Fail::rejected;
  EXPECT_THROW(consumer_.handle(user_registered("evt-1")), PermanentFailure);
  EXPECT_FALSE(processed_.is_processed("welcome", "evt-1"));
}

TEST_F(WelcomeConsumerTest, MalformedBodiesThrowAndSendNothing) {
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[1,2,3]",
      R"({"event":"user.registered","pattern":"user.registered","timestamp":"2025-10-19T16:37:15.456Z"})",
      R"({"event":"user.registered","pattern":"user.registered","data":"x","timestamp":"2025-10-19T16:37:15.456Z"})",
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","email":7,"username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})",
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","email":"bob@example.com","username":"","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})",
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"yesterday"},"timestamp":"2025-10-19T16:37:15.456Z"})",
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"}})",
      R"({"event":"user.deleted","pattern":"user.registered","data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})",
      R"({"event":"user.registered","data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})",
  };
  for (const auto& body : bad) {
    try {
      consumer_.handle(with_payload(body));
      ADD_FAILURE() << "accepted: " << body;
    } catch (const MalformedEvent& e) {
      // The message names the problem but never echoes the body (it holds an e-mail address).
      EXPECT_EQ(std::string(e.what()).find("bob@example.com"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(mail_.sent().empty());
  EXPECT_EQ(processed_.size(), 0u);
}

TEST_F(WelcomeConsumerTest, ExtraFieldsAreAllowed) {
  consumer_.handle(with_payload(
      R"({"event":"user.registered","pattern":"user.registered","version":2,"data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z","plan":"pro"},"timestamp":"2025-10-19T16:37:15.456Z"})"));
  ASSERT_EQ(mail_.sent().size(), 1u);
  EXPECT_EQ(mail_.sent()[0].to, "bob@example.com");
}

TEST_F(WelcomeConsumerTest, APhoneAccountWithoutEmailIsSkippedAndRecorded) {
  auto e = with_payload(
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","email":null,"username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})");
  consumer_.handle(e);
  EXPECT_TRUE(mail_.sent().empty());
  EXPECT_EQ(processed_.size(), 1u);  // done: a redelivery does not come back to it
  // A missing data.email is still malformed (null must be said). Another event id: the first one
  // is recorded as processed, so a redelivery of it would be skipped before parsing.
  auto missing = with_payload(
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})");
  missing.id = "evt-missing-email";
  EXPECT_THROW(consumer_.handle(missing), MalformedEvent);
}

TEST_F(WelcomeConsumerTest, OtherEventTypesAreIgnored) {
  auto e = user_registered("evt-1");
  e.type = "user.deleted";
  consumer_.handle(e);
  EXPECT_TRUE(mail_.sent().empty());
  auto untyped = user_registered("evt-2");
  untyped.type.clear();  // no AMQP type: the body decides
  consumer_.handle(untyped);
  EXPECT_EQ(mail_.sent().size(), 1u);
}

TEST(WelcomeConsumer, RejectsABadProductName) {
  MemoryProcessedEvents processed;
  RecordingMailSender mail;
  EXPECT_THROW(WelcomeConsumer(mail, processed, ""), std::invalid_argument);
  EXPECT_THROW(WelcomeConsumer(mail, processed, "Acme\r\nBcc: x@example.com"), std::invalid_argument);
}

// With the file sender, a crash between sending and recording (here: the record fails) repeats
// the send on redelivery, and the spool makes that repeat a no-op: still one message.
TEST(WelcomeConsumerWithFileSender, ARepeatedSendAfterAFailedRecordIsHarmless) {
  TempDir dir;
  MemoryProcessedEvents processed;
  adapters::mail::FileMailSender mail(dir.path());
  WelcomeConsumer consumer(mail, processed, "Acme");
  processed.fail_next_marks = 1;
  EXPECT_THROW(consumer.handle(user_registered("evt-1")), ports::BackendUnavailable);
  consumer.handle(user_registered("evt-1"));
  consumer.handle(user_registered("evt-1"));
  EXPECT_TRUE(processed.is_processed("welcome", "evt-1"));
  std::ifstream in(dir.path() / "messages.jsonl");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("\"subject\":\"Welcome to Acme\""), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "spool" / "mail" / "evt-1.json"));
}

// ---------------------------------------------------------------------------------------------
// Batches (handle_batch): one send_all, one record transaction, the same outcomes as handle().

TEST_F(WelcomeConsumerTest, ABatchSendsEveryWelcomeAtOnceAndRecordsTheEventsInOneTransaction) {
  const std::vector<domain::EventEnvelope> events{testing::make_event("evt-a", "alice"),
                                                  testing::make_event("evt-b", "bob"),
                                                  testing::make_event("evt-c", "carol")};
  ASSERT_TRUE(consumer_.handle_batch(events));
  EXPECT_EQ(mail_.batches(), (std::vector<std::size_t>{3}));
  const auto sent = mail_.sent();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_EQ(sent[0].to, "alice@example.com");
  EXPECT_EQ(sent[2].idempotency_key, "evt-c");
  EXPECT_EQ(processed_.batch_marks(), 1);
  for (const auto& e : events) EXPECT_TRUE(processed_.is_processed("welcome", e.id));
}

TEST_F(WelcomeConsumerTest, ABatchSkipsRecordedEventsDuplicatesPhoneAccountsAndOtherEvents) {
  consumer_.handle(testing::make_event("evt-a", "alice"));
  auto phone = with_payload(
      R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u1","email":null,"username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"})");
  phone.id = "evt-phone";
  auto other = testing::make_event("evt-other", "olga");
  other.type = "user.deleted";
  const std::vector<domain::EventEnvelope> events{testing::make_event("evt-a", "alice"),
                                                  testing::make_event("evt-b", "bob"),
                                                  testing::make_event("evt-b", "bob"), phone, other};
  ASSERT_TRUE(consumer_.handle_batch(events));
  const auto sent = mail_.sent();
  ASSERT_EQ(sent.size(), 2u);  // alice's from handle(), bob's once
  EXPECT_EQ(sent[1].to, "bob@example.com");
  EXPECT_TRUE(processed_.is_processed("welcome", "evt-phone"));
  EXPECT_FALSE(processed_.is_processed("welcome", "evt-other"));
}

TEST_F(WelcomeConsumerTest, ABatchWithAMalformedEventIsLeftToHandleBeforeAnythingIsSent) {
  const std::vector<domain::EventEnvelope> events{testing::make_event("evt-a", "alice"), with_payload("not json")};
  EXPECT_FALSE(consumer_.handle_batch(events));
  EXPECT_TRUE(mail_.sent().empty());
  EXPECT_EQ(processed_.size(), 0u);
}

TEST_F(WelcomeConsumerTest, ABatchWhoseSendFailsRecordsNothing) {
  mail_.fail_with = RecordingMailSender::Fail::transient;
  EXPECT_THROW(consumer_.handle_batch(std::vector{testing::make_event("evt-a", "alice")}), ports::BackendUnavailable);
  EXPECT_EQ(processed_.size(), 0u);
}

// The file sender's batch: a redelivered batch after a failed record sends nothing twice.
TEST(WelcomeConsumerWithFileSender, ARedeliveredBatchAfterAFailedRecordWritesEachMessageOnce) {
  TempDir dir;
  MemoryProcessedEvents processed;
  adapters::mail::FileMailSender mail(dir.path());
  WelcomeConsumer consumer(mail, processed, "Acme");
  std::vector<domain::EventEnvelope> events;
  for (int i = 0; i < 50; ++i) events.push_back(testing::make_event("evt-" + std::to_string(i), "user" + std::to_string(i)));
  processed.fail_next_marks = 1;
  EXPECT_THROW(consumer.handle_batch(events), ports::BackendUnavailable);
  ASSERT_TRUE(consumer.handle_batch(events));
  std::ifstream in(dir.path() / "messages.jsonl");
  std::size_t lines = 0;
  for (std::string line; std::getline(in, line);) ++lines;
  EXPECT_EQ(lines, 50u);
  for (const auto& e : events) {
    EXPECT_TRUE(processed.is_processed("welcome", e.id));
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "spool" / "mail" / (e.id + ".json"))) << e.id;
  }
}

// ---------------------------------------------------------------------------------------------
// The registry

TEST(BuiltinConsumers, ListsAuditWelcomeWebhookEmailVerificationAndSocketIo) {
  std::vector<std::string> names;
  for (const auto& c : adapters::consumers::builtin_consumers()) {
    names.emplace_back(c.name);
    EXPECT_FALSE(c.description.empty());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"audit", "welcome", "webhook", "email-verification", "socketio"}));
}

TEST(BuiltinConsumers, MakesEachByName) {
  TempDir dir;
  MemoryProcessedEvents processed;
  testing::FixedClock clock;
  testing::CapturedLog log;
  RecordingMailSender mail;
  adapters::inproc::InProcessCodeStore codes;
  testing::HashingPiiCipher keys;
  testing::SequentialIds ids;
  testing::ScriptedRandom random;
  const app::SendEmailVerificationCode send_code{
      .codes = codes, .keys = keys, .mail = mail, .ids = ids, .random = random, .rules = {}, .product_name = "Acme"};
  struct NoSockets final : ports::RoomBroadcaster {
    void broadcast(const ports::RoomEvent&) override {}
  } hub;
  adapters::consumers::BuiltinConsumerDeps deps{
      .data_dir = dir.path(),
      .processed = processed,
      .clock = clock,
      .log = log.logger,
      .mail = mail,
      .product_name = "Acme",
      .webhook_urls = {"http://127.0.0.1:9/hook"},
      .webhook_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
      .email_verification = &send_code,
      .socketio = &hub,
  };
  for (const auto& info : adapters::consumers::builtin_consumers()) {
    auto consumer = adapters::consumers::make_builtin_consumer(info.name, deps);
    ASSERT_NE(consumer, nullptr);
    EXPECT_EQ(consumer->name(), info.name);
  }
  EXPECT_NE(dynamic_cast<adapters::consumers::AuditConsumer*>(adapters::consumers::make_builtin_consumer("audit", deps).get()),
            nullptr);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "audit.jsonl"));

  auto welcome = adapters::consumers::make_builtin_consumer("welcome", deps);
  welcome->handle(user_registered("evt-1"));
  ASSERT_EQ(mail.sent().size(), 1u);
  EXPECT_EQ(mail.sent()[0].subject, "Welcome to Acme");
}

TEST(BuiltinConsumers, RefusesUnknownNamesAndIncompleteSettings) {
  TempDir dir;
  MemoryProcessedEvents processed;
  testing::FixedClock clock;
  RecordingMailSender mail;
  testing::CapturedLog log;
  adapters::consumers::BuiltinConsumerDeps deps{
      .data_dir = dir.path(), .processed = processed, .clock = clock, .log = log.logger, .mail = mail};
  try {
    adapters::consumers::make_builtin_consumer("crm", deps);
    FAIL() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("audit, welcome, webhook, email-verification, socketio"), std::string::npos) << e.what();
  }
  // email-verification needs the code-issuing use case of the API's code store.
  EXPECT_THROW(adapters::consumers::make_builtin_consumer("email-verification", deps), std::invalid_argument);
  // socketio needs the Socket.IO hub of serve (`consume socketio` has none).
  EXPECT_THROW(adapters::consumers::make_builtin_consumer("socketio", deps), std::invalid_argument);
  EXPECT_THROW(adapters::consumers::make_builtin_consumer("webhook", deps), std::invalid_argument);  // no URLs
  deps.webhook_urls = {"http://127.0.0.1:9/hook"};
  EXPECT_THROW(adapters::consumers::make_builtin_consumer("webhook", deps), std::invalid_argument);  // no secret
}

}  // namespace
}  // namespace registrar
