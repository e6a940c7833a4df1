// `registrar keys rotate` and `registrar keys status`, run as the real binary against a database
// holding phone accounts made by the real use case (app::CreateAccount) with the real libsodium
// keyring in the data dir: rotation re-seals every phone in batches, logins by phone still work
// after it (also once the old key is gone), and a second run finishes an unfinished rotation.
// SQLite, and MySQL on the private MariaDB server when it is installed.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <sys/wait.h>

#include "adapters/mysql/migrations.hpp"
#include "adapters/mysql/pool.hpp"
#include "adapters/mysql/user_store.hpp"
#include "adapters/sodium/pii_cipher.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "app/use_cases.hpp"
#include "support/fakes.hpp"
#include "support/mariadb_server.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

namespace fs = std::filesystem;
using adapters::sodium::PiiKeyringOptions;
using adapters::sodium::SodiumPiiCipher;
using testing::TempDir;

constexpr const char* kPassword = "correct horse battery";

struct Run {
  int status;
  std::string output;
};

// Runs the registrar binary with `args` (stdout and stderr together) and waits for it.
Run registrar(const std::string& args) {
  std::string command = std::string(REGISTRAR_BINARY) + " " + args + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string phone_number(int i) {
  std::string digits = std::to_string(100000 + i);
  return "+336120" + digits;
}

// One backend: the store the test writes and reads through, and the --database-url the binary gets.
struct Backend {
  std::string database_url;  // "" → the data dir's SQLite file
  std::unique_ptr<adapters::sqlite::SqliteDatabase> sqlite;
  std::unique_ptr<adapters::mysql::MysqlPool> pool;
  std::unique_ptr<ports::UserStore> users;
  std::string mysql_database;
};

class KeyRotation : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      backend_.sqlite = std::make_unique<adapters::sqlite::SqliteDatabase>(data_.path() / "registrar.db");
      adapters::sqlite::apply_migrations(*backend_.sqlite);
      backend_.users = std::make_unique<adapters::sqlite::SqliteUserStore>(*backend_.sqlite);
    } else {
      server_ = testing::shared_mariadb();
      if (server_ == nullptr) GTEST_SKIP() << "mariadb-server is not installed";
      backend_.mysql_database = server_->create_database();
      adapters::mysql::MysqlOptions o;
      o.host = server_->host();
      o.port = server_->port();
      o.user = server_->user();
      o.password = server_->password();
      o.database = backend_.mysql_database;
      backend_.pool = std::make_unique<adapters::mysql::MysqlPool>(o);
      adapters::mysql::apply_migrations(*backend_.pool);
      backend_.users = std::make_unique<adapters::mysql::MysqlUserStore>(*backend_.pool);
      backend_.database_url = "mysql://" + o.user + ":" + o.password + "@" + o.host + ":" + std::to_string(o.port) + "/" +
                              backend_.mysql_database;
    }
  }
  void TearDown() override {
    backend_.users.reset();
    backend_.pool.reset();
    backend_.sqlite.reset();
    if (server_ != nullptr && !backend_.mysql_database.empty()) server_->drop_database(backend_.mysql_database);
  }

  std::string args(const std::string& command) const {
    std::string a = command + " --data-dir " + data_.path().string() + " --log-level warn";
    if (!backend_.database_url.empty()) a += " --database-url '" + backend_.database_url + "'";
    return a;
  }
  fs::path keys() const { return data_.path() / "keys"; }
  ports::UserStore& users() { return *backend_.users; }

  // Phone accounts i in [from, to), made the way a Create_User job makes them.
  void create_accounts(ports::PiiCipher& pii, int from, int to) {
    const app::CreateAccount create{users(), hasher_, pii, clock_, ids_, signal_};
    for (int i = from; i < to; ++i) {
      auto r = create({.username = "phone" + std::to_string(i),
                       .password = kPassword,
                       .phone = *domain::Phone::parse(phone_number(i)),
                       .verification_id = "vs-" + std::to_string(i)});
      ASSERT_TRUE(r) << i << ": " << r.error().message;
    }
  }

  // Every account i in [0, n) logs in by phone and shows its masked phone, with `pii`.
  void expect_logins_by_phone(ports::PiiCipher& pii, int n) {
    testing::FakeTokenService tokens;
    const app::Login login{users(), hasher_, tokens, pii};
    for (int i = 0; i < n; ++i) {
      auto r = login({phone_number(i), kPassword, true});
      ASSERT_TRUE(r) << i;
      EXPECT_EQ(r->user.username, "phone" + std::to_string(i));
      ASSERT_TRUE(r->phone_masked) << i;
      EXPECT_TRUE(r->phone_masked->starts_with("+33")) << i;
      // The phone opens (not only found by its index) under the key it is sealed with now.
      EXPECT_EQ(pii.open(r->user.phone->sealed, app::phone_seal_context(r->user.id)), phone_number(i));
    }
  }

  TempDir data_;
  Backend backend_;
  testing::MariaDbServer* server_ = nullptr;
  testing::FakeHasher hasher_;
  testing::FixedClock clock_;
  testing::SequentialIds ids_{"id-"};
  testing::CountingSignal signal_;
};

TEST_P(KeyRotation, RotateReSealsEveryPhoneInBatchesAndLoginsByPhoneStillWork) {
  constexpr int kAccounts = 450;
  std::string first;
  {
    SodiumPiiCipher pii(PiiKeyringOptions{.dir = keys()});  // the service's first run: generates the keys
    first = pii.current_key_id();
    create_accounts(pii, 0, kAccounts);
  }
  ASSERT_EQ(users().phone_key_counts(), (std::vector<std::pair<std::string, std::size_t>>{{first, kAccounts}}));

  auto rotated = registrar(args("keys rotate --batch-size 200"));
  ASSERT_EQ(rotated.status, 0) << rotated.output;
  EXPECT_NE(rotated.output.find("created key"), std::string::npos) << rotated.output;
  for (const char* step : {"200 / 450 re-encrypted", "400 / 450 re-encrypted", "450 / 450 re-encrypted", "done: 450"})
    EXPECT_NE(rotated.output.find(step), std::string::npos) << step << "\n" << rotated.output;
  const auto counts = users().phone_key_counts();
  ASSERT_EQ(counts.size(), 1u);
  const std::string second = counts[0].first;
  EXPECT_NE(second, first);
  EXPECT_GT(second, first);
  EXPECT_EQ(counts[0].second, static_cast<std::size_t>(kAccounts));
  // Nothing in the output holds a phone number.
  EXPECT_EQ(rotated.output.find("+336120"), std::string::npos);

  // The old key can go: a fresh keyring (a restarted service) logs every account in by phone.
  fs::remove(keys() / ("pii-" + first + ".key"));
  SodiumPiiCipher after(PiiKeyringOptions{.dir = keys(), .create_missing = false});
  EXPECT_EQ(after.current_key_id(), second);
  expect_logins_by_phone(after, kAccounts);

  // An unfinished rotation: a newer key appears (another rotation started), a running service
  // seals new phones under it, the re-sealing never ran. `keys rotate` finishes it rather than
  // making yet another key.
  const std::string third = adapters::sodium::create_pii_key_file(keys());
  create_accounts(after, kAccounts, kAccounts + 3);
  ASSERT_EQ(users().phone_key_counts(),
            (std::vector<std::pair<std::string, std::size_t>>{{second, kAccounts}, {third, 3}}));
  auto finished = registrar(args("keys rotate"));
  ASSERT_EQ(finished.status, 0) << finished.output;
  EXPECT_NE(finished.output.find("finishing the rotation to key " + third), std::string::npos) << finished.output;
  EXPECT_EQ(users().phone_key_counts(),
            (std::vector<std::pair<std::string, std::size_t>>{{third, kAccounts + 3}}));
  expect_logins_by_phone(after, kAccounts + 3);

  auto status = registrar(args("keys status"));
  ASSERT_EQ(status.status, 0) << status.output;
  EXPECT_NE(status.output.find(third + "\t453 phones\tcurrent"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find(second + "\t0 phones"), std::string::npos) << status.output;
}

TEST_P(KeyRotation, RowsUnderAMissingKeyAreReportedAndLeftAsTheyAre) {
  std::string first;
  {
    SodiumPiiCipher pii(PiiKeyringOptions{.dir = keys()});
    first = pii.current_key_id();
    create_accounts(pii, 0, 5);
  }
  fs::remove(keys() / ("pii-" + first + ".key"));  // lost before the rotation
  auto rotated = registrar(args("keys rotate"));
  EXPECT_EQ(rotated.status, 1) << rotated.output;
  EXPECT_NE(rotated.output.find("5 could not be decrypted"), std::string::npos) << rotated.output;
  EXPECT_EQ(users().phone_key_counts(), (std::vector<std::pair<std::string, std::size_t>>{{first, 5}}));
  auto status = registrar(args("keys status"));
  EXPECT_NE(status.output.find(first + "\t5 phones\tKEY MISSING"), std::string::npos) << status.output;
}

INSTANTIATE_TEST_SUITE_P(Backends, KeyRotation, ::testing::Values("sqlite", "mariadb"),
                         [](const auto& info) { return info.param; });

class MariaDbEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { testing::shutdown_shared_mariadb(); }
};
[[maybe_unused]] auto* const kMariaDbEnvironment = ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

}  // namespace
}  // namespace registrar
