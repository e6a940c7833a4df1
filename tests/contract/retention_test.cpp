// Contract tests of the retention port (ports::RetentionStore, issue 14): every storage adapter
// deletes sent outbox rows by age and by count, never a pending or leased row, and processed-event
// records by age, never one of an event still unsent. Run on SQLite and on a private MariaDB
// (tests/support/mariadb_server.hpp; skipped when MariaDB is not installed). The SqliteRetention
// suite at the end covers SQLite's incremental vacuum and that sign-ups proceed during a sweep.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "adapters/mysql/migrations.hpp"
#include "adapters/mysql/outbox_store.hpp"
#include "adapters/mysql/pool.hpp"
#include "adapters/mysql/processed_events.hpp"
#include "adapters/mysql/retention.hpp"
#include "adapters/mysql/user_store.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/processed_events.hpp"
#include "adapters/sqlite/retention.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "app/retention.hpp"
#include "support/fakes.hpp"
#include "support/mariadb_server.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using testing::FixedClock;
using testing::TempDir;

domain::Timestamp at(std::int64_t ms) { return domain::Timestamp{std::chrono::milliseconds{ms}}; }
const domain::Timestamp kT0 = at(1'760'891'835'123);

class Backend {
 public:
  virtual ~Backend() = default;
  virtual ports::UserStore& users() = 0;
  virtual ports::OutboxStore& outbox() = 0;
  virtual ports::ProcessedEvents& processed() = 0;
  virtual ports::RetentionStore& retention() = 0;
  FixedClock clock{kT0};
};

class SqliteBackend final : public Backend {
 public:
  SqliteBackend() {
    db_ = std::make_unique<adapters::sqlite::SqliteDatabase>(dir_.path() / "registrar.db");
    adapters::sqlite::ensure_incremental_vacuum(*db_);
    adapters::sqlite::apply_migrations(*db_);
    users_ = std::make_unique<adapters::sqlite::SqliteUserStore>(*db_);
    outbox_ = std::make_unique<adapters::sqlite::SqliteOutboxStore>(*db_, &clock);
    processed_ = std::make_unique<adapters::sqlite::SqliteProcessedEvents>(*db_, &clock);
    retention_ = std::make_unique<adapters::sqlite::SqliteRetention>(*db_);
  }
  ports::UserStore& users() override { return *users_; }
  ports::OutboxStore& outbox() override { return *outbox_; }
  ports::ProcessedEvents& processed() override { return *processed_; }
  ports::RetentionStore& retention() override { return *retention_; }
  adapters::sqlite::SqliteDatabase& db() { return *db_; }

 private:
  TempDir dir_;
  std::unique_ptr<adapters::sqlite::SqliteDatabase> db_;
  std::unique_ptr<adapters::sqlite::SqliteUserStore> users_;
  std::unique_ptr<adapters::sqlite::SqliteOutboxStore> outbox_;
  std::unique_ptr<adapters::sqlite::SqliteProcessedEvents> processed_;
  std::unique_ptr<adapters::sqlite::SqliteRetention> retention_;
};

class MysqlBackend final : public Backend {
 public:
  explicit MysqlBackend(testing::MariaDbServer& server) : server_(server), database_(server.create_database()) {
    adapters::mysql::MysqlOptions o;
    o.host = server_.host();
    o.port = server_.port();
    o.user = server_.user();
    o.password = server_.password();
    o.database = database_;
    pool_ = std::make_unique<adapters::mysql::MysqlPool>(o);
    adapters::mysql::apply_migrations(*pool_);
    users_ = std::make_unique<adapters::mysql::MysqlUserStore>(*pool_);
    outbox_ = std::make_unique<adapters::mysql::MysqlOutboxStore>(*pool_, &clock);
    processed_ = std::make_unique<adapters::mysql::MysqlProcessedEvents>(*pool_, &clock);
    retention_ = std::make_unique<adapters::mysql::MysqlRetention>(*pool_);
  }
  ~MysqlBackend() override {
    retention_.reset();
    processed_.reset();
    outbox_.reset();
    users_.reset();
    pool_.reset();
    try {
      server_.drop_database(database_);
    } catch (...) {
    }
  }
  ports::UserStore& users() override { return *users_; }
  ports::OutboxStore& outbox() override { return *outbox_; }
  ports::ProcessedEvents& processed() override { return *processed_; }
  ports::RetentionStore& retention() override { return *retention_; }

 private:
  testing::MariaDbServer& server_;
  std::string database_;
  std::unique_ptr<adapters::mysql::MysqlPool> pool_;
  std::unique_ptr<adapters::mysql::MysqlUserStore> users_;
  std::unique_ptr<adapters::mysql::MysqlOutboxStore> outbox_;
  std::unique_ptr<adapters::mysql::MysqlProcessedEvents> processed_;
  std::unique_ptr<adapters::mysql::MysqlRetention> retention_;
};

class MariaDbEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { testing::shutdown_shared_mariadb(); }
};
[[maybe_unused]] auto* const kMariaDbEnvironment = ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

struct BackendFactory {
  std::string name;
  std::function<std::unique_ptr<Backend>()> make;
};
void PrintTo(const BackendFactory& f, std::ostream* os) { *os << f.name; }

const BackendFactory kBackends[] = {
    {"sqlite", [] { return std::make_unique<SqliteBackend>(); }},
    {"mariadb",
     []() -> std::unique_ptr<Backend> {
       auto* server = testing::shared_mariadb();
       if (server == nullptr) return nullptr;
       return std::make_unique<MysqlBackend>(*server);
     }},
};

class RetentionContract : public ::testing::TestWithParam<BackendFactory> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (!backend_) GTEST_SKIP() << GetParam().name << " is not available here";
  }

  // A sign-up's write: a user and its event in the outbox. Returns the event id.
  std::string sign_up(const std::string& key) {
    domain::User u;
    u.id = "user-" + key;
    u.email = key + "@example.com";
    u.username = "user_" + key;
    u.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
    u.created_at = kT0;
    domain::EventEnvelope e;
    e.id = "event-" + key;
    e.type = "user.registered";
    e.aggregate_id = u.id;
    e.payload = R"({"event":"user.registered"})";
    e.occurred_at = kT0;
    EXPECT_EQ(backend_->users().create_user(u, *u.email, u.username, e), ports::CreateUserOutcome::created);
    return e.id;
  }
  // Claims and marks sent every pending event, at `when`.
  std::vector<std::string> deliver_all(domain::Timestamp when) {
    backend_->clock.set(when);
    auto claimed = backend_->outbox().claim("relay", 1000, 60s);
    std::vector<std::string> ids;
    for (const auto& e : claimed) ids.push_back(e.id);
    backend_->outbox().mark_sent("relay", ids);
    return ids;
  }
  std::size_t sweep_sent(ports::SentEventsRule rule, std::size_t limit = 500) {
    return backend_->retention().delete_sent_events(rule, limit);
  }

  std::unique_ptr<Backend> backend_;
};

TEST_P(RetentionContract, AgeDeletesOnlySentRowsSentBeforeTheCutoff) {
  sign_up("a");
  sign_up("b");
  deliver_all(kT0);  // a, b sent at T0
  sign_up("c");
  sign_up("d");
  deliver_all(kT0 + 10min);  // c, d sent at T0 + 10 min
  sign_up("leased");
  backend_->clock.set(kT0 + 20min);
  ASSERT_EQ(backend_->outbox().claim("relay", 10, 1h).size(), 1u);  // leased, not sent
  sign_up("pending");                                               // neither

  EXPECT_EQ(sweep_sent({.sent_before = kT0 + 5min}), 2u);
  EXPECT_EQ(sweep_sent({.sent_before = kT0 + 5min}), 0u);
  // Even with a cutoff after everything, the leased and the pending row stay.
  EXPECT_EQ(sweep_sent({.sent_before = kT0 + 1000h}), 2u);
  EXPECT_EQ(sweep_sent({.sent_before = kT0 + 1000h}), 0u);
  EXPECT_EQ(backend_->outbox().pending_count(), 2u);
  // And they are still delivered: the pending one now, the leased one once its lease runs out.
  backend_->clock.set(kT0 + 21min);
  auto now = backend_->outbox().claim("relay-2", 10, 1min);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].id, "event-pending");
  backend_->outbox().mark_sent("relay-2", {now[0].id});
  backend_->clock.set(kT0 + 2h);
  auto later = backend_->outbox().claim("relay-2", 10, 1min);
  ASSERT_EQ(later.size(), 1u);
  EXPECT_EQ(later[0].id, "event-leased");
}

TEST_P(RetentionContract, CountKeepsTheNewestSentRowsAndNeverPendingOnes) {
  for (int i = 0; i < 7; ++i) sign_up("old" + std::to_string(i));
  deliver_all(kT0);
  for (int i = 0; i < 3; ++i) sign_up("new" + std::to_string(i));
  deliver_all(kT0 + 1min);
  sign_up("pending");

  EXPECT_EQ(sweep_sent({.keep_newest = 3}, 4), 4u);  // a batch never exceeds its limit
  EXPECT_EQ(sweep_sent({.keep_newest = 3}, 4), 3u);
  EXPECT_EQ(sweep_sent({.keep_newest = 3}, 4), 0u);
  // The three kept are the newest: none of them was sent before T0 + 1 min.
  EXPECT_EQ(sweep_sent({.sent_before = kT0 + 1min}), 0u);
  EXPECT_EQ(sweep_sent({.keep_newest = 0}), 3u);
  EXPECT_EQ(backend_->outbox().pending_count(), 1u);
}

TEST_P(RetentionContract, BatchesAreBoundedByTheirLimit) {
  for (int i = 0; i < 25; ++i) sign_up("u" + std::to_string(i));
  deliver_all(kT0);
  std::vector<std::size_t> batches;
  for (std::size_t n = 1; n > 0;) batches.push_back(n = sweep_sent({.sent_before = kT0 + 1s}, 10));
  EXPECT_EQ(batches, (std::vector<std::size_t>{10, 10, 5, 0}));
}

TEST_P(RetentionContract, ProcessedRecordsGoByAgeExceptThoseOfUnsentEvents) {
  auto sent = sign_up("sent");
  deliver_all(kT0);
  auto unsent = sign_up("unsent");  // its outbox row stays pending: the relay may deliver it again
  auto& processed = backend_->processed();
  backend_->clock.set(kT0);
  ASSERT_TRUE(processed.try_mark_processed("audit", sent));
  ASSERT_TRUE(processed.try_mark_processed("welcome", sent));
  ASSERT_TRUE(processed.try_mark_processed("audit", unsent));
  ASSERT_TRUE(processed.try_mark_processed("audit", "from-another-producer"));  // no outbox row here
  backend_->clock.set(kT0 + 2h);
  ASSERT_TRUE(processed.try_mark_processed("audit", "recent"));

  EXPECT_EQ(backend_->retention().delete_processed_events(kT0 + 1h, 500), 3u);
  EXPECT_EQ(backend_->retention().delete_processed_events(kT0 + 1h, 500), 0u);
  EXPECT_FALSE(processed.is_processed("audit", sent));
  EXPECT_FALSE(processed.is_processed("welcome", sent));
  EXPECT_FALSE(processed.is_processed("audit", "from-another-producer"));
  EXPECT_TRUE(processed.is_processed("audit", unsent));
  EXPECT_TRUE(processed.is_processed("audit", "recent"));

  // Once its event is sent, the record of the unsent one may go too.
  deliver_all(kT0 + 3h);
  EXPECT_EQ(backend_->retention().delete_processed_events(kT0 + 1h, 500), 1u);
  EXPECT_FALSE(processed.is_processed("audit", unsent));
}

TEST_P(RetentionContract, TheSweepRunsBatchesUntilAShortOneAndPausesBetween) {
  for (int i = 0; i < 23; ++i) sign_up("u" + std::to_string(i));
  deliver_all(kT0);
  backend_->clock.set(kT0);
  for (int i = 0; i < 23; ++i) backend_->processed().try_mark_processed("audit", "event-u" + std::to_string(i));
  backend_->clock.set(kT0 + 2h);
  app::RetentionSweep sweep(backend_->retention(), backend_->clock,
                            {.sent_events_age = 1h, .processed_events_age = 1h, .batch = 10, .pause = 1ms});
  int pauses = 0;
  auto report = sweep.run([&](std::chrono::milliseconds) { return ++pauses, true; });
  EXPECT_EQ(report.sent_events, 23u);
  EXPECT_EQ(report.processed_events, 23u);
  EXPECT_GE(pauses, 4);  // two full batches of each kind
  EXPECT_FALSE(report.stopped);
  // A pause that says stop ends the sweep there.
  for (int i = 0; i < 30; ++i) sign_up("v" + std::to_string(i));
  deliver_all(kT0 + 2h);
  backend_->clock.set(kT0 + 4h);
  report = sweep.run([](std::chrono::milliseconds) { return false; });
  EXPECT_TRUE(report.stopped);
  EXPECT_EQ(report.sent_events, 10u);
}

INSTANTIATE_TEST_SUITE_P(Backends, RetentionContract, ::testing::ValuesIn(kBackends),
                         [](const auto& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// SQLite: the file shrinks, and sign-ups go on during a sweep.

std::int64_t pragma(adapters::sqlite::SqliteDatabase& db, const char* sql) {
  return db.read([&](adapters::sqlite::Connection& c) {
    auto q = c.query(sql);
    return q.step() ? q.int64(0) : std::int64_t{-1};
  });
}

// `n` sent rows in one statement (as a long-running service would have accumulated them).
void insert_sent_rows(adapters::sqlite::SqliteDatabase& db, int n, std::string_view sent_at) {
  db.write([&](adapters::sqlite::Connection& c) {
    auto sql = "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < " + std::to_string(n) +
               ") INSERT INTO outbox (event_id, event_type, aggregate_id, payload, occurred_at, sent_at) "
               "SELECT 'bulk-' || i, 'user.registered', 'agg-' || i, printf('%.500c', 'x'), "
               "'2025-10-19T16:37:15.123Z', '" + std::string(sent_at) + "' FROM k";
    c.exec(sql.c_str());
  });
}

TEST(SqliteRetention, ANewDatabaseStartsInIncrementalVacuumWithoutARebuild) {
  TempDir dir;
  adapters::sqlite::SqliteDatabase db(dir.path() / "new.db");
  EXPECT_FALSE(adapters::sqlite::ensure_incremental_vacuum(db));  // no VACUUM: no tables yet
  EXPECT_EQ(pragma(db, "PRAGMA auto_vacuum"), 2);
  adapters::sqlite::apply_migrations(db);
  EXPECT_EQ(pragma(db, "PRAGMA auto_vacuum"), 2);
  EXPECT_FALSE(adapters::sqlite::ensure_incremental_vacuum(db));
}

TEST(SqliteRetention, AnExistingDatabaseIsSwitchedToIncrementalVacuumOnceAndShrinks) {
  TempDir dir;
  const auto path = dir.path() / "old.db";
  {
    // A database made by an earlier version: tables, and auto_vacuum off.
    adapters::sqlite::SqliteDatabase db(path);
    adapters::sqlite::apply_migrations(db);
    insert_sent_rows(db, 2000, "2025-10-19T16:37:15.123Z");
    // Earlier versions left auto_vacuum off.
    db.with_writer([](adapters::sqlite::Connection& c) {
      c.exec("PRAGMA auto_vacuum = NONE");
      c.exec("VACUUM");
    });
    ASSERT_EQ(pragma(db, "PRAGMA auto_vacuum"), 0);
  }
  adapters::sqlite::SqliteDatabase db(path);
  EXPECT_TRUE(adapters::sqlite::ensure_incremental_vacuum(db));
  EXPECT_FALSE(adapters::sqlite::ensure_incremental_vacuum(db));  // once
  EXPECT_EQ(pragma(db, "PRAGMA auto_vacuum"), 2);
  EXPECT_EQ(pragma(db, "SELECT count(*) FROM outbox"), 2000);  // nothing lost by the VACUUM

  const auto pages_before = pragma(db, "PRAGMA page_count");
  adapters::sqlite::SqliteRetention retention(db);
  std::size_t deleted = 0;
  while (auto n = retention.delete_sent_events({.sent_before = kT0 + 1h}, 500)) deleted += n;
  EXPECT_EQ(deleted, 2000u);
  EXPECT_GT(pragma(db, "PRAGMA freelist_count"), 0);
  std::uint64_t reclaimed = 0;
  while (auto bytes = retention.reclaim_space(64 * 1024)) reclaimed += bytes;  // in small steps
  EXPECT_GT(reclaimed, 0u);
  EXPECT_EQ(pragma(db, "PRAGMA freelist_count"), 0);
  EXPECT_LT(pragma(db, "PRAGMA page_count"), pages_before / 4);
}

TEST(SqliteRetention, SignUpsProceedDuringASweep) {
  SqliteBackend backend;
  insert_sent_rows(backend.db(), 20'000, "2025-10-19T16:37:15.123Z");
  app::RetentionSweep sweep(backend.retention(), backend.clock,
                            {.sent_events_age = 1h, .batch = 500, .pause = 5ms});
  backend.clock.set(kT0 + 2h);

  std::atomic<bool> sweeping{true};
  std::atomic<int> during{0}, made{0};
  std::chrono::steady_clock::duration slowest{};
  std::thread signups([&] {
    for (int i = 0; sweeping.load(); ++i) {
      domain::User u;
      u.id = "user-" + std::to_string(i);
      u.email = u.id + "@example.com";
      u.username = u.id;
      u.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
      u.created_at = kT0;
      domain::EventEnvelope e{.id = "e-" + u.id, .type = "user.registered", .aggregate_id = u.id,
                              .payload = "{}", .occurred_at = kT0};
      auto start = std::chrono::steady_clock::now();
      ASSERT_EQ(backend.users().create_user(u, *u.email, u.username, e), ports::CreateUserOutcome::created);
      slowest = std::max(slowest, std::chrono::steady_clock::now() - start);
      ++made;
      if (sweeping.load()) ++during;
    }
  });
  std::size_t batches = 0;
  auto report = sweep.run([&](std::chrono::milliseconds pause) {
    ++batches;
    std::this_thread::sleep_for(pause);
    return true;
  });
  sweeping.store(false);
  signups.join();
  EXPECT_EQ(report.sent_events, 20'000u);
  EXPECT_GE(batches, 40u);
  // The sweep released the writer between its batches: sign-ups committed while it ran, none of
  // them waiting anywhere near the whole sweep. (The bound is loose for a loaded test machine; a
  // batch of 500 rows takes milliseconds.)
  EXPECT_GT(during.load(), 0);
  EXPECT_LT(slowest, 2s) << "slowest sign-up during the sweep";
  // And the sweep took none of their events (all pending).
  EXPECT_EQ(backend.outbox().pending_count(), static_cast<std::size_t>(made.load()));
}

}  // namespace
}  // namespace registrar
