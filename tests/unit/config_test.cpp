// Settings: flags, environment, .env and defaults (main/config_loader), and secrets (main/secrets).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "main/config_loader.hpp"
#include "main/secrets.hpp"
#include "support/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using namespace registrar::config;
using registrar::testing::TempDir;

LoadResult load(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  std::vector<const char*> argv{"registrar"};
  for (const auto& a : args) argv.push_back(a.c_str());
  return load_settings(static_cast<int>(argv.size()), argv.data(), env, dotenv);
}

Loaded loaded(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  auto result = load(std::move(args), env, dotenv);
  if (auto* exit = std::get_if<Exit>(&result)) {
    ADD_FAILURE() << "exited " << exit->code << ": " << exit->err << exit->out;
    return {};
  }
  return std::get<Loaded>(std::move(result));
}

Settings settings(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  return loaded(std::move(args), env, dotenv).settings;
}

Exit exited(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  auto result = load(std::move(args), env, dotenv);
  if (auto* exit = std::get_if<Exit>(&result)) return *exit;
  ADD_FAILURE() << "expected an exit";
  return {};
}

// An error exit: code 2, one line on stderr, nothing on stdout. Returns the line without "\n".
std::string usage_error(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  auto exit = exited(std::move(args), env, dotenv);
  EXPECT_EQ(exit.code, 2);
  EXPECT_EQ(exit.out, "");
  EXPECT_TRUE(exit.err.ends_with("\n"));
  return exit.err.substr(0, exit.err.find('\n'));
}

const std::vector<std::string> kFlags = {
    "listen",    "data-dir",         "database-url",     "amqp-url",
    "jwt-secret-file", "log-level",  "argon2-memory-kib", "argon2-iterations",
    "hash-concurrency", "hash-queue-limit", "http-threads", "body-limit",     "jwt-issuer",
    "jwt-audience", "access-token-ttl", "consumers"};

std::string env_of(std::string flag) {
  std::string out = "REGISTRAR_";
  for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(c));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Defaults and sources

TEST(Config, DefaultsWithNoConfiguration) {
  auto result = loaded({"serve"});
  const Settings& s = result.settings;
  EXPECT_TRUE(result.notes.empty());
  EXPECT_EQ(s.command, Command::serve);
  EXPECT_EQ(s.listen.host, "127.0.0.1");
  EXPECT_EQ(s.listen.port, 8080);
  EXPECT_EQ(s.data_dir, fs::path("./data"));
  EXPECT_EQ(s.database.kind, Database::Kind::sqlite);
  EXPECT_EQ(s.database.sqlite_path, fs::path("./data/registrar.db"));
  EXPECT_EQ(s.amqp_url, "");
  EXPECT_EQ(s.log_level, "info");
  EXPECT_EQ(s.argon2.memory_kib, 19456u);
  EXPECT_EQ(s.argon2.iterations, 2u);
  EXPECT_EQ(s.argon2.concurrency, 0u);
  EXPECT_EQ(s.argon2.queue_limit, 256u);
  EXPECT_EQ(s.http.threads, 0u);
  EXPECT_EQ(s.http.body_limit, 16384u);
  EXPECT_EQ(s.jwt.issuer, "registrar");
  EXPECT_EQ(s.jwt.audience, "registrar");
  EXPECT_EQ(s.jwt.access_ttl, std::chrono::seconds(900));
  EXPECT_EQ(s.jwt.secret, "");
  EXPECT_EQ(s.jwt.secret_source, "");
  EXPECT_EQ(s.jwt.secret_file, fs::path());
  EXPECT_EQ(s.consumers, std::vector<std::string>({"audit", "socketio"}));
}

// The same values, given three ways, land in the same fields.
void expect_all_set(const Settings& s) {
  EXPECT_EQ(s.listen.host, "0.0.0.0");
  EXPECT_EQ(s.listen.port, 9000);
  EXPECT_EQ(s.data_dir, fs::path("/var/lib/registrar"));
  EXPECT_EQ(s.database.kind, Database::Kind::mysql);
  EXPECT_EQ(s.database.host, "db");
  EXPECT_EQ(s.database.port, 3307);
  EXPECT_EQ(s.database.name, "reg");
  EXPECT_EQ(s.amqp_url, "amqps://u:p@mq/vhost");
  EXPECT_EQ(s.jwt.secret_file, fs::path("/run/secrets/jwt"));
  EXPECT_EQ(s.log_level, "debug");
  EXPECT_EQ(s.argon2.memory_kib, 65536u);
  EXPECT_EQ(s.argon2.iterations, 3u);
  EXPECT_EQ(s.argon2.concurrency, 4u);
  EXPECT_EQ(s.argon2.queue_limit, 10u);
  EXPECT_EQ(s.http.threads, 8u);
  EXPECT_EQ(s.http.body_limit, 2048u);
  EXPECT_EQ(s.jwt.issuer, "https://id.example");
  EXPECT_EQ(s.jwt.audience, "api");
  EXPECT_EQ(s.jwt.access_ttl, std::chrono::seconds(3600));
  EXPECT_EQ(s.consumers, (std::vector<std::string>{"audit", "welcome-email"}));
}

const std::vector<std::pair<std::string, std::string>> kAllValues = {
    {"listen", "0.0.0.0:9000"},
    {"data-dir", "/var/lib/registrar"},
    {"database-url", "mysql://app:pw@db:3307/reg"},
    {"amqp-url", "amqps://u:p@mq/vhost"},
    {"jwt-secret-file", "/run/secrets/jwt"},
    {"log-level", "debug"},
    {"argon2-memory-kib", "65536"},
    {"argon2-iterations", "3"},
    {"hash-concurrency", "4"},
    {"hash-queue-limit", "10"},
    {"http-threads", "8"},
    {"body-limit", "2048"},
    {"jwt-issuer", "https://id.example"},
    {"jwt-audience", "api"},
    {"access-token-ttl", "3600"},
    {"consumers", "audit, welcome-email"},
};

TEST(Config, EveryFlag) {
  ASSERT_EQ(kAllValues.size(), kFlags.size());
  std::vector<std::string> args{"serve"};
  for (const auto& [flag, value] : kAllValues) {
    args.push_back("--" + flag);
    args.push_back(value);
  }
  expect_all_set(settings(args));
}

TEST(Config, FlagsAlsoWorkBeforeTheCommandAndWithEquals) {
  auto s = settings({"--listen=0.0.0.0:1", "relay", "--log-level=warn"});
  EXPECT_EQ(s.command, Command::relay);
  EXPECT_EQ(s.listen.port, 1);
  EXPECT_EQ(s.log_level, "warn");
}

TEST(Config, EveryEnvironmentVariable) {
  Environment env;
  for (const auto& [flag, value] : kAllValues) env[env_of(flag)] = value;
  expect_all_set(settings({"serve"}, env));
}

TEST(Config, EveryDotEnvVariable) {
  DotEnv dotenv;
  for (const auto& [flag, value] : kAllValues) dotenv[env_of(flag)] = value;
  expect_all_set(settings({"serve"}, {}, dotenv));
}

TEST(Config, EnvironmentBeatsDotEnvWhichBeatsDefault) {
  Environment env{{"REGISTRAR_LISTEN", "10.0.0.1:1000"}};
  DotEnv dotenv{{"REGISTRAR_LISTEN", "10.0.0.2:2000"}, {"REGISTRAR_LOG_LEVEL", "trace"}};
  auto s = settings({"serve"}, env, dotenv);
  EXPECT_EQ(s.listen.host, "10.0.0.1");
  EXPECT_EQ(s.log_level, "trace");  // only in .env
}

TEST(Config, FlagBeatsEnvironmentAndDotEnv) {
  Environment env{{"REGISTRAR_LISTEN", "10.0.0.1:1000"}};
  DotEnv dotenv{{"REGISTRAR_LISTEN", "10.0.0.2:2000"}};
  auto s = settings({"serve", "--listen", "10.0.0.3:3000"}, env, dotenv);
  EXPECT_EQ(s.listen.host, "10.0.0.3");
  EXPECT_EQ(s.listen.port, 3000);
}

TEST(Config, ARepeatedFlagTakesItsLastValue) {
  EXPECT_EQ(settings({"serve", "--log-level", "debug", "--log-level", "error"}).log_level, "error");
}

TEST(Config, UnrelatedEnvironmentIsIgnored) {
  auto s = settings({"serve"}, {{"PATH", "/bin"}, {"REGISTRAR_UNKNOWN", "x"}});
  EXPECT_EQ(s.listen.port, 8080);
}

TEST(Config, CaptureEnvironment) {
  const char* envp[] = {"A=1", "B=x=y", "EMPTY=", "NOEQUALS", "=bad", nullptr};
  auto env = capture_environment(envp);
  EXPECT_EQ(env, (Environment{{"A", "1"}, {"B", "x=y"}, {"EMPTY", ""}}));
  EXPECT_TRUE(capture_environment(nullptr).empty());
}

// ---------------------------------------------------------------------------------------------
// Individual settings

TEST(Config, ListenForms) {
  auto s = settings({"serve", "--listen", "[::1]:8081"});
  EXPECT_EQ(s.listen.host, "::1");
  EXPECT_EQ(s.listen.port, 8081);
  s = settings({"serve", "--listen", "localhost:0"});
  EXPECT_EQ(s.listen.host, "localhost");
  EXPECT_EQ(s.listen.port, 0);
  EXPECT_EQ(settings({"serve", "--listen", "0.0.0.0:65535"}).listen.port, 65535);
}

TEST(Config, DatabaseUrlDefaultsToSqliteUnderTheDataDir) {
  auto s = settings({"serve", "--data-dir", "/srv/reg"});
  EXPECT_EQ(s.database.kind, Database::Kind::sqlite);
  EXPECT_EQ(s.database.sqlite_path, fs::path("/srv/reg/registrar.db"));
  s = settings({"serve"}, {{"REGISTRAR_DATA_DIR", "state/"}});
  EXPECT_EQ(s.database.sqlite_path, fs::path("state/registrar.db"));
}

TEST(Config, SqliteUrlTakesThePathVerbatim) {
  auto s = settings({"serve", "--database-url", "sqlite://./other/x.db"});
  EXPECT_EQ(s.database.kind, Database::Kind::sqlite);
  EXPECT_EQ(s.database.sqlite_path, fs::path("./other/x.db"));
  s = settings({"serve", "--database-url", "sqlite:///abs/x.db"});
  EXPECT_EQ(s.database.sqlite_path, fs::path("/abs/x.db"));
  s = settings({"serve", "--database-url", "SQLite://a%20b.db"});  // the scheme in any case; no decoding
  EXPECT_EQ(s.database.kind, Database::Kind::sqlite);
  EXPECT_EQ(s.database.sqlite_path, fs::path("a%20b.db"));
}

TEST(Config, MysqlUrlIsParsed) {
  auto s = settings({"migrate", "--database-url", "mysql://app:s%40cret@db.example:3307/registrar"});
  EXPECT_EQ(s.database.kind, Database::Kind::mysql);
  EXPECT_EQ(s.database.host, "db.example");
  EXPECT_EQ(s.database.port, 3307);
  EXPECT_EQ(s.database.user, "app");
  EXPECT_EQ(s.database.password, "s@cret");
  EXPECT_EQ(s.database.name, "registrar");

  s = settings({"migrate", "--database-url", "mysql://root@[::1]/reg"});
  EXPECT_EQ(s.database.host, "::1");
  EXPECT_EQ(s.database.port, 3306);
  EXPECT_EQ(s.database.password, "");
}

TEST(Config, RedactUrl) {
  EXPECT_EQ(redact_url("mysql://app:hunter2@db:3306/reg"), "mysql://app:***@db:3306/reg");
  EXPECT_EQ(redact_url("redis://:hunter2@cache"), "redis://:***@cache");
  EXPECT_EQ(redact_url("amqp://token@mq"), "amqp://***@mq");  // a lone userinfo may be a password
  EXPECT_EQ(redact_url("sqlite://./data/x.db"), "sqlite://./data/x.db");
  EXPECT_EQ(redact_url("mysql://u:p@ss:w@rd@host/db"), "mysql://u:***@host/db");  // malformed: still hidden
  EXPECT_EQ(redact_url("not a url"), "not a url");
  // Mistyped URLs are what error messages show: without a SCHEME:// the password is still hidden
  // (found by fuzz/fuzz_dotenv_config).
  EXPECT_EQ(redact_url("mysql:/app:hunter2@db/reg"), "mysql:***@db/reg");
  EXPECT_EQ(redact_url("my sql://app:hunter2@db/reg"), "my sql:***@db/reg");
  EXPECT_EQ(redact_url("x:y:hunter2@db:q//ql://u:hunter2@db/r"), "x:***@db/r");
  EXPECT_EQ(redact_url(redact_url("x:y:hunter2@db:q//ql://u:hunter2@db/r")), "x:***@db/r");
}

TEST(Config, OptionalUrlsAcceptTheirSchemesAndEmptyMeansNone) {
  auto s = settings({"serve", "--amqp-url", "AMQPS://u:pw@mq:5671", "--smtp-url", "SMTP://relay", "--mail-from", "a@b.example"});
  EXPECT_EQ(s.amqp_url, "AMQPS://u:pw@mq:5671");  // schemes in any case
  EXPECT_EQ(s.mail.smtp_url, "SMTP://relay");
  s = settings({"serve"}, {{"REGISTRAR_AMQP_URL", ""}}, {{"REGISTRAR_AMQP_URL", "amqp://x"}});
  EXPECT_EQ(s.amqp_url, "");  // set-but-empty in the environment still beats .env
}

TEST(Config, TlsToTheDatabaseDefaultsToVerifyIdentityExceptOnLoopback) {
  using Mode = Database::SslMode;
  EXPECT_EQ(settings({"serve", "--database-url", "mysql://u:p@db.example/r"}).database.ssl_mode, Mode::verify_identity);
  for (const char* host : {"127.0.0.1", "127.0.0.2", "[::1]", "localhost"})
    EXPECT_EQ(settings({"serve", "--database-url", std::string("mysql://u:p@") + host + "/r"}).database.ssl_mode,
              Mode::disabled)
        << host;
  // A CA file says TLS is wanted, also on loopback.
  auto s = settings({"serve", "--database-url", "mysql://u:p@127.0.0.1/r", "--database-ca-file", "/etc/db-ca.pem"});
  EXPECT_EQ(s.database.ssl_mode, Mode::verify_identity);
  EXPECT_EQ(s.database.ca_file, "/etc/db-ca.pem");
  EXPECT_EQ(settings({"serve", "--database-url", "mysql://u:p@db/r", "--database-ssl-mode", "VERIFY_CA"}).database.ssl_mode,
            Mode::verify_ca);
  EXPECT_EQ(settings({"serve", "--database-url", "mysql://u:p@db/r"}, {{"REGISTRAR_DATABASE_SSL_MODE", "disabled"}})
                .database.ssl_mode,
            Mode::disabled);
  EXPECT_NE(usage_error({"serve", "--database-url", "mysql://u:p@db/r", "--database-ssl-mode", "preferred"})
                .find("--database-ssl-mode"),
            std::string::npos);
  EXPECT_NE(usage_error({"serve", "--database-url", "mysql://u:p@db/r", "--database-ssl-mode", "required",
                         "--database-ca-file", "/ca.pem"})
                .find("--database-ca-file needs"),
            std::string::npos);
  EXPECT_NE(usage_error({"serve", "--database-ssl-mode", "required"}).find("mysql://"), std::string::npos);
}

TEST(Config, AmqpTlsFilesNeedAmqpsAndComeInPairs) {
  auto s = settings({"serve", "--amqp-url", "amqps://u:p@mq/", "--amqp-ca-file", "/ca.pem", "--amqp-cert-file",
                     "/c.pem", "--amqp-key-file", "/k.pem"});
  EXPECT_EQ(s.amqp.ca_file, "/ca.pem");
  EXPECT_EQ(s.amqp.cert_file, "/c.pem");
  EXPECT_EQ(s.amqp.key_file, "/k.pem");
  EXPECT_NE(usage_error({"serve", "--amqp-url", "amqp://u:p@mq/", "--amqp-ca-file", "/ca.pem"}).find("amqps://"),
            std::string::npos);
  EXPECT_NE(usage_error({"serve", "--amqp-url", "amqps://u:p@mq/", "--amqp-cert-file", "/c.pem"}).find("together"),
            std::string::npos);
}

TEST(Config, WebhookUrlsTakeHttpsAndACaFileForThem) {
  auto s = settings({"serve", "--webhook-urls", "https://hooks.example/a?t=1, http://127.0.0.1:9000/b",
                     "--webhook-ca-file", "/etc/hooks-ca.pem"});
  EXPECT_EQ(s.webhook.urls, (std::vector<std::string>{"https://hooks.example/a?t=1", "http://127.0.0.1:9000/b"}));
  EXPECT_EQ(s.webhook.ca_file, "/etc/hooks-ca.pem");
  EXPECT_EQ(settings({"serve", "--webhook-urls", "https://hooks.example/a"}).webhook.ca_file, "");  // the system's CAs
  s = settings({"serve"}, {{"REGISTRAR_WEBHOOK_URLS", "https://hooks.example/a"},
                           {"REGISTRAR_WEBHOOK_CA_FILE", "/etc/env-ca.pem"}});
  EXPECT_EQ(s.webhook.ca_file, "/etc/env-ca.pem");
  // A CA file no URL would use: a forgotten https://, as --amqp-ca-file with amqp://.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"serve", "--webhook-urls", "http://hooks.example/a", "--webhook-ca-file", "/ca.pem"},
           {"serve", "--webhook-ca-file", "/ca.pem"}}) {
    EXPECT_EQ(usage_error(args), "registrar: --webhook-ca-file needs an https:// URL in --webhook-urls");
  }
}

TEST(Config, SmtpStartTlsIsRequiredExceptForALoopbackRelay) {
  auto smtp = [](std::vector<std::string> more) {
    std::vector<std::string> args{"serve", "--mail-from", "a@b.example"};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  };
  EXPECT_EQ(settings(smtp({"--smtp-url", "smtp://relay.example"})).mail.starttls, true);
  EXPECT_EQ(settings(smtp({"--smtp-url", "smtp://127.0.0.1:2525"})).mail.starttls, false);
  EXPECT_EQ(settings(smtp({"--smtp-url", "smtp://127.0.0.1", "--smtp-ca-file", "/ca.pem"})).mail.starttls, true);
  EXPECT_EQ(settings(smtp({"--smtp-url", "smtp://relay.example", "--smtp-starttls", "false"})).mail.starttls, false);
  EXPECT_FALSE(settings(smtp({"--smtp-url", "smtps://relay.example"})).mail.starttls.has_value());
  EXPECT_NE(usage_error(smtp({"--smtp-url", "smtps://relay.example", "--smtp-starttls", "true"})).find("smtps://"),
            std::string::npos);
  EXPECT_NE(usage_error(smtp({"--smtp-url", "smtp://relay.example", "--smtp-starttls", "false", "--smtp-ca-file",
                              "/ca.pem"}))
                .find("--smtp-ca-file needs TLS"),
            std::string::npos);
  EXPECT_NE(usage_error({"serve", "--smtp-ca-file", "/ca.pem"}).find("--smtp-url"), std::string::npos);
}

TEST(Config, Consumers) {
  EXPECT_EQ(settings({"serve", "--consumers", "audit,crm , webhooks"}).consumers,
            (std::vector<std::string>{"audit", "crm", "webhooks"}));
  EXPECT_TRUE(settings({"serve", "--consumers", ""}).consumers.empty());
}

TEST(Config, WeakArgon2OnlyWhenAllowed) {
  EXPECT_EQ(usage_error({"serve", "--argon2-memory-kib", "1024"}),
            "registrar: invalid --argon2-memory-kib \"1024\" (REGISTRAR_ARGON2_MEMORY_KIB): expected a whole "
            "number from 19456 to 4194304 (lower only with REGISTRAR_ALLOW_WEAK_ARGON2=1)");
  EXPECT_NE(usage_error({"serve", "--argon2-iterations", "1"}).find("REGISTRAR_ALLOW_WEAK_ARGON2=1"),
            std::string::npos);

  auto result = loaded({"serve", "--argon2-memory-kib", "64", "--argon2-iterations", "1"},
                       {{"REGISTRAR_ALLOW_WEAK_ARGON2", "1"}});
  EXPECT_EQ(result.settings.argon2.memory_kib, 64u);
  EXPECT_EQ(result.settings.argon2.iterations, 1u);
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("OWASP"), std::string::npos);

  // Allowed but not used: no note. Below libsodium's own minimum: still refused.
  EXPECT_TRUE(loaded({"serve"}, {}, {{"REGISTRAR_ALLOW_WEAK_ARGON2", "1"}}).notes.empty());
  usage_error({"serve", "--argon2-memory-kib", "4"}, {{"REGISTRAR_ALLOW_WEAK_ARGON2", "1"}});
  EXPECT_EQ(usage_error({"serve"}, {{"REGISTRAR_ALLOW_WEAK_ARGON2", "yes"}}),
            "registrar: invalid REGISTRAR_ALLOW_WEAK_ARGON2 \"yes\" (from the environment): expected 1 or 0");
}

// Retention (issue 14): defaults, and the floor of the records that make redeliveries harmless.
TEST(Config, RetentionSettingsAndTheRedeliveryFloor) {
  auto d = settings({"serve"});
  EXPECT_EQ(d.retention.sent_events, std::chrono::seconds(604800));
  EXPECT_EQ(d.retention.sent_events_count, 0u);
  EXPECT_EQ(d.retention.processed_events, std::chrono::seconds(604800));
  EXPECT_EQ(d.retention.audit_max_bytes, 64u * 1024 * 1024);
  EXPECT_EQ(d.retention.audit_keep, 5u);

  auto s = settings({"serve", "--retain-sent-events", "0", "--retain-sent-events-count", "1000", "--retention-batch",
                     "100", "--audit-log-max-bytes", "0", "--messages-keep", "2"});
  EXPECT_EQ(s.retention.sent_events, std::chrono::seconds(0));
  EXPECT_EQ(s.retention.sent_events_count, 1000u);
  EXPECT_EQ(s.retention.batch, 100u);
  EXPECT_EQ(s.retention.audit_max_bytes, 0u);
  EXPECT_EQ(s.retention.messages_keep, 2u);
  EXPECT_EQ(usage_error({"serve", "--audit-log-max-bytes", "100"}),
            "registrar: invalid --audit-log-max-bytes \"100\" (REGISTRAR_AUDIT_LOG_MAX_BYTES): expected a whole "
            "number from 4096 to 1125899906842624");

  // Over RabbitMQ, under a day is refused (0, forever, is fine); in-process, under 60 s is a note.
  const std::string amqp = "--amqp-url=amqp://mq";
  EXPECT_NE(usage_error({"serve", amqp, "--retain-processed-events", "3600"}).find("--retain-processed-events must be 0 or at least 86400"),
            std::string::npos);
  EXPECT_NE(usage_error({"serve", amqp, "--retain-messages", "60"}).find("--retain-messages"), std::string::npos);
  EXPECT_TRUE(loaded({"serve", amqp, "--retain-processed-events", "0"}).notes.empty());
  EXPECT_TRUE(loaded({"serve", amqp, "--retain-processed-events", "86400"}).notes.empty());
  auto short_in_process = loaded({"serve", "--retain-processed-events", "2"});
  ASSERT_EQ(short_in_process.notes.size(), 1u);
  EXPECT_NE(short_in_process.notes[0].find("below 60 s"), std::string::npos);
  EXPECT_TRUE(loaded({"serve", "--retain-processed-events", "60"}).notes.empty());
}

// ---------------------------------------------------------------------------------------------
// Bad values: one line naming the flag and the variable, exit code 2

struct BadValue {
  std::string flag, value, reason;
};

TEST(Config, BadValuesNameTheFlagAndTheVariable) {
  const std::vector<BadValue> cases = {
      {"listen", "abc", "expected HOST:PORT (IPv6 as [::1]:8080)"},
      {"listen", ":8080", "expected HOST:PORT (IPv6 as [::1]:8080)"},
      {"listen", "::1:8080", "expected HOST:PORT (IPv6 as [::1]:8080)"},
      {"listen", "host:65536", "expected HOST:PORT with PORT from 0 to 65535"},
      {"listen", "host:-1", "expected HOST:PORT with PORT from 0 to 65535"},
      {"listen", "host:http", "expected HOST:PORT with PORT from 0 to 65535"},
      {"data-dir", "", "expected a directory"},
      {"database-url", "postgres://h/db", "expected sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/DB"},
      {"database-url", "sqlite://", "missing PATH; expected sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/DB"},
      {"database-url", "mysql://db.example", "missing /DB name; expected sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/DB"},
      {"database-url", "mysql:///reg", "missing host; expected sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/DB"},
      {"database-url", "mysql://h:99999/reg", "port must be from 1 to 65535"},
      {"database-url", "mysql://h/reg?ssl=1", "query parameters are not supported"},
      {"amqp-url", "redis://mq", "expected amqp[s]://[USER:PASS@]HOST[:PORT][/VHOST]"},
      {"amqp-url", "mq:5672", "expected amqp[s]://[USER:PASS@]HOST[:PORT][/VHOST]"},
      {"jwt-secret-file", "", "expected a file name"},
      {"webhook-secret-file", "", "expected a file name"},
      {"webhook-urls", "ftp://hooks.example/a", "expected comma-separated http:// or https:// URLs"},
      {"webhook-urls", "http://a.example/x,hooks.example/y", "expected comma-separated http:// or https:// URLs"},
      {"webhook-ca-file", "", "expected a file name"},
      {"log-level", "verbose", "expected trace, debug, info, warn or error"},
      {"log-failure-interval", "0", "expected a whole number from 1 to 3600"},
      {"log-failure-interval", "3601", "expected a whole number from 1 to 3600"},
      {"argon2-iterations", "65", "expected a whole number from 2 to 64"},
      {"hash-concurrency", "-1", "expected a whole number from 0 to 1024"},
      {"hash-queue-limit", "many", "expected a whole number from 0 to 1000000"},
      {"http-threads", "1.5", "expected a whole number from 0 to 1024"},
      {"body-limit", "512", "expected a whole number from 1024 to 1048576"},
      {"body-limit", "2000000", "expected a whole number from 1024 to 1048576"},
      {"jwt-issuer", "", "expected non-empty text"},
      {"jwt-audience", "", "expected non-empty text"},
      {"access-token-ttl", "59", "expected a whole number from 60 to 86400"},
      {"access-token-ttl", "86401", "expected a whole number from 60 to 86400"},
      {"consumers", "audit,Bad!", "expected comma-separated names of [a-z0-9_-]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE("--" + c.flag + " " + c.value);
    EXPECT_EQ(usage_error({"serve", "--" + c.flag, c.value}),
              "registrar: invalid --" + c.flag + " \"" + c.value + "\" (" + env_of(c.flag) + "): " + c.reason);
  }
}

TEST(Config, TheListenExampleFromTheBrief) {
  EXPECT_EQ(usage_error({"serve", "--listen", "abc"}),
            "registrar: invalid --listen \"abc\" (REGISTRAR_LISTEN): expected HOST:PORT (IPv6 as [::1]:8080)");
}

TEST(Config, BadValuesFromEnvironmentOrDotEnvSaySo) {
  EXPECT_EQ(usage_error({"serve"}, {{"REGISTRAR_LOG_LEVEL", "loud"}}),
            "registrar: invalid --log-level \"loud\" (REGISTRAR_LOG_LEVEL, from the environment): expected "
            "trace, debug, info, warn or error");
  EXPECT_EQ(usage_error({"serve"}, {}, {{"REGISTRAR_BODY_LIMIT", "1"}}),
            "registrar: invalid --body-limit \"1\" (REGISTRAR_BODY_LIMIT, from .env): expected a whole number "
            "from 1024 to 1048576");
  // A valid flag hides a bad lower layer: it is never looked at.
  EXPECT_EQ(settings({"serve", "--log-level", "warn"}, {{"REGISTRAR_LOG_LEVEL", "loud"}}).log_level, "warn");
}

TEST(Config, ErrorsNeverEchoAUrlPassword) {
  auto line = usage_error({"serve", "--database-url", "mysql://app:hunter2@/reg"});
  EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
  EXPECT_NE(line.find("mysql://app:***@/reg"), std::string::npos) << line;
  line = usage_error({"serve"}, {{"REGISTRAR_AMQP_URL", "ftp://guest:hunter2@mq"}});
  EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
  line = usage_error({"serve", "--smtp-url", "smtp://u:hunter2@relay:0"});
  EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
}

TEST(Config, ControlCharactersInValuesStayOnOneLine) {
  EXPECT_EQ(usage_error({"serve", "--log-level", "a\nb\"c"}),
            "registrar: invalid --log-level \"a\\x0ab\\\"c\" (REGISTRAR_LOG_LEVEL): expected trace, debug, info, "
            "warn or error");
}

// ---------------------------------------------------------------------------------------------
// Commands, help, version

TEST(Config, Commands) {
  EXPECT_EQ(settings({"relay"}).command, Command::relay);
  EXPECT_EQ(settings({"migrate"}).command, Command::migrate);

  auto s = settings({"consume", "audit"});
  EXPECT_EQ(s.command, Command::consume);
  EXPECT_EQ(s.consumer_name, "audit");
  EXPECT_FALSE(s.list_consumers);

  s = settings({"consume", "--list"});
  EXPECT_EQ(s.command, Command::consume);
  EXPECT_TRUE(s.list_consumers);
  EXPECT_EQ(s.consumer_name, "");
}

TEST(Config, SocketIoEchoHasTheProtocolSuitesDefaultsAndItsOwnFlags) {
  auto s = settings({"socketio-echo"});
  EXPECT_EQ(s.command, Command::socketio_echo);
  EXPECT_EQ(s.listen.host, "127.0.0.1");
  EXPECT_EQ(s.listen.port, 3000);  // where the suites look for their server
  EXPECT_EQ(s.socketio_echo.ping_interval, std::chrono::milliseconds(300));
  EXPECT_EQ(s.socketio_echo.ping_timeout, std::chrono::milliseconds(200));
  EXPECT_EQ(s.socketio_echo.max_payload, 1'000'000u);

  s = settings({"socketio-echo", "--listen", "127.0.0.1:0", "--ping-interval", "25000", "--ping-timeout", "20000",
                "--max-payload", "2048", "--upgrade-timeout", "500"});
  EXPECT_EQ(s.listen.port, 0);
  EXPECT_EQ(s.socketio_echo.ping_interval, std::chrono::milliseconds(25000));
  EXPECT_EQ(s.socketio_echo.ping_timeout, std::chrono::milliseconds(20000));
  EXPECT_EQ(s.socketio_echo.max_payload, 2048u);
  EXPECT_EQ(s.socketio_echo.upgrade_timeout, std::chrono::milliseconds(500));
  EXPECT_EQ(settings({"socketio-echo"}, {{"REGISTRAR_LISTEN", "127.0.0.1:4000"}}).listen.port, 4000);

  // serve's settings are not its own; bad values are refused.
  EXPECT_EQ(exited({"socketio-echo", "--database-url", "sqlite://x.db"}).code, 2);
  EXPECT_EQ(exited({"socketio-echo", "--ping-interval", "0"}).code, 2);
  EXPECT_EQ(exited({"socketio-echo", "--max-payload", "10"}).code, 2);
}

TEST(Config, TlsCertificateAndKeyComeTogether) {
  EXPECT_EQ(settings({"serve"}).http.tls_cert, fs::path());
  EXPECT_EQ(settings({"serve"}).http.tls_key, fs::path());
  auto s = settings({"serve", "--tls-cert", "/etc/registrar/cert.pem", "--tls-key", "/etc/registrar/key.pem"});
  EXPECT_EQ(s.http.tls_cert, fs::path("/etc/registrar/cert.pem"));
  EXPECT_EQ(s.http.tls_key, fs::path("/etc/registrar/key.pem"));
  s = settings({"serve"}, {{"REGISTRAR_TLS_CERT", "c.pem"}, {"REGISTRAR_TLS_KEY", "k.pem"}});
  EXPECT_EQ(s.http.tls_cert, fs::path("c.pem"));
  EXPECT_EQ(s.http.tls_key, fs::path("k.pem"));
  EXPECT_EQ(settings({"socketio-echo", "--tls-cert", "c.pem", "--tls-key", "k.pem"}).http.tls_key, fs::path("k.pem"));

  EXPECT_EQ(usage_error({"serve", "--tls-cert", "c.pem"}),
            "registrar: --tls-cert needs --tls-key (REGISTRAR_TLS_KEY): the certificate's private key");
  EXPECT_EQ(usage_error({"serve"}, {{"REGISTRAR_TLS_KEY", "k.pem"}}),
            "registrar: --tls-key needs --tls-cert (REGISTRAR_TLS_CERT): the certificate it belongs to");
  EXPECT_EQ(usage_error({"serve", "--tls-cert", "", "--tls-key", "k.pem"}),
            "registrar: invalid --tls-cert \"\" (REGISTRAR_TLS_CERT): expected a file name");
}

TEST(Config, CommandErrors) {
  EXPECT_EQ(usage_error({}),
            "registrar: a command is required: serve, worker, relay, consume NAME, migrate, keys or socketio-echo (see --help)");
  EXPECT_EQ(usage_error({"consume"}), "registrar: consume needs exactly one of NAME or --list");
  EXPECT_EQ(usage_error({"consume", "audit", "--list"}), "registrar: consume needs exactly one of NAME or --list");
  EXPECT_EQ(usage_error({"consume", "Audit!"}), "registrar: invalid consumer name \"Audit!\": expected [a-z0-9_-]");

  for (auto args : std::vector<std::vector<std::string>>{{"launch"}, {"serve", "--bogus"}, {"serve", "--listen"}}) {
    auto exit = exited(args);
    EXPECT_EQ(exit.code, 2);
    EXPECT_TRUE(exit.err.starts_with("registrar: ")) << exit.err;
    EXPECT_NE(exit.err.find("registrar --help"), std::string::npos) << exit.err;
  }
}

TEST(Config, SecretsHaveNoFlags) {
  auto exit = exited({"serve", "--jwt-secret", "x"});
  EXPECT_EQ(exit.code, 2);
  exit = exited({"serve", "--webhook-secret", "x"});
  EXPECT_EQ(exit.code, 2);
}

void expect_lists_every_setting(const std::string& help) {
  for (const auto& flag : kFlags) {
    EXPECT_NE(help.find("--" + flag), std::string::npos) << flag;
    EXPECT_NE(help.find("[env " + env_of(flag) + "]"), std::string::npos) << flag;
  }
  for (auto text : {"[default 127.0.0.1:8080]", "[default ./data]", "[default sqlite://<data-dir>/registrar.db]",
                    "[default 19456]", "[default audit,socketio]", "REGISTRAR_ADMIN_TOKEN ", "REGISTRAR_JWT_SECRET ", "REGISTRAR_WEBHOOK_SECRET ",
                    "REGISTRAR_ALLOW_WEAK_ARGON2"})
    EXPECT_NE(help.find(text), std::string::npos) << text;
}

TEST(Config, HelpListsEverySettingWithItsVariableAndDefault) {
  auto exit = exited({"--help"});
  EXPECT_EQ(exit.code, 0);
  EXPECT_EQ(exit.err, "");
  expect_lists_every_setting(exit.out);
  for (auto command : {"serve", "relay", "consume", "migrate"})
    EXPECT_NE(exit.out.find(command), std::string::npos) << command;

  exit = exited({"serve", "--help"});
  EXPECT_EQ(exit.code, 0);
  EXPECT_NE(exit.out.find("registrar serve"), std::string::npos) << exit.out;
  expect_lists_every_setting(exit.out);

  exit = exited({"consume", "--help"});
  EXPECT_NE(exit.out.find("--list"), std::string::npos);
  EXPECT_NE(exit.out.find("NAME"), std::string::npos);
}

TEST(Config, HelpIsNotSpoiledByBadSettings) {
  EXPECT_EQ(exited({"serve", "--help"}, {{"REGISTRAR_LISTEN", "junk"}}).code, 0);
}

TEST(Config, Version) {
  auto exit = exited({"--version"});
  EXPECT_EQ(exit.code, 0);
  EXPECT_EQ(exit.out, "registrar 0.1.0\n");
}

// ---------------------------------------------------------------------------------------------
// Secrets

// Writes `content` to the file `name` in `dir` with permissions `mode`; returns its path.
fs::path write_file(const TempDir& dir, const std::string& name, const std::string& content,
                    fs::perms mode = fs::perms::owner_read | fs::perms::owner_write) {
  auto file = dir.path() / name;
  std::ofstream(file, std::ios::binary) << content;
  fs::permissions(file, mode, fs::perm_options::replace);
  return file;
}

const std::string kSecret(40, 'k');
const std::string kOtherSecret(40, 'o');

// Loads, then resolves secrets; fails the test if either step exits.
Loaded resolved(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  auto result = loaded(std::move(args), env, dotenv);
  if (auto exit = resolve_secrets(result.settings, result.notes)) ADD_FAILURE() << exit->err;
  return result;
}

// Loads, then expects resolving secrets to fail with code 2; returns the message line.
std::string secret_error(std::vector<std::string> args, const Environment& env = {}, const DotEnv& dotenv = {}) {
  auto result = loaded(std::move(args), env, dotenv);
  auto exit = resolve_secrets(result.settings, result.notes);
  if (!exit) {
    ADD_FAILURE() << "expected an error";
    return {};
  }
  EXPECT_EQ(exit->code, 2);
  return exit->err.substr(0, exit->err.find('\n'));
}

TEST(Secrets, JwtSecretFromEnvironmentOrDotEnv) {
  TempDir dir;
  auto data = dir.path().string();
  auto s = resolved({"serve", "--data-dir", data}, {{"REGISTRAR_JWT_SECRET", kSecret}}).settings;
  EXPECT_EQ(s.jwt.secret, kSecret);
  EXPECT_EQ(s.jwt.secret_source, "env");

  s = resolved({"serve", "--data-dir", data}, {{"REGISTRAR_JWT_SECRET", kSecret}},
               {{"REGISTRAR_JWT_SECRET", kOtherSecret}})
          .settings;
  EXPECT_EQ(s.jwt.secret, kSecret);  // environment beats .env

  s = resolved({"serve", "--data-dir", data}, {}, {{"REGISTRAR_JWT_SECRET", kOtherSecret}}).settings;
  EXPECT_EQ(s.jwt.secret, kOtherSecret);
  EXPECT_EQ(s.jwt.secret_source, ".env");
  EXPECT_FALSE(fs::exists(dir.path() / "jwt-secret"));  // nothing generated
}

TEST(Secrets, JwtSecretFromAFileIsTrimmed) {
  TempDir dir;
  auto file = write_file(dir, "jwt", kSecret + " \n\n");
  auto s = resolved({"serve", "--jwt-secret-file", file.string()}).settings;
  EXPECT_EQ(s.jwt.secret, kSecret);
  EXPECT_EQ(s.jwt.secret_source, "file " + file.string());

  s = resolved({"serve"}, {{"REGISTRAR_JWT_SECRET_FILE", file.string()}}).settings;
  EXPECT_EQ(s.jwt.secret, kSecret);
}

TEST(Secrets, TheHigherLayerWinsBetweenInlineSecretAndFile) {
  TempDir dir;
  auto file = write_file(dir, "jwt", kSecret);
  // A flag beats an inline secret in the environment or .env...
  auto s = resolved({"serve", "--jwt-secret-file", file.string()}, {{"REGISTRAR_JWT_SECRET", kOtherSecret}}).settings;
  EXPECT_EQ(s.jwt.secret, kSecret);
  // ...an inline secret in the environment beats a file named in .env...
  s = resolved({"serve"}, {{"REGISTRAR_JWT_SECRET", kOtherSecret}}, {{"REGISTRAR_JWT_SECRET_FILE", file.string()}})
          .settings;
  EXPECT_EQ(s.jwt.secret, kOtherSecret);
  EXPECT_EQ(s.jwt.secret_source, "env");
  // ...and both in the same layer is ambiguous.
  EXPECT_EQ(usage_error({"serve"}, {{"REGISTRAR_JWT_SECRET", kSecret}, {"REGISTRAR_JWT_SECRET_FILE", file.string()}}),
            "registrar: both REGISTRAR_JWT_SECRET and REGISTRAR_JWT_SECRET_FILE are set in the environment; set "
            "only one");
}

TEST(Secrets, JwtSecretGeneratedIntoTheDataDirThenReused) {
  TempDir dir;
  auto data = dir.path() / "nested" / "data";
  auto first = resolved({"serve", "--data-dir", data.string()});
  auto file = data / "jwt-secret";
  EXPECT_EQ(first.settings.jwt.secret_source, "generated " + file.string());
  EXPECT_TRUE(first.notes.empty());

  const auto& secret = first.settings.jwt.secret;
  EXPECT_EQ(secret.size(), 43u);  // 32 bytes, base64url without padding
  EXPECT_EQ(secret.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);

  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(data.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  for (const auto& entry : fs::directory_iterator(data))  // no temp file left behind
    EXPECT_EQ(entry.path().filename(), "jwt-secret");

  auto second = resolved({"serve", "--data-dir", data.string()});
  EXPECT_EQ(second.settings.jwt.secret, secret);
  EXPECT_EQ(second.settings.jwt.secret_source, "data-dir " + file.string());
  EXPECT_TRUE(second.notes.empty());

  auto third = resolved({"serve", "--data-dir", (dir.path() / "elsewhere").string()});
  EXPECT_NE(third.settings.jwt.secret, secret);  // random, not derived
}

TEST(Secrets, ShortSecretsAreRejectedWithoutEchoingThem) {
  TempDir dir;
  auto line = secret_error({"serve"}, {{"REGISTRAR_JWT_SECRET", "tooshort-secret"}});
  EXPECT_TRUE(line.starts_with("registrar: REGISTRAR_JWT_SECRET (from env) is 15 bytes; at least 32 are required"))
      << line;
  EXPECT_EQ(line.find("tooshort-secret"), std::string::npos);

  auto file = write_file(dir, "short", "abc\n");
  line = secret_error({"serve", "--jwt-secret-file", file.string()});
  EXPECT_TRUE(line.starts_with("registrar: --jwt-secret-file " + file.string() +
                               " (REGISTRAR_JWT_SECRET_FILE) is 3 bytes; at least 32"))
      << line;

  write_file(dir, "jwt-secret", "abc\n");  // a short key in the data dir is no better
  line = secret_error({"serve", "--data-dir", dir.path().string()});
  EXPECT_NE(line.find("is 3 bytes"), std::string::npos) << line;

}

TEST(Secrets, MissingSecretFileIsAnError) {
  TempDir dir;
  auto missing = (dir.path() / "absent").string();
  EXPECT_EQ(secret_error({"serve", "--jwt-secret-file", missing}),
            "registrar: cannot read --jwt-secret-file " + missing +
                " (REGISTRAR_JWT_SECRET_FILE): No such file or directory");
}

TEST(Secrets, GroupOrWorldReadableFileGetsANote) {
  TempDir dir;
  auto file = write_file(dir, "jwt", kSecret, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
  auto result = resolved({"serve", "--jwt-secret-file", file.string()});
  EXPECT_EQ(result.settings.jwt.secret, kSecret);
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("readable by group/others (mode 0640)"), std::string::npos) << result.notes[0];
  EXPECT_EQ(result.notes[0].find(kSecret), std::string::npos);
}

TEST(Secrets, WebhookSecretFromTheEnvironmentOrItsFile) {
  TempDir dir;
  const std::string whsec = "whsec_" + std::string(40, 'A');
  // serve and consume read it; no other command does.
  auto s = resolved({"consume", "webhook"}, {{"REGISTRAR_WEBHOOK_SECRET", whsec}}).settings;
  EXPECT_EQ(s.webhook.secret, whsec);

  auto file = write_file(dir, "webhook", whsec + "\n");
  for (const char* command : {"serve", "consume"}) {
    std::vector<std::string> args{command, "--webhook-secret-file", file.string()};
    if (std::string(command) == "consume") args.push_back("webhook");
    auto result = resolved(args, {{"REGISTRAR_JWT_SECRET", kSecret}});
    EXPECT_EQ(result.settings.webhook.secret, whsec) << command;
    EXPECT_TRUE(result.notes.empty()) << command;
  }
  s = resolved({"relay", "--webhook-secret-file", (dir.path() / "absent").string()}).settings;
  EXPECT_EQ(s.webhook.secret, "");  // not needed, not read

  // The same reader as the JWT key's: its checks and its warning.
  auto missing = (dir.path() / "absent").string();
  EXPECT_EQ(secret_error({"consume", "webhook", "--webhook-secret-file", missing}),
            "registrar: cannot read --webhook-secret-file " + missing +
                " (REGISTRAR_WEBHOOK_SECRET_FILE): No such file or directory");
  auto readable = write_file(dir, "webhook-0644", whsec, fs::perms::owner_read | fs::perms::owner_write |
                                                              fs::perms::group_read | fs::perms::others_read);
  auto result = resolved({"consume", "webhook", "--webhook-secret-file", readable.string()});
  EXPECT_EQ(result.settings.webhook.secret, whsec);
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("readable by group/others (mode 0644)"), std::string::npos) << result.notes[0];
  EXPECT_EQ(result.notes[0].find(whsec), std::string::npos);
}

TEST(Secrets, TheSecretFileReaderRefusesWhatCannotBeAKeyFile) {
  TempDir dir;
  std::string secret = "unchanged";
  std::vector<std::string> notes;

  auto exit = read_secret_file(dir.path(), "the test file", secret, notes);  // a directory
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->code, 2);
  EXPECT_EQ(exit->err, "registrar: cannot read the test file: not a regular file\n");

  auto big = write_file(dir, "big", std::string(kMaxSecretFileBytes + 1, 'x'));
  exit = read_secret_file(big, "the test file", secret, notes);
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->err, "registrar: the test file is too large to be a key\n");
  EXPECT_EQ(secret, "unchanged");

  auto largest = write_file(dir, "largest", std::string(kMaxSecretFileBytes - 2, 'x') + " \n");
  EXPECT_FALSE(read_secret_file(largest, "the test file", secret, notes));
  EXPECT_EQ(secret, std::string(kMaxSecretFileBytes - 2, 'x'));  // trailing whitespace trimmed
  EXPECT_TRUE(notes.empty());
}

}  // namespace

namespace {

TEST(Config, TrustedProxiesAreACidrList) {
  EXPECT_TRUE(settings({"serve"}).http.trusted_proxies.empty()) << "none by default";
  auto s = settings({"serve", "--trusted-proxies", "10.0.0.0/8, ::1"});
  ASSERT_EQ(s.http.trusted_proxies.networks().size(), 2u);
  EXPECT_EQ(s.http.trusted_proxies.networks()[0].to_string(), "10.0.0.0/8");
  EXPECT_EQ(s.http.trusted_proxies.networks()[1].to_string(), "::1/128");
  EXPECT_EQ(settings({"serve"}, {{"REGISTRAR_TRUSTED_PROXIES", "192.168.0.0/16"}}).http.trusted_proxies.networks().size(), 1u);
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/40", "proxy.example", "10.0.0.0/8,,"}) {
    auto line = usage_error({"serve", "--trusted-proxies", bad});
    EXPECT_NE(line.find("--trusted-proxies"), std::string::npos) << line;
    EXPECT_NE(line.find("REGISTRAR_TRUSTED_PROXIES"), std::string::npos) << line;
  }
}

TEST(Config, LogFailureIntervalIsInSeconds) {
  EXPECT_EQ(settings({"serve"}).log_failure_interval, std::chrono::seconds(5));
  EXPECT_EQ(settings({"serve", "--log-failure-interval", "1"}).log_failure_interval, std::chrono::seconds(1));
  EXPECT_EQ(settings({"relay"}, {{"REGISTRAR_LOG_FAILURE_INTERVAL", "60"}}).log_failure_interval, std::chrono::seconds(60));
}

}  // namespace

TEST(Config, TheNodeServicesPortVariableSetsThePortUnlessListenIsGiven) {
  auto l = loaded({"serve"}, Environment{{"PORT", "3000"}});
  EXPECT_EQ(l.settings.listen.port, 3000);
  EXPECT_EQ(l.settings.listen.host, "127.0.0.1");
  EXPECT_EQ(settings({"serve"}, {}, DotEnv{{"PORT", "3001"}}).listen.port, 3001);
  EXPECT_EQ(settings({"serve"}, Environment{{"PORT", "3000"}, {"REGISTRAR_LISTEN", "127.0.0.1:4000"}}).listen.port, 4000);
  EXPECT_EQ(settings({"serve", "--listen", "127.0.0.1:5000"}, Environment{{"PORT", "3000"}}).listen.port, 5000);
  EXPECT_NE(usage_error({"serve"}, Environment{{"PORT", "http"}}).find("PORT"), std::string::npos);
  EXPECT_NE(usage_error({"serve"}, Environment{{"PORT", "70000"}}).find("1 to 65535"), std::string::npos);
}

TEST(Config, PortEncryptIsAnsweredWithANoteThatEncryptionIsBuiltIn) {
  auto l = loaded({"serve"}, Environment{{"PORT_ENCRYPT", "3002"}});
  bool noted = false;
  for (const auto& n : l.notes) noted = noted || n.find("PORT_ENCRYPT") != std::string::npos;
  EXPECT_TRUE(noted);
}

TEST(Config, JobSettings) {
  auto s = settings({"worker", "--bull-prefix", "q", "--bull-queue", "Other", "--job-concurrency", "3",
                     "--job-stalled-interval", "5", "--job-lock-duration", "4", "--job-attempts", "2", "--worker-in-serve",
                     "false"});
  EXPECT_EQ(s.command, registrar::config::Command::worker);
  EXPECT_EQ(s.jobs.bull_prefix, "q");
  EXPECT_EQ(s.jobs.bull_queue, "Other");
  EXPECT_EQ(s.jobs.concurrency, 3u);
  EXPECT_EQ(s.jobs.stalled_interval, std::chrono::seconds(5));
  EXPECT_EQ(s.jobs.lock_duration, std::chrono::seconds(4));
  EXPECT_EQ(s.jobs.attempts, 2);
  EXPECT_FALSE(s.jobs.worker_in_serve);
  EXPECT_NE(usage_error({"serve", "--job-lock-duration", "1"}).find("2 to 3600"), std::string::npos);
}

TEST(Config, JobConcurrencyDefaultsToSeveralJobsPerCoreAndANumberIsTakenAsIs) {
  registrar::config::Jobs jobs;
  EXPECT_EQ(jobs.effective_concurrency(2), 16u);
  EXPECT_EQ(jobs.effective_concurrency(1), 8u);
  EXPECT_EQ(jobs.effective_concurrency(32), 64u) << "capped";
  jobs.concurrency = 3;
  EXPECT_EQ(jobs.effective_concurrency(2), 3u);
}

// ---------------------------------------------------------------------------------------------
// Verification codes, Redis and the SMS webhook (issue 12)

namespace {

TEST(Config, CodeSettingsHaveTheIssueDefaults) {
  const auto s = settings({"serve"});
  EXPECT_EQ(s.redis_url, "");
  EXPECT_EQ(s.redis_key_prefix, "registrar:");
  EXPECT_EQ(s.codes.ttl, std::chrono::seconds(600));
  EXPECT_EQ(s.codes.max_wrong_tries, 5u);
  EXPECT_EQ(s.codes.resend_cooldown, std::chrono::seconds(60));
  EXPECT_EQ(s.codes.hourly_cap, 5u);
  EXPECT_EQ(s.codes.layout, registrar::config::Codes::Layout::registrar);
  EXPECT_FALSE(s.jwt.accept_foreign_tokens);
  EXPECT_EQ(s.sms.webhook_url, "");
  EXPECT_EQ(s.sms.webhook_timeout, std::chrono::seconds(10));
}

TEST(Config, CodeRedisAndSmsSettings) {
  const auto s = settings({"serve", "--redis-url", "rediss://:pw@cache:6380/2", "--redis-key-prefix", "reg:",
                           "--code-ttl", "300", "--code-max-tries", "3", "--code-cooldown", "0", "--code-hourly-cap",
                           "10", "--code-layout", "node", "--accept-foreign-tokens", "true", "--foreign-token-issuer",
                           "create-user", "--foreign-token-audience", "", "--sms-webhook-url",
                           "https://sms.example/send", "--sms-webhook-ca-file", "/etc/ca.pem", "--sms-webhook-timeout",
                           "5"});
  EXPECT_EQ(s.redis_url, "rediss://:pw@cache:6380/2");
  EXPECT_EQ(s.redis_key_prefix, "reg:");
  EXPECT_EQ(s.codes.ttl, std::chrono::seconds(300));
  EXPECT_EQ(s.codes.max_wrong_tries, 3u);
  EXPECT_EQ(s.codes.resend_cooldown, std::chrono::seconds(0));
  EXPECT_EQ(s.codes.hourly_cap, 10u);
  EXPECT_EQ(s.codes.layout, registrar::config::Codes::Layout::node);
  EXPECT_TRUE(s.jwt.accept_foreign_tokens);
  EXPECT_EQ(s.jwt.foreign_issuer, "create-user");
  EXPECT_EQ(s.jwt.foreign_audience, "");
  EXPECT_EQ(s.sms.webhook_url, "https://sms.example/send");
  EXPECT_EQ(s.sms.webhook_ca_file, "/etc/ca.pem");
  EXPECT_EQ(s.sms.webhook_timeout, std::chrono::seconds(5));
  // The same from the environment.
  const auto e = settings({"serve"}, {{"REGISTRAR_REDIS_URL", "redis://cache"}, {"REGISTRAR_CODE_TTL", "120"}});
  EXPECT_EQ(e.redis_url, "redis://cache");
  EXPECT_EQ(e.codes.ttl, std::chrono::seconds(120));
}

TEST(Config, BadCodeRedisAndSmsSettingsNameTheFlag) {
  EXPECT_NE(usage_error({"serve", "--redis-url", "http://cache"}).find("--redis-url"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--code-ttl", "5"}).find("--code-ttl"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--code-max-tries", "0"}).find("--code-max-tries"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--code-layout", "plain"}).find("expected registrar or node"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--sms-webhook-url", "smtp://x"}).find("--sms-webhook-url"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--code-layout", "node"}).find("needs --redis-url"), std::string::npos);
  const auto redacted = usage_error({"serve", "--redis-url", "redis://:hunter2@"});
  EXPECT_EQ(redacted.find("hunter2"), std::string::npos) << redacted;
}

TEST(Secrets, SmsWebhookSecretFromTheEnvironmentOrItsFile) {
  auto s = settings({"serve"}, {{"REGISTRAR_SMS_WEBHOOK_SECRET", "bearer-1"}});
  EXPECT_EQ(s.sms.webhook_secret, "bearer-1");
  registrar::testing::TempDir dir;
  const auto file = dir.path() / "sms-secret";
  std::ofstream(file) << "bearer-2\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  s = settings({"serve", "--sms-webhook-secret-file", file.string(), "--data-dir", dir.path().string()});
  std::vector<std::string> notes;
  ASSERT_FALSE(registrar::config::resolve_sms_webhook_secret(s, notes).has_value());
  EXPECT_EQ(s.sms.webhook_secret, "bearer-2");
  EXPECT_NE(usage_error({"serve", "--sms-webhook-secret", "x"}).size(), 0u);  // secrets have no flags
}

TEST(Secrets, AdminTokenFromTheEnvironmentOrItsFileAtLeast32Bytes) {
  const std::string token(40, 'a');
  auto s = settings({"serve"}, {{"REGISTRAR_ADMIN_TOKEN", token}});
  std::vector<std::string> notes;
  ASSERT_FALSE(registrar::config::resolve_admin_token(s, notes).has_value());
  EXPECT_EQ(s.admin_token, token);

  registrar::testing::TempDir dir;
  const auto file = dir.path() / "admin-token";
  std::ofstream(file) << std::string(33, 'b') << "\n";
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  s = settings({"serve", "--admin-token-file", file.string(), "--data-dir", dir.path().string()});
  ASSERT_FALSE(registrar::config::resolve_admin_token(s, notes).has_value());
  EXPECT_EQ(s.admin_token, std::string(33, 'b'));  // the newline trimmed

  s = settings({"serve"}, {{"REGISTRAR_ADMIN_TOKEN", "short"}});
  auto exit = registrar::config::resolve_admin_token(s, notes);
  ASSERT_TRUE(exit.has_value());
  EXPECT_EQ(exit->code, 2);
  EXPECT_NE(exit->err.find("REGISTRAR_ADMIN_TOKEN is 5 bytes"), std::string::npos) << exit->err;
  EXPECT_EQ(exit->err.find("short"), std::string::npos) << "never quotes the secret";

  s = settings({"serve"});
  ASSERT_FALSE(registrar::config::resolve_admin_token(s, notes).has_value());
  EXPECT_TRUE(s.admin_token.empty());  // none: no admins
  EXPECT_NE(usage_error({"serve", "--admin-token", "x"}).size(), 0u);  // secrets have no flags
}

TEST(Config, SocketIoPathAndCorsOrigins) {
  auto s = settings({"serve"});
  EXPECT_EQ(s.socketio.path, "/socket.io/");
  EXPECT_TRUE(s.socketio.cors_origins.empty());
  s = settings({"serve", "--socketio-path", "/rt", "--socketio-cors-origins", "https://app.example.com, http://localhost:3000"});
  EXPECT_EQ(s.socketio.path, "/rt/");
  EXPECT_EQ(s.socketio.cors_origins, (std::vector<std::string>{"https://app.example.com", "http://localhost:3000"}));
  s = settings({"serve"}, {{"REGISTRAR_SOCKETIO_PATH", "/live/socket/"}});
  EXPECT_EQ(s.socketio.path, "/live/socket/");
  for (const char* bad : {"", "/", "socket.io", "/a b", "/x?y", "/%2e"})
    EXPECT_NE(usage_error({"serve", "--socketio-path", bad}).find("--socketio-path"), std::string::npos) << bad;
  for (const char* bad : {"*", "app.example.com", "https://app.example.com/", "https://app.example.com/x", "ftp://h",
                          "https://App.example.com", "https://u@h"})
    EXPECT_NE(usage_error({"serve", "--socketio-cors-origins", bad}).find("--socketio-cors-origins"), std::string::npos) << bad;
}

}  // namespace

namespace {

// Client mode (--notify-url): off by default; the URL, path, CA file and queue limit from flags or
// the environment; the token from the environment only (a secret); bad values are usage errors.
TEST(Config, NotifySettings) {
  auto s = settings({"serve"});
  EXPECT_EQ(s.notify.url, "");
  EXPECT_EQ(s.notify.path, "/socket.io/");
  EXPECT_EQ(s.notify.queue_limit, 1000u);
  EXPECT_EQ(s.notify.token, "");
  s = settings({"worker", "--notify-url", "http://127.0.0.1:3101", "--notify-path", "/sio", "--notify-ca-file", "/etc/ca.pem",
                "--notify-queue-limit", "5"},
               {{"REGISTRAR_NOTIFY_TOKEN", "t0k"}});
  EXPECT_EQ(s.notify.url, "http://127.0.0.1:3101");
  EXPECT_EQ(s.notify.path, "/sio/");
  EXPECT_EQ(s.notify.ca_file, "/etc/ca.pem");
  EXPECT_EQ(s.notify.queue_limit, 5u);
  EXPECT_EQ(s.notify.token, "t0k");
  EXPECT_EQ(settings({"serve"}, {{"REGISTRAR_NOTIFY_URL", "wss://notify.example/users"}}).notify.url, "wss://notify.example/users");

  EXPECT_EQ(usage_error({"serve", "--notify-url", "ftp://h"}),
            "registrar: invalid --notify-url \"ftp://h\" (REGISTRAR_NOTIFY_URL): expected http[s]://HOST[:PORT][/NAMESPACE] "
            "or ws[s]://…");
  EXPECT_EQ(usage_error({"serve"}, {{"REGISTRAR_NOTIFY_URL", "http://u:secret@h"}}),
            "registrar: invalid --notify-url \"http://u:***@h\" (REGISTRAR_NOTIFY_URL, from the environment): "
            "user:password@ is not supported (a token goes in REGISTRAR_NOTIFY_TOKEN)");
  EXPECT_NE(usage_error({"serve", "--notify-queue-limit", "0"}).find("--notify-queue-limit"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--notify-path", "x"}).find("--notify-path"), std::string::npos);
  EXPECT_NE(usage_error({"serve", "--notify-token", "x"}).size(), 0u);  // secrets have no flags
}

TEST(Config, PortMessagesUsersIsTheNotificationServerOnThisHostUnlessNotifyUrlIsSet) {
  auto result = loaded({"worker"}, {{"PORT_MESSAGES_USERS", "3101"}});
  EXPECT_EQ(result.settings.notify.url, "http://127.0.0.1:3101");
  ASSERT_EQ(result.notes.size(), 1u);
  EXPECT_NE(result.notes[0].find("PORT_MESSAGES_USERS"), std::string::npos);
  auto s = settings({"serve", "--notify-url", "http://notify.internal:4000"}, {{"PORT_MESSAGES_USERS", "3101"}});
  EXPECT_EQ(s.notify.url, "http://notify.internal:4000");
  EXPECT_TRUE(settings({"migrate"}, {{"PORT_MESSAGES_USERS", "3101"}}).notify.url.empty());
  EXPECT_NE(usage_error({"serve"}, {{"PORT_MESSAGES_USERS", "x"}}).find("invalid PORT_MESSAGES_USERS"), std::string::npos);
}

}  // namespace
