// Contract tests of the storage ports (UserStore, OutboxStore, ProcessedEvents).
//
// Every storage adapter must pass the UserStoreContract suite. The suite is value-parameterized
// over a StorageFactory (kBackends below): SQLite, and MariaDB on a private server that this test
// process starts on first use (tests/support/mariadb_server.hpp; one server per process, a fresh
// database per test, torn down at the end). A factory returning nullptr skips its backend (MariaDB
// when mariadbd is not installed). The SqliteAdapter suite at the end covers what is specific to
// SQLite; tests/contract/mysql_faults_test.cpp what is specific to MySQL.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "adapters/mysql/migrations.hpp"
#include "adapters/mysql/outbox_store.hpp"
#include "adapters/mysql/pool.hpp"
#include "adapters/mysql/processed_events.hpp"
#include "adapters/mysql/user_store.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/processed_events.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "ports/errors.hpp"
#include "ports/outbox.hpp"
#include "ports/processed_events.hpp"
#include "ports/user_store.hpp"
#include "support/fakes.hpp"
#include "support/mariadb_server.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using ports::CreateUserOutcome;
using testing::TempDir;

// ---------------------------------------------------------------------------------------------
// What a backend under test provides.

class StorageUnderTest {
 public:
  virtual ~StorageUnderTest() = default;
  virtual ports::UserStore& users() = 0;
  virtual ports::OutboxStore& outbox() = 0;
  virtual ports::ProcessedEvents& processed() = 0;
  // Applies the schema migrations and returns how many were applied.
  virtual std::size_t migrate() = 0;
  // Drops every connection and opens the same database again (a process restart).
  virtual void reopen() = 0;
};

struct StorageFactory {
  std::string name;
  // A fresh, empty, migrated database; nullptr when the backend is not available here.
  std::function<std::unique_ptr<StorageUnderTest>()> make;
};

void PrintTo(const StorageFactory& f, std::ostream* os) { *os << f.name; }

class SqliteStorage final : public StorageUnderTest {
 public:
  SqliteStorage() { open(); migrate(); }
  ports::UserStore& users() override { return *users_; }
  ports::OutboxStore& outbox() override { return *outbox_; }
  ports::ProcessedEvents& processed() override { return *processed_; }
  std::size_t migrate() override { return adapters::sqlite::apply_migrations(*db_).size(); }
  void reopen() override {
    users_.reset();
    outbox_.reset();
    processed_.reset();
    db_.reset();
    open();
  }

 private:
  void open() {
    db_ = std::make_unique<adapters::sqlite::SqliteDatabase>(dir_.path() / "registrar.db");
    users_ = std::make_unique<adapters::sqlite::SqliteUserStore>(*db_);
    outbox_ = std::make_unique<adapters::sqlite::SqliteOutboxStore>(*db_);
    processed_ = std::make_unique<adapters::sqlite::SqliteProcessedEvents>(*db_);
  }
  TempDir dir_;
  std::unique_ptr<adapters::sqlite::SqliteDatabase> db_;
  std::unique_ptr<adapters::sqlite::SqliteUserStore> users_;
  std::unique_ptr<adapters::sqlite::SqliteOutboxStore> outbox_;
  std::unique_ptr<adapters::sqlite::SqliteProcessedEvents> processed_;
};

// A fresh database on the process's private MariaDB server, dropped at the end of the test.
class MysqlStorage final : public StorageUnderTest {
 public:
  explicit MysqlStorage(testing::MariaDbServer& server) : server_(server), database_(server.create_database()) {
    open();
    migrate();
  }
  ~MysqlStorage() override {
    close();
    try {
      server_.drop_database(database_);
    } catch (...) {
    }
  }
  ports::UserStore& users() override { return *users_; }
  ports::OutboxStore& outbox() override { return *outbox_; }
  ports::ProcessedEvents& processed() override { return *processed_; }
  std::size_t migrate() override { return adapters::mysql::apply_migrations(*pool_).size(); }
  void reopen() override {
    close();
    open();
  }

 private:
  void open() {
    adapters::mysql::MysqlOptions o;
    o.host = server_.host();
    o.port = server_.port();
    o.user = server_.user();
    o.password = server_.password();
    o.database = database_;
    pool_ = std::make_unique<adapters::mysql::MysqlPool>(o);
    users_ = std::make_unique<adapters::mysql::MysqlUserStore>(*pool_);
    outbox_ = std::make_unique<adapters::mysql::MysqlOutboxStore>(*pool_);
    processed_ = std::make_unique<adapters::mysql::MysqlProcessedEvents>(*pool_);
  }
  void close() {
    users_.reset();
    outbox_.reset();
    processed_.reset();
    pool_.reset();
  }
  testing::MariaDbServer& server_;
  std::string database_;
  std::unique_ptr<adapters::mysql::MysqlPool> pool_;
  std::unique_ptr<adapters::mysql::MysqlUserStore> users_;
  std::unique_ptr<adapters::mysql::MysqlOutboxStore> outbox_;
  std::unique_ptr<adapters::mysql::MysqlProcessedEvents> processed_;
};

std::unique_ptr<StorageUnderTest> make_mariadb_storage() {
  auto* server = testing::shared_mariadb();
  if (server == nullptr) return nullptr;  // mariadb-server is not installed: skip
  return std::make_unique<MysqlStorage>(*server);
}

// Stops the shared MariaDB server (if this process started one) after the last test.
class MariaDbEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { testing::shutdown_shared_mariadb(); }
};
[[maybe_unused]] auto* const kMariaDbEnvironment = ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

const StorageFactory kBackends[] = {
    {"sqlite", [] { return std::make_unique<SqliteStorage>(); }},
    {"mariadb", [] { return make_mariadb_storage(); }},
};

// ---------------------------------------------------------------------------------------------
// Test data.

domain::Timestamp at(std::int64_t ms) { return domain::Timestamp{std::chrono::milliseconds{ms}}; }

struct NewUser {
  domain::User user;
  std::string email_canonical, username_canonical;
  domain::EventEnvelope event;
};

// User `n` with the given email/username (display forms; canonical = lower-cased) and its event.
NewUser new_user(const std::string& key, std::string email = "", std::string username = "") {
  if (email.empty()) email = key + "@Example.com";
  if (username.empty()) username = "User_" + key;
  NewUser n;
  n.user.id = "user-" + key;
  n.user.email = email;
  n.user.username = username;
  n.user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
  n.user.created_at = at(1'760'891'835'123);
  n.email_canonical = email;
  std::transform(n.email_canonical.begin(), n.email_canonical.end(), n.email_canonical.begin(), ::tolower);
  n.username_canonical = username;
  std::transform(n.username_canonical.begin(), n.username_canonical.end(), n.username_canonical.begin(), ::tolower);
  n.event.id = "event-" + key;
  n.event.type = "user.registered";
  n.event.aggregate_id = n.user.id;
  n.event.payload = R"({"event":"user.registered","data":{"id":")" + n.user.id + R"("}})";
  n.event.occurred_at = at(1'760'891'835'456);
  return n;
}

std::vector<std::string> ids_of(const std::vector<domain::EventEnvelope>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

// ---------------------------------------------------------------------------------------------

class UserStoreContract : public ::testing::TestWithParam<StorageFactory> {
 protected:
  void SetUp() override {
    storage_ = GetParam().make();
    if (!storage_) GTEST_SKIP() << GetParam().name << " is not configured in this environment";
  }
  ports::UserStore& users() { return storage_->users(); }
  ports::OutboxStore& outbox() { return storage_->outbox(); }
  ports::ProcessedEvents& processed() { return storage_->processed(); }

  CreateUserOutcome create(const NewUser& n) {
    return users().create_user(n.user, n.email_canonical, n.username_canonical, n.event);
  }
  NewUser create_ok(const std::string& key) {
    auto n = new_user(key);
    EXPECT_EQ(create(n), CreateUserOutcome::created);
    return n;
  }

  std::unique_ptr<StorageUnderTest> storage_;
};

// --- users ---

TEST_P(UserStoreContract, CreatedUserIsFoundByIdEmailAndUsername) {
  auto n = new_user("a", "John.Doe@Example.com", "JohnDoe");
  ASSERT_EQ(create(n), CreateUserOutcome::created);

  for (const auto& found : {users().find_by_id("user-a"), users().find_by_email("john.doe@example.com"),
                            users().find_by_username("johndoe")}) {
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->id, "user-a");
    EXPECT_EQ(found->email, "John.Doe@Example.com");  // display forms are kept
    EXPECT_EQ(found->username, "JohnDoe");
    EXPECT_EQ(found->password_hash, n.user.password_hash);
    EXPECT_EQ(found->created_at, n.user.created_at);  // millisecond precision survives
  }
}

TEST_P(UserStoreContract, UnknownUsersAreNotFound) {
  create_ok("a");
  EXPECT_FALSE(users().find_by_id("nobody"));
  EXPECT_FALSE(users().find_by_email("nobody@example.com"));
  EXPECT_FALSE(users().find_by_username("nobody"));
  // Lookups are by canonical form: the display form is not a key.
  EXPECT_FALSE(users().find_by_username("User_a"));
}

TEST_P(UserStoreContract, LookupsByUnusualKeysFindNothingRatherThanFail) {
  create_ok("a");
  // Ids come from tokens and paths: whatever their characters or length, a lookup just misses.
  for (const std::string& key : {std::string("ü-ñ-😀"), std::string(300, 'x'), std::string(""), std::string("user-a "),
                                 std::string("a@example.com "), std::string("user_a ")}) {
    EXPECT_FALSE(users().find_by_id(key)) << key;
    EXPECT_FALSE(users().find_by_email(key)) << key;
    EXPECT_FALSE(users().find_by_username(key)) << key;
    EXPECT_FALSE(users().contact_or_username_taken(key, key, key)) << key;
    EXPECT_FALSE(users().find_by_phone_index(key)) << key;
    EXPECT_FALSE(users().find_by_verification_id(key)) << key;
  }
}

TEST_P(UserStoreContract, EmailOrUsernameTakenChecksBothCanonicalForms) {
  auto n = create_ok("a");
  EXPECT_TRUE(users().contact_or_username_taken(n.email_canonical, "free", std::nullopt));
  EXPECT_TRUE(users().contact_or_username_taken("free@example.com", n.username_canonical, std::nullopt));
  EXPECT_FALSE(users().contact_or_username_taken("free@example.com", "free", std::nullopt));
  EXPECT_FALSE(users().contact_or_username_taken(std::nullopt, "free", "free-index"));
}

TEST_P(UserStoreContract, DuplicateEmailIsRefusedAndWritesNothing) {
  create_ok("a");
  auto dup = new_user("b", "A@EXAMPLE.COM");  // same canonical email as user a, other username
  EXPECT_EQ(create(dup), CreateUserOutcome::email_taken);
  EXPECT_FALSE(users().find_by_id("user-b"));
  EXPECT_FALSE(users().find_by_username(dup.username_canonical));
  EXPECT_EQ(outbox().pending_count(), 1u);  // no outbox row for the refused user
}

TEST_P(UserStoreContract, DuplicateUsernameIsRefusedAndWritesNothing) {
  create_ok("a");
  auto dup = new_user("b", "", "USER_A");  // same canonical username as user a, other email
  EXPECT_EQ(create(dup), CreateUserOutcome::username_taken);
  EXPECT_FALSE(users().find_by_id("user-b"));
  EXPECT_FALSE(users().find_by_email(dup.email_canonical));
  EXPECT_EQ(outbox().pending_count(), 1u);
}

TEST_P(UserStoreContract, UserAndOutboxRowAreOneTransaction) {
  auto a = create_ok("a");
  // Make the second insert of the transaction fail: an event id that already exists. The user row
  // written just before it must be rolled back with it.
  auto b = new_user("b");
  b.event.id = a.event.id;
  EXPECT_ANY_THROW(create(b));
  EXPECT_FALSE(users().find_by_id("user-b"));
  EXPECT_FALSE(users().contact_or_username_taken(b.email_canonical, b.username_canonical, std::nullopt));
  EXPECT_EQ(outbox().pending_count(), 1u);
  // And the store is still usable afterwards.
  create_ok("c");
  EXPECT_EQ(outbox().pending_count(), 2u);
}

TEST_P(UserStoreContract, ConcurrentSignUpsWithOneEmailCreateExactlyOneUser) {
  constexpr int kThreads = 50;
  std::latch start(kThreads);
  std::atomic<int> created{0}, taken{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto n = new_user("t" + std::to_string(i), "same@example.com");
      start.arrive_and_wait();
      try {
        switch (create(n)) {
          case CreateUserOutcome::created: ++created; break;
          case CreateUserOutcome::email_taken: ++taken; break;
          default: ++other;
        }
      } catch (...) {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(taken.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(outbox().pending_count(), 1u);
}

TEST_P(UserStoreContract, ConcurrentDistinctSignUpsAndReadsAllSucceed) {
  constexpr int kThreads = 16, kEach = 10;
  std::latch start(kThreads);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < kEach; ++i) {
        auto n = new_user(std::to_string(t) + "x" + std::to_string(i));
        try {
          if (create(n) != CreateUserOutcome::created) ++failures;
          if (!users().find_by_email(n.email_canonical)) ++failures;  // read-your-write
        } catch (...) {
          ++failures;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(outbox().pending_count(), static_cast<std::size_t>(kThreads * kEach));
}

// --- accounts with a phone (issue 12) ---

// Bytes a real ciphertext may hold: NUL, high bytes, and a trailing space (which utf8mb4_bin would
// ignore in a comparison, VARBINARY does not).
std::string binary_ciphertext(const std::string& key) {
  std::string c = std::string("\x00\xff\x80 nonce-", 10) + key;
  c += std::string(1, '\0');
  c += "tag ";
  return c;
}

// A phone account: no email, a sealed phone (key k1), its index, a verification id, an image.
NewUser phone_user(const std::string& key) {
  NewUser n = new_user(key);
  n.user.email.reset();
  n.email_canonical.clear();
  n.user.phone = domain::StoredPhone{{"k1", binary_ciphertext(key)}, "index-" + key};
  n.user.verification_id = "vs-" + key;
  n.user.image = "https://cdn.example.com/" + key + ".png";
  return n;
}

TEST_P(UserStoreContract, APhoneAccountWithoutEmailIsStoredAndFoundEveryWay) {
  auto n = phone_user("p");
  ASSERT_EQ(users().create_user(n.user, std::nullopt, n.username_canonical, n.event), CreateUserOutcome::created);
  for (const auto& found : {users().find_by_id(n.user.id), users().find_by_phone_index("index-p"),
                            users().find_by_verification_id("vs-p"), users().find_by_username(n.username_canonical)}) {
    ASSERT_TRUE(found.has_value());
    EXPECT_EQ(found->id, n.user.id);
    EXPECT_FALSE(found->email);
    EXPECT_FALSE(found->email_verified_at);
    ASSERT_TRUE(found->phone);
    EXPECT_EQ(*found->phone, *n.user.phone);  // the ciphertext's bytes come back exactly
    EXPECT_EQ(found->image, n.user.image);
    EXPECT_EQ(found->verification_id, "vs-p");
    EXPECT_EQ(found->created_at, n.user.created_at);
  }
  EXPECT_FALSE(users().find_by_phone_index("index-q"));
  EXPECT_FALSE(users().find_by_verification_id("vs-q"));
  EXPECT_EQ(outbox().pending_count(), 1u);
}

TEST_P(UserStoreContract, AnEmailAccountKeepsItsVerificationTime) {
  auto n = new_user("a");
  n.user.email_verified_at = at(1'760'891'999'001);
  ASSERT_EQ(create(n), CreateUserOutcome::created);
  EXPECT_EQ(users().find_by_id(n.user.id)->email_verified_at, n.user.email_verified_at);
  EXPECT_FALSE(users().find_by_id(n.user.id)->phone);
  EXPECT_FALSE(users().find_by_id(n.user.id)->image);
}

// Email verification: the time and the user.email_verified event in one transaction, once.
domain::EventEnvelope email_verified_event(const std::string& user_id, const std::string& event_id) {
  domain::EventEnvelope e;
  e.id = event_id;
  e.type = "user.email_verified";
  e.aggregate_id = user_id;
  e.payload = R"({"event":"user.email_verified","data":{"id":")" + user_id + R"("}})";
  e.occurred_at = at(1'760'892'000'777);
  return e;
}

TEST_P(UserStoreContract, MarkingTheEmailVerifiedSetsTheTimeAndWritesTheEventOnce) {
  auto n = create_ok("a");
  const auto when = at(1'760'892'000'321);
  EXPECT_TRUE(users().mark_email_verified(n.user.id, when, email_verified_event(n.user.id, "verified-a")));
  EXPECT_EQ(users().find_by_id(n.user.id)->email_verified_at, when);
  EXPECT_EQ(users().find_by_email(n.email_canonical)->email_verified_at, when);
  // Both events are in the outbox, in order, the second intact.
  auto claimed = outbox().claim("relay-1", 10, 30s);
  ASSERT_EQ(ids_of(claimed), (std::vector<std::string>{"event-a", "verified-a"}));
  EXPECT_EQ(claimed[1].type, "user.email_verified");
  EXPECT_EQ(claimed[1].aggregate_id, n.user.id);
  EXPECT_EQ(claimed[1].payload, email_verified_event(n.user.id, "x").payload);
  EXPECT_EQ(claimed[1].occurred_at, at(1'760'892'000'777));

  // Again: nothing changes, nothing is written (the first time stays).
  EXPECT_FALSE(users().mark_email_verified(n.user.id, at(1'760'893'000'000), email_verified_event(n.user.id, "verified-a2")));
  EXPECT_EQ(users().find_by_id(n.user.id)->email_verified_at, when);
  EXPECT_EQ(outbox().pending_count(), 2u);
}

TEST_P(UserStoreContract, OnlyAnUnverifiedEmailOfAnExistingUserCanBeMarkedVerified) {
  auto p = phone_user("p");
  ASSERT_EQ(users().create_user(p.user, std::nullopt, p.username_canonical, p.event), CreateUserOutcome::created);
  EXPECT_FALSE(users().mark_email_verified(p.user.id, at(1'760'892'000'321), email_verified_event(p.user.id, "v-p")));
  EXPECT_FALSE(users().find_by_id(p.user.id)->email_verified_at);
  EXPECT_FALSE(users().mark_email_verified("nobody", at(1'760'892'000'321), email_verified_event("nobody", "v-n")));
  auto pre = new_user("b");
  pre.user.email_verified_at = at(1'760'891'999'001);  // verified at creation
  ASSERT_EQ(create(pre), CreateUserOutcome::created);
  EXPECT_FALSE(users().mark_email_verified(pre.user.id, at(1'760'892'000'321), email_verified_event(pre.user.id, "v-b")));
  EXPECT_EQ(users().find_by_id(pre.user.id)->email_verified_at, at(1'760'891'999'001));
  EXPECT_EQ(outbox().pending_count(), 2u);  // the two user.registered events only
}

TEST_P(UserStoreContract, MarkingVerifiedAndItsEventAreOneTransaction) {
  auto a = create_ok("a");
  // The event's insert fails (its id exists): the verification time must be rolled back with it.
  EXPECT_ANY_THROW(users().mark_email_verified(a.user.id, at(1'760'892'000'321), email_verified_event(a.user.id, "event-a")));
  EXPECT_FALSE(users().find_by_id(a.user.id)->email_verified_at);
  EXPECT_EQ(outbox().pending_count(), 1u);
  EXPECT_TRUE(users().mark_email_verified(a.user.id, at(1'760'892'000'321), email_verified_event(a.user.id, "v-a")));
}

TEST_P(UserStoreContract, ConcurrentMarksOfOneEmailHaveOneWinnerAndOneEvent) {
  auto a = create_ok("a");
  constexpr int kThreads = 8;
  std::latch start(kThreads);
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      if (users().mark_email_verified(a.user.id, at(1'760'892'000'000 + i), email_verified_event(a.user.id, "v-" + std::to_string(i))))
        ++winners;
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
  EXPECT_EQ(outbox().pending_count(), 2u);
}

TEST_P(UserStoreContract, ManyAccountsMayHaveNoEmailOrNoPhone) {
  // NULL is not a value for the UNIQUE indexes, on both engines.
  for (auto k : {"p1", "p2", "p3"}) {
    auto n = phone_user(k);
    ASSERT_EQ(users().create_user(n.user, std::nullopt, n.username_canonical, n.event), CreateUserOutcome::created) << k;
  }
  for (auto k : {"e1", "e2"}) create_ok(k);
  EXPECT_EQ(outbox().pending_count(), 5u);
}

TEST_P(UserStoreContract, ATakenPhoneOrVerificationIsRefusedAndWritesNothing) {
  auto a = phone_user("a");
  ASSERT_EQ(users().create_user(a.user, std::nullopt, a.username_canonical, a.event), CreateUserOutcome::created);

  auto same_phone = phone_user("b");
  same_phone.user.phone->blind_index = "index-a";
  EXPECT_EQ(users().create_user(same_phone.user, std::nullopt, same_phone.username_canonical, same_phone.event),
            CreateUserOutcome::phone_taken);

  // A replay of a's job: same verification id, and (as a replay has) the same username and phone.
  auto replay = phone_user("a");
  replay.user.id = "user-a-again";
  replay.event.id = "event-a-again";
  EXPECT_EQ(users().create_user(replay.user, std::nullopt, replay.username_canonical, replay.event),
            CreateUserOutcome::verification_taken);
  // The verification id alone taken.
  auto same_session = phone_user("c");
  same_session.user.verification_id = "vs-a";
  EXPECT_EQ(users().create_user(same_session.user, std::nullopt, same_session.username_canonical, same_session.event),
            CreateUserOutcome::verification_taken);

  EXPECT_FALSE(users().find_by_id("user-b"));
  EXPECT_FALSE(users().find_by_id("user-a-again"));
  EXPECT_FALSE(users().find_by_id("user-c"));
  EXPECT_EQ(outbox().pending_count(), 1u);
}

TEST_P(UserStoreContract, ARowWithNeitherEmailNorPhoneIsRefused) {
  auto n = new_user("a");
  n.user.email.reset();
  EXPECT_ANY_THROW(users().create_user(n.user, std::nullopt, n.username_canonical, n.event));
  EXPECT_FALSE(users().find_by_id("user-a"));
  EXPECT_EQ(outbox().pending_count(), 0u);
}

TEST_P(UserStoreContract, ThePreCheckCoversThePhone) {
  auto a = phone_user("a");
  ASSERT_EQ(users().create_user(a.user, std::nullopt, a.username_canonical, a.event), CreateUserOutcome::created);
  EXPECT_TRUE(users().contact_or_username_taken(std::nullopt, "free", "index-a"));
  EXPECT_TRUE(users().contact_or_username_taken("free@example.com", "free", "index-a"));
  EXPECT_FALSE(users().contact_or_username_taken(std::nullopt, "free", "index-b"));
  EXPECT_FALSE(users().contact_or_username_taken("free@example.com", "free", std::nullopt));
}

TEST_P(UserStoreContract, RotationListsPhonesUnderOtherKeysInPagesAndReSealsByCompareAndSet) {
  std::vector<NewUser> made;
  for (int i = 0; i < 7; ++i) {
    auto n = phone_user("r" + std::to_string(i));
    if (i % 3 == 0) n.user.phone->sealed.key_id = "k2";  // r0, r3, r6 already under k2
    ASSERT_EQ(users().create_user(n.user, std::nullopt, n.username_canonical, n.event), CreateUserOutcome::created);
    made.push_back(n);
  }
  create_ok("mail");  // no phone: never listed
  EXPECT_EQ(users().phone_key_counts(),
            (std::vector<std::pair<std::string, std::size_t>>{{"k1", 4}, {"k2", 3}}));

  // Pages of 3 in id order, each after the last id of the previous one.
  auto page1 = users().phones_not_sealed_under("k2", "", 3);
  ASSERT_EQ(page1.size(), 3u);
  EXPECT_EQ(page1[0].user_id, "user-r1");
  EXPECT_EQ(page1[1].user_id, "user-r2");
  EXPECT_EQ(page1[2].user_id, "user-r4");
  EXPECT_EQ(page1[0].sealed, made[1].user.phone->sealed);
  auto page2 = users().phones_not_sealed_under("k2", page1.back().user_id, 3);
  ASSERT_EQ(page2.size(), 1u);
  EXPECT_EQ(page2[0].user_id, "user-r5");
  EXPECT_TRUE(users().phones_not_sealed_under("k2", "user-r5", 3).empty());

  // Re-seal r1 and r2; r4's entry is stale (its ciphertext changed meanwhile): not overwritten.
  std::vector<ports::Reseal> batch;
  for (const auto& row : page1) batch.push_back({row.user_id, row.sealed, {"k2", binary_ciphertext("new-" + row.user_id)}});
  batch[2].from.ciphertext = "stale";
  EXPECT_EQ(users().reseal_phones(batch), 2u);
  EXPECT_EQ(users().find_by_id("user-r1")->phone->sealed, batch[0].to);
  EXPECT_EQ(users().find_by_id("user-r4")->phone->sealed, made[4].user.phone->sealed);
  // The index never changes with the key.
  EXPECT_EQ(users().find_by_phone_index("index-r1")->id, "user-r1");
  // A stale key id is not applied either.
  EXPECT_EQ(users().reseal_phones({{"user-r5", {"k9", made[5].user.phone->sealed.ciphertext}, {"k2", "x"}}}), 0u);
  EXPECT_EQ(users().phone_key_counts(),
            (std::vector<std::pair<std::string, std::size_t>>{{"k1", 2}, {"k2", 5}}));
  EXPECT_EQ(users().reseal_phones({}), 0u);
}

// --- outbox ---

TEST_P(UserStoreContract, ClaimLeasesOldestFirstAndReturnsTheEventIntact) {
  auto a = create_ok("a");
  create_ok("b");
  create_ok("c");
  auto first = outbox().claim("relay-1", 2, 30s);
  ASSERT_EQ(ids_of(first), (std::vector<std::string>{"event-a", "event-b"}));
  EXPECT_EQ(first[0].type, a.event.type);
  EXPECT_EQ(first[0].aggregate_id, a.event.aggregate_id);
  EXPECT_EQ(first[0].payload, a.event.payload);
  EXPECT_EQ(first[0].occurred_at, a.event.occurred_at);
  EXPECT_EQ(first[0].attempts, 0);

  // Leased rows are not handed out again while the lease runs, to anyone.
  EXPECT_EQ(ids_of(outbox().claim("relay-2", 10, 30s)), (std::vector<std::string>{"event-c"}));
  EXPECT_TRUE(outbox().claim("relay-1", 10, 30s).empty());
  EXPECT_TRUE(outbox().claim("relay-3", 0, 30s).empty());
  EXPECT_EQ(outbox().pending_count(), 3u);  // leased is still pending
}

TEST_P(UserStoreContract, MarkSentRemovesFromPendingAndIsIdempotent) {
  create_ok("a");
  create_ok("b");
  auto batch = outbox().claim("relay-1", 10, 30s);
  ASSERT_EQ(batch.size(), 2u);
  outbox().mark_sent("relay-1", {"event-a"});
  EXPECT_EQ(outbox().pending_count(), 1u);
  outbox().mark_sent("relay-1", {"event-a"});  // again: no effect, no error
  outbox().mark_sent("relay-1", {"no-such-event"});
  EXPECT_EQ(outbox().pending_count(), 1u);
  outbox().release("relay-1", {"event-b"});
  EXPECT_EQ(ids_of(outbox().claim("relay-2", 10, 30s)), (std::vector<std::string>{"event-b"}));
}

TEST_P(UserStoreContract, BatchesLargerThanOneStatementAreMarkedAndReleasedWhole) {
  // Adapters may split a batch into several statements (MySQL: 16 ids each); 1, 16, 17 and 40 ids
  // cover a single statement, a full one, and a batch spread over several.
  std::vector<std::string> all;
  for (int i = 0; i < 74; ++i) all.push_back(create_ok("k" + std::to_string(i)).event.id);
  ASSERT_EQ(outbox().claim("relay-1", 100, 30s).size(), all.size());
  std::size_t at = 0;
  for (std::size_t n : {1u, 16u, 17u}) {
    outbox().mark_sent("relay-1", std::vector<std::string>(all.begin() + at, all.begin() + at + n));
    at += n;
    EXPECT_EQ(outbox().pending_count(), all.size() - at) << n;
  }
  // The remaining 40 go back, each with one more attempt, and are all claimable again.
  std::vector<std::string> rest(all.begin() + at, all.end());
  outbox().release("relay-1", rest);
  auto again = outbox().claim("relay-2", 100, 30s);
  EXPECT_EQ(ids_of(again), rest);
  for (const auto& e : again) EXPECT_EQ(e.attempts, 1) << e.id;
}

TEST_P(UserStoreContract, ReleaseGivesTheRowBackAndCountsAnAttempt) {
  create_ok("a");
  ASSERT_EQ(outbox().claim("relay-1", 10, 30s).size(), 1u);
  outbox().release("relay-1", {"event-a"});
  auto again = outbox().claim("relay-2", 10, 30s);
  ASSERT_EQ(ids_of(again), (std::vector<std::string>{"event-a"}));
  EXPECT_EQ(again[0].attempts, 1);
  outbox().release("relay-2", {"event-a"});
  EXPECT_EQ(outbox().claim("relay-1", 10, 30s).at(0).attempts, 2);
}

TEST_P(UserStoreContract, OnlyTheLeaseHolderCanReleaseOrMarkSent) {
  create_ok("a");
  ASSERT_EQ(outbox().claim("relay-1", 10, 30s).size(), 1u);
  outbox().release("relay-2", {"event-a"});    // not relay-2's lease: ignored
  outbox().mark_sent("relay-2", {"event-a"});  // idem
  EXPECT_EQ(outbox().pending_count(), 1u);
  EXPECT_TRUE(outbox().claim("relay-2", 10, 30s).empty());  // still leased by relay-1
  outbox().mark_sent("relay-1", {"event-a"});
  EXPECT_EQ(outbox().pending_count(), 0u);
}

TEST_P(UserStoreContract, AnExpiredLeaseCanBeReclaimed) {
  create_ok("a");
  ASSERT_EQ(outbox().claim("relay-1", 10, 1ms).size(), 1u);  // relay-1 "dies" holding the row
  // Waiting for wall-clock time to pass is the behaviour under test (lease expiry), not a
  // synchronization shortcut: retry until the lease has expired or give up.
  std::vector<domain::EventEnvelope> reclaimed;
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (reclaimed.empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
    reclaimed = outbox().claim("relay-2", 10, 30s);
  }
  ASSERT_EQ(ids_of(reclaimed), (std::vector<std::string>{"event-a"}));
  // relay-1 comes back late: the row is relay-2's now, so relay-1's mark is ignored …
  outbox().mark_sent("relay-1", {"event-a"});
  EXPECT_EQ(outbox().pending_count(), 1u);
  // … and relay-2 completes it.
  outbox().mark_sent("relay-2", {"event-a"});
  EXPECT_EQ(outbox().pending_count(), 0u);
}

TEST_P(UserStoreContract, AnAggregatesLaterEventWaitsWhileAnEarlierOneIsLeased) {
  // Two events of aggregate user-a (the second carried by another row), one of user-c.
  auto a = create_ok("a");
  auto b = new_user("b");
  b.event.aggregate_id = a.user.id;
  ASSERT_EQ(create(b), CreateUserOutcome::created);
  create_ok("c");

  ASSERT_EQ(ids_of(outbox().claim("relay-1", 1, 30s)), (std::vector<std::string>{"event-a"}));
  // relay-2 must not get event-b while event-a is in flight elsewhere; event-c is independent.
  EXPECT_EQ(ids_of(outbox().claim("relay-2", 10, 30s)), (std::vector<std::string>{"event-c"}));
  // Once event-a is given back, both come in order, in one batch.
  outbox().release("relay-1", {"event-a"});
  EXPECT_EQ(ids_of(outbox().claim("relay-2", 10, 30s)), (std::vector<std::string>{"event-a", "event-b"}));
}

TEST_P(UserStoreContract, ConcurrentClaimsNeverShareARow) {
  constexpr int kEvents = 200, kRelays = 4;
  for (int i = 0; i < kEvents; ++i) create_ok(std::to_string(i));
  std::latch start(kRelays);
  std::vector<std::vector<std::string>> got(kRelays);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int r = 0; r < kRelays; ++r) {
    threads.emplace_back([&, r] {
      std::string owner = "relay-" + std::to_string(r);
      start.arrive_and_wait();
      try {
        for (;;) {
          auto batch = outbox().claim(owner, 7, 60s);
          if (batch.empty()) break;
          for (auto& e : batch) got[r].push_back(e.id);
        }
      } catch (...) {
        ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::multiset<std::string> all;
  for (auto& ids : got) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), static_cast<std::size_t>(kEvents));
}

TEST_P(UserStoreContract, ConcurrentRelaysDeliverEachEventOnceAndInOrderPerAggregate) {
  // Relays racing for few aggregates: one relay must never get an aggregate's later event while
  // another holds (or is just taking) an earlier one. (On MySQL, SKIP LOCKED lets a relay pass
  // rows another relay is leasing; this catches it taking what lies behind them.)
  constexpr int kAggregates = 3, kPerAggregate = 24, kRelays = 4;
  for (int k = 0; k < kPerAggregate; ++k)
    for (int a = 0; a < kAggregates; ++a) {
      auto n = new_user(std::to_string(a) + "-" + std::to_string(k));
      n.event.aggregate_id = "agg-" + std::to_string(a);
      n.event.payload = std::to_string(a) + " " + std::to_string(k);
      ASSERT_EQ(create(n), CreateUserOutcome::created);
    }
  // Per aggregate, how many of its events a relay has started to mark sent (in order). A relay
  // that receives event k while event k-1 is not even being marked sent got it too early. (Once
  // marking has started the commit may or may not have happened yet: not counted, to stay exact.)
  std::mutex mutex;
  std::vector<int> marking(kAggregates, 0);
  std::atomic<int> out_of_order{0}, errors{0};
  std::latch start(kRelays);
  std::vector<std::thread> relays;
  for (int r = 0; r < kRelays; ++r)
    relays.emplace_back([&, r] {
      std::string owner = "relay-" + std::to_string(r);
      start.arrive_and_wait();
      try {
        while (outbox().pending_count() > 0) {
          for (const auto& e : outbox().claim(owner, 3, 60s)) {
            int a = 0, k = 0;
            std::sscanf(e.payload.c_str(), "%d %d", &a, &k);
            {
              std::lock_guard lock(mutex);
              if (marking[a] < k) ++out_of_order;
              marking[a] = std::max(marking[a], k + 1);
            }
            outbox().mark_sent(owner, {e.id});
          }
        }
      } catch (...) {
        ++errors;
      }
    });
  for (auto& t : relays) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(out_of_order.load(), 0);
  for (int a = 0; a < kAggregates; ++a) EXPECT_EQ(marking[a], kPerAggregate) << a;
  EXPECT_EQ(outbox().pending_count(), 0u);
}

TEST_P(UserStoreContract, PendingCountCountsUnsentRows) {
  EXPECT_EQ(outbox().pending_count(), 0u);
  for (auto k : {"a", "b", "c"}) create_ok(k);
  EXPECT_EQ(outbox().pending_count(), 3u);
  outbox().claim("relay-1", 10, 30s);
  outbox().mark_sent("relay-1", {"event-a", "event-c"});
  EXPECT_EQ(outbox().pending_count(), 1u);
}

// --- processed events ---

TEST_P(UserStoreContract, ProcessedEventsDeduplicatePerConsumer) {
  EXPECT_FALSE(processed().is_processed("audit", "e1"));
  EXPECT_TRUE(processed().try_mark_processed("audit", "e1"));
  EXPECT_FALSE(processed().try_mark_processed("audit", "e1"));
  EXPECT_TRUE(processed().is_processed("audit", "e1"));
  // Another consumer has its own record.
  EXPECT_FALSE(processed().is_processed("welcome", "e1"));
  EXPECT_TRUE(processed().try_mark_processed("welcome", "e1"));
}

TEST_P(UserStoreContract, ProcessedEventsRecordABatchCountingOnlyNewIds) {
  EXPECT_TRUE(processed().try_mark_processed("audit", "e2"));
  const std::vector<std::string> batch{"e1", "e2", "e3"};
  EXPECT_EQ(processed().mark_all_processed("audit", batch), 2u);  // e2 was there already
  for (const auto& id : batch) EXPECT_TRUE(processed().is_processed("audit", id)) << id;
  EXPECT_EQ(processed().mark_all_processed("audit", batch), 0u);
  EXPECT_EQ(processed().mark_all_processed("audit", {}), 0u);
  EXPECT_FALSE(processed().is_processed("welcome", "e1"));  // per consumer
  EXPECT_FALSE(processed().try_mark_processed("audit", "e3"));
}

TEST_P(UserStoreContract, ProcessedAmongFindsTheRecordedIdsOfABatch) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back("e" + std::to_string(i));
  EXPECT_TRUE(processed().processed_among("audit", ids).empty());
  EXPECT_TRUE(processed().processed_among("audit", {}).empty());
  // Every third id recorded, spread over the batch (MySQL asks 16 ids per statement).
  std::vector<std::string> recorded;
  for (std::size_t i = 0; i < ids.size(); i += 3) recorded.push_back(ids[i]);
  EXPECT_EQ(processed().mark_all_processed("audit", recorded), recorded.size());
  auto found = processed().processed_among("audit", ids);
  EXPECT_EQ(found, std::unordered_set<std::string>(recorded.begin(), recorded.end()));
  // Ids compare exactly; repeats in the batch are fine; other consumers are not seen.
  const std::vector<std::string> near{"e0 ", "E0", "e0", "e0", "é0"};
  EXPECT_EQ(processed().processed_among("audit", near), (std::unordered_set<std::string>{"e0"}));
  EXPECT_TRUE(processed().processed_among("welcome", ids).empty());
}

TEST_P(UserStoreContract, ALargeBatchIsRecordedWholeCountingOnlyNewIds) {
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) ids.push_back("e" + std::to_string(i));
  EXPECT_EQ(processed().mark_all_processed("audit", std::vector<std::string>(ids.begin(), ids.begin() + 17)), 17u);
  EXPECT_EQ(processed().mark_all_processed("audit", ids), 23u);
  EXPECT_EQ(processed().processed_among("audit", ids).size(), ids.size());
  EXPECT_EQ(processed().mark_all_processed("audit", ids), 0u);
}

TEST_P(UserStoreContract, ProcessedEventIdsCompareExactly) {
  EXPECT_TRUE(processed().try_mark_processed("audit", "e1"));
  for (const std::string& id : {std::string("e1 "), std::string("E1"), std::string("é1"), std::string(200, 'e')}) {
    EXPECT_FALSE(processed().is_processed("audit", id)) << id;
    EXPECT_TRUE(processed().try_mark_processed("audit", id)) << id;
    EXPECT_TRUE(processed().is_processed("audit", id)) << id;
  }
}

TEST_P(UserStoreContract, ConcurrentMarksOfOneEventHaveOneWinner) {
  constexpr int kThreads = 20;
  std::latch start(kThreads);
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      if (processed().try_mark_processed("audit", "e1")) ++winners;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), 1);
}

// --- Idempotency-Keys (create_user_with_key) ---

// A key record as the use case makes them: keyed hashes (64 hex digits), the user's id.
ports::IdempotencyKeyRecord key_record(const std::string& key, const NewUser& n, domain::Timestamp expires_at) {
  auto hex = [](const std::string& seed) {
    std::string out(64, '0');
    for (std::size_t i = 0; i < seed.size() && i < 64; ++i) out[i] = "0123456789abcdef"[static_cast<unsigned char>(seed[i]) % 16];
    return out;
  };
  return {hex("key-" + key), hex("fp-" + n.user.id), n.user.id, expires_at};
}

constexpr std::int64_t kNow = 1'760'891'835'123;

TEST_P(UserStoreContract, AKeyedSignUpRecordsTheKeyWithItsUserUntilItExpires) {
  auto n = new_user("a");
  const auto key = key_record("k1", n, at(kNow + 86'400'000));
  ASSERT_EQ(users().create_user_with_key(n.user, n.email_canonical, n.username_canonical, n.event, key, at(kNow)),
            CreateUserOutcome::created);
  EXPECT_TRUE(users().find_by_id(n.user.id));
  EXPECT_EQ(outbox().pending_count(), 1u);
  EXPECT_EQ(users().find_idempotency_key(key.key_hash, at(kNow)), key);
  EXPECT_EQ(users().find_idempotency_key(key.key_hash, at(kNow + 86'400'000 - 1)), key);
  // At expires_at and after, the record is ignored.
  EXPECT_FALSE(users().find_idempotency_key(key.key_hash, at(kNow + 86'400'000)));
  EXPECT_FALSE(users().find_idempotency_key(key.key_hash, at(kNow + 90'000'000)));
  // Unknown or unusual keys find nothing rather than fail.
  for (const std::string& k : {std::string(""), key.key_hash + " ", std::string(300, 'x'), std::string("ü-😀")})
    EXPECT_FALSE(users().find_idempotency_key(k, at(kNow))) << k;
}

TEST_P(UserStoreContract, ALiveKeyIsKeyTakenEvenForItsOwnAccountAndWritesNothing) {
  auto a = new_user("a");
  const auto key = key_record("k1", a, at(kNow + 60'000));
  ASSERT_EQ(users().create_user_with_key(a.user, a.email_canonical, a.username_canonical, a.event, key, at(kNow)),
            CreateUserOutcome::created);
  // Another account with the key.
  auto b = new_user("b");
  auto b_key = key;
  b_key.user_id = b.user.id;
  EXPECT_EQ(users().create_user_with_key(b.user, b.email_canonical, b.username_canonical, b.event, b_key, at(kNow)),
            CreateUserOutcome::key_taken);
  EXPECT_FALSE(users().find_by_id("user-b"));
  // The first request again (a new user id, the same email and username): the key is told first.
  auto again = new_user("a2", *a.user.email, a.user.username);
  auto again_key = key;
  again_key.user_id = again.user.id;
  EXPECT_EQ(users().create_user_with_key(again.user, again.email_canonical, again.username_canonical, again.event,
                                         again_key, at(kNow + 1)),
            CreateUserOutcome::key_taken);
  EXPECT_EQ(outbox().pending_count(), 1u);
  EXPECT_EQ(users().find_idempotency_key(key.key_hash, at(kNow))->user_id, a.user.id);
}

TEST_P(UserStoreContract, TheKeyIsInTheTransactionOfItsUserAndEvent) {
  create_ok("a");
  // A conflict on the email: neither user, event nor key.
  auto dup = new_user("b", "A@EXAMPLE.COM");
  const auto dup_key = key_record("k-dup", dup, at(kNow + 60'000));
  EXPECT_EQ(users().create_user_with_key(dup.user, dup.email_canonical, dup.username_canonical, dup.event, dup_key,
                                         at(kNow)),
            CreateUserOutcome::email_taken);
  EXPECT_FALSE(users().find_idempotency_key(dup_key.key_hash, at(kNow)));
  // The event's insert fails (an event id that exists): the key written before it is rolled back.
  auto c = new_user("c");
  c.event.id = "event-a";
  const auto c_key = key_record("k-c", c, at(kNow + 60'000));
  EXPECT_ANY_THROW(users().create_user_with_key(c.user, c.email_canonical, c.username_canonical, c.event, c_key, at(kNow)));
  EXPECT_FALSE(users().find_idempotency_key(c_key.key_hash, at(kNow)));
  EXPECT_FALSE(users().find_by_id("user-c"));
  EXPECT_EQ(outbox().pending_count(), 1u);
  // Both keys are free: the requests can be made again.
  auto d = new_user("d");
  auto d_key = c_key;
  d_key.user_id = d.user.id;
  EXPECT_EQ(users().create_user_with_key(d.user, d.email_canonical, d.username_canonical, d.event, d_key, at(kNow)),
            CreateUserOutcome::created);
}

TEST_P(UserStoreContract, AnExpiredKeyIsReplacedAndKeyedSignUpsSweepOtherExpiredKeys) {
  // Ten keys that expire at kNow + 1000.
  std::vector<std::string> hashes;
  for (int i = 0; i < 10; ++i) {
    auto n = new_user("old" + std::to_string(i));
    const auto key = key_record("old" + std::to_string(i), n, at(kNow + 1000));
    ASSERT_EQ(users().create_user_with_key(n.user, n.email_canonical, n.username_canonical, n.event, key, at(kNow)),
              CreateUserOutcome::created);
    hashes.push_back(key.key_hash);
  }
  // Past their expiry, one of them is used again for another account: it is replaced.
  auto fresh = new_user("fresh");
  auto reused = key_record("old0", fresh, at(kNow + 90'000));
  ASSERT_EQ(reused.key_hash, hashes[0]);
  ASSERT_EQ(users().create_user_with_key(fresh.user, fresh.email_canonical, fresh.username_canonical, fresh.event,
                                         reused, at(kNow + 2000)),
            CreateUserOutcome::created);
  EXPECT_EQ(users().find_idempotency_key(hashes[0], at(kNow + 2000))->user_id, fresh.user.id);
  // And that sign-up swept up to 8 of the other nine expired records (a lookup "before" their
  // expiry still sees those that remain).
  auto remaining = [&] {
    int n = 0;
    for (std::size_t i = 1; i < hashes.size(); ++i) n += users().find_idempotency_key(hashes[i], at(kNow)) ? 1 : 0;
    return n;
  };
  EXPECT_EQ(remaining(), 1);
  auto next = new_user("next");
  ASSERT_EQ(users().create_user_with_key(next.user, next.email_canonical, next.username_canonical, next.event,
                                         key_record("next", next, at(kNow + 90'000)), at(kNow + 2000)),
            CreateUserOutcome::created);
  EXPECT_EQ(remaining(), 0);
  // The accounts stay: only the records of their keys expire.
  EXPECT_TRUE(users().find_by_id("user-old5"));
}

TEST_P(UserStoreContract, ConcurrentSignUpsWithOneKeyCreateExactlyOneUser) {
  constexpr int kThreads = 20;
  std::latch start(kThreads);
  std::atomic<int> created{0}, taken{0}, other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto n = new_user("t" + std::to_string(i));
      auto key = key_record("same", n, at(kNow + 60'000));
      start.arrive_and_wait();
      try {
        switch (users().create_user_with_key(n.user, n.email_canonical, n.username_canonical, n.event, key, at(kNow))) {
          case CreateUserOutcome::created: ++created; break;
          case CreateUserOutcome::key_taken: ++taken; break;
          default: ++other;
        }
      } catch (...) {
        ++other;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(taken.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
  EXPECT_EQ(outbox().pending_count(), 1u);
}

// --- lifecycle ---

TEST_P(UserStoreContract, DataSurvivesReopenAndMigrationsAreIdempotent) {
  create_ok("a");
  EXPECT_TRUE(processed().try_mark_processed("audit", "e1"));
  storage_->reopen();
  EXPECT_EQ(storage_->migrate(), 0u);
  EXPECT_TRUE(users().find_by_id("user-a"));
  EXPECT_EQ(outbox().pending_count(), 1u);
  EXPECT_TRUE(processed().is_processed("audit", "e1"));
}

TEST_P(UserStoreContract, PingSucceedsOnAHealthyDatabase) { EXPECT_NO_THROW(users().ping()); }

INSTANTIATE_TEST_SUITE_P(Backends, UserStoreContract, ::testing::ValuesIn(kBackends),
                         [](const ::testing::TestParamInfo<StorageFactory>& info) { return info.param.name; });

// =============================================================================================
// SQLite specifics.

namespace sq = adapters::sqlite;
namespace my = adapters::mysql;

TEST(SqliteAdapter, OpensInWalModeWithFullSyncAndAPrivateFile) {
  TempDir dir;
  auto path = dir.path() / "sub" / "registrar.db";  // the parent directory is created too
  sq::SqliteDatabase db(path);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto pragma = [&](const char* sql) {
    return db.read([&](sq::Connection& c) {
      auto q = c.query(sql);
      q.step();
      return q.text(0);
    });
  };
  EXPECT_EQ(pragma("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(pragma("PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(pragma("PRAGMA foreign_keys"), "1");
}

TEST(SqliteAdapter, MigrationsAreRecordedAndAppliedOnce) {
  TempDir dir;
  sq::SqliteDatabase db(dir.path() / "registrar.db");
  EXPECT_EQ(sq::schema_version(db), 0);
  auto applied = sq::apply_migrations(db);
  ASSERT_EQ(applied.size(), sq::builtin_migrations().size());
  EXPECT_EQ(applied[0].version, 1);
  EXPECT_EQ(sq::schema_version(db), sq::builtin_migrations().back().version);
  EXPECT_TRUE(sq::apply_migrations(db).empty());
  auto recorded = db.read([](sq::Connection& c) {
    auto q = c.query("SELECT count(*), min(applied_at) FROM schema_migrations");
    q.step();
    return std::make_pair(q.int64(0), q.text(1));
  });
  EXPECT_EQ(recorded.first, static_cast<std::int64_t>(applied.size()));
  EXPECT_TRUE(domain::parse_iso8601(recorded.second).has_value()) << recorded.second;
}

TEST(Migrations, BothBackendsNumberAndNameTheirSchemaVersionsAlike) {
  // A database moved between backends, or an operator reading `schema_migrations`, sees the same
  // history: each version means the same change in both dialects.
  std::vector<std::pair<int, std::string>> sqlite, mysql;
  for (const auto& m : sq::builtin_migrations()) sqlite.emplace_back(m.version, m.name);
  for (const auto& m : my::builtin_migrations()) mysql.emplace_back(m.version, m.name);
  EXPECT_EQ(sqlite, mysql);
}

// The rows an older registrar wrote (schema v2), as its SQL wrote them.
struct OldRow {
  const char* id;
  const char* email;
  const char* email_canonical;
  const char* username;
  const char* username_canonical;
};
constexpr OldRow kOldRows[] = {{"old-1", "John.Doe@Example.com", "john.doe@example.com", "JohnDoe", "johndoe"},
                               {"old-2", "zoë@example.com", "zoë@example.com", "Zoe", "zoe"}};
constexpr const char* kOldHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

// After migrating to the current schema, the old rows read back unchanged, keep their
// uniqueness, and phone accounts can be added next to them.
void expect_old_rows_survive(ports::UserStore& users) {
  for (const auto& row : kOldRows) {
    auto u = users.find_by_id(row.id);
    ASSERT_TRUE(u) << row.id;
    EXPECT_EQ(u->email, row.email);
    EXPECT_EQ(u->username, row.username);
    EXPECT_EQ(u->password_hash, kOldHash);
    EXPECT_EQ(u->created_at, at(1'760'891'835'123));
    EXPECT_FALSE(u->phone);
    EXPECT_FALSE(u->image);
    EXPECT_FALSE(u->verification_id);
    EXPECT_FALSE(u->email_verified_at);
    EXPECT_EQ(users.find_by_email(row.email_canonical)->id, row.id);
    EXPECT_EQ(users.find_by_username(row.username_canonical)->id, row.id);
  }
  auto dup = new_user("dup", "JOHN.DOE@example.com");
  EXPECT_EQ(users.create_user(dup.user, dup.email_canonical, dup.username_canonical, dup.event),
            CreateUserOutcome::email_taken);
  auto p = phone_user("p");
  EXPECT_EQ(users.create_user(p.user, std::nullopt, p.username_canonical, p.event), CreateUserOutcome::created);
  EXPECT_EQ(users.find_by_phone_index("index-p")->id, p.user.id);
}

TEST(SqliteAdapter, MigrationThreeKeepsTheRowsOfAnOlderSchema) {
  TempDir dir;
  sq::SqliteDatabase db(dir.path() / "registrar.db");
  ASSERT_GE(sq::builtin_migrations().size(), 3u);
  sq::apply_migrations(db, sq::builtin_migrations().first(2));
  ASSERT_EQ(sq::schema_version(db), 2);
  db.write([](sq::Connection& c) {
    for (const auto& row : kOldRows)
      c.query("INSERT INTO users (id, email, email_canonical, username, username_canonical, password_hash, created_at) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, '2025-10-19T16:37:15.123Z')")
          .bind(1, row.id).bind(2, row.email).bind(3, row.email_canonical).bind(4, row.username)
          .bind(5, row.username_canonical).bind(6, kOldHash).run();
  });
  EXPECT_EQ(sq::apply_migrations(db).size(), sq::builtin_migrations().size() - 2);
  sq::SqliteUserStore users(db);
  expect_old_rows_survive(users);
}

TEST(MariaDbMigration, MigrationThreeKeepsTheRowsOfAnOlderSchema) {
  auto* server = testing::shared_mariadb();
  if (server == nullptr) GTEST_SKIP() << "mariadb-server is not installed";
  const std::string database = server->create_database();
  {
    my::MysqlOptions o;
    o.host = server->host();
    o.port = server->port();
    o.user = server->user();
    o.password = server->password();
    o.database = database;
    my::MysqlPool pool(o);
    my::apply_migrations(pool, my::builtin_migrations().first(2));
    ASSERT_EQ(my::schema_version(pool), 2);
    {
      auto lease = pool.acquire();
      for (const auto& row : kOldRows)
        lease->query("INSERT INTO users (id, email, email_canonical, username, username_canonical, password_hash, created_at) "
                     "VALUES (?, ?, ?, ?, ?, ?, '2025-10-19 16:37:15.123')")
            .execute({row.id, row.email, row.email_canonical, row.username, row.username_canonical, kOldHash});
    }
    EXPECT_EQ(my::apply_migrations(pool).size(), my::builtin_migrations().size() - 2);
    // Re-runnable: migration 3 run again (as after a crash before its record, so before any later
    // one) changes nothing; nor do the later ones run again.
    {
      auto lease = pool.acquire();
      lease->exec("DELETE FROM schema_migrations WHERE version >= 3");  // and the later ones, re-runnable too
    }
    EXPECT_EQ(my::apply_migrations(pool).size(), my::builtin_migrations().size() - 2);
    my::MysqlUserStore users(pool);
    expect_old_rows_survive(users);
  }
  server->drop_database(database);
}

TEST(SqliteAdapter, IncrementalMigrationAppliesOnlyTheNewVersion) {
  TempDir dir;
  sq::SqliteDatabase db(dir.path() / "registrar.db");
  const sq::Migration v1[] = {{1, "one", "CREATE TABLE a (x INTEGER)"}};
  const sq::Migration v2[] = {{1, "one", "CREATE TABLE a (x INTEGER)"}, {2, "two", "CREATE TABLE b (y INTEGER)"}};
  EXPECT_EQ(sq::apply_migrations(db, v1), (std::vector<sq::AppliedMigration>{{1, "one"}}));
  EXPECT_EQ(sq::apply_migrations(db, v2), (std::vector<sq::AppliedMigration>{{2, "two"}}));
  // A failing migration leaves the schema at the last whole version.
  const sq::Migration bad[] = {v2[0], v2[1], {3, "three", "CREATE TABLE c (z); CREATE TABLE a (x)"}};
  EXPECT_ANY_THROW(sq::apply_migrations(db, bad));
  EXPECT_EQ(sq::schema_version(db), 2);
  // An older binary (knowing only v1) refuses the database now at v2.
  EXPECT_THROW(sq::apply_migrations(db, v1), sq::SchemaTooNew);
}

TEST(SqliteAdapter, RefusesADatabaseNewerThanTheBinary) {
  TempDir dir;
  sq::SqliteDatabase db(dir.path() / "registrar.db");
  sq::apply_migrations(db);
  db.write([](sq::Connection& c) {
    c.exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', '2030-01-01T00:00:00.000Z')");
  });
  try {
    sq::apply_migrations(db);
    FAIL() << "expected SchemaTooNew";
  } catch (const sq::SchemaTooNew& e) {
    EXPECT_EQ(e.database_version(), 99);
    EXPECT_NE(std::string(e.what()).find("99"), std::string::npos);
  }
}

TEST(SqliteAdapter, LeaseExpiryFollowsTheInjectedClock) {
  TempDir dir;
  sq::SqliteDatabase db(dir.path() / "registrar.db");
  sq::apply_migrations(db);
  sq::SqliteUserStore users(db);
  testing::FixedClock clock;
  sq::SqliteOutboxStore outbox(db, &clock);
  auto n = new_user("a");
  ASSERT_EQ(users.create_user(n.user, n.email_canonical, n.username_canonical, n.event), CreateUserOutcome::created);
  ASSERT_EQ(outbox.claim("relay-1", 10, 10s).size(), 1u);
  clock.advance(9'999ms);
  EXPECT_TRUE(outbox.claim("relay-2", 10, 10s).empty());
  clock.advance(1ms);
  EXPECT_EQ(outbox.claim("relay-2", 10, 10s).size(), 1u);
}

TEST(SqliteAdapter, ALockedDatabaseIsBackendUnavailableWithoutUserData) {
  TempDir dir;
  auto path = dir.path() / "registrar.db";
  sq::SqliteDatabase db(path, {.busy_timeout = 50ms, .max_readers = 2});
  sq::apply_migrations(db);
  sq::SqliteUserStore users(db);

  // Another process (here: another raw connection) holds the write lock.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);

  auto n = new_user("secret", "private.person@example.com", "PrivatePerson");
  try {
    users.create_user(n.user, n.email_canonical, n.username_canonical, n.event);
    ADD_FAILURE() << "expected BackendUnavailable";
  } catch (const ports::BackendUnavailable& e) {
    std::string what = e.what();
    EXPECT_EQ(what.find("private.person"), std::string::npos) << what;
    EXPECT_EQ(what.find("PrivatePerson"), std::string::npos) << what;
  }
  // Reads go on while the writer is locked out (WAL).
  EXPECT_NO_THROW(users.ping());
  EXPECT_FALSE(users.find_by_id("user-secret"));

  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  EXPECT_EQ(users.create_user(n.user, n.email_canonical, n.username_canonical, n.event), CreateUserOutcome::created);
}

TEST(SqliteAdapter, ConstraintErrorsNameTheConstraintNotTheValues) {
  TempDir dir;
  sq::SqliteDatabase db(dir.path() / "registrar.db");
  sq::apply_migrations(db);
  sq::SqliteUserStore users(db);
  auto a = new_user("a");
  ASSERT_EQ(users.create_user(a.user, a.email_canonical, a.username_canonical, a.event), CreateUserOutcome::created);
  auto b = new_user("b");
  b.event.id = a.event.id;
  try {
    users.create_user(b.user, b.email_canonical, b.username_canonical, b.event);
    ADD_FAILURE() << "expected an exception";
  } catch (const sq::SqliteError& e) {
    std::string what = e.what();
    EXPECT_EQ(e.code(), SQLITE_CONSTRAINT_UNIQUE);
    EXPECT_NE(what.find("outbox.event_id"), std::string::npos) << what;
    EXPECT_EQ(what.find(a.event.id), std::string::npos) << what;
    EXPECT_EQ(what.find(*b.user.email), std::string::npos) << what;
  }
}

TEST(SqliteAdapter, AnUnopenableFileIsBackendUnavailable) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "a-directory.db");
  EXPECT_THROW(sq::SqliteDatabase(dir.path() / "a-directory.db"), ports::BackendUnavailable);
}

}  // namespace
}  // namespace registrar
