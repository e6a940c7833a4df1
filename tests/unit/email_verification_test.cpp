// Email verification (issue 12): SendEmailVerificationCode, ResendEmailVerification and VerifyEmail
// with fakes for every port. The codes live in the embedded code store (an in-memory adapter,
// itself held to the port's contract by tests/contract/verification_codes_test.cpp) on a clock the
// test drives, so the rules (TTL, tries, cooldown, cap) are the real ones.
#include "app/email_verification.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "adapters/inproc/code_store.hpp"
#include "app/events.hpp"
#include "app/verification.hpp"
#include "ports/errors.hpp"
#include "support/fakes.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using domain::ErrorKind;
using testing::FakeTokenService;

struct EmailVerificationTest : ::testing::Test {
  std::chrono::steady_clock::time_point steady_now{std::chrono::hours{1000}};
  adapters::inproc::InProcessCodeStore codes{[this] { return steady_now; }};
  testing::FakeUserStore users;
  testing::HashingPiiCipher keys;
  testing::FakeTokenService tokens;
  testing::RecordingMailSender mail;
  testing::SequentialIds ids{"id-"};
  testing::ScriptedRandom random{{123456, 654321, 42}};
  testing::FixedClock clock;
  testing::CountingSignal signal;
  ports::CodeRules rules{};  // the production rules: 10 min, 5 tries, 60 s cooldown, 5 per hour

  app::SendEmailVerificationCode send{.codes = codes,
                                      .keys = keys,
                                      .mail = mail,
                                      .ids = ids,
                                      .random = random,
                                      .rules = rules,
                                      .product_name = "Acme"};
  app::ResendEmailVerification resend{.tokens = tokens, .users = users, .send = send};
  app::VerifyEmail verify{.tokens = tokens,
                          .users = users,
                          .codes = codes,
                          .keys = keys,
                          .clock = clock,
                          .ids = ids,
                          .outbox_signal = signal,
                          .max_wrong_tries = 5};

  const std::string token = FakeTokenService::make("user-1", ports::TokenType::access);

  void SetUp() override {
    domain::User u;
    u.id = "user-1";
    u.email = "New.User@Example.com";
    u.username = "newuser";
    u.password_hash = "hash:x";
    u.created_at = clock.now();
    users.seed(u, "new.user@example.com", "newuser");
    domain::User p;
    p.id = "user-phone";
    p.username = "phoneuser";
    p.password_hash = "hash:x";
    p.phone = domain::StoredPhone{{"test-key", "sealed"}, "index"};
    users.seed(p, std::nullopt, "phoneuser");
  }

  // The code of the last message sent.
  std::string last_code() {
    auto sent = mail.sent();
    EXPECT_FALSE(sent.empty());
    return sent.empty() || !sent.back().code ? "" : *sent.back().code;
  }
  static std::string field_code(const domain::DomainError& e) { return e.fields.empty() ? "" : e.fields[0].code; }
  std::vector<testing::FakeUserStore::OutboxRow> events_of_type(std::string_view type) {
    std::vector<testing::FakeUserStore::OutboxRow> out;
    for (auto& row : users.outbox())
      if (row.event.type == type) out.push_back(row);
    return out;
  }
  bool verified() { return users.find_by_id("user-1")->email_verified_at.has_value(); }
};

TEST_F(EmailVerificationTest, SendStoresOnlyTheKeyedHashUnderTheUserAndMailsTheCode) {
  auto r = send("user-1", "New.User@Example.com");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->expires_in, 600s);
  ASSERT_EQ(mail.sent().size(), 1u);
  const auto m = mail.sent()[0];
  EXPECT_EQ(m.channel, "email");
  EXPECT_EQ(m.to, "New.User@example.com");  // the address as stored (its domain lower-cased)
  EXPECT_EQ(m.code, "123456");
  EXPECT_NE(m.body.find("123456"), std::string::npos);
  EXPECT_NE(m.body.find("10 minutes"), std::string::npos);
  EXPECT_EQ(m.body.find(app::code_hash(keys, "email-verification:user-1", "123456")), std::string::npos);
  EXPECT_EQ(m.idempotency_key, "email-verification-id-1");
  EXPECT_EQ(random.bounds(), std::vector<std::uint32_t>{1'000'000});
  EXPECT_EQ(app::email_code_session("user-1"), "email-verification:user-1");
  // The store knows the code by its keyed hash under the user's session only.
  EXPECT_EQ(codes.check("email-verification:user-1", app::code_hash(keys, "email-verification:user-1", "123456"), 5).outcome,
            ports::CheckOutcome::match);
  EXPECT_EQ(codes.check("email-verification:user-1", "123456", 5).outcome, ports::CheckOutcome::mismatch);
}

TEST_F(EmailVerificationTest, TheRightCodeVerifiesAndWritesTheEventInTheSameTransaction) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  auto r = verify(token, code);
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(r->user_id, "user-1");
  EXPECT_EQ(r->verified_at, clock.now());
  EXPECT_EQ(users.find_by_id("user-1")->email_verified_at, clock.now());

  const auto events = events_of_type("user.email_verified");
  ASSERT_EQ(events.size(), 1u);
  const auto& e = events[0].event;
  EXPECT_EQ(e.aggregate_id, "user-1");
  const auto body = boost::json::parse(e.payload).as_object();
  EXPECT_EQ(body.at("event").as_string(), "user.email_verified");
  EXPECT_EQ(body.at("pattern").as_string(), "user.email_verified");
  EXPECT_EQ(body.at("timestamp").as_string(), domain::to_iso8601(clock.now()));
  const auto& data = body.at("data").as_object();
  EXPECT_EQ(data.size(), 2u);  // {id, emailVerifiedAt}: no address, no code
  EXPECT_EQ(data.at("id").as_string(), "user-1");
  EXPECT_EQ(data.at("emailVerifiedAt").as_string(), domain::to_iso8601(clock.now()));
  EXPECT_EQ(e.payload.find("xample"), std::string::npos);
  EXPECT_EQ(e.payload.find(code), std::string::npos);
  EXPECT_EQ(signal.count(), 1);
}

TEST_F(EmailVerificationTest, TheStoreDownWritesNeitherTheVerificationNorTheEvent) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  // The store refuses whole: the fake's transaction gives both or neither.
  users.unavailable = true;
  EXPECT_THROW(verify(token, code), ports::BackendUnavailable);
  users.unavailable = false;
  EXPECT_FALSE(verified());
  EXPECT_TRUE(events_of_type("user.email_verified").empty());
  EXPECT_EQ(signal.count(), 0);
  // The code was not used up: it still works.
  EXPECT_TRUE(verify(token, code).has_value());
}

TEST_F(EmailVerificationTest, AWrongCodeIsRefusedAndCounts) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  auto r = verify(token, "000001");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::validation_failed);
  EXPECT_EQ(field_code(r.error()), "incorrect");
  EXPECT_EQ(r.error().fields[0].field, "code");
  EXPECT_FALSE(verified());
  // Four wrong tries in all still leave the right code usable…
  for (int i = 0; i < 3; ++i) EXPECT_EQ(field_code(verify(token, "000001").error()), "incorrect");
  EXPECT_TRUE(verify(token, code).has_value());
}

TEST_F(EmailVerificationTest, TheFifthWrongTryBurnsTheCode) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  for (int i = 0; i < 4; ++i) EXPECT_EQ(field_code(verify(token, "000001").error()), "incorrect") << i;
  EXPECT_EQ(field_code(verify(token, "000001").error()), "exhausted");
  // Even the right one is refused now.
  auto r = verify(token, code);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(field_code(r.error()), "exhausted");
  EXPECT_FALSE(verified());
  EXPECT_TRUE(events_of_type("user.email_verified").empty());
}

TEST_F(EmailVerificationTest, AnExpiredCodeIsRefused) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  steady_now += 10min + 1ms;
  auto r = verify(token, code);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(field_code(r.error()), "expired");
  EXPECT_FALSE(verified());
}

TEST_F(EmailVerificationTest, WithoutACodeSentThereIsNothingToMatch) {
  auto r = verify(token, "123456");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(field_code(r.error()), "expired");
}

TEST_F(EmailVerificationTest, ACodeIsSingleUse) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  ASSERT_TRUE(verify(token, code).has_value());
  // The code is gone from the store…
  EXPECT_EQ(codes.check("email-verification:user-1", app::code_hash(keys, "email-verification:user-1", code), 5).outcome,
            ports::CheckOutcome::missing);
  // …and using it again is a clear answer, with no second event.
  auto again = verify(token, code);
  ASSERT_FALSE(again.has_value());
  EXPECT_EQ(again.error().kind, ErrorKind::already_verified);
  EXPECT_EQ(events_of_type("user.email_verified").size(), 1u);
  EXPECT_EQ(signal.count(), 1);
}

TEST_F(EmailVerificationTest, AnAlreadyVerifiedAddressGetsAClearAnswerAndNoCode) {
  ASSERT_TRUE(resend(token).has_value());
  ASSERT_TRUE(verify(token, last_code()).has_value());
  steady_now += 2min;  // past the cooldown
  auto r = resend(token);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::already_verified);
  EXPECT_EQ(mail.sent().size(), 1u);
  EXPECT_EQ(verify(token, "123456").error().kind, ErrorKind::already_verified);
}

TEST_F(EmailVerificationTest, ARaceLostToAnotherRequestIsAlreadyVerifiedWithOneEvent) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  // Another request with the code committed between this one's check and its write.
  users.mark_email_verified("user-1", clock.now(), app::make_user_email_verified("user-1", clock.now(), "other", clock.now()));
  const auto check = codes.check("email-verification:user-1", app::code_hash(keys, "email-verification:user-1", code), 5);
  ASSERT_EQ(check.outcome, ports::CheckOutcome::match);
  EXPECT_EQ(verify(token, code).error().kind, ErrorKind::already_verified);  // the user is read verified first
  EXPECT_EQ(events_of_type("user.email_verified").size(), 1u);
}

TEST_F(EmailVerificationTest, ResendHonoursTheCooldownAndTheHourlyCap) {
  ASSERT_TRUE(resend(token).has_value());
  auto soon = resend(token);
  ASSERT_FALSE(soon.has_value());
  EXPECT_EQ(soon.error().kind, ErrorKind::rate_limited);
  EXPECT_GE(soon.error().retry_after, 1s);
  EXPECT_LE(soon.error().retry_after, 60s);
  EXPECT_EQ(mail.sent().size(), 1u);  // nothing sent

  for (int i = 2; i <= 5; ++i) {
    steady_now += 61s;
    ASSERT_TRUE(resend(token).has_value()) << i;
  }
  steady_now += 61s;
  auto capped = resend(token);
  ASSERT_FALSE(capped.has_value());
  EXPECT_EQ(capped.error().kind, ErrorKind::rate_limited);
  EXPECT_GT(capped.error().retry_after, 60s);  // until the first of the hour's codes ages out
  EXPECT_EQ(mail.sent().size(), 5u);
}

TEST_F(EmailVerificationTest, ANewCodeReplacesTheOldOne) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string first = last_code();
  steady_now += 61s;
  ASSERT_TRUE(resend(token).has_value());
  const std::string second = last_code();
  ASSERT_NE(first, second);
  EXPECT_EQ(field_code(verify(token, first).error()), "incorrect");
  EXPECT_TRUE(verify(token, second).has_value());
}

TEST_F(EmailVerificationTest, AFailedSendWithdrawsTheCodeSoItDoesNotCount) {
  mail.fail = [](const ports::MailMessage&) { throw ports::BackendUnavailable("smtp down"); };
  EXPECT_THROW(resend(token), ports::BackendUnavailable);
  mail.fail = nullptr;
  // Not in the cooldown: the user may ask again at once.
  EXPECT_TRUE(resend(token).has_value());
}

// A batch (the email-verification consumer's): the codes issued together, the mails sent together,
// one outcome per recipient; a store that fails part-way withdraws every code of the batch.
TEST_F(EmailVerificationTest, SendAllIssuesAndMailsABatchWithAnOutcomeEach) {
  const std::vector<app::EmailCodeRecipient> batch{{"u-a", "a@example.com"}, {"u-b", "not an address"},
                                                   {"u-c", "c@example.com"}, {"u-d", "A@Example.com"}};
  const auto outcomes = send.send_all(batch);
  ASSERT_EQ(outcomes.size(), 4u);
  EXPECT_TRUE(outcomes[0].has_value());
  EXPECT_EQ(outcomes[1].error().kind, domain::ErrorKind::validation_failed);
  EXPECT_TRUE(outcomes[2].has_value());
  EXPECT_EQ(outcomes[3].error().kind, domain::ErrorKind::rate_limited);  // a@example.com's cooldown
  EXPECT_EQ(mail.batches(), (std::vector<std::size_t>{2}));
  ASSERT_EQ(mail.sent().size(), 2u);
  EXPECT_EQ(mail.sent()[1].to, "c@example.com");
}

TEST_F(EmailVerificationTest, AStoreFailingPartWayThroughABatchWithdrawsEveryCodeAndSendsNothing) {
  struct FailingOnSecond : testing::RecordingCodeStore {
    int issues = 0;
    ports::IssueResult issue(const ports::IssueCodeRequest& r) override {
      if (++issues == 2) throw ports::BackendUnavailable("redis down for a test");
      return RecordingCodeStore::issue(r);
    }
  } store;
  app::SendEmailVerificationCode failing{.codes = store, .keys = keys, .mail = mail, .ids = ids, .random = random,
                                         .rules = rules, .product_name = "Acme"};
  const std::vector<app::EmailCodeRecipient> batch{{"u-a", "a@example.com"}, {"u-b", "b@example.com"}};
  EXPECT_THROW(failing.send_all(batch), ports::BackendUnavailable);
  EXPECT_TRUE(mail.sent().empty());
  EXPECT_EQ(store.withdrawn().size(), 2u) << "the first code was issued: it must not hold a@example.com's cooldown";
}

TEST_F(EmailVerificationTest, TokensAndAccountsThatCannotVerify) {
  for (const std::string& bad : {std::string(""), std::string("garbage"),
                                 FakeTokenService::make("user-1", ports::TokenType::verification),
                                 FakeTokenService::make("nobody", ports::TokenType::access)}) {
    EXPECT_EQ(verify(bad, "123456").error().kind, ErrorKind::unauthenticated) << bad;
    EXPECT_EQ(resend(bad).error().kind, ErrorKind::unauthenticated) << bad;
  }
  const auto phone_token = FakeTokenService::make("user-phone", ports::TokenType::access);
  EXPECT_EQ(verify(phone_token, "123456").error().kind, ErrorKind::not_found);
  EXPECT_EQ(resend(phone_token).error().kind, ErrorKind::not_found);
  EXPECT_TRUE(mail.sent().empty());
}

TEST_F(EmailVerificationTest, ACodeThatIsNotSixDigitsIsRefusedWithoutSpendingATry) {
  ASSERT_TRUE(resend(token).has_value());
  const std::string code = last_code();
  for (const char* bad : {"", "12345", "1234567", "12345a", " 123456"})
    EXPECT_EQ(field_code(verify(token, bad).error()), "invalid_format") << bad;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(field_code(verify(token, "000001").error()), "incorrect");
  EXPECT_TRUE(verify(token, code).has_value());  // the malformed ones did not count
}

}  // namespace
}  // namespace registrar
