// TLS to MySQL/MariaDB (--database-ssl-mode) against real servers: a private MariaDB with a
// certificate of the test CA and require_secure_transport=ON, and a plain one (no TLS at all).
// Certificates from scripts/make-test-certs.sh (tests/support/certs.hpp).
//   * verify-identity, verify-ca and required connect over TLS (the session has a cipher) and run
//     the adapter's statements.
//   * Refused, with the reason (libmariadb error 2026 "TLS/SSL error: …"), never in plaintext: another CA, no
//     CA file (the system's CAs do not know the test CA), an address the certificate does not
//     name (verify-identity; verify-ca accepts it), a server that offers no TLS (every mode).
#include <gtest/gtest.h>
#include <mysql.h>

#include <memory>
#include <span>
#include <string>

#include "adapters/mysql/connection.hpp"
#include "adapters/mysql/migrations.hpp"
#include "adapters/mysql/pool.hpp"
#include "ports/errors.hpp"
#include "support/certs.hpp"
#include "support/mariadb_server.hpp"

namespace registrar {
namespace {

using adapters::mysql::Connection;
using adapters::mysql::MysqlOptions;
using adapters::mysql::SslMode;

struct TlsServer {
  testing::TestCertificates certs;
  std::unique_ptr<testing::MariaDbServer> server;
};

TlsServer* tls_server() {
  static std::unique_ptr<TlsServer> shared = [] {
    if (!testing::MariaDbServer::available()) return std::unique_ptr<TlsServer>();
    auto t = std::make_unique<TlsServer>();
    t->server = std::make_unique<testing::MariaDbServer>(
        "registrar", std::vector<std::string>{"--ssl-cert=" + t->certs.server_cert(), "--ssl-key=" + t->certs.server_key(),
                                              "--ssl-ca=" + t->certs.ca(), "--require-secure-transport=ON"});
    return t;
  }();
  return shared.get();
}

class MariaDbEnvironment final : public ::testing::Environment {
 public:
  void TearDown() override { testing::shutdown_shared_mariadb(); }
};
[[maybe_unused]] auto* const kMariaDbEnvironment = ::testing::AddGlobalTestEnvironment(new MariaDbEnvironment);

class MysqlTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tls_ = tls_server();
    if (tls_ == nullptr) GTEST_SKIP() << "mariadb-server is not installed";
  }

  MysqlOptions options(const testing::MariaDbServer& server, SslMode mode, std::string ca_file) const {
    MysqlOptions o;
    o.host = server.host();
    o.port = server.port();
    o.user = server.user();
    o.password = server.password();
    o.database = server.database();
    o.ssl_mode = mode;
    o.ca_file = std::move(ca_file);
    return o;
  }
  MysqlOptions options(SslMode mode) const { return options(*tls_->server, mode, tls_->certs.ca()); }

  // The message of the BackendUnavailable that connecting with `o` throws.
  static std::string refusal(const MysqlOptions& o) {
    try {
      Connection c(o);
    } catch (const ports::BackendUnavailable& e) {
      return e.what();
    }
    return "connected";
  }

  static bool encrypted(Connection& c) { return mysql_get_ssl_cipher(c.handle()) != nullptr; }

  // libmariadb's refusal of the server's certificate (CR_SSL_CONNECTION_ERROR) with OpenSSL's
  // reason. MariaDB sends its CA with its certificate, so a chain that leads to no trusted CA is
  // named by its self-signed root; without the root it would be "no issuer".
  static bool untrusted_chain(const std::string& why) {
    return why.find("error 2026: TLS/SSL error: ") != std::string::npos &&
           (why.find("self-signed certificate in certificate chain") != std::string::npos ||
            why.find("unable to get local issuer certificate") != std::string::npos);
  }

  TlsServer* tls_ = nullptr;
};

TEST_F(MysqlTlsTest, VerifyIdentityConnectsOverTlsAndTheAdapterWorks) {
  auto o = options(SslMode::verify_identity);
  {
    Connection c(o);
    EXPECT_TRUE(encrypted(c));
    auto q = c.query("SELECT 1");
    ASSERT_TRUE(q.execute(std::span<const adapters::mysql::Param>{}).fetch());
    EXPECT_EQ(q.int64(0), 1);
  }
  // The whole adapter: the pool and the migrations (stored procedures, transactions) over TLS.
  adapters::mysql::MysqlPool pool(o);
  EXPECT_NO_THROW(adapters::mysql::apply_migrations(pool));
  EXPECT_GT(adapters::mysql::schema_version(pool), 0);
}

TEST_F(MysqlTlsTest, VerifyCaAndRequiredConnectOverTls) {
  for (auto mode : {SslMode::verify_ca, SslMode::required}) {
    Connection c(options(mode));
    EXPECT_TRUE(encrypted(c));
  }
}

TEST_F(MysqlTlsTest, ACertificateOfAnotherCaIsRefused) {
  for (auto mode : {SslMode::verify_ca, SslMode::verify_identity}) {
    auto o = options(mode);
    o.ca_file = tls_->certs.other_ca();
    const std::string why = refusal(o);
    EXPECT_TRUE(untrusted_chain(why)) << why;
  }
}

TEST_F(MysqlTlsTest, WithoutACaFileTheSystemsCasAreUsedAndDoNotKnowTheTestCa) {
  for (auto mode : {SslMode::verify_ca, SslMode::verify_identity}) {
    auto o = options(mode);
    o.ca_file.clear();
    const std::string why = refusal(o);
    EXPECT_TRUE(untrusted_chain(why)) << why;
  }
}

TEST_F(MysqlTlsTest, VerifyIdentityRefusesAnAddressTheCertificateDoesNotName) {
  // The certificate names 127.0.0.1 and localhost; the same server as ::ffff:127.0.0.1 is another
  // address to the check. verify-ca does not check names, so it connects.
  auto o = options(SslMode::verify_identity);
  o.host = "::ffff:127.0.0.1";
  const std::string why = refusal(o);
  if (why.find("TLS/SSL") == std::string::npos && why != "connected")
    GTEST_SKIP() << "no IPv4-mapped IPv6 here: " << why;
  EXPECT_NE(why.find("error 2026: TLS/SSL error: Validation of SSL server certificate failed"), std::string::npos) << why;
  o.ssl_mode = SslMode::verify_ca;
  Connection c(o);
  EXPECT_TRUE(encrypted(c));
}

TEST_F(MysqlTlsTest, AServerWithoutTlsIsRefusedInEveryModeNeverUsedInPlaintext) {
  auto* plain = testing::shared_mariadb();
  ASSERT_NE(plain, nullptr);
  for (auto mode : {SslMode::required, SslMode::verify_ca, SslMode::verify_identity}) {
    const std::string why = refusal(options(*plain, mode, tls_->certs.ca()));
    EXPECT_TRUE(why.find("does not offer TLS") != std::string::npos ||
                why.find("SSL is required, but the server does not support it") != std::string::npos)
        << why;
  }
  Connection c(options(*plain, SslMode::disabled, ""));  // and it is a working server
  EXPECT_FALSE(encrypted(c));
}

TEST_F(MysqlTlsTest, ATlsOnlyServerRefusesAPlainClient) {
  // require_secure_transport: MariaDB 10.11 answers a plaintext login with "Access denied" (1045),
  // the same user and password that log in over TLS in the tests above.
  const std::string why = refusal(options(*tls_->server, SslMode::disabled, ""));
  EXPECT_NE(why.find("error 1045"), std::string::npos) << why;
  Connection c(options(SslMode::verify_identity));
  EXPECT_TRUE(encrypted(c));
}

}  // namespace
}  // namespace registrar
