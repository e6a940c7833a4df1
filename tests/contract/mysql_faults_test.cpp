// What is specific to the MySQL/MariaDB adapter, against a private MariaDB server started by this
// test process (tests/support/mariadb_server.hpp): the server crashing or hanging mid-use, the
// pool recovering by itself, the pool's bounds, lock conflicts, error mapping, migrations, and
// the column types. The behaviour shared with SQLite is in user_store_test.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <future>
#include <latch>
#include <memory>
#include <string>
#include <thread>
#include <typeinfo>
#include <vector>

#include "adapters/mysql/connection.hpp"
#include "adapters/mysql/migrations.hpp"
#include "adapters/mysql/outbox_store.hpp"
#include "adapters/mysql/pool.hpp"
#include "adapters/mysql/processed_events.hpp"
#include "adapters/mysql/user_store.hpp"
#include "domain/time.hpp"
#include "ports/errors.hpp"
#include "support/fakes.hpp"
#include "support/mariadb_server.hpp"
#include "support/tcp_proxy.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using ports::CreateUserOutcome;
namespace my = adapters::mysql;

class MariaDbEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { testing::shutdown_shared_mariadb(); }
};
[[maybe_unused]] auto* const kMariaDbEnvironment = ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

domain::Timestamp at(std::int64_t ms) { return domain::Timestamp{std::chrono::milliseconds{ms}}; }

struct NewUser {
  domain::User user;
  std::string email_canonical, username_canonical;
  domain::EventEnvelope event;
};

NewUser new_user(const std::string& key) {
  NewUser n;
  n.user.id = "user-" + key;
  n.user.email = "private." + key + "@Example.com";
  n.user.username = "Private_" + key;
  n.user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
  n.user.created_at = at(1'760'891'835'123);
  n.email_canonical = "private." + key + "@example.com";
  n.username_canonical = "private_" + key;
  n.event.id = "event-" + key;
  n.event.type = "user.registered";
  n.event.aggregate_id = n.user.id;
  n.event.payload = R"({"event":"user.registered","data":{"id":")" + n.user.id + R"("}})";
  n.event.occurred_at = at(1'760'891'835'456);
  return n;
}

// Runs `f` and returns the type of what it threw ("" if nothing), so a test can insist on
// BackendUnavailable and nothing else. Also checks that the message carries no user data.
template <class F>
std::string thrown_by(F&& f, const NewUser* n = nullptr) {
  try {
    f();
    return "";
  } catch (const ports::BackendUnavailable& e) {
    if (n != nullptr) {
      std::string what = e.what();
      EXPECT_EQ(what.find(n->email_canonical), std::string::npos) << what;
      EXPECT_EQ(what.find(n->username_canonical), std::string::npos) << what;
    }
    return "BackendUnavailable";
  } catch (const std::exception& e) {
    return std::string(typeid(e).name()) + ": " + e.what();
  } catch (...) {
    return "unknown exception";
  }
}

// Fault tests kill, pause and restart the process's shared server: each test starts from a
// running server and a fresh database, and leaves the server running.
class MysqlFaults : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = testing::shared_mariadb();
    if (server_ == nullptr) GTEST_SKIP() << "mariadb-server is not installed";
    server_->resume();
    server_->start();
    database_ = server_->create_database();
    open();
    my::apply_migrations(*pool_);
  }

  void TearDown() override {
    close();
    if (server_ == nullptr) return;
    server_->resume();
    server_->start();
    server_->drop_database(database_);
  }

  my::MysqlOptions options() const {
    my::MysqlOptions o;
    o.host = server_->host();
    o.port = port_override_ != 0 ? port_override_ : server_->port();
    o.user = server_->user();
    o.password = server_->password();
    o.database = database_;
    o.pool_size = pool_size_;
    o.acquire_timeout = 2s;
    o.connect_timeout = 1s;
    o.read_timeout = read_timeout_;
    o.write_timeout = 2s;
    o.lock_wait_timeout = lock_wait_timeout_;
    return o;
  }
  void open() {
    pool_ = std::make_unique<my::MysqlPool>(options());
    users_ = std::make_unique<my::MysqlUserStore>(*pool_);
    outbox_ = std::make_unique<my::MysqlOutboxStore>(*pool_);
    processed_ = std::make_unique<my::MysqlProcessedEvents>(*pool_);
  }
  void close() {
    processed_.reset();
    outbox_.reset();
    users_.reset();
    pool_.reset();
  }
  // lock_wait 0: keep the current one.
  void reopen_with(std::size_t pool_size, std::chrono::seconds lock_wait = 0s) {
    close();
    pool_size_ = pool_size;
    if (lock_wait > 0s) lock_wait_timeout_ = lock_wait;
    if (lock_wait > 0s) read_timeout_ = std::max(read_timeout_, lock_wait + 5s);  // a lock wait is not a dead server
    open();
  }

  CreateUserOutcome create(const NewUser& n) {
    return users_->create_user(n.user, n.email_canonical, n.username_canonical, n.event);
  }
  std::unique_ptr<testing::MariaDbAdminSession> admin() { return server_->admin(database_); }

  // Opens `n` connections in the pool (n concurrent reads), so that later calls reuse them.
  void warm_pool(std::size_t n) {
    std::latch together(static_cast<std::ptrdiff_t>(n));
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i)
      threads.emplace_back([&] {
        pool_->read([&](my::Connection&) { together.arrive_and_wait(); });
      });
    for (auto& t : threads) t.join();
    ASSERT_EQ(pool_->stats().idle, n);
  }

  // Waits until one of the pool's sessions is executing the outbox INSERT of create_user (the
  // user row is written by then, uncommitted). PROCESSLIST is live; InnoDB's lock tables in
  // information_schema are a cache that frequent polling keeps from refreshing.
  bool wait_for_outbox_insert() {
    auto watcher = admin();
    std::string sql = "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '" + server_->user() +
                      "' AND DB = '" + database_ + "' AND INFO LIKE 'INSERT INTO outbox%'";
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (watcher->count(sql) == 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }

  testing::MariaDbServer* server_ = nullptr;
  std::string database_;
  std::size_t pool_size_ = 4;
  std::uint16_t port_override_ = 0;  // connect there (a TcpProxy) instead of to the server
  std::chrono::seconds lock_wait_timeout_{3};
  std::chrono::seconds read_timeout_{2};
  std::unique_ptr<my::MysqlPool> pool_;
  std::unique_ptr<my::MysqlUserStore> users_;
  std::unique_ptr<my::MysqlOutboxStore> outbox_;
  std::unique_ptr<my::MysqlProcessedEvents> processed_;
};

// --- the server dies ---

TEST_F(MysqlFaults, ServerKilledMidTransactionLeavesNoHalfAppliedUser) {
  reopen_with(4, 30s);  // the sign-up must still be waiting when the server dies
  auto n = new_user("a");
  // Another session holds the lock on n's event id, so create_user inserts the user row and then
  // blocks on its outbox row: the server is killed right between the two inserts.
  auto blocker = admin();
  blocker->exec("START TRANSACTION");
  blocker->exec(
      "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at) "
      "VALUES ('event-a', 'user.registered', 'someone-else', '{}', UTC_TIMESTAMP(3))");

  auto outcome = std::async(std::launch::async, [&] { return thrown_by([&] { create(n); }, &n); });
  ASSERT_TRUE(wait_for_outbox_insert()) << "create_user never reached the outbox insert";
  ASSERT_NE(outcome.wait_for(0s), std::future_status::ready) << "create_user ended early: " << outcome.get();
  server_->kill();
  EXPECT_EQ(outcome.get(), "BackendUnavailable");

  server_->start();
  // Neither row survived: the user was inserted but never committed.
  auto check = admin();
  EXPECT_EQ(check->count("SELECT COUNT(*) FROM users"), 0);
  EXPECT_EQ(check->count("SELECT COUNT(*) FROM outbox"), 0);
  // The same store, not recreated, works again.
  EXPECT_EQ(create(n), CreateUserOutcome::created);
  EXPECT_TRUE(users_->find_by_id(n.user.id));
  EXPECT_EQ(outbox_->pending_count(), 1u);
  EXPECT_GE(pool_->stats().discarded, 1u);
}

TEST_F(MysqlFaults, EveryCallOnADeadServerIsBackendUnavailableAndTheSamePoolRecovers) {
  auto a = new_user("a");
  ASSERT_EQ(create(a), CreateUserOutcome::created);
  warm_pool(3);
  server_->kill();

  auto b = new_user("b");
  EXPECT_EQ(thrown_by([&] { create(b); }, &b), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { users_->find_by_id(a.user.id); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { users_->find_by_email(a.email_canonical); }, &a), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { users_->find_by_username(a.username_canonical); }, &a), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { users_->contact_or_username_taken(b.email_canonical, b.username_canonical, std::nullopt); }, &b),
            "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { users_->ping(); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { outbox_->claim("relay-1", 10, 30s); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { outbox_->mark_sent("relay-1", {"event-a"}); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { outbox_->release("relay-1", {"event-a"}); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { outbox_->pending_count(); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { processed_->try_mark_processed("audit", "e1"); }), "BackendUnavailable");
  EXPECT_EQ(thrown_by([&] { processed_->is_processed("audit", "e1"); }), "BackendUnavailable");
  EXPECT_EQ(pool_->stats().open, 0u);  // the dead connections were dropped

  server_->start();
  EXPECT_NO_THROW(users_->ping());
  EXPECT_TRUE(users_->find_by_id(a.user.id));
  EXPECT_EQ(create(b), CreateUserOutcome::created);
  EXPECT_EQ(outbox_->claim("relay-1", 10, 30s).size(), 2u);
}

TEST_F(MysqlFaults, ARestartBetweenCallsIsInvisibleToCallers) {
  // Idle pooled connections die with the server; the next calls must not fail because of them.
  auto a = new_user("a");
  ASSERT_EQ(create(a), CreateUserOutcome::created);
  warm_pool(4);
  server_->kill();
  server_->start();
  EXPECT_NO_THROW(users_->ping());
  EXPECT_TRUE(users_->find_by_id(a.user.id));
  EXPECT_EQ(create(new_user("b")), CreateUserOutcome::created);

  // Same with a write first: the transaction is retried on a fresh connection (nothing had been
  // sent that could have been applied).
  warm_pool(4);
  server_->kill();
  server_->start();
  EXPECT_EQ(create(new_user("c")), CreateUserOutcome::created);
  EXPECT_TRUE(processed_->try_mark_processed("audit", "e1"));
  EXPECT_EQ(outbox_->pending_count(), 3u);
}

// The connection breaks after the server applied a one-round-trip write but before its answer
// arrived (a network failure at the worst moment): the pool sends the write again on a fresh
// connection, and the adapter must recognise its own first attempt rather than report a conflict
// with itself or apply anything twice.
TEST_F(MysqlFaults, AWriteWhoseAnswerIsLostIsAppliedOnceAndReportedAsDone) {
  testing::TcpProxy proxy(server_->host(), server_->port());
  port_override_ = proxy.port();
  reopen_with(1);  // one connection: the cut is always on the pooled one

  auto a = new_user("a");
  ASSERT_EQ(create(a), CreateUserOutcome::created);
  auto b = new_user("b");
  proxy.cut_next_reply();
  EXPECT_EQ(create(b), CreateUserOutcome::created);  // applied by the first call, found by the repeat
  EXPECT_EQ(proxy.cuts(), 1);
  EXPECT_EQ(pool_->stats().discarded, 1u);
  EXPECT_TRUE(users_->find_by_id(b.user.id));
  EXPECT_EQ(admin()->count("SELECT COUNT(*) FROM outbox WHERE event_id = 'event-b'"), 1);
  // A real conflict found by a repeat is still a conflict: c's first call fails on a's email, the
  // answer is lost, the repeat fails the same way and c's id is not there.
  auto c = new_user("c");
  c.email_canonical = a.email_canonical;
  proxy.cut_next_reply();
  EXPECT_EQ(create(c), CreateUserOutcome::email_taken);
  EXPECT_EQ(proxy.cuts(), 2);
  EXPECT_FALSE(users_->find_by_id(c.user.id));

  // The relay's and the consumers' batch writes are idempotent: a lost answer is harmless.
  ASSERT_EQ(outbox_->claim("relay-1", 10, 30s).size(), 2u);
  proxy.cut_next_reply();
  outbox_->mark_sent("relay-1", {a.event.id, b.event.id});
  EXPECT_EQ(outbox_->pending_count(), 0u);
  proxy.cut_next_reply();
  processed_->mark_all_processed("audit", std::vector<std::string>{a.event.id, b.event.id});
  EXPECT_EQ(processed_->processed_among("audit", std::vector<std::string>{a.event.id, b.event.id}).size(), 2u);
  EXPECT_EQ(proxy.cuts(), 4);
  EXPECT_EQ(admin()->count("SELECT COUNT(*) FROM users"), 2);
}

TEST_F(MysqlFaults, PingFailsWhileTheServerIsDownAndSucceedsAfter) {
  EXPECT_NO_THROW(users_->ping());
  server_->kill();
  EXPECT_THROW(users_->ping(), ports::BackendUnavailable);
  EXPECT_THROW(users_->ping(), ports::BackendUnavailable);
  server_->start();
  EXPECT_NO_THROW(users_->ping());
}

TEST_F(MysqlFaults, AHungServerTimesOutAsBackendUnavailable) {
  read_timeout_ = 1s;
  reopen_with(4, 0s);
  auto a = new_user("a");
  ASSERT_EQ(create(a), CreateUserOutcome::created);
  server_->pause();  // the process is there, its sockets accept, nothing answers
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(thrown_by([&] { users_->find_by_id(a.user.id); }), "BackendUnavailable");
  auto b = new_user("b");
  EXPECT_EQ(thrown_by([&] { create(b); }, &b), "BackendUnavailable");
  // Bounded by the read and connect timeouts (1 s each), with one retry on a fresh connection.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
  server_->resume();
  EXPECT_NO_THROW(users_->ping());
  EXPECT_TRUE(users_->find_by_id(a.user.id));
  EXPECT_FALSE(users_->find_by_id(b.user.id));  // b was never committed
  EXPECT_EQ(create(b), CreateUserOutcome::created);
}

// --- pool bounds ---

TEST_F(MysqlFaults, ThePoolNeverOpensMoreThanItsSize) {
  reopen_with(3);
  auto a = new_user("a");
  ASSERT_EQ(create(a), CreateUserOutcome::created);
  constexpr int kThreads = 12, kEach = 30;
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        try {
          if (!users_->find_by_id(a.user.id)) ++failures;
        } catch (...) {
          ++failures;
        }
      }
    });
  // The server's own view: sessions on this test's database.
  auto watcher = admin();
  std::int64_t most = 0;
  std::thread sampler([&] {
    while (!done) {
      most = std::max(most, watcher->count("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = '" +
                                           database_ + "' AND USER = '" + server_->user() + "'"));
      std::this_thread::sleep_for(1ms);
    }
  });
  for (auto& t : threads) t.join();
  done = true;
  sampler.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(most, 3);
  EXPECT_LE(pool_->stats().peak_open, 3u);
  EXPECT_EQ(pool_->stats().opened, pool_->stats().open);  // none was dropped or reopened
}

TEST_F(MysqlFaults, WaitingLongerThanTheAcquireTimeoutIsBackendUnavailable) {
  close();
  pool_size_ = 1;
  auto o = options();
  o.acquire_timeout = 100ms;
  pool_ = std::make_unique<my::MysqlPool>(o);
  users_ = std::make_unique<my::MysqlUserStore>(*pool_);
  {
    auto held = pool_->acquire();  // the only connection, busy elsewhere
    auto started = std::chrono::steady_clock::now();
    EXPECT_THROW(users_->find_by_id("user-a"), ports::BackendUnavailable);
    auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_GE(waited, 100ms);
    EXPECT_LT(waited, 2s);
  }
  EXPECT_NO_THROW(users_->find_by_id("user-a"));
}

// --- lock conflicts and errors ---

TEST_F(MysqlFaults, ADeadlockIsRetriedTransparently) {
  reopen_with(4, 20s);
  auto n = new_user("a");
  // The other session holds n's event id; create_user takes n's email and waits for the event id;
  // then the other session asks for n's email: a deadlock. InnoDB rolls back the transaction that
  // changed fewer rows: the other session has written more, so the sign-up is the victim, and
  // must end up created all the same (retried), not fail.
  auto other = admin();
  auto deadlocks = [&] {
    return admin()->count(
        "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_DEADLOCKS'");
  };
  auto deadlocks_before = deadlocks();
  other->exec("START TRANSACTION");
  other->exec(
      "INSERT INTO processed_events (consumer, event_id, processed_at) VALUES "
      "('c', '1', NOW()), ('c', '2', NOW()), ('c', '3', NOW()), ('c', '4', NOW()), ('c', '5', NOW())");
  other->exec(
      "INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at) "
      "VALUES ('event-a', 'user.registered', 'someone-else', '{}', UTC_TIMESTAMP(3))");
  auto outcome = std::async(std::launch::async, [&] { return create(n); });
  ASSERT_TRUE(wait_for_outbox_insert()) << "create_user never reached the outbox insert";
  ASSERT_NE(outcome.wait_for(0s), std::future_status::ready) << static_cast<int>(outcome.get());
  other->send(
      "INSERT INTO users (id, email, email_canonical, username, username_canonical, password_hash, created_at) "
      "VALUES ('other', 'x@example.com', 'private.a@example.com', 'x', 'x', 'h', UTC_TIMESTAMP(3))");
  EXPECT_EQ(other->read_result(), 0u);  // the sign-up was the victim: this session got the email
  ASSERT_NE(outcome.wait_for(0s), std::future_status::ready);  // … and the sign-up retried, waiting now
  other->exec("ROLLBACK");
  EXPECT_EQ(outcome.get(), CreateUserOutcome::created);
  EXPECT_EQ(outbox_->pending_count(), 1u);
  EXPECT_EQ(deadlocks(), deadlocks_before + 1);
}

TEST_F(MysqlFaults, DuplicateKeysAreMappedByKeyNameAndErrorsCarryNoUserData) {
  auto a = new_user("a");
  ASSERT_EQ(create(a), CreateUserOutcome::created);
  auto b = new_user("b");
  b.event.id = a.event.id;  // not an expected outcome: a bug, reported as MysqlError
  try {
    create(b);
    ADD_FAILURE() << "expected MysqlError";
  } catch (const my::MysqlError& e) {
    std::string what = e.what();
    EXPECT_EQ(e.code(), 1062u);
    EXPECT_EQ(e.key(), "outbox_event_id");
    EXPECT_NE(what.find("outbox_event_id"), std::string::npos) << what;
    EXPECT_EQ(what.find(a.event.id), std::string::npos) << what;
    EXPECT_EQ(what.find(b.email_canonical), std::string::npos) << what;
  }
  EXPECT_FALSE(users_->find_by_id(b.user.id));

  EXPECT_EQ(my::duplicate_key_name("Duplicate entry 'x' for key 'users_email_canonical'"), "users_email_canonical");
  EXPECT_EQ(my::duplicate_key_name("Duplicate entry 'for key 'a'' for key 'users.users_username_canonical'"),
            "users_username_canonical");
  EXPECT_EQ(my::redact_literals("Incorrect string value: '\\xF0\\x9F' for column `users`.`email`"),
            "Incorrect string value: '?' for column `users`.`email`");
}

TEST_F(MysqlFaults, AValueTheSchemaRefusesIsAnErrorNotATruncation) {
  auto n = new_user("a");
  n.user.username = std::string(40, 'x');  // VARCHAR(32): strict mode refuses, never truncates
  EXPECT_THROW(create(n), my::MysqlError);
  EXPECT_FALSE(users_->find_by_id(n.user.id));
  EXPECT_EQ(outbox_->pending_count(), 0u);
}

// --- schema ---

TEST_F(MysqlFaults, Utf8mb4AndUtcMillisecondsRoundTrip) {
  auto n = new_user("a");
  n.user.email = "zoë.😀@Example.com";
  n.email_canonical = "zoë.😀@example.com";
  n.event.payload = R"({"name":"Zoë 😀","long":")" + std::string(70'000, 'x') + "\"}";
  n.user.created_at = at(1'760'891'835'007);
  ASSERT_EQ(create(n), CreateUserOutcome::created);
  auto found = users_->find_by_email("zoë.😀@example.com");
  ASSERT_TRUE(found);
  EXPECT_EQ(found->email, n.user.email);
  EXPECT_EQ(found->created_at, n.user.created_at);
  auto events = outbox_->claim("relay-1", 10, 30s);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].payload, n.event.payload);  // longer than the first read buffer
  EXPECT_EQ(events[0].occurred_at, n.event.occurred_at);
  // Stored as UTC wall-clock time, readable as such in the mysql shell.
  EXPECT_EQ(admin()->scalar("SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ') FROM users"),
            "2025-10-19T16:37:15.007000Z");
  // Canonical forms compare as bytes, like SQLite: another accent is another email.
  EXPECT_FALSE(users_->find_by_email("zoe.😀@example.com"));
  EXPECT_EQ(admin()->scalar("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                            "AND TABLE_NAME = 'users'"),
            "InnoDB");
  EXPECT_EQ(admin()->scalar("SELECT COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                            "AND TABLE_NAME = 'users' AND COLUMN_NAME = 'username_canonical'"),
            "utf8mb4_bin");
}

TEST_F(MysqlFaults, LeaseExpiryFollowsTheInjectedClock) {
  testing::FixedClock clock;
  my::MysqlOutboxStore outbox(*pool_, &clock);
  ASSERT_EQ(create(new_user("a")), CreateUserOutcome::created);
  ASSERT_EQ(outbox.claim("relay-1", 10, 10s).size(), 1u);
  clock.advance(9'999ms);
  EXPECT_TRUE(outbox.claim("relay-2", 10, 10s).empty());
  clock.advance(1ms);
  EXPECT_EQ(outbox.claim("relay-2", 10, 10s).size(), 1u);
}

TEST_F(MysqlFaults, MigrationsAreRecordedAppliedOnceAndRefuseANewerSchema) {
  auto fresh = server_->create_database();
  auto o = options();
  o.database = fresh;
  {
    my::MysqlPool pool(o);
    EXPECT_EQ(my::schema_version(pool), 0);
    auto applied = my::apply_migrations(pool);
    ASSERT_EQ(applied.size(), my::builtin_migrations().size());
    EXPECT_EQ(applied[0], (my::AppliedMigration{1, "users, outbox, processed_events"}));
    EXPECT_EQ(applied[1], (my::AppliedMigration{2, "create_user in one round trip"}));
    EXPECT_TRUE(my::apply_migrations(pool).empty());
    const int known = my::builtin_migrations().back().version;

    // Incremental: only the new version runs.
    constexpr std::string_view extra[] = {"CREATE TABLE IF NOT EXISTS extra (x INT) ENGINE = InnoDB"};
    std::vector<my::Migration> next(my::builtin_migrations().begin(), my::builtin_migrations().end());
    next.push_back({known + 1, "extra", extra});
    EXPECT_EQ(my::apply_migrations(pool, next), (std::vector<my::AppliedMigration>{{known + 1, "extra"}}));
    EXPECT_EQ(my::schema_version(pool), known + 1);
    // A failing migration is not recorded; the schema stays at the last whole version.
    constexpr std::string_view bad[] = {"CREATE TABLE users (x INT)"};
    auto with_bad = next;
    with_bad.push_back({known + 2, "bad", bad});
    EXPECT_THROW(my::apply_migrations(pool, with_bad), my::MysqlError);
    EXPECT_EQ(my::schema_version(pool), known + 1);
    // This binary (which knows only the built-in versions) refuses the database now ahead of it.
    try {
      my::apply_migrations(pool);
      ADD_FAILURE() << "expected SchemaTooNew";
    } catch (const my::SchemaTooNew& e) {
      EXPECT_EQ(e.database_version(), known + 1);
      EXPECT_EQ(e.known_version(), known);
    }
    EXPECT_EQ(admin()->count("SELECT COUNT(*) FROM `" + fresh + "`.schema_migrations"), known + 1);
  }
  server_->drop_database(fresh);
}

TEST_F(MysqlFaults, ConcurrentMigratorsApplyEachMigrationOnce) {
  auto fresh = server_->create_database();
  auto o = options();
  o.database = fresh;
  constexpr int kProcesses = 4;
  std::vector<std::unique_ptr<my::MysqlPool>> pools;
  for (int i = 0; i < kProcesses; ++i) pools.push_back(std::make_unique<my::MysqlPool>(o));
  std::latch start(kProcesses);
  std::atomic<int> applied{0}, errors{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kProcesses; ++i)
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      try {
        applied += static_cast<int>(my::apply_migrations(*pools[i]).size());
      } catch (...) {
        ++errors;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(applied.load(), static_cast<int>(my::builtin_migrations().size()));
  EXPECT_EQ(admin()->count("SELECT COUNT(*) FROM `" + fresh + "`.schema_migrations"),
            static_cast<std::int64_t>(my::builtin_migrations().size()));
  pools.clear();
  server_->drop_database(fresh);
}

}  // namespace
}  // namespace registrar
