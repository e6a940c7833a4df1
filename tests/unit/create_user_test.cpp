// The Create_User job (app/create_user): every branch of the pipeline (CreateUserFromJob) and of one
// run of a job (RunCreateUserJob), against the in-memory fakes of tests/support/fakes.hpp and the
// in-process code store (its rules — wrong tries, single use — are the ones the pipeline relies on).
#include "app/create_user.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "adapters/inproc/code_store.hpp"
#include "app/use_cases.hpp"
#include "app/verification.hpp"
#include "support/fakes.hpp"

namespace {

namespace app = registrar::app;
namespace json = boost::json;
namespace msg = registrar::app::create_user_messages;
namespace ports = registrar::ports;
using namespace registrar::testing;

constexpr const char* kSession = "vs-1";
constexpr const char* kCode = "123456";
constexpr const char* kPhone = "+33612345678";
constexpr const char* kPassword = "correct horse battery";

struct CreateUserTest : ::testing::Test {
  FakeUserStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids{"user-"};
  CountingSignal signal;
  FakePiiCipher pii;
  registrar::adapters::inproc::InProcessCodeStore codes;
  RecordingJobQueue queue;
  RecordingNotifier notifier;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::CreateUserFromJob pipeline{tokens, codes, pii, store, create_account};
  app::RunCreateUserJob run{pipeline, queue, notifier};

  void SetUp() override { issue_code(kSession, kCode); }

  void issue_code(const std::string& session, const std::string& code) {
    const auto r = codes.issue(
        {session, app::phone_subject_key(pii, kPhone + session), app::code_hash(pii, session, code), ports::CodeRules{}});
    ASSERT_EQ(r.outcome, ports::IssueOutcome::issued);
  }

  static std::string session_token() { return FakeTokenService::make(kSession, ports::TokenType::verification); }

  static app::CreateUserJob job(std::string code = kCode, std::string token = session_token()) {
    return {.id = kSession,
            .token = std::move(token),
            .code = std::move(code),
            .phone = kPhone,
            .password = kPassword,
            .username = "phoneuser",
            .image = ""};
  }

  static std::string data_json(const app::CreateUserJob& j) {
    json::object o;
    o["id"] = j.id;
    o["token"] = j.token;
    o["code"] = j.code;
    o["phone"] = j.phone;
    o["password"] = j.password;
    o["username"] = j.username;
    o["image"] = j.image;
    return json::serialize(o);
  }

  static ports::Job queued(std::string data, int attempts = 1, int attempts_made = 0) {
    ports::Job j;
    j.id = "42";
    j.data = std::move(data);
    j.attempts_made = attempts_made;
    j.options.attempts = attempts;
    j.lock_token = "lock";
    return j;
  }

  // Whether the session's code is still there and right (a check with the right code matches).
  bool code_still_valid(const std::string& session = kSession, const std::string& code = kCode) {
    return codes.check(session, app::code_hash(pii, session, code), ports::CodeRules{}.max_wrong_tries).outcome ==
           ports::CheckOutcome::match;
  }

  static void expect_outcome(const app::CreateUserOutcome& o, bool success, std::string_view message) {
    EXPECT_EQ(o.id, kSession);
    EXPECT_EQ(o.success, success);
    EXPECT_EQ(o.message, message);
  }
};

// ---------------------------------------------------------------- CreateUserFromJob

TEST_F(CreateUserTest, AValidJobCreatesTheAccountAndSpendsTheCode) {
  const auto o = pipeline(job());
  expect_outcome(o, true, msg::created);
  EXPECT_EQ(o.message, "User created successfully");
  EXPECT_EQ(o.room, kSession);
  ASSERT_TRUE(o.user_id);

  const auto users = store.users();
  ASSERT_EQ(users.size(), 1u);
  const auto& u = users[0].user;
  EXPECT_EQ(u.id, *o.user_id);
  EXPECT_EQ(u.username, "phoneuser");
  EXPECT_EQ(u.password_hash, std::string("hash:") + kPassword);
  EXPECT_EQ(u.verification_id, kSession);
  ASSERT_TRUE(u.phone);
  EXPECT_EQ(u.phone->blind_index, std::string("idx:phone:") + kPhone);
  EXPECT_FALSE(u.email);
  EXPECT_EQ(store.outbox().size(), 1u);  // one user.registered

  // Single use: the code is gone.
  EXPECT_EQ(codes.check(kSession, app::code_hash(pii, kSession, kCode), 5).outcome, ports::CheckOutcome::missing);
}

TEST_F(CreateUserTest, ATokenThatCannotBeVerifiedEndsTheSession) {
  // An expired token of the right session.
  tokens.expire(session_token());
  expect_outcome(pipeline(job()), false, msg::session_expired);

  for (const std::string& token : {std::string("tok:vs-1"),                                      // tampered
                                   std::string("eyJhbGciOiJub25lIn0.e30."),                      // not ours
                                   FakeTokenService::make(kSession, ports::TokenType::access),   // wrong type
                                   FakeTokenService::make("vs-2", ports::TokenType::verification),  // other session
                                   std::string()}) {
    SCOPED_TRACE(token);
    const auto o = pipeline(job(kCode, token));
    expect_outcome(o, false, msg::session_expired);
    EXPECT_EQ(o.message, "Session expired. Please log in again");
    EXPECT_EQ(o.room, "");
  }
  EXPECT_EQ(store.user_count(), 0u);
  EXPECT_EQ(store.create_calls(), 0);
  EXPECT_TRUE(code_still_valid());  // no try counted against the code
}

TEST_F(CreateUserTest, AMissingOrWrongCodeIsIncorrect) {
  auto o = pipeline(job(""));
  expect_outcome(o, false, msg::code_incorrect);
  EXPECT_EQ(o.message, "The verification code is incorrect");
  EXPECT_EQ(o.room, kSession);

  o = pipeline(job("654321"));
  expect_outcome(o, false, msg::code_incorrect);

  // A session whose code was never issued (or expired, or was used).
  auto other = job(kCode, FakeTokenService::make("vs-9", ports::TokenType::verification));
  other.id = "vs-9";
  o = pipeline(other);
  EXPECT_FALSE(o.success);
  EXPECT_EQ(o.message, msg::code_incorrect);

  EXPECT_EQ(store.create_calls(), 0);
  // One wrong try was counted (an empty code is not compared); the right code still works.
  expect_outcome(pipeline(job()), true, msg::created);
}

TEST_F(CreateUserTest, FiveWrongTriesBurnTheCode) {
  for (int i = 0; i < 5; ++i) {
    SCOPED_TRACE(i);
    expect_outcome(pipeline(job("00000" + std::to_string(i))), false, msg::code_incorrect);
  }
  // The right code is refused now.
  expect_outcome(pipeline(job()), false, msg::code_incorrect);
  EXPECT_EQ(store.user_count(), 0u);
  EXPECT_EQ(store.create_calls(), 0);
}

TEST_F(CreateUserTest, FourWrongTriesLeaveTheRightCodeUsable) {
  for (int i = 0; i < 4; ++i) expect_outcome(pipeline(job("00000" + std::to_string(i))), false, msg::code_incorrect);
  expect_outcome(pipeline(job()), true, msg::created);
  EXPECT_EQ(store.user_count(), 1u);
}

TEST_F(CreateUserTest, AKeyThatIsNotThereIsAnEncryptionError) {
  pii.current = "k2";  // the current key id names a key the cipher does not hold
  const auto o = pipeline(job());
  expect_outcome(o, false, msg::encryption_failed);
  EXPECT_EQ(o.message, "Error encrypting your credentials. Please try again");
  EXPECT_EQ(o.room, kSession);
  EXPECT_FALSE(o.user_id);
  EXPECT_EQ(store.user_count(), 0u);
  EXPECT_TRUE(store.outbox().empty());
  // "Please try again": the code was not spent.
  EXPECT_TRUE(code_still_valid());
}

TEST_F(CreateUserTest, ABackendOutageThrows) {
  store.unavailable = true;
  EXPECT_THROW(pipeline(job()), ports::BackendUnavailable);
  store.unavailable = false;
  EXPECT_TRUE(code_still_valid());
}

TEST_F(CreateUserTest, InvalidJobDataIsAProcessingError) {
  auto bad_phone = job();
  bad_phone.phone = "not a phone";
  expect_outcome(pipeline(bad_phone), false, msg::processing_error);

  auto bad_username = job();
  bad_username.username = "";
  expect_outcome(pipeline(bad_username), false, msg::processing_error);
  EXPECT_EQ(store.user_count(), 0u);
}

TEST_F(CreateUserTest, TheSameJobTwiceFindsTheFirstAccount) {
  const auto first = pipeline(job());
  ASSERT_TRUE(first.success);
  // Run again (a stalled job, a retry after the account was written): the code is gone, but the
  // account of the first run answers.
  const auto second = pipeline(job());
  expect_outcome(second, true, msg::created);
  EXPECT_EQ(second.user_id, first.user_id);
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(store.create_calls(), 1);
  EXPECT_EQ(store.outbox().size(), 1u);
}

// ---------------------------------------------------------------- parse_create_user_job

TEST_F(CreateUserTest, ParsingKeepsNodesStringOfANumericCode) {
  auto parsed = app::parse_create_user_job(R"({"id":"vs-1","code":123456,"phone":"+33612345678"})");
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->code, "123456");
  // String(012345) in Node is "12345": the leading zero is lost, as there.
  parsed = app::parse_create_user_job(R"({"id":"vs-1","code":12345})");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->code, "12345");
  // Missing and null fields are empty.
  parsed = app::parse_create_user_job(R"({"id":"vs-1","image":null})");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->image, "");
  EXPECT_EQ(parsed->token, "");
}

TEST_F(CreateUserTest, ParsingRefusesWhatIsNotAJobObject) {
  EXPECT_EQ(app::parse_create_user_job("not json").error(), "job data is not JSON");
  EXPECT_EQ(app::parse_create_user_job("[1,2]").error(), "job data is not a JSON object");
  EXPECT_EQ(app::parse_create_user_job(R"({"id":"x","password":5})").error(),
            "job data field \"password\" is not a string");
  EXPECT_EQ(app::parse_create_user_job(R"({"id":"x","code":1.5})").error(), "job data field \"code\" is not a string");
  // The reason never holds the values.
  const auto e = app::parse_create_user_job(R"({"id":"x","phone":["+33612345678"]})").error();
  EXPECT_EQ(e.find("+33612345678"), std::string::npos);
}

// ---------------------------------------------------------------- RunCreateUserJob

TEST_F(CreateUserTest, RunCompletesRecordsAndNotifies) {
  const auto r = run(queued(data_json(job())));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);
  const auto value = json::parse(r.value).as_object();
  EXPECT_EQ(value.at("id").as_string(), kSession);
  EXPECT_TRUE(value.at("success").as_bool());
  EXPECT_EQ(value.at("message").as_string(), "User created successfully");
  const auto users = store.users();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(value.at("userId").as_string(), users[0].user.id);
  EXPECT_FALSE(code_still_valid());

  const auto sent = notifier.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].room, kSession);
  EXPECT_EQ(sent[0].id, kSession);
  EXPECT_TRUE(sent[0].success);
  EXPECT_EQ(sent[0].message, "User created successfully");

  const auto updates = queue.updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(updates[0].first, "42");
}

TEST_F(CreateUserTest, TheEndedJobKeepsNoSecrets) {
  const std::string numeric_code = R"({"id":"vs-1","token":"tok:vs-1:verification","code":123456,)"
                                   R"("phone":"+33612345678","password":"correct horse battery","username":"phoneuser"})";
  // One run per way a job can end: created, session expired, wrong code, parse error.
  run(queued(data_json(job("000000"))));
  run(queued(data_json(job(kCode, "tok:vs-1:access"))));
  run(queued(numeric_code));
  run(queued(R"({"id":"vs-1","token":"tok:vs-1:verification","password":["correct horse battery"]})"));
  const auto updates = queue.updates();
  ASSERT_EQ(updates.size(), 4u);
  const char* messages[] = {"The verification code is incorrect", "Session expired. Please log in again",
                            "User created successfully", "Error processing job"};
  for (std::size_t i = 0; i < updates.size(); ++i) {
    SCOPED_TRACE(updates[i].second);
    const auto data = json::parse(updates[i].second).as_object();
    for (const char* secret : {"token", "code", "phone", "password"}) EXPECT_FALSE(data.contains(secret)) << secret;
    EXPECT_EQ(updates[i].second.find("correct horse"), std::string::npos);
    EXPECT_EQ(updates[i].second.find("612345678"), std::string::npos);
    EXPECT_EQ(updates[i].second.find("tok:"), std::string::npos);
    EXPECT_EQ(data.at("id").as_string(), kSession);
    EXPECT_EQ(data.at("outcome").at("message").as_string(), messages[i]);
  }
  EXPECT_EQ(json::parse(updates[2].second).at("username").as_string(), "phoneuser");
  EXPECT_EQ(store.user_count(), 1u);
}

TEST_F(CreateUserTest, RunWithAnExpiredSessionNotifiesNobody) {
  const auto r = run(queued(data_json(job(kCode, "garbage"))));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(r.value), json::parse(R"({"id":"vs-1","success":false,"message":"Session expired. Please log in again"})"));
  EXPECT_TRUE(notifier.sent().empty());  // no room: the token is not readable
  ASSERT_EQ(queue.updates().size(), 1u);
}

TEST_F(CreateUserTest, RunNotifiesARefusalToTheSessionsRoom) {
  const auto r = run(queued(data_json(job("999999"))));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(r.value),
            json::parse(R"({"id":"vs-1","success":false,"message":"The verification code is incorrect"})"));
  const auto sent = notifier.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].room, kSession);
  EXPECT_FALSE(sent[0].success);
  EXPECT_EQ(sent[0].message, "The verification code is incorrect");
}

TEST_F(CreateUserTest, RunOfAnEncryptionFailureCompletesWithItsMessage) {
  pii.current = "gone";
  const auto r = run(queued(data_json(job()), /*attempts=*/3));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);  // never retried
  EXPECT_EQ(json::parse(r.value),
            json::parse(R"({"id":"vs-1","success":false,"message":"Error encrypting your credentials. Please try again"})"));
  ASSERT_EQ(notifier.sent().size(), 1u);
  EXPECT_EQ(notifier.sent()[0].message, "Error encrypting your credentials. Please try again");
  EXPECT_EQ(store.user_count(), 0u);
}

TEST_F(CreateUserTest, AnOutageRetriesWhileAttemptsRemainThenEnds) {
  store.unavailable = true;
  const std::string data = data_json(job());
  for (int made = 0; made < 2; ++made) {
    SCOPED_TRACE(made);
    const auto r = run(queued(data, /*attempts=*/3, made));
    EXPECT_EQ(r.kind, ports::JobResult::Kind::retry);
    EXPECT_EQ(r.value, "Error processing job");
  }
  EXPECT_TRUE(queue.updates().empty());  // the data (and its secrets) stay for the next run
  EXPECT_TRUE(notifier.sent().empty());

  // The last attempt: completed with the outcome, recorded, notified.
  const auto r = run(queued(data, 3, 2));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(r.value), json::parse(R"({"id":"vs-1","success":false,"message":"Error processing job"})"));
  const auto updates = queue.updates();
  ASSERT_EQ(updates.size(), 1u);
  const auto recorded = app::recorded_outcome(updates[0].second);
  ASSERT_TRUE(recorded);
  EXPECT_FALSE(recorded->success);
  EXPECT_EQ(recorded->message, "Error processing job");
  EXPECT_FALSE(json::parse(updates[0].second).as_object().contains("password"));
  const auto sent = notifier.sent();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].room, kSession);
  EXPECT_EQ(sent[0].message, "Error processing job");
  EXPECT_EQ(store.user_count(), 0u);
}

TEST_F(CreateUserTest, AnOutageOnAJobWithoutAttemptsEndsAtOnce) {
  store.unavailable = true;
  const auto r = run(queued(data_json(job())));  // Bull's default: attempts 1
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(r.value).at("message").as_string(), "Error processing job");
  EXPECT_EQ(queue.updates().size(), 1u);
}

TEST_F(CreateUserTest, AnOutageOfTheQueueToo_RunsAgainWhenItAnswersWithoutUsingAnAttempt) {
  // Redis holds the codes and the queue: a store down and the queue not answering either.
  store.unavailable = true;
  queue.unavailable = true;
  const std::string data = data_json(job());
  const auto r = run(queued(data));  // attempts 1: a retry would have ended the job
  EXPECT_EQ(r.kind, ports::JobResult::Kind::rerun);
  EXPECT_TRUE(queue.updates().empty());
  EXPECT_TRUE(notifier.sent().empty());
  // Back: the same run (same attempts_made) succeeds.
  store.unavailable = false;
  queue.unavailable = false;
  const auto again = run(queued(data));
  ASSERT_EQ(again.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(again.value).at("message").as_string(), "User created successfully");
  EXPECT_EQ(store.user_count(), 1u);
}

// The code store (Redis, beside the queue) down while the queue answers again by the time the run
// looks (the outage ended in between): still the queue's outage, the run is repeated.
struct UnavailableCodes final : ports::VerificationCodeStore {
  ports::IssueResult issue(const ports::IssueCodeRequest&) override { throw ports::BackendUnavailable("redis: down"); }
  ports::CheckResult check(std::string_view, std::string_view, int) override { throw ports::BackendUnavailable("redis: down"); }
  void consume(std::string_view) override { throw ports::BackendUnavailable("redis: down"); }
  void withdraw(std::string_view, std::string_view) override { throw ports::BackendUnavailable("redis: down"); }
};

TEST_F(CreateUserTest, AnOutageOfTheCodeStoreRunsTheJobAgainEvenWhenTheQueueAnswers) {
  UnavailableCodes down;
  app::CreateUserFromJob with_codes_down{tokens, down, pii, store, create_account};
  app::RunCreateUserJob run_down{with_codes_down, queue, notifier};
  const auto r = run_down(queued(data_json(job())));  // attempts 1
  EXPECT_EQ(r.kind, ports::JobResult::Kind::rerun);
  EXPECT_TRUE(queue.updates().empty());
  EXPECT_TRUE(notifier.sent().empty());
  EXPECT_EQ(store.user_count(), 0u);
}

TEST_F(CreateUserTest, AnOutcomeThatCannotBeRecordedRunsAgainAndIsNotifiedOnce) {
  queue.unavailable = true;  // the account is made; recording its outcome fails
  const std::string data = data_json(job());
  EXPECT_EQ(run(queued(data)).kind, ports::JobResult::Kind::rerun);
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_TRUE(notifier.sent().empty());  // nobody hears of an outcome that was not recorded
  queue.unavailable = false;
  const auto again = run(queued(data));  // the account of the first run answers; the code is spent
  ASSERT_EQ(again.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(again.value).at("message").as_string(), "User created successfully");
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(store.create_calls(), 1);
  ASSERT_EQ(notifier.sent().size(), 1u);
  EXPECT_TRUE(notifier.sent()[0].success);
}

TEST_F(CreateUserTest, ARetryAfterTheOutageSucceeds) {
  store.unavailable = true;
  const std::string data = data_json(job());
  EXPECT_EQ(run(queued(data, 3, 0)).kind, ports::JobResult::Kind::retry);
  store.unavailable = false;
  const auto r = run(queued(data, 3, 1));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(r.value).at("message").as_string(), "User created successfully");
  EXPECT_EQ(store.user_count(), 1u);
}

TEST_F(CreateUserTest, AJobRunTwiceReportsItsFirstOutcomeFromItsData) {
  const auto first = run(queued(data_json(job())));
  ASSERT_EQ(first.kind, ports::JobResult::Kind::complete);
  const auto ended = queue.updates().at(0).second;

  // Its worker died after recording the outcome: the job runs again with the ended data.
  store.unavailable = true;  // not even looked at
  const auto second = run(queued(ended));
  ASSERT_EQ(second.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(second.value, first.value);
  EXPECT_EQ(queue.updates().size(), 1u);  // nothing recorded again
  EXPECT_EQ(notifier.sent().size(), 1u);  // nor notified again
  store.unavailable = false;
  EXPECT_EQ(store.user_count(), 1u);
}

TEST_F(CreateUserTest, AJobRunTwiceReportsItsFirstOutcomeFromTheAccount) {
  const auto first = run(queued(data_json(job())));
  ASSERT_EQ(first.kind, ports::JobResult::Kind::complete);
  // Its worker died before the outcome was recorded: the job runs again with its original data;
  // the code is spent, the account (by its verification id) answers.
  const auto second = run(queued(data_json(job())));
  ASSERT_EQ(second.kind, ports::JobResult::Kind::complete);
  EXPECT_EQ(json::parse(second.value), json::parse(first.value));
  EXPECT_EQ(json::parse(second.value).at("message").as_string(), "User created successfully");
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(store.create_calls(), 1);
  EXPECT_EQ(store.outbox().size(), 1u);
}

TEST_F(CreateUserTest, DataThatIsNotJsonEndsWithAProcessingError) {
  const auto r = run(queued("{not json", 3));
  ASSERT_EQ(r.kind, ports::JobResult::Kind::complete);  // never retried
  EXPECT_EQ(json::parse(r.value), json::parse(R"({"id":"","success":false,"message":"Error processing job"})"));
  EXPECT_TRUE(notifier.sent().empty());
  const auto updates = queue.updates();
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(json::parse(updates[0].second),
            json::parse(R"({"outcome":{"success":false,"message":"Error processing job"}})"));
}

TEST_F(CreateUserTest, ANumericCodeRunsAsNodesString) {
  const std::string numeric = R"({"id":"vs-1","token":"tok:vs-1:verification","code":123456,)"
                              R"("phone":"+33612345678","password":"correct horse battery","username":"phoneuser"})";
  const auto r = run(queued(numeric));
  EXPECT_EQ(json::parse(r.value).at("message").as_string(), "User created successfully");

  // A code with a leading zero sent as a number loses it (String(012345) is "12345"): incorrect.
  issue_code("vs-2", "012345");
  const std::string leading_zero = R"({"id":"vs-2","token":"tok:vs-2:verification","code":12345,)"
                                   R"("phone":"+33612345679","password":"correct horse battery","username":"other"})";
  const auto z = run(queued(leading_zero));
  EXPECT_EQ(json::parse(z.value).at("message").as_string(), "The verification code is incorrect");
  EXPECT_TRUE(code_still_valid("vs-2", "012345"));
}

}  // namespace
