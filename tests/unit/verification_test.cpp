// The IssueVerificationCode use case and the code hashes it shares with the Create_User job, with
// fakes for every port (deterministic ids, random numbers and keyed hashes).
#include "app/verification.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>

#include "ports/errors.hpp"
#include "support/fakes.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using domain::ErrorKind;

struct IssueCodeTest : ::testing::Test {
  testing::RecordingCodeStore store;
  testing::HashingPiiCipher keys;
  testing::FakeTokenService tokens;
  testing::RecordingMailSender sender;
  testing::SequentialIds ids{"session-"};
  testing::ScriptedRandom random{{42, 987654}};
  app::IssueVerificationCode issue{.codes = store,
                                   .keys = keys,
                                   .tokens = tokens,
                                   .sender = sender,
                                   .ids = ids,
                                   .random = random,
                                   .rules = {},
                                   .product_name = "Acme"};
};

TEST_F(IssueCodeTest, OpensASessionStoresOnlyHashesSendsTheCodeAndIssuesAVerificationToken) {
  tokens.expires_in = 600s;
  auto r = issue({"+33 6 12 34 56 78"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->id, "session-1");
  EXPECT_EQ(r->token.token, testing::FakeTokenService::make("session-1", ports::TokenType::verification));
  EXPECT_EQ(r->expires_in, 600s);

  // The code is the random number, zero-padded to six digits, drawn uniformly below 10^6.
  EXPECT_EQ(random.bounds(), std::vector<std::uint32_t>{1'000'000});
  const std::string code = "000042";

  ASSERT_EQ(store.issued().size(), 1u);
  const auto req = store.issued()[0];
  EXPECT_EQ(req.session_id, "session-1");
  EXPECT_EQ(req.code_hash, keys.blind_index("session-1:" + code, "code"));
  EXPECT_EQ(req.code_hash, app::code_hash(keys, "session-1", code));
  EXPECT_EQ(req.subject_key, keys.blind_index("+33612345678", "phone"));
  EXPECT_EQ(req.rules.ttl, 10min);
  EXPECT_EQ(req.rules.max_wrong_tries, 5);
  // Nothing in clear reaches the store.
  for (const std::string& field : {req.code_hash, req.subject_key}) {
    EXPECT_EQ(field.find(code), std::string::npos);
    EXPECT_EQ(field.find("612345678"), std::string::npos);
  }

  ASSERT_EQ(sender.sent().size(), 1u);
  const auto m = sender.sent()[0];
  EXPECT_EQ(m.channel, "sms");
  EXPECT_EQ(m.to, "+33612345678");  // canonical E.164: the gateway gets the real number
  EXPECT_EQ(m.code, code);
  EXPECT_EQ(m.session_id, "session-1");
  EXPECT_EQ(m.idempotency_key, "verification-code:session-1");
  EXPECT_NE(m.body.find(code), std::string::npos);
  EXPECT_NE(m.body.find("Acme"), std::string::npos);
  EXPECT_NE(m.body.find("10 minutes"), std::string::npos);
  EXPECT_TRUE(store.withdrawn().empty());
}

TEST_F(IssueCodeTest, EachSessionGetsItsOwnIdCodeAndHash) {
  auto a = issue({"+33612345678"});
  auto b = issue({"+33612345678"});
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->id, b->id);
  ASSERT_EQ(sender.sent().size(), 2u);
  EXPECT_EQ(sender.sent()[1].code, "987654");
  EXPECT_EQ(store.issued()[0].subject_key, store.issued()[1].subject_key);  // one phone, one subject
  EXPECT_NE(store.issued()[0].code_hash, store.issued()[1].code_hash);
}

TEST_F(IssueCodeTest, TheExpiryIsTheShorterOfTheCodeAndTheToken) {
  tokens.expires_in = 900s;
  issue.rules.ttl = 300s;
  auto r = issue({"+33612345678"});
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->expires_in, 300s);
  EXPECT_NE(sender.sent()[0].body.find("5 minutes"), std::string::npos);
}

TEST_F(IssueCodeTest, AnInvalidPhoneIsAValidationErrorAndNothingHappens) {
  for (const char* bad : {"", "0612345678", "+33 6 12 ab", "+0123456789", "+1234567"}) {
    auto r = issue({bad});
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.error().kind, ErrorKind::validation_failed);
    ASSERT_EQ(r.error().fields.size(), 1u);
    EXPECT_EQ(r.error().fields[0].field, "phone");
  }
  EXPECT_TRUE(store.issued().empty());
  EXPECT_TRUE(sender.sent().empty());
  EXPECT_EQ(tokens.issue_calls, 0);
}

TEST_F(IssueCodeTest, CooldownAndCapAreRateLimitedWithRetryAfterAndSendNothing) {
  store.next_issue = {ports::IssueOutcome::cooldown, 42s};
  auto r = issue({"+33612345678"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::rate_limited);
  EXPECT_EQ(r.error().retry_after, 42s);

  store.next_issue = {ports::IssueOutcome::hourly_cap, 0s};  // a store's 0 still says "later"
  r = issue({"+33612345678"});
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().kind, ErrorKind::rate_limited);
  EXPECT_EQ(r.error().retry_after, 1s);
  EXPECT_NE(r.error().message.find("Too many"), std::string::npos);

  EXPECT_TRUE(sender.sent().empty());
  EXPECT_EQ(tokens.issue_calls, 0);
}

TEST_F(IssueCodeTest, AFailedSendWithdrawsTheCodeAndTheFailureGoesOn) {
  sender.fail = [](const ports::MailMessage&) { throw ports::BackendUnavailable("gateway down"); };
  EXPECT_THROW(issue({"+33612345678"}), ports::BackendUnavailable);
  ASSERT_EQ(store.withdrawn().size(), 1u);
  EXPECT_EQ(store.withdrawn()[0], "session-1/" + keys.blind_index("+33612345678", "phone"));
  EXPECT_EQ(tokens.issue_calls, 0);

  sender.fail = [](const ports::MailMessage&) { throw ports::MailRejected("no such number"); };
  EXPECT_THROW(issue({"+33612345678"}), ports::MailRejected);
  EXPECT_EQ(store.withdrawn().size(), 2u);
}

TEST(CodeHash, BindsTheSessionAndDiffersFromThePhoneIndex) {
  testing::HashingPiiCipher keys;
  EXPECT_EQ(app::code_hash(keys, "s1", "123456"), app::code_hash(keys, "s1", "123456"));
  EXPECT_NE(app::code_hash(keys, "s1", "123456"), app::code_hash(keys, "s2", "123456"));
  EXPECT_NE(app::code_hash(keys, "s1", "123456"), app::code_hash(keys, "s1", "123457"));
  EXPECT_NE(app::phone_subject_key(keys, "+33612345678"), keys.blind_index("+33612345678", "code"));
}

TEST(NewCode, IsSixDigitsZeroPaddedOverTheWholeRange) {
  testing::ScriptedRandom random{{0, 7, 999'999, 123'456}};
  EXPECT_EQ(app::new_code(random), "000000");
  EXPECT_EQ(app::new_code(random), "000007");
  EXPECT_EQ(app::new_code(random), "999999");
  EXPECT_EQ(app::new_code(random), "123456");
  for (auto bound : random.bounds()) EXPECT_EQ(bound, 1'000'000u);
}

}  // namespace
}  // namespace registrar
