// The email-verification consumer: one code to the address of each user.registered event with an
// email, nothing for a phone account, nothing twice for a redelivered event.
#include "adapters/consumers/email_verification_consumer.hpp"

#include <gtest/gtest.h>

#include "adapters/inproc/code_store.hpp"
#include "app/events.hpp"
#include "app/verification.hpp"
#include "ports/errors.hpp"
#include "support/events.hpp"
#include "support/fakes.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::consumers::EmailVerificationConsumer;
using adapters::consumers::MalformedEvent;
using adapters::consumers::PermanentFailure;
using testing::user_registered;

constexpr const char* kUserId = "0192a3b4-0000-7000-8000-000000000001";

struct EmailVerificationConsumerTest : ::testing::Test {
  std::chrono::steady_clock::time_point steady_now{std::chrono::hours{1000}};
  adapters::inproc::InProcessCodeStore codes{[this] { return steady_now; }};
  testing::HashingPiiCipher keys;
  testing::RecordingMailSender mail;
  testing::SequentialIds ids{"id-"};
  testing::ScriptedRandom random{{314159, 271828}};
  testing::MemoryProcessedEvents processed;
  app::SendEmailVerificationCode send{.codes = codes,
                                      .keys = keys,
                                      .mail = mail,
                                      .ids = ids,
                                      .random = random,
                                      .rules = {},
                                      .product_name = "Acme"};
  EmailVerificationConsumer consumer{send, processed};

  std::string stored_hash_of(const std::string& code) {
    const auto session = app::email_code_session(kUserId);
    return app::code_hash(keys, session, code);
  }
};

TEST_F(EmailVerificationConsumerTest, AnEmailAccountGetsOneMailWithTheCodeNotItsHash) {
  EXPECT_EQ(consumer.name(), "email-verification");
  consumer.handle(user_registered("evt-1"));
  ASSERT_EQ(mail.sent().size(), 1u);
  const auto m = mail.sent()[0];
  EXPECT_EQ(m.channel, "email");
  EXPECT_EQ(m.to, "newuser@example.com");
  EXPECT_EQ(m.code, "314159");
  EXPECT_NE(m.body.find("314159"), std::string::npos);
  const std::string hash = stored_hash_of("314159");
  for (const std::string& text : {m.body, m.subject, *m.code}) EXPECT_EQ(text.find(hash), std::string::npos);
  // The code that was mailed is the one the store checks for this user.
  EXPECT_EQ(codes.check(app::email_code_session(kUserId), hash, 5).outcome, ports::CheckOutcome::match);
  EXPECT_TRUE(processed.is_processed("email-verification", "evt-1"));
}

TEST_F(EmailVerificationConsumerTest, APhoneAccountGetsNothing) {
  domain::User u;
  u.id = "phone-user";
  u.username = "phoneuser";
  u.created_at = domain::Timestamp{std::chrono::milliseconds{1'760'891'835'123}};
  consumer.handle(app::make_user_registered(u, "evt-phone", u.created_at));
  EXPECT_TRUE(mail.sent().empty());
  EXPECT_EQ(codes.size(), 0u);
  EXPECT_TRUE(processed.is_processed("email-verification", "evt-phone"));
}

TEST_F(EmailVerificationConsumerTest, ARedeliveredEventSendsNothingTwice) {
  consumer.handle(user_registered("evt-1"));
  consumer.handle(user_registered("evt-1"));
  steady_now += 2min;  // even past the cooldown: the event is recorded as done
  consumer.handle(user_registered("evt-1"));
  EXPECT_EQ(mail.sent().size(), 1u);
}

TEST_F(EmailVerificationConsumerTest, ARedeliveryAfterACrashBeforeTheRecordSendsNoSecondCode) {
  // The mail went out, then recording the event failed (the process died, the database blinked).
  processed.fail_next_marks = 1;
  EXPECT_THROW(consumer.handle(user_registered("evt-1")), ports::BackendUnavailable);
  ASSERT_EQ(mail.sent().size(), 1u);
  // The redelivery hits the address's cooldown: nothing sent, the first code stays valid, done.
  consumer.handle(user_registered("evt-1"));
  EXPECT_EQ(mail.sent().size(), 1u);
  EXPECT_EQ(codes.check(app::email_code_session(kUserId), stored_hash_of("314159"), 5).outcome,
            ports::CheckOutcome::match);
  EXPECT_TRUE(processed.is_processed("email-verification", "evt-1"));
}

TEST_F(EmailVerificationConsumerTest, ASenderFailureIsRetriedAndTheCodeDoesNotCount) {
  mail.fail = [](const ports::MailMessage&) { throw ports::BackendUnavailable("smtp down"); };
  EXPECT_THROW(consumer.handle(user_registered("evt-1")), ports::BackendUnavailable);
  EXPECT_FALSE(processed.is_processed("email-verification", "evt-1"));
  mail.fail = nullptr;
  consumer.handle(user_registered("evt-1"));  // the retry, at once: no cooldown held
  ASSERT_EQ(mail.sent().size(), 1u);
  EXPECT_EQ(mail.sent()[0].code, "271828");  // a new code; the withdrawn one is gone
  EXPECT_EQ(codes.check(app::email_code_session(kUserId), stored_hash_of("314159"), 5).outcome,
            ports::CheckOutcome::mismatch);
}

TEST_F(EmailVerificationConsumerTest, ARejectedAddressIsAPermanentFailure) {
  mail.fail = [](const ports::MailMessage&) { throw ports::MailRejected("550 no such user"); };
  EXPECT_THROW(consumer.handle(user_registered("evt-1")), PermanentFailure);
}

TEST_F(EmailVerificationConsumerTest, MalformedAndOtherEventsAreNotMailed) {
  auto bad = user_registered("evt-bad");
  bad.payload = "{}";
  EXPECT_THROW(consumer.handle(bad), MalformedEvent);
  auto other = app::make_user_email_verified(kUserId, domain::Timestamp{}, "evt-v", domain::Timestamp{});
  consumer.handle(other);  // its own event: not a sign-up
  EXPECT_TRUE(mail.sent().empty());
}

// ------------------------------------------------------------------------------------------------
// Batches (handle_batch): one send_all, one record transaction, the same outcomes as handle().

std::vector<domain::EventEnvelope> three_sign_ups() {
  return {testing::make_event("evt-a", "alice"), testing::make_event("evt-b", "bob"),
          testing::make_event("evt-c", "carol")};
}

TEST_F(EmailVerificationConsumerTest, ABatchMailsEveryCodeInOneSendAndRecordsTheEventsInOneTransaction) {
  const auto events = three_sign_ups();
  ASSERT_TRUE(consumer.handle_batch(events));
  EXPECT_EQ(mail.batches(), (std::vector<std::size_t>{3}));
  const auto sent = mail.sent();
  ASSERT_EQ(sent.size(), 3u);
  const std::vector<std::string> users{"alice", "bob", "carol"}, codes_sent{"314159", "271828", "314159"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(sent[i].to, users[i] + "@example.com");
    EXPECT_EQ(sent[i].code, codes_sent[i]);
    // Each mailed code is the one the store checks for that user.
    const auto session = app::email_code_session(users[i]);
    EXPECT_EQ(codes.check(session, app::code_hash(keys, session, codes_sent[i]), 5).outcome, ports::CheckOutcome::match);
  }
  EXPECT_EQ(processed.batch_marks(), 1);
  for (const auto& e : events) EXPECT_TRUE(processed.is_processed("email-verification", e.id));
}

TEST_F(EmailVerificationConsumerTest, ABatchSkipsRecordedEventsDuplicatesPhoneAccountsAndOtherEvents) {
  consumer.handle(testing::make_event("evt-a", "alice"));  // recorded before the batch
  domain::User phone;
  phone.id = "phone-user";
  phone.username = "phoneuser";
  const std::vector<domain::EventEnvelope> events{
      testing::make_event("evt-a", "alice"), testing::make_event("evt-b", "bob"),
      testing::make_event("evt-b", "bob"),  // the same delivery twice in one batch
      app::make_user_registered(phone, "evt-phone", domain::Timestamp{}),
      app::make_user_email_verified(kUserId, domain::Timestamp{}, "evt-v", domain::Timestamp{})};
  ASSERT_TRUE(consumer.handle_batch(events));
  const auto sent = mail.sent();
  ASSERT_EQ(sent.size(), 2u);  // alice's from handle(), bob's once from the batch
  EXPECT_EQ(sent[1].to, "bob@example.com");
  EXPECT_TRUE(processed.is_processed("email-verification", "evt-b"));
  EXPECT_TRUE(processed.is_processed("email-verification", "evt-phone"));
  EXPECT_FALSE(processed.is_processed("email-verification", "evt-v"));  // not this consumer's event
}

TEST_F(EmailVerificationConsumerTest, ABatchWithAMalformedEventOrAnUnusableAddressIsLeftToHandleBeforeAnythingIsSent) {
  auto bad = testing::make_event("evt-bad", "dave");
  bad.payload = "{}";
  auto events = three_sign_ups();
  events.push_back(bad);
  EXPECT_FALSE(consumer.handle_batch(events));
  auto unusable = three_sign_ups();
  unusable.push_back(testing::user_registered("evt-x", "not an address", "user-x"));
  EXPECT_FALSE(consumer.handle_batch(unusable));
  EXPECT_TRUE(mail.sent().empty());
  EXPECT_EQ(codes.size(), 0u);
  EXPECT_EQ(processed.size(), 0u);
}

TEST_F(EmailVerificationConsumerTest, ASenderFailureInABatchWithdrawsEveryCodeAndRecordsNothing) {
  int calls = 0;
  mail.fail = [&](const ports::MailMessage&) {
    if (++calls == 2) throw ports::BackendUnavailable("smtp down");
  };
  const auto events = three_sign_ups();
  EXPECT_THROW(consumer.handle_batch(events), ports::BackendUnavailable);
  EXPECT_EQ(processed.size(), 0u);
  // The caller then goes event by event: every address gets its code at once (the codes of the
  // failed batch were withdrawn, so no cooldown is held),
  // alice's a second time (her message may have gone out before the failure: a new code replaces it).
  mail.fail = nullptr;
  for (const auto& e : events) consumer.handle(e);
  EXPECT_EQ(mail.sent().size(), 1u + 3u);
  for (const auto& e : events) EXPECT_TRUE(processed.is_processed("email-verification", e.id));
}

TEST_F(EmailVerificationConsumerTest, ABatchWhoseRecordFailsIsRepairedByHandleWithoutSecondCodes) {
  processed.fail_next_marks = 1;
  const auto events = three_sign_ups();
  EXPECT_THROW(consumer.handle_batch(events), ports::BackendUnavailable);
  ASSERT_EQ(mail.sent().size(), 3u);
  for (const auto& e : events) consumer.handle(e);  // the cooldowns: nothing sent again, all done
  EXPECT_EQ(mail.sent().size(), 3u);
  for (const auto& e : events) EXPECT_TRUE(processed.is_processed("email-verification", e.id));
}

}  // namespace
}  // namespace registrar
