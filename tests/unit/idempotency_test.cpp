// Safe retries of a sign-up with the Idempotency-Key header (draft-ietf-httpapi-idempotency-key-
// header): RegisterUser's replay logic against the in-memory fakes, and the header's parser.
#include "adapters/http/idempotency_key.hpp"
#include "app/idempotency.hpp"
#include "app/use_cases.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "support/fakes.hpp"

namespace {

namespace app = registrar::app;
namespace domain = registrar::domain;
namespace http = registrar::adapters::http;
namespace ports = registrar::ports;
using domain::ErrorKind;
using namespace registrar::testing;
using namespace std::chrono_literals;

constexpr const char* kPassword = "correct horse battery";
constexpr const char* kKey = "8e03978e-40d5-43e8-bc93-6894a57f9324";

// What the fake PiiCipher makes of a key: "idx:<purpose>:<value>".
std::string key_hash(std::string_view key) { return "idx:idempotency-key:" + std::string(key); }

app::RegisterCommand keyed(std::string email, std::string username, std::string password = kPassword,
                           std::string key = kKey) {
  return {std::move(email), std::move(username), std::move(password), "", std::move(key)};
}

struct IdempotencyTest : ::testing::Test {
  FakeUserStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  app::KeysInFlight in_flight;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::RegisterUser register_user{create_account, tokens, &in_flight, 24h};
};

TEST_F(IdempotencyTest, TheKeyIsRecordedWithTheAccountAsKeyedHashesWithoutThePassword) {
  auto r = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_FALSE(r->replayed);
  const auto keys = store.idempotency_keys();
  ASSERT_EQ(keys.size(), 1u);
  const auto& record = keys.begin()->second;
  EXPECT_EQ(record.key_hash, key_hash(kKey));
  EXPECT_EQ(record.user_id, r->user.id);
  EXPECT_EQ(record.expires_at, clock.now() + 24h);
  EXPECT_TRUE(record.fingerprint.starts_with("idx:idempotency-request:")) << record.fingerprint;
  EXPECT_EQ(record.fingerprint.find(kPassword), std::string::npos);
  EXPECT_EQ(store.users().size(), 1u);
  EXPECT_EQ(store.outbox().size(), 1u);
}

TEST_F(IdempotencyTest, ARetryWithTheSameKeyAndBodyGetsTheSameAccountAndAFreshTokenAfterThePasswordVerifies) {
  auto first = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(first);
  auto again = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->replayed);
  EXPECT_EQ(again->user.id, first->user.id);
  EXPECT_EQ(again->token.token, "tok:" + first->user.id + ":access");
  EXPECT_EQ(hasher.verify_calls, 1);  // the retry proved the password
  EXPECT_EQ(hasher.hash_calls, 1);    // and created nothing
  EXPECT_EQ(store.users().size(), 1u);
  EXPECT_EQ(store.outbox().size(), 1u);
  EXPECT_EQ(signal.count(), 1);
}

TEST_F(IdempotencyTest, TheSameRequestAsTheDomainNormalisesItIsTheSameRequest) {
  ASSERT_TRUE(register_user(keyed("newuser@EXAMPLE.com", "newuser")));
  auto again = register_user(keyed("  newuser@example.com ", "newuser"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->replayed);
}

TEST_F(IdempotencyTest, AWrongPasswordOnReplayGetsNoTokenButTheMismatch) {
  ASSERT_TRUE(register_user(keyed("newuser@example.com", "newuser")));
  auto again = register_user(keyed("newuser@example.com", "newuser", "another long password"));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, ErrorKind::idempotency_key_mismatch);
  EXPECT_EQ(hasher.verify_calls, 1);
  EXPECT_EQ(store.users().size(), 1u);
}

TEST_F(IdempotencyTest, OtherFieldsWithTheKeyAreAMismatchThatCostsWhatAWrongPasswordCosts) {
  ASSERT_TRUE(register_user(keyed("newuser@example.com", "newuser")));
  for (auto cmd : {keyed("other@example.com", "newuser"), keyed("newuser@example.com", "other"),
                   keyed("newuser@example.com", "NewUser"),
                   app::RegisterCommand{"newuser@example.com", "newuser", kPassword, "https://example.com/a.png", kKey}}) {
    auto r = register_user(cmd);
    ASSERT_FALSE(r) << cmd.email << " " << cmd.username;
    EXPECT_EQ(r.error().kind, ErrorKind::idempotency_key_mismatch);
  }
  EXPECT_EQ(hasher.verify_dummy_calls, 4);  // one argon2 verification each, as for a wrong password
  EXPECT_EQ(hasher.verify_calls, 0);
  EXPECT_EQ(store.users().size(), 1u);
  EXPECT_EQ(hasher.hash_calls, 1);
}

TEST_F(IdempotencyTest, AKeyHeldByARequestInThisProcessIsInFlight) {
  app::KeysInFlight::Hold first(in_flight, key_hash(kKey));
  ASSERT_TRUE(first.held());
  auto r = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::idempotency_key_in_flight);
  EXPECT_TRUE(store.users().empty());
  EXPECT_EQ(hasher.hash_calls, 0);
  // Another key is not held.
  EXPECT_TRUE(register_user(keyed("newuser@example.com", "newuser", kPassword, "other-key")));
}

// A store whose create blocks until released: the first request is "still running".
struct BlockingStore : FakeUserStore {
  std::mutex m;
  std::condition_variable cv;
  bool entered = false, release = false;
  ports::CreateUserOutcome create_user_with_key(const domain::User& user, std::optional<std::string_view> email,
                                                std::string_view username, const domain::EventEnvelope& event,
                                                const ports::IdempotencyKeyRecord& key, domain::Timestamp now) override {
    {
      std::unique_lock lock(m);
      entered = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });
    }
    return FakeUserStore::create_user_with_key(user, email, username, event, key, now);
  }
};

TEST(IdempotencyInFlight, ARetryWhileTheFirstRequestRunsIsInFlightAndTheFirstStillSucceeds) {
  BlockingStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  app::KeysInFlight in_flight;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::RegisterUser register_user{create_account, tokens, &in_flight, 24h};

  std::optional<domain::Expected<app::AuthResult, domain::DomainError>> first;
  std::thread t([&] { first = register_user(keyed("newuser@example.com", "newuser")); });
  {
    std::unique_lock lock(store.m);
    store.cv.wait(lock, [&] { return store.entered; });
  }
  auto second = register_user(keyed("newuser@example.com", "newuser"));
  {
    std::lock_guard lock(store.m);
    store.release = true;
  }
  store.cv.notify_all();
  t.join();
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().kind, ErrorKind::idempotency_key_in_flight);
  ASSERT_TRUE(first && *first);
  // Released: the retry now gets the account.
  auto third = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(third);
  EXPECT_TRUE(third->replayed);
  EXPECT_EQ(third->user.id, (*first)->user.id);
}

// The case the header exists for: the sign-up committed, its answer was lost (the connection to
// the database broke after the commit, so the request answered 503). The retry finds its account.
struct CommitsThenLosesTheAnswer : FakeUserStore {
  bool lose_next = true;
  ports::CreateUserOutcome create_user_with_key(const domain::User& user, std::optional<std::string_view> email,
                                                std::string_view username, const domain::EventEnvelope& event,
                                                const ports::IdempotencyKeyRecord& key, domain::Timestamp now) override {
    auto outcome = FakeUserStore::create_user_with_key(user, email, username, event, key, now);
    if (std::exchange(lose_next, false)) throw ports::BackendUnavailable("connection lost after COMMIT");
    return outcome;
  }
};

TEST(IdempotencyLostAnswer, ARetryOfASignUpWhoseAnswerWasLostGetsItsAccountNotAConflict) {
  CommitsThenLosesTheAnswer store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  app::KeysInFlight in_flight;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::RegisterUser register_user{create_account, tokens, &in_flight, 24h};

  EXPECT_THROW(register_user(keyed("newuser@example.com", "newuser")), ports::BackendUnavailable);
  ASSERT_EQ(store.users().size(), 1u);  // it was committed
  auto retry = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(retry) << retry.error().message;
  EXPECT_TRUE(retry->replayed);
  EXPECT_EQ(retry->user.id, store.users().at(0).user.id);
  EXPECT_EQ(store.users().size(), 1u);
  // Without a key the same retry is the conflict the header prevents.
  auto unkeyed = register_user({"newuser@example.com", "newuser", kPassword});
  ASSERT_FALSE(unkeyed);
  EXPECT_EQ(unkeyed.error().kind, ErrorKind::conflict);
}

// Another process committed a request with the same key between this one's lookup and its write:
// the lookup did not see it, the pre-check (or the insert) then finds the email taken — by our
// own account. The key is looked up again and the request replays instead of answering 409.
struct HidesTheFirstLookup : FakeUserStore {
  int lookups = 0;
  std::optional<ports::IdempotencyKeyRecord> find_idempotency_key(std::string_view key_hash,
                                                                  domain::Timestamp now) override {
    auto found = FakeUserStore::find_idempotency_key(key_hash, now);
    return ++lookups == 1 ? std::nullopt : found;
  }
};

TEST(IdempotencyAcrossProcesses, AConflictWithTheAccountOfOnesOwnKeyReplaysIt) {
  HidesTheFirstLookup store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  app::KeysInFlight this_process;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::RegisterUser self{create_account, tokens, &this_process, 24h};
  // Another process's write of this request, recorded directly so that this process's first
  // lookup is the one the store hides.
  {
    domain::User user;
    user.id = "first";
    user.email = "newuser@example.com";
    user.username = "newuser";
    user.password_hash = std::string("hash:") + kPassword;
    user.created_at = clock.now();
    ports::IdempotencyKeyRecord key{key_hash(kKey), "", "first", clock.now() + 24h};
    // The fingerprint the use case computes for this request (as the fake PiiCipher writes it).
    key.fingerprint = pii.blind_index("19:newuser@example.com7:newuser0:", app::kIdempotencyFingerprintPurpose);
    ASSERT_EQ(store.FakeUserStore::create_user_with_key(user, "newuser@example.com", "newuser",
                                                        domain::EventEnvelope{"e1", "user.registered", "first", "{}"}, key, clock.now()),
              ports::CreateUserOutcome::created);
  }
  auto r = self(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->replayed);
  EXPECT_EQ(r->user.id, "first");
  EXPECT_EQ(store.lookups, 2);
  EXPECT_EQ(hasher.hash_calls, 0);  // the pre-check found the email: no hash spent
}

TEST_F(IdempotencyTest, AnExpiredKeyIsIgnoredAndFreeForANewRequest) {
  auto first = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(first);
  clock.advance(24h);  // expires_at is exclusive: at it, the key has expired
  auto other = register_user(keyed("other@example.com", "other"));
  ASSERT_TRUE(other) << other.error().message;
  EXPECT_FALSE(other->replayed);
  EXPECT_NE(other->user.id, first->user.id);
  const auto keys = store.idempotency_keys();
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys.begin()->second.user_id, other->user.id);
  EXPECT_EQ(keys.begin()->second.expires_at, clock.now() + 24h);
}

TEST_F(IdempotencyTest, ARequestThatFailedRecordedNothingAndItsRetryRunsAnew) {
  auto invalid = register_user(keyed("not-an-email", "newuser"));
  ASSERT_FALSE(invalid);
  EXPECT_EQ(invalid.error().kind, ErrorKind::validation_failed);
  EXPECT_EQ(store.key_lookups(), 0);  // invalid fields: not even looked up
  store.unavailable = true;
  EXPECT_THROW(register_user(keyed("newuser@example.com", "newuser")), ports::BackendUnavailable);
  store.unavailable = false;
  EXPECT_TRUE(store.idempotency_keys().empty());
  auto r = register_user(keyed("newuser@example.com", "newuser"));
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->replayed);
  // The key is free again after the failure (no request holds it).
  EXPECT_TRUE(app::KeysInFlight::Hold(in_flight, key_hash(kKey)).held());
}

TEST_F(IdempotencyTest, AConflictWithAnotherAccountIsStillAConflictAndRecordsNothing) {
  ASSERT_TRUE(register_user({"taken@example.com", "taken", kPassword}));
  auto r = register_user(keyed("taken@example.com", "someone"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::conflict);
  EXPECT_TRUE(store.idempotency_keys().empty());
}

TEST_F(IdempotencyTest, WithoutAKeyNothingIsLookedUpOrRecorded) {
  ASSERT_TRUE(register_user({"newuser@example.com", "newuser", kPassword}));
  EXPECT_EQ(store.key_lookups(), 0);
  EXPECT_TRUE(store.idempotency_keys().empty());
}

TEST(KeysInFlight, AHoldIsExclusiveUntilReleased) {
  app::KeysInFlight keys;
  {
    app::KeysInFlight::Hold a(keys, "k");
    EXPECT_TRUE(a.held());
    app::KeysInFlight::Hold b(keys, "k");
    EXPECT_FALSE(b.held());
    app::KeysInFlight::Hold c(keys, "other");
    EXPECT_TRUE(c.held());
  }
  EXPECT_TRUE(app::KeysInFlight::Hold(keys, "k").held());
}

// ---------------------------------------------------------------- the header

http::Request with_keys(std::initializer_list<std::string_view> values) {
  http::Request req{http::beast_http::verb::post, "/auth/register", 11};
  for (auto v : values) req.insert("Idempotency-Key", v);
  return req;
}

std::string key_of(const http::Request& req) {
  auto k = http::idempotency_key(req);
  if (auto* s = std::get_if<std::string>(&k)) return *s;
  return std::holds_alternative<http::NoIdempotencyKey>(k) ? "<none>" : "<invalid>";
}

TEST(IdempotencyKeyHeader, TheDraftsQuotedStringAndTheBareFormAreOneKey) {
  EXPECT_EQ(key_of(with_keys({})), "<none>");
  EXPECT_EQ(key_of(with_keys({"\"8e03978e-40d5\""})), "8e03978e-40d5");
  EXPECT_EQ(key_of(with_keys({"8e03978e-40d5"})), "8e03978e-40d5");
  EXPECT_EQ(key_of(with_keys({R"("a \"quoted\" key \\ with spaces")"})), R"(a "quoted" key \ with spaces)");
  EXPECT_EQ(key_of(with_keys({std::string(255, 'k')})), std::string(255, 'k'));
}

TEST(IdempotencyKeyHeader, EmptyTooLongUnprintableMalformedOrRepeatedKeysAreInvalid) {
  for (std::string bad : {std::string(""), std::string("\"\""), std::string(256, 'k'), "\"" + std::string(256, 'k') + "\"",
                          std::string("a b"), std::string("caf\xc3\xa9"), std::string("tab\there"), std::string("\"open"),
                          std::string("\"bad \\x escape\""), std::string("\"in\"side\""), std::string("a\"b")}) {
    EXPECT_EQ(key_of(with_keys({bad})), "<invalid>") << bad;
  }
  EXPECT_EQ(key_of(with_keys({"one", "two"})), "<invalid>");
  EXPECT_EQ(key_of(with_keys({"one", "one"})), "<invalid>");
  auto k = http::idempotency_key(with_keys({std::string(300, 'k')}));
  ASSERT_TRUE(std::holds_alternative<http::InvalidIdempotencyKey>(k));
  EXPECT_EQ(std::get<http::InvalidIdempotencyKey>(k).detail.find("kkk"), std::string::npos);  // never echoed
}

}  // namespace
