// Text messages (verification codes): the development file sender's SMS form (number masked,
// filed under the session) and the HTTP webhook sender against a loopback HTTP(S) server.
#include <gtest/gtest.h>

#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "adapters/mail/file_mail_sender.hpp"
#include "adapters/mail/webhook_sms_sender.hpp"
#include "ports/errors.hpp"
#include "support/loopback_server.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;
namespace ssl = boost::asio::ssl;
using namespace std::chrono_literals;
using adapters::mail::FileMailSender;
using adapters::mail::SmsWebhookOptions;
using adapters::mail::SmsWebhookSender;
using asio::ip::tcp;
using testing::TempDir;

const std::string kPhone = "+33612345678";
const std::string kBullet = "\xE2\x80\xA2";

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ports::MailMessage sms(std::string session = "0191f5a2-aaaa-7bbb-8ccc-123456789abc") {
  ports::MailMessage m;
  m.channel = "sms";
  m.to = kPhone;
  m.subject = "registrar verification code";
  m.body = "Your registrar verification code is 042042. It expires in 10 minutes.";
  m.code = "042042";
  m.idempotency_key = "verification-code:" + session;
  m.session_id = std::move(session);
  return m;
}

// --- the development file sender ---------------------------------------------------------------

TEST(MaskPhone, KeepsTheFirstAndLastTwoDigits) {
  std::string seven;
  for (int i = 0; i < 7; ++i) seven += kBullet;
  EXPECT_EQ(adapters::mail::mask_phone("+33612345678"), "+33" + seven + "78");
  EXPECT_EQ(adapters::mail::mask_phone("+1 (555) 010-9999"), "+15" + seven + "99");
  // Short input: everything masked; anything but '+' and digits is dropped.
  EXPECT_EQ(adapters::mail::mask_phone("123456"), kBullet + kBullet + kBullet + kBullet + kBullet + kBullet);
  EXPECT_EQ(adapters::mail::mask_phone("+33\"x\n61234567"), "+33" + kBullet + kBullet + kBullet + kBullet + kBullet + kBullet + "67");
}

TEST(FileMailSender, AnSmsIsFiledUnderItsSessionWithTheNumberMasked) {
  TempDir dir;
  FileMailSender sender(dir.path());
  const auto message = sms();
  sender.send(message);

  const auto line = read_file(sender.messages_file());
  const auto o = json::parse(line).as_object();
  EXPECT_EQ(o.at("channel").as_string(), "sms");
  EXPECT_EQ(o.at("to").as_string(), adapters::mail::mask_phone(kPhone));
  EXPECT_EQ(o.at("session").as_string(), message.session_id);
  EXPECT_EQ(o.at("code").as_string(), "042042");
  EXPECT_EQ(o.at("body").as_string(), message.body);
  const auto spooled = json::parse(read_file(sender.spool_file(message.idempotency_key))).as_object();
  EXPECT_EQ(spooled.at("to").as_string(), adapters::mail::mask_phone(kPhone));
  EXPECT_EQ(spooled.at("session").as_string(), message.session_id);

  // The number is in no file of the data dir, in any of its usual spellings.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir.path())) {
    if (!entry.is_regular_file()) continue;
    const auto content = read_file(entry.path());
    for (const std::string& needle : {std::string("33612345678"), std::string("612345678"), std::string("6 12 34")})
      EXPECT_EQ(content.find(needle), std::string::npos) << entry.path() << " holds " << needle;
  }
}

TEST(FileMailSender, MailKeepsItsAddressAndHasNoSessionUnlessGiven) {
  TempDir dir;
  FileMailSender sender(dir.path());
  ports::MailMessage mail{.channel = "email", .to = "ada@example.com", .subject = "Hi", .body = "Welcome",
                          .code = std::nullopt, .idempotency_key = "welcome-1"};
  sender.send(mail);
  const auto o = json::parse(read_file(sender.messages_file())).as_object();
  EXPECT_EQ(o.at("to").as_string(), "ada@example.com");
  EXPECT_FALSE(o.contains("session"));
}

// --- the webhook sender ------------------------------------------------------------------------

// What the gateway received.
struct Received {
  std::string method, target, body;
  std::string authorization, idempotency_key, content_type;
};

// An HTTP (or HTTPS, with `tls`) gateway on 127.0.0.1 that records requests and answers `status`,
// or never answers when `silent`.
class FakeGateway {
 public:
  explicit FakeGateway(ssl::context* tls = nullptr) : tls_(tls), server_([this](tcp::socket s) { return serve(std::move(s)); }) {}

  std::string url(std::string_view path = "/sms") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(server_.port()) + std::string(path);
  }
  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  std::atomic<unsigned> status{202};
  std::atomic<bool> silent{false};

 private:
  template <class Stream>
  asio::awaitable<void> exchange(Stream& stream) {
    beast::flat_buffer buffer;
    http::request<http::string_body> req;
    co_await http::async_read(stream, buffer, req, asio::use_awaitable);
    {
      std::lock_guard lock(mutex_);
      received_.push_back({std::string(req.method_string()), std::string(req.target()), req.body(),
                           std::string(req[http::field::authorization]), std::string(req["Idempotency-Key"]),
                           std::string(req[http::field::content_type])});
    }
    if (silent) {
      asio::steady_timer wait(co_await asio::this_coro::executor, 30s);
      co_await wait.async_wait(asio::use_awaitable);
      co_return;
    }
    http::response<http::string_body> res{static_cast<http::status>(status.load()), 11};
    res.body() = "{}";
    res.prepare_payload();
    co_await http::async_write(stream, res, asio::use_awaitable);
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    try {
      if (tls_ == nullptr) {
        co_await exchange(socket);
      } else {
        ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
        co_await stream.async_handshake(ssl::stream_base::server, asio::use_awaitable);
        co_await exchange(stream);
      }
    } catch (const std::exception&) {
      // A client that gave up (timeout test) or refused our certificate.
    }
  }

  ssl::context* tls_;
  std::mutex mutex_;
  std::vector<Received> received_;
  testing::LoopbackServer server_;
};

TEST(SmsWebhookSender, PostsTheMessageWithTheRealNumberAndItsKeys) {
  FakeGateway gateway;
  SmsWebhookSender sender({.url = gateway.url("/v1/sms?tenant=a"), .bearer_secret = "s3cret-token"});
  const auto message = sms();
  sender.send(message);
  auto got = gateway.received();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].target, "/v1/sms?tenant=a");
  EXPECT_EQ(got[0].authorization, "Bearer s3cret-token");
  EXPECT_EQ(got[0].idempotency_key, message.idempotency_key);
  EXPECT_EQ(got[0].content_type, "application/json");
  const auto body = json::parse(got[0].body).as_object();
  EXPECT_EQ(body.at("channel").as_string(), "sms");
  EXPECT_EQ(body.at("to").as_string(), kPhone);  // the gateway is the one place that gets it
  EXPECT_EQ(body.at("body").as_string(), message.body);
  EXPECT_EQ(body.at("code").as_string(), "042042");
  EXPECT_EQ(body.at("session").as_string(), message.session_id);
  EXPECT_EQ(body.at("idempotencyKey").as_string(), message.idempotency_key);
}

TEST(SmsWebhookSender, NoSecretNoAuthorizationHeader) {
  FakeGateway gateway;
  SmsWebhookSender sender({.url = gateway.url()});
  sender.send(sms());
  ASSERT_EQ(gateway.received().size(), 1u);
  EXPECT_EQ(gateway.received()[0].authorization, "");
}

TEST(SmsWebhookSender, FourHundredsAreRejectedFiveHundredsAndThrottlingAreUnavailable) {
  FakeGateway gateway;
  SmsWebhookSender sender({.url = gateway.url()});
  for (unsigned status : {400u, 404u, 422u}) {
    gateway.status = status;
    EXPECT_THROW(sender.send(sms()), ports::MailRejected) << status;
  }
  for (unsigned status : {500u, 502u, 503u, 408u, 429u}) {
    gateway.status = status;
    EXPECT_THROW(sender.send(sms()), ports::BackendUnavailable) << status;
  }
  gateway.status = 200;
  EXPECT_NO_THROW(sender.send(sms()));
}

TEST(SmsWebhookSender, ASilentGatewayTimesOut) {
  FakeGateway gateway;
  gateway.silent = true;
  SmsWebhookSender sender({.url = gateway.url(), .timeout = 300ms});
  const auto t0 = std::chrono::steady_clock::now();
  try {
    sender.send(sms());
    FAIL() << "no timeout";
  } catch (const ports::BackendUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
    // The message names the gateway, never the number or the code.
    EXPECT_EQ(std::string(e.what()).find("612345678"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("042042"), std::string::npos);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

TEST(SmsWebhookSender, ConnectionRefusedIsUnavailable) {
  std::uint16_t port;
  {
    FakeGateway gone;
    port = static_cast<std::uint16_t>(std::stoi(gone.url().substr(17, 5)));
  }
  SmsWebhookSender sender({.url = "http://127.0.0.1:" + std::to_string(port) + "/sms"});
  EXPECT_THROW(sender.send(sms()), ports::BackendUnavailable);
}

TEST(SmsWebhookSender, RefusesBadUrlsAndOtherChannels) {
  EXPECT_THROW(SmsWebhookSender({.url = "ftp://gw.example/sms"}), std::invalid_argument);
  EXPECT_THROW(SmsWebhookSender({.url = "http://user:pw@gw.example/sms"}), std::invalid_argument);
  EXPECT_THROW(SmsWebhookSender({.url = "not a url"}), std::invalid_argument);
  EXPECT_THROW(SmsWebhookSender({.url = "http://gw.example/sms", .timeout = 0ms}), std::invalid_argument);
  EXPECT_THROW(SmsWebhookSender({.url = "https://gw.example/sms", .ca_file = "/nonexistent/ca.pem"}),
               std::invalid_argument);
  SmsWebhookSender sender({.url = "http://127.0.0.1:9/sms"});
  auto mail = sms();
  mail.channel = "email";
  EXPECT_THROW(sender.send(mail), std::invalid_argument);
}

// --- https: the server's certificate is verified -------------------------------------------------

// A self-signed certificate (its own CA) for `san`, made with the openssl command line.
struct TestCertificate {
  TempDir dir;
  std::filesystem::path cert = dir.path() / "cert.pem", key = dir.path() / "key.pem";
  bool made = false;
  explicit TestCertificate(const std::string& san) {
    const std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
                            " -subj /CN=registrar-test -addext subjectAltName=" + san +
                            " -keyout " + key.string() + " -out " + cert.string() + " >/dev/null 2>&1";
    made = std::system(cmd.c_str()) == 0;
  }
  std::unique_ptr<ssl::context> server_context() const {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->use_certificate_chain_file(cert.string());
    ctx->use_private_key_file(key.string(), ssl::context::pem);
    return ctx;
  }
};

TEST(SmsWebhookSender, HttpsWithATrustedCertificateForTheHostDelivers) {
  TestCertificate cert("IP:127.0.0.1");
  if (!cert.made) GTEST_SKIP() << "openssl command line not available";
  auto tls = cert.server_context();
  FakeGateway gateway(tls.get());
  SmsWebhookSender sender({.url = gateway.url(), .ca_file = cert.cert.string()});
  sender.send(sms());
  ASSERT_EQ(gateway.received().size(), 1u);
  EXPECT_EQ(json::parse(gateway.received()[0].body).at("to").as_string(), kPhone);
}

TEST(SmsWebhookSender, HttpsRefusesAnUntrustedCertificate) {
  TestCertificate cert("IP:127.0.0.1");
  if (!cert.made) GTEST_SKIP() << "openssl command line not available";
  auto tls = cert.server_context();
  FakeGateway gateway(tls.get());
  SmsWebhookSender sender({.url = gateway.url()});  // the system's CAs do not know it
  EXPECT_THROW(sender.send(sms()), ports::BackendUnavailable);
  EXPECT_TRUE(gateway.received().empty()) << "the message went to an unverified server";
}

TEST(SmsWebhookSender, HttpsRefusesACertificateForAnotherHost) {
  TestCertificate cert("DNS:gateway.example");
  if (!cert.made) GTEST_SKIP() << "openssl command line not available";
  auto tls = cert.server_context();
  FakeGateway gateway(tls.get());
  SmsWebhookSender sender({.url = gateway.url(), .ca_file = cert.cert.string()});
  EXPECT_THROW(sender.send(sms()), ports::BackendUnavailable);
  EXPECT_TRUE(gateway.received().empty()) << "the message went to a server with another name";
}

}  // namespace
}  // namespace registrar
