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
  FakePiiCipher pii;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::RegisterUser register_user{create_account, tokens};
  app::Login login{store, hasher, tokens, pii};
  app::CurrentUser current_user{tokens, store, pii};

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
  bool contact_or_username_taken(std::optional<std::string_view>, std::string_view,
                                 std::optional<std::string_view>) override {
    return false;
  }
};

TEST(RegisterRace, ConstraintViolationAfterThePreCheckIsAConflict) {
  RacyStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  const app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  const app::RegisterUser register_user{create_account, tokens};
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
  EXPECT_EQ(r->user.id, reg.user.id);
  EXPECT_EQ(r->user.email, "newuser@example.com");
  EXPECT_FALSE(r->phone_masked);
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

// ---------------------------------------------------------------- phone accounts (CreateAccount)

constexpr const char* kPhone = "+33612345678";

domain::Phone phone(std::string_view raw = kPhone) { return *domain::Phone::parse(raw); }

app::CreateAccountCommand phone_account(std::string username, std::optional<std::string> verification_id = "vs-1",
                                        std::string_view raw_phone = kPhone) {
  return {.username = std::move(username),
          .password = "correct horse battery",
          .phone = phone(raw_phone),
          .verification_id = std::move(verification_id)};
}

TEST_F(UseCasesTest, PhoneAccountStoresTheSealedPhoneAndItsIndexOnly) {
  auto r = create_account(phone_account("phoneuser"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->created);
  const auto& u = r->user;
  EXPECT_FALSE(u.email);
  ASSERT_TRUE(u.phone);
  EXPECT_EQ(u.phone->sealed.key_id, "k1");
  EXPECT_EQ(u.phone->blind_index, std::string("idx:phone:") + kPhone);
  // Sealed with the user's id as context, and opens back to the E.164 number.
  EXPECT_EQ(pii.open(u.phone->sealed, app::phone_seal_context(u.id)), kPhone);
  EXPECT_EQ(u.phone->sealed.ciphertext.find(kPhone), std::string::npos);
  EXPECT_EQ(u.verification_id, "vs-1");

  const auto stored = store.users();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_FALSE(stored[0].email_canonical);
  EXPECT_EQ(signal.count(), 1);

  // user.registered: data.email null, and no phone in any form.
  const auto payload = store.outbox().at(0).event.payload;
  const auto data = boost::json::parse(payload).as_object().at("data").as_object();
  EXPECT_TRUE(data.at("email").is_null());
  EXPECT_EQ(data.size(), 4u);
  EXPECT_EQ(payload.find("612345678"), std::string::npos);
  EXPECT_EQ(payload.find("idx:"), std::string::npos);
}

TEST_F(UseCasesTest, AnAccountNeedsAnEmailOrAPhone) {
  auto r = create_account({.username = "nobody", .password = kPassword});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::validation_failed);
  ASSERT_EQ(r.error().fields.size(), 1u);
  EXPECT_EQ(r.error().fields[0].field, "email");
  EXPECT_EQ(r.error().fields[0].code, "required");
  EXPECT_EQ(store.create_calls(), 0);
}

TEST_F(UseCasesTest, ImageIsValidatedAndKept) {
  auto bad = register_user({"newuser@example.com", "newuser", kPassword, "javascript:alert(1)"});
  ASSERT_FALSE(bad);
  ASSERT_EQ(bad.error().fields.size(), 1u);
  EXPECT_EQ(bad.error().fields[0].field, "image");
  EXPECT_EQ(bad.error().fields[0].code, "invalid_format");
  auto ok = register_user({"newuser@example.com", "newuser", kPassword, "https://cdn.example.com/a.png"});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->user.image, "https://cdn.example.com/a.png");
  auto none = create_account(phone_account("other", "vs-2", "+33700000001"));
  ASSERT_TRUE(none);
  EXPECT_FALSE(none->user.image);
}

TEST_F(UseCasesTest, ASecondRunOfOneVerificationReturnsTheFirstAccount) {
  auto first = create_account(phone_account("phoneuser"));
  ASSERT_TRUE(first);
  auto again = create_account(phone_account("phoneuser"));
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->user.id, first->user.id);
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(store.outbox().size(), 1u);  // one user.registered
  EXPECT_EQ(hasher.hash_calls, 1);       // and no second hash
  EXPECT_EQ(signal.count(), 1);
}

TEST_F(UseCasesTest, APhoneTakenByAnotherAccountIsAConflict) {
  ASSERT_TRUE(create_account(phone_account("phoneuser", "vs-1")));
  // The same number written differently, from another verification session.
  auto r = create_account(phone_account("someone", "vs-2", "+33 6 12 34 56 78"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::conflict);
  EXPECT_EQ(r.error().message, "An account with this phone or username already exists");
  EXPECT_EQ(store.user_count(), 1u);
  EXPECT_EQ(hasher.hash_calls, 1);
}

TEST_F(UseCasesTest, AMissingKeyIsKeyUnavailableAndWritesNothing) {
  pii.current = "k9";  // names a key that is not there
  EXPECT_THROW(create_account(phone_account("phoneuser")), ports::KeyUnavailable);
  pii.current = "k1";
  pii.index_available = false;
  EXPECT_THROW(create_account(phone_account("phoneuser")), ports::KeyUnavailable);
  EXPECT_EQ(store.user_count(), 0u);
  EXPECT_TRUE(store.outbox().empty());
  EXPECT_EQ(signal.count(), 0);
}

TEST_F(UseCasesTest, LoginByPhoneFindsTheAccountByItsBlindIndex) {
  auto made = create_account(phone_account("phoneuser"));
  ASSERT_TRUE(made);
  for (const app::LoginCommand& cmd : {app::LoginCommand{kPhone, kPassword, true},
                                       app::LoginCommand{"+33 6 12 34 56 78", kPassword, true},
                                       app::LoginCommand{kPhone, kPassword},  // '+': a phone
                                       app::LoginCommand{"PhoneUser", kPassword}}) {
    auto r = login(cmd);
    ASSERT_TRUE(r) << cmd.login;
    EXPECT_EQ(r->user.id, made->user.id);
    EXPECT_EQ(r->phone_masked, "+33\u2022\u2022\u2022\u2022\u2022\u2022\u202278");
  }
  // Wrong password, unknown or malformed phone: one answer, one argon2 verification each.
  const int dummies = hasher.verify_dummy_calls;
  for (const app::LoginCommand& cmd : {app::LoginCommand{"+33612345679", kPassword, true},
                                       app::LoginCommand{"33612345678", kPassword, true},
                                       app::LoginCommand{"+0", kPassword, true}}) {
    auto r = login(cmd);
    ASSERT_FALSE(r) << cmd.login;
    EXPECT_EQ(r.error().kind, ErrorKind::invalid_credentials);
  }
  EXPECT_EQ(hasher.verify_dummy_calls, dummies + 3);
  auto wrong = login({kPhone, "not the password", true});
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().kind, ErrorKind::invalid_credentials);
}

TEST_F(UseCasesTest, CurrentUserShowsThePhoneMasked) {
  auto made = create_account(phone_account("phoneuser"));
  ASSERT_TRUE(made);
  auto r = current_user(FakeTokenService::make(made->user.id, ports::TokenType::access));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->phone_masked, "+33\u2022\u2022\u2022\u2022\u2022\u2022\u202278");
  // Its key gone: the profile is still served, without the phone.
  pii.keys.clear();
  auto without = current_user(FakeTokenService::make(made->user.id, ports::TokenType::access));
  ASSERT_TRUE(without);
  EXPECT_FALSE(without->phone_masked);
}

// ---------------------------------------------------------------- key rotation

TEST_F(UseCasesTest, RotationReSealsEveryPhoneUnderTheCurrentKeyInBatches) {
  for (int i = 0; i < 7; ++i)
    ASSERT_TRUE(create_account(phone_account("user" + std::to_string(i), "vs-" + std::to_string(i),
                                             "+3361234560" + std::to_string(i))));
  ASSERT_TRUE(register_user({"mail@example.com", "mailuser", kPassword}));  // no phone: untouched
  pii.keys.insert("k2");
  pii.current = "k2";
  std::vector<std::size_t> seen;
  const app::RotatePhoneKeys rotate{.users = store, .pii = pii, .batch_size = 3};
  auto done = rotate([&](const app::RotationProgress& p) { seen.push_back(p.resealed); });
  EXPECT_EQ(done.scanned, 7u);
  EXPECT_EQ(done.resealed, 7u);
  EXPECT_EQ(done.changed, 0u);
  EXPECT_EQ(done.unreadable, 0u);
  EXPECT_EQ(seen, (std::vector<std::size_t>{3, 6, 7}));
  EXPECT_EQ(store.phone_key_counts(), (std::vector<std::pair<std::string, std::size_t>>{{"k2", 7}}));
  // The numbers still open, logins by phone still work (the index never changes), and a second
  // run has nothing to do.
  pii.keys.erase("k1");
  for (int i = 0; i < 7; ++i) {
    auto r = login({"+3361234560" + std::to_string(i), kPassword, true});
    ASSERT_TRUE(r) << i;
    EXPECT_TRUE(r->phone_masked) << i;
  }
  EXPECT_EQ(rotate().scanned, 0u);
}

// A store where another writer changes a phone between the rotation's read and its write.
struct ConcurrentWriterStore : FakeUserStore {
  std::string victim;
  std::vector<ports::SealedPhoneRow> phones_not_sealed_under(std::string_view key_id, std::string_view after,
                                                             std::size_t limit) override {
    auto rows = FakeUserStore::phones_not_sealed_under(key_id, after, limit);
    if (!victim.empty()) {
      const std::string changed = "+33700000000";  // the phone changed meanwhile, still under k1
      set_sealed_phone(victim, {"k1", "k1|" + app::phone_seal_context(victim) + "|" +
                                          std::string(changed.rbegin(), changed.rend())});
      victim.clear();
    }
    return rows;
  }
};

TEST(RotatePhoneKeys, NeverOverwritesAConcurrentChangeAndSkipsWhatItCannotOpen) {
  ConcurrentWriterStore store;
  FakeHasher hasher;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  const app::CreateAccount create{store, hasher, pii, clock, ids, signal};
  std::vector<std::string> users;
  for (int i = 0; i < 3; ++i)
    users.push_back(create(phone_account("user" + std::to_string(i), "vs-" + std::to_string(i),
                                         "+3361234560" + std::to_string(i)))
                        ->user.id);
  store.set_sealed_phone(users[2], {"k1", "garbage"});  // damaged: does not open
  pii.keys.insert("k2");
  pii.current = "k2";
  store.victim = users[0];
  const app::RotatePhoneKeys rotate{.users = store, .pii = pii};
  auto done = rotate();
  EXPECT_EQ(done.scanned, 3u);
  EXPECT_EQ(done.resealed, 1u);
  EXPECT_EQ(done.changed, 1u);
  EXPECT_EQ(done.unreadable, 1u);
  // The concurrent write survived (still k1, its own content) …
  EXPECT_EQ(pii.open(store.find_by_id(users[0])->phone->sealed, app::phone_seal_context(users[0])), "+33700000000");
  // … and a second run (resuming) re-seals it, leaving only the damaged row behind.
  auto again = rotate();
  EXPECT_EQ(again.resealed, 1u);
  EXPECT_EQ(again.unreadable, 1u);
  EXPECT_EQ(store.phone_key_counts(),
            (std::vector<std::pair<std::string, std::size_t>>{{"k1", 1}, {"k2", 2}}));
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
