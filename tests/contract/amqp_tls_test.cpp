// amqps:// against a real RabbitMQ TLS listener (Debian's rabbitmq-server, listeners.ssl.default,
// verify_peer and fail_if_no_peer_cert: it asks every client for a certificate of the test CA).
// Certificates from scripts/make-test-certs.sh (tests/support/certs.hpp).
//   * The publisher (AmqpEventBus, as the relay uses it) and a consumer runner, which share
//     Connection, deliver events over TLS with the broker verified and a client certificate.
//   * Refused, with the reason in the error, and never in plaintext: a broker certificate from
//     another CA, a host name the certificate does not name, no client certificate, amqps:// to
//     the plain port, amqp:// to the TLS port; TLS settings with amqp:// are a configuration error.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "adapters/amqp/connection.hpp"
#include "adapters/amqp/consumer_runner.hpp"
#include "adapters/amqp/event_bus.hpp"
#include "adapters/logging/failure_episodes.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"
#include "support/certs.hpp"
#include "support/events.hpp"
#include "support/rabbitmq_server.hpp"
#include "support/recording_consumer.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::amqp::AmqpConsumerRunner;
using adapters::amqp::AmqpEventBus;
using adapters::amqp::AmqpOptions;
using adapters::amqp::Connection;
using adapters::amqp::ConsumerOptions;
using testing::unique_name;

// One CA set and one TLS broker for the file (a broker boot costs seconds).
struct TlsBroker {
  testing::TestCertificates certs;
  std::unique_ptr<testing::RabbitMqServer> broker;
};

TlsBroker* tls_broker() {
  static std::unique_ptr<TlsBroker> shared = [] {
    if (!testing::RabbitMqServer::available()) return std::unique_ptr<TlsBroker>();
    auto b = std::make_unique<TlsBroker>();
    b->broker = std::make_unique<testing::RabbitMqServer>(testing::RabbitMqTls{
        .ca_file = b->certs.ca(), .cert_file = b->certs.server_cert(), .key_file = b->certs.server_key()});
    return b;
  }();
  return shared.get();
}

class AmqpTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tls_ = tls_broker();
    if (tls_ == nullptr) GTEST_SKIP() << "rabbitmq-server is not installed";
    options_.url = tls_->broker->tls_url();
    options_.ca_file = tls_->certs.ca();
    options_.cert_file = tls_->certs.client_cert();
    options_.key_file = tls_->certs.client_key();
    options_.exchange = unique_name("tls-exchange");
    options_.queue = "";
    options_.connect_timeout = 3s;
  }

  // The message of the BackendUnavailable that opening a connection with `o` throws.
  static std::string refusal(const AmqpOptions& o) {
    try {
      Connection c(adapters::amqp::parse_amqp_url(o.url), o, "publisher");
    } catch (const ports::BackendUnavailable& e) {
      return e.what();
    }
    return "connected";
  }

  // The refusal of a chain that leads to no trusted CA. RabbitMQ (Erlang's ssl) sends its CA
  // with its certificate, so OpenSSL names the self-signed root it does not trust; without the
  // root in the chain it would say it found no issuer.
  static bool untrusted_chain(const std::string& why) {
    return why.find("certificate verify failed: self-signed certificate in certificate chain") != std::string::npos ||
           why.find("certificate verify failed: unable to get local issuer certificate") != std::string::npos;
  }

  TlsBroker* tls_ = nullptr;
  AmqpOptions options_;
  testing::CapturedLog log_;
  adapters::logging::FailureEpisodes episodes_{log_.logger};
};

TEST_F(AmqpTlsTest, ThePublisherAndAConsumerDeliverOverTlsWithTheBrokerVerifiedAndAClientCertificate) {
  testing::RecordingConsumer consumer(unique_name("tls-consumer"));
  ConsumerOptions c;
  c.name = consumer.name();
  c.reconnect_initial = 50ms;
  c.poll = 50ms;
  AmqpConsumerRunner runner(options_, c, consumer, log_.logger, episodes_);
  runner.start();
  ASSERT_TRUE(runner.wait_consuming(20s)) << log_.text();

  auto bus_options = options_;
  bus_options.consumer_queues = {c.work_queue()};
  AmqpEventBus bus(bus_options, log_.logger);
  std::vector<domain::EventEnvelope> events = {testing::make_event("tls-1", "u1"), testing::make_event("tls-2", "u2")};
  EXPECT_EQ(bus.publish(events).size(), 2u);
  ASSERT_TRUE(consumer.wait_for_handled(2));
  EXPECT_EQ(consumer.handled_count().count("tls-1"), 1u);
  runner.stop();
}

TEST_F(AmqpTlsTest, AHostNameTheCertificateNamesIsVerifiedToo) {
  auto o = options_;
  o.url = tls_->broker->tls_url("localhost");  // the DNS name in the certificate (and SNI)
  EXPECT_NO_THROW(Connection(adapters::amqp::parse_amqp_url(o.url), o, "publisher"));
}

TEST_F(AmqpTlsTest, ABrokerCertificateOfAnotherCaIsRefusedWithTheReason) {
  auto o = options_;
  o.ca_file = tls_->certs.other_ca();
  const std::string why = refusal(o);
  EXPECT_NE(why.find("TLS handshake with 127.0.0.1:" + std::to_string(tls_->broker->tls_port()) + " failed"),
            std::string::npos)
      << why;
  EXPECT_TRUE(untrusted_chain(why)) << why;
}

TEST_F(AmqpTlsTest, WithoutACaFileTheSystemsCasAreUsedAndDoNotKnowTheTestCa) {
  auto o = options_;
  o.ca_file.clear();
  const std::string why = refusal(o);
  EXPECT_TRUE(untrusted_chain(why)) << why;
}

TEST_F(AmqpTlsTest, AnAddressTheCertificateDoesNotNameIsRefused) {
  // The broker's certificate names 127.0.0.1 and localhost. The same listener reached as
  // ::ffff:127.0.0.1 (IPv4-mapped IPv6, a different address to the certificate check) must fail.
  auto o = options_;
  o.url = "amqps://guest:guest@[::ffff:127.0.0.1]:" + std::to_string(tls_->broker->tls_port()) + "/";
  const std::string why = refusal(o);
  if (why.find("cannot connect") != std::string::npos) GTEST_SKIP() << "no IPv4-mapped IPv6 here: " << why;
  EXPECT_NE(why.find("certificate verify failed: IP address mismatch"), std::string::npos) << why;
}

TEST_F(AmqpTlsTest, NoClientCertificateIsRefusedByTheBrokerAndSaysSo) {
  auto o = options_;
  o.cert_file.clear();
  o.key_file.clear();
  const std::string why = refusal(o);
  // TLS 1.3: "tlsv13 alert certificate required" after the client's half of the handshake; TLS
  // 1.2: the handshake itself fails with the broker's alert. When the broker closes before its
  // alert is read (seen on a loaded machine), rabbitmq-c reports only "a SSL error occurred" at the
  // login: still a TLS refusal, never a plaintext login.
  EXPECT_TRUE(why.find("certificate required") != std::string::npos || why.find("handshake failure") != std::string::npos ||
              why.find("SSL error") != std::string::npos)
      << why;
  EXPECT_EQ(why.find("ACCESS_REFUSED"), std::string::npos) << why;
}

TEST_F(AmqpTlsTest, AmqpsToThePlainPortFailsTheHandshakeAndNeverFallsBackToPlaintext) {
  auto o = options_;
  o.url = "amqps://guest:guest@127.0.0.1:" + std::to_string(tls_->broker->port()) + "/";
  const std::string why = refusal(o);
  EXPECT_NE(why.find("TLS handshake with 127.0.0.1:" + std::to_string(tls_->broker->port()) + " failed"),
            std::string::npos)
      << why;
}

TEST_F(AmqpTlsTest, PlainAmqpToTheTlsPortDoesNotLogIn) {
  auto o = options_;
  o.url = "amqp://guest:guest@127.0.0.1:" + std::to_string(tls_->broker->tls_port()) + "/";
  o.ca_file.clear();
  o.cert_file.clear();
  o.key_file.clear();
  const std::string why = refusal(o);
  EXPECT_NE(why.find("login"), std::string::npos) << why;
}

TEST(AmqpTlsOptions, TlsFilesNeedAmqpsAndMustLoad) {
  testing::TestCertificates certs;
  AmqpOptions o;
  o.url = "amqp://guest:guest@127.0.0.1:5672/";
  o.ca_file = certs.ca();
  EXPECT_THROW(adapters::amqp::check_amqp_options(o), std::invalid_argument);  // would not be used
  o.url = "amqps://guest:guest@broker.example/";
  EXPECT_NO_THROW(adapters::amqp::check_amqp_options(o));
  EXPECT_EQ(adapters::amqp::parse_amqp_url(o.url).port, 5671);
  EXPECT_TRUE(adapters::amqp::parse_amqp_url(o.url).tls);
  o.ca_file = certs.file("missing.pem");
  EXPECT_THROW(adapters::amqp::check_amqp_options(o), std::invalid_argument);
  o.ca_file = certs.ca();
  o.cert_file = certs.client_cert();
  EXPECT_THROW(adapters::amqp::check_amqp_options(o), std::invalid_argument);  // no key
  o.key_file = certs.server_key();
  EXPECT_THROW(adapters::amqp::check_amqp_options(o), std::invalid_argument);  // not this certificate's key
  o.key_file = certs.client_key();
  EXPECT_NO_THROW(adapters::amqp::check_amqp_options(o));
}

}  // namespace
}  // namespace registrar
