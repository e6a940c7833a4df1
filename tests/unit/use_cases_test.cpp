// The sign-up use cases (register, login, current user) and one pass of the outbox relay,
// against the in-memory fakes of tests/support/fakes.hpp.
#include "app/outbox_relay.hpp"
#include "app/use_cases.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "support/fakes.hpp"

namespace {

namespace app = registrar::app;
namespace domain = registrar::domain;
namespace ports = registrar::ports;
using domain::ErrorKind;
using namespace registrar::testing;

struct UseCasesTest : ::testing::Test {
  FakeUserStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;  // 2025-10-19T16:37:15.123Z
  SequentialIds ids;
  CountingSignal signal;
  app::RegisterUser register_user{store, hasher, tokens, clock, ids, signal};
  app::Login login{store, hasher, tokens};
  app::CurrentUser current_user{tokens, store};

  static constexpr const char* kPassword = "correct horse battery";

  app::AuthResult register_ok(std::string email, std::string username, std::string password = kPassword) {
    auto r = register_user({std::move(email), std::move(username), std::move(password)});
    EXPECT_TRUE(r) << (r ? "" : r.error().message);
    return r ? *r : app::AuthResult{};
  }
};

// ---------------------------------------------------------------- register

TEST_F(UseCasesTest, RegisterWritesUserAndEventTogether) {
  auto r = register_user({"newuser@example.com", "newuser", kPassword});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->user.id, "id-1");
  EXPECT_EQ(r->user.email, "newuser@example.com");
  EXPECT_EQ(r->user.username, "newuser");
  EXPECT_EQ(r->user.password_hash, std::string("hash:") + kPassword);
  EXPECT_EQ(r->user.created_at, clock.now());
  EXPECT_EQ(r->token.token, "tok:id-1:access");
  EXPECT_EQ(r->token.expires_in, tokens.expires_in);

  const auto users = store.users();
  ASSERT_EQ(users.size(), 1u);
  EXPECT_EQ(users[0].user.id, "id-1");
  EXPECT_EQ(users[0].email_canonical, "newuser@example.com");
  EXPECT_EQ(users[0].username_canonical, "newuser");

  const auto outbox = store.outbox();
  ASSERT_EQ(outbox.size(), 1u);
  const auto& e = outbox[0].event;
  EXPECT_EQ(e.id, "id-2");
  EXPECT_NE(e.id, r->user.id);
  EXPECT_EQ(e.type, "user.registered");
  EXPECT_EQ(e.aggregate_id, "id-1");
  EXPECT_EQ(e.occurred_at, clock.now());
  EXPECT_EQ(e.attempts, 0);
  EXPECT_FALSE(outbox[0].sent);

  EXPECT_EQ(hasher.hash_calls, 1);
  EXPECT_EQ(signal.count(), 1);
  EXPECT_EQ(store.create_calls(), 1);
}

TEST_F(UseCasesTest, EventPayloadIsTheWireFormat) {
  register_ok("newuser@example.com", "newuser");
  const auto payload = store.outbox().at(0).event.payload;
  // Byte for byte the format of DESIGN.md (key order included).
  EXPECT_EQ(payload,
            R"({"event":"user.registered","pattern":"user.registered",)"
            R"("data":{"id":"id-1","email":"newuser@example.com","username":"newuser",)"
            R"("createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.123Z"})");

  // And structurally: NestJS treats a body with a top-level "id" as a request, so none is there.
  const auto body = boost::json::parse(payload).as_object();
  EXPECT_EQ(body.size(), 4u);
  EXPECT_FALSE(body.contains("id"));
  EXPECT_EQ(body.at("event"), "user.registered");
  EXPECT_EQ(body.at("pattern"), "user.registered");
  const auto& data = body.at("data").as_object();
  EXPECT_EQ(data.size(), 4u);
  for (const char* key : {"id", "email", "username", "createdAt"}) EXPECT_TRUE(data.contains(key)) << key;
  // No secret ever goes into an event.
  EXPECT_EQ(payload.find(kPassword), std::string::npos);
  EXPECT_EQ(payload.find("hash:"), std::string::npos);
}

TEST_F(UseCasesTest, EventCarriesNormalizedValuesAndSeparateTimes) {
  auto r = register_user({"  NewUser@EXAMPLE.com ", "NewUser", kPassword});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->user.email, "NewUser@example.com");
  EXPECT_EQ(r->user.username, "NewUser");  // the case chosen is kept
  const auto users = store.users();
  EXPECT_EQ(users.at(0).email_canonical, "newuser@example.com");
  EXPECT_EQ(users.at(0).username_canonical, "newuser");
  const auto data = boost::json::parse(store.outbox().at(0).event.payload).as_object().at("data").as_object();
  EXPECT_EQ(data.at("email"), "NewUser@example.com");
  EXPECT_EQ(data.at("username"), "NewUser");
}

TEST_F(UseCasesTest, ValidationErrorsListEveryBadField) {
  auto r = register_user({"not-an-email", "x", "short"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::validation_failed);
  ASSERT_EQ(r.error().fields.size(), 3u);
  EXPECT_EQ(r.error().fields[0].field, "email");
  EXPECT_EQ(r.error().fields[0].code, "invalid_format");
  EXPECT_EQ(r.error().fields[1].field, "username");
  EXPECT_EQ(r.error().fields[1].code, "too_short");
  EXPECT_EQ(r.error().fields[2].field, "password");
  EXPECT_EQ(r.error().fields[2].code, "too_short");
  // Nothing else happened.
  EXPECT_EQ(store.precheck_calls(), 0);
  EXPECT_EQ(store.create_calls(), 0);
  EXPECT_EQ(hasher.hash_calls, 0);
  EXPECT_EQ(signal.count(), 0);
  EXPECT_EQ(tokens.issue_calls, 0);
}

TEST_F(UseCasesTest, ValidationReportsOnlyTheBadFields) {
  auto r = register_user({"ok@example.com", "fine_name", "password1234"});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::validation_failed);
  ASSERT_EQ(r.error().fields.size(), 1u);
  EXPECT_EQ(r.error().fields[0].field, "password");
  EXPECT_EQ(r.error().fields[0].code, "common_password");
  EXPECT_EQ(r.error().message.find("password1234"), std::string::npos);
  EXPECT_EQ(r.error().fields[0].message.find("password1234"), std::string::npos);
}

TEST_F(UseCasesTest, DuplicateEmailInAnotherCaseIsAConflict) {
  register_ok("newuser@example.com", "newuser");
  auto r = register_user({"NewUser@Example.COM", "someone_else", kPassword});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::conflict);
  EXPECT_TRUE(r.error().fields.empty());
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(store.outbox().size(), 1u);
}

TEST_F(UseCasesTest, DuplicateUsernameInAnotherCaseIsAConflict) {
  register_ok("newuser@example.com", "newuser");
  auto r = register_user({"other@example.com", "NEWUSER", kPassword});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::conflict);
  EXPECT_EQ(store.user_count(), 1u);
}

TEST_F(UseCasesTest, ConflictDoesNotSayWhichFieldIsTaken) {
  register_ok("newuser@example.com", "newuser");
  auto by_email = register_user({"NEWUSER@example.com", "someone", kPassword});
  auto by_name = register_user({"someone@example.com", "NewUser", kPassword});
  ASSERT_FALSE(by_email);
  ASSERT_FALSE(by_name);
  EXPECT_EQ(by_email.error().kind, by_name.error().kind);
  EXPECT_EQ(by_email.error().message, by_name.error().message);
  EXPECT_EQ(by_email.error().fields, by_name.error().fields);
}

TEST_F(UseCasesTest, ConflictPreCheckSpendsNoHashAndSendsNoSignal) {
  register_ok("newuser@example.com", "newuser");
  ASSERT_EQ(hasher.hash_calls, 1);
  ASSERT_EQ(signal.count(), 1);
  auto r = register_user({"newuser@example.com", "newuser", kPassword});
  ASSERT_FALSE(r);
  EXPECT_EQ(hasher.hash_calls, 1);
  EXPECT_EQ(store.create_calls(), 1);
  EXPECT_EQ(signal.count(), 1);
  EXPECT_EQ(tokens.issue_calls, 1);
}

// A store whose pre-check misses a concurrent sign-up: the unique constraint still decides.
struct RacyStore : FakeUserStore {
  bool email_or_username_taken(std::string_view, std::string_view) override { return false; }
};

TEST(RegisterRace, ConstraintViolationAfterThePreCheckIsAConflict) {
  RacyStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  const app::RegisterUser register_user{store, hasher, tokens, clock, ids, signal};
  ASSERT_TRUE(register_user({"a@example.com", "alice", "correct horse battery"}));
  for (const app::RegisterCommand& again : {app::RegisterCommand{"A@example.com", "bob", "correct horse battery"},
                                             app::RegisterCommand{"b@example.com", "ALICE", "correct horse battery"}}) {
    auto r = register_user(again);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind, ErrorKind::conflict);
  }
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(store.outbox().size(), 1u);  // no orphan event either
  EXPECT_EQ(signal.count(), 1);
  EXPECT_EQ(tokens.issue_calls, 1);
}

TEST_F(UseCasesTest, BackendFailureIsAnExceptionAndWritesNothing) {
  store.unavailable = true;
  EXPECT_THROW(register_user({"newuser@example.com", "newuser", kPassword}), ports::BackendUnavailable);
  store.unavailable = false;
  EXPECT_EQ(store.user_count(), 0u);
  EXPECT_TRUE(store.outbox().empty());
  EXPECT_EQ(signal.count(), 0);
}

// ---------------------------------------------------------------- login

TEST_F(UseCasesTest, LoginByEmailInAnyCase) {
  const auto reg = register_ok("NewUser@example.com", "newuser");
  for (const char* given : {"NewUser@example.com", "newuser@EXAMPLE.COM", "  NEWUSER@example.com "}) {
    auto r = login({given, kPassword});
    ASSERT_TRUE(r) << given;
    EXPECT_EQ(r->user.id, reg.user.id);
    EXPECT_EQ(r->token.token, "tok:" + reg.user.id + ":access");
  }
  EXPECT_EQ(hasher.verify_calls, 3);
  EXPECT_EQ(hasher.verify_dummy_calls, 0);
}

TEST_F(UseCasesTest, LoginByUsernameInAnyCase) {
  const auto reg = register_ok("newuser@example.com", "NewUser");
  for (const char* given : {"NewUser", "newuser", "NEWUSER"}) {
    auto r = login({given, kPassword});
    ASSERT_TRUE(r) << given;
    EXPECT_EQ(r->user.id, reg.user.id);
    EXPECT_EQ(r->user.username, "NewUser");
  }
}

TEST_F(UseCasesTest, WrongPasswordAndUnknownUserLookTheSame) {
  register_ok("newuser@example.com", "newuser");

  auto wrong = login({"newuser", "not the password"});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ErrorKind::invalid_credentials);
  EXPECT_EQ(hasher.verify_calls, 1);
  EXPECT_EQ(hasher.verify_dummy_calls, 0);

  auto unknown = login({"nobody@example.com", kPassword});
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().kind, wrong.error().kind);
  EXPECT_EQ(unknown.error().message, wrong.error().message);
  EXPECT_TRUE(unknown.error().fields.empty());
  // The same (argon2) work as a real verification, and no real verification.
  EXPECT_EQ(hasher.verify_dummy_calls, 1);
  EXPECT_EQ(hasher.verify_calls, 1);
  EXPECT_EQ(tokens.issue_calls, 1);  // only the registration's
}

TEST_F(UseCasesTest, EveryUnknownOrMalformedLoginCostsOneDummyVerify) {
  register_ok("newuser@example.com", "newuser");
  int expected_dummies = 0;
  for (const char* given : {"nobody", "nobody@example.com", "", "a", "not an email@", "two@@example.com",
                            "has spaces", "newuser@example.com.evil", "x@y"}) {
    auto r = login({given, kPassword});
    ASSERT_FALSE(r) << given;
    EXPECT_EQ(r.error().kind, ErrorKind::invalid_credentials) << given;
    EXPECT_EQ(hasher.verify_dummy_calls, ++expected_dummies) << given;
  }
  EXPECT_EQ(hasher.verify_calls, 0);
}

TEST_F(UseCasesTest, LoginBackendFailureIsAnException) {
  register_ok("newuser@example.com", "newuser");
  store.unavailable = true;
  EXPECT_THROW(login({"newuser", kPassword}), ports::BackendUnavailable);
}

// ---------------------------------------------------------------- current user

TEST_F(UseCasesTest, CurrentUserFromAValidAccessToken) {
  const auto reg = register_ok("newuser@example.com", "newuser");
  auto r = current_user(reg.token.token);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->id, reg.user.id);
  EXPECT_EQ(r->email, "newuser@example.com");
}

TEST_F(UseCasesTest, CurrentUserRefusesBadTokens) {
  const auto reg = register_ok("newuser@example.com", "newuser");
  tokens.expire("tok:expired-user:access");
  for (const std::string& token : {std::string(), std::string("garbage"), std::string("Bearer ") + reg.token.token,
                                  "tok:" + reg.user.id + ":session",  // another kind of token
                                  std::string("tok:expired-user:access"),
                                  FakeTokenService::make("no-such-user", ports::TokenType::access)}) {
    auto r = current_user(token);
    ASSERT_FALSE(r) << token;
    EXPECT_EQ(r.error().kind, ErrorKind::unauthenticated) << token;
  }
}

// ---------------------------------------------------------------- outbox relay

domain::EventEnvelope event(std::string id, std::string aggregate) {
  domain::EventEnvelope e;
  e.id = std::move(id);
  e.type = std::string(domain::kUserRegistered);
  e.aggregate_id = std::move(aggregate);
  e.payload = "{}";
  return e;
}

struct RelayTest : ::testing::Test {
  FakeUserStore outbox;
  FakeEventBus bus;
  app::RelayOptions options{.owner = "relay-1", .batch_size = 256};

  void SetUp() override {
    outbox.add_event(event("e1", "u1"));
    outbox.add_event(event("e2", "u2"));
    outbox.add_event(event("e3", "u3"));
  }
  static std::vector<std::string> ids_of(const std::vector<domain::EventEnvelope>& events) {
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.id);
    return out;
  }
};

TEST_F(RelayTest, PublishesAndMarksConfirmedEventsSent) {
  const auto stats = app::relay_once(outbox, bus, options);
  EXPECT_EQ(stats.claimed, 3u);
  EXPECT_EQ(stats.sent, 3u);
  EXPECT_EQ(stats.released, 0u);
  EXPECT_EQ(ids_of(bus.published()), (std::vector<std::string>{"e1", "e2", "e3"}));  // oldest first
  EXPECT_EQ(outbox.pending_count(), 0u);
  EXPECT_EQ(outbox.release_calls(), 0);

  // Nothing left: the next pass claims nothing and does not touch the bus.
  const auto again = app::relay_once(outbox, bus, options);
  EXPECT_EQ(again.claimed, 0u);
  EXPECT_EQ(bus.publish_calls(), 1);
}

TEST_F(RelayTest, ReleasesWhatTheBusDidNotConfirm) {
  bus.confirm = [](const domain::EventEnvelope& e) { return e.id != "e2"; };
  const auto stats = app::relay_once(outbox, bus, options);
  EXPECT_EQ(stats.claimed, 3u);
  EXPECT_EQ(stats.sent, 2u);
  EXPECT_EQ(stats.released, 1u);

  const auto rows = outbox.outbox();
  EXPECT_TRUE(rows[0].sent);
  EXPECT_FALSE(rows[1].sent);
  EXPECT_TRUE(rows[1].owner.empty());  // given back, not left leased
  EXPECT_EQ(rows[1].event.attempts, 1);
  EXPECT_TRUE(rows[2].sent);
  EXPECT_EQ(outbox.pending_count(), 1u);

  // The next pass retries only the unconfirmed event.
  bus.confirm = nullptr;
  const auto retry = app::relay_once(outbox, bus, options);
  EXPECT_EQ(retry.claimed, 1u);
  EXPECT_EQ(retry.sent, 1u);
  EXPECT_EQ(bus.published().back().id, "e2");
  EXPECT_EQ(outbox.pending_count(), 0u);
}

TEST_F(RelayTest, BusDownReleasesEverythingAndRethrows) {
  bus.unavailable = true;
  EXPECT_THROW(app::relay_once(outbox, bus, options), ports::BackendUnavailable);
  EXPECT_EQ(outbox.pending_count(), 3u);
  EXPECT_EQ(outbox.mark_sent_calls(), 0);
  for (const auto& row : outbox.outbox()) {
    EXPECT_FALSE(row.sent);
    EXPECT_TRUE(row.owner.empty()) << row.event.id;
    EXPECT_EQ(row.event.attempts, 1) << row.event.id;
  }
  // Once the bus is back, everything goes out.
  bus.unavailable = false;
  EXPECT_EQ(app::relay_once(outbox, bus, options).sent, 3u);
}

// An outbox that cannot even give its leases back (the database went down too).
struct StuckOutbox : FakeUserStore {
  void release(std::string_view, const std::vector<std::string>&) override {
    throw ports::BackendUnavailable("outbox: cannot release");
  }
};

TEST(RelayFailure, BusErrorIsRethrownEvenIfReleaseFails) {
  StuckOutbox outbox;
  outbox.add_event(event("e1", "u1"));
  FakeEventBus bus;
  bus.unavailable = true;
  try {
    app::relay_once(outbox, bus, {.owner = "relay-1"});
    FAIL() << "expected an exception";
  } catch (const ports::BackendUnavailable& e) {
    EXPECT_STREQ(e.what(), "fake event bus: unavailable");  // the cause, not the cleanup's error
  }
}

TEST_F(RelayTest, HonoursTheBatchSize) {
  options.batch_size = 2;
  const auto stats = app::relay_once(outbox, bus, options);
  EXPECT_EQ(stats.claimed, 2u);
  EXPECT_EQ(ids_of(bus.published()), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(outbox.pending_count(), 1u);
}

TEST_F(RelayTest, LeasedRowsAreNotClaimedByAnotherRelay) {
  // relay-2 leases everything but has not published yet; relay-1 finds nothing to do.
  ASSERT_EQ(outbox.claim("relay-2", 10, std::chrono::seconds{30}).size(), 3u);
  EXPECT_EQ(app::relay_once(outbox, bus, options).claimed, 0u);
  EXPECT_EQ(bus.publish_calls(), 0);
  outbox.expire_leases();  // relay-2 crashed
  EXPECT_EQ(app::relay_once(outbox, bus, options).sent, 3u);
}

TEST_F(UseCasesTest, RegisteredEventReachesTheBusThroughTheRelay) {
  register_ok("newuser@example.com", "newuser");
  FakeEventBus bus;
  const auto stats = app::relay_once(store, bus, {.owner = "relay-1"});
  EXPECT_EQ(stats.sent, 1u);
  ASSERT_EQ(bus.published().size(), 1u);
  EXPECT_EQ(bus.published()[0].payload, store.outbox()[0].event.payload);
  EXPECT_TRUE(store.outbox()[0].sent);
}

}  // namespace
