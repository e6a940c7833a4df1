// The webhook consumer: signed POSTs (Standard Webhooks) to each URL, retries with backoff,
// per-URL success tracking across redeliveries, permanent vs transient failures, https with the
// receiver's certificate verified. A small Beast HTTP(S) server on 127.0.0.1 records what arrives
// and answers with scripted statuses.
#include <gtest/gtest.h>
#include <sodium.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/consumers/webhook_consumer.hpp"
#include "ports/errors.hpp"
#include "support/certs.hpp"
#include "support/events.hpp"
#include "support/fakes.hpp"
#include "support/loopback_server.hpp"

namespace registrar {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using adapters::consumers::MalformedEvent;
using adapters::consumers::PermanentFailure;
using adapters::consumers::WebhookConsumer;
using adapters::consumers::WebhookOptions;
using asio::ip::tcp;
using testing::MemoryProcessedEvents;
using testing::user_registered;

constexpr const char* kSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// Records each request; answers each target with the statuses queued for it (then 200). With a
// TLS context: an https receiver (a request is recorded only after a completed handshake).
class HookServer {
 public:
  struct Request {
    std::string method, target, body;
    std::map<std::string, std::string> headers;  // lower-case names
  };

  HookServer() = default;
  explicit HookServer(ssl::context& tls) : tls_(&tls) {}

  std::string url(const std::string& target, const std::string& host = "127.0.0.1") const {
    return std::string(tls_ != nullptr ? "https" : "http") + "://" + host + ":" + std::to_string(port()) + target;
  }
  std::uint16_t port() const { return server_.port(); }

  // The next answers for `target` (path and query), in order; after them: 200.
  void answer(const std::string& target, std::vector<unsigned> statuses) {
    std::lock_guard lock(mutex_);
    for (unsigned s : statuses) script_[target].push_back(s);
  }
  // Answer nothing for this long (a hung receiver).
  void stall_for(std::chrono::milliseconds d) {
    std::lock_guard lock(mutex_);
    stall_ = d;
  }

  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::size_t count(const std::string& target) const {
    std::lock_guard lock(mutex_);
    return static_cast<std::size_t>(
        std::count_if(requests_.begin(), requests_.end(), [&](const Request& r) { return r.target == target; }));
  }

  // TLS handshakes that failed here (the client refused our certificate, or spoke no TLS).
  std::size_t failed_handshakes() const { return failed_handshakes_; }

 private:
  asio::awaitable<void> serve(tcp::socket socket) {
    if (tls_ == nullptr) {
      co_await exchange(socket);
      co_return;
    }
    ssl::stream<tcp::socket> stream(std::move(socket), *tls_);
    try {
      co_await stream.async_handshake(ssl::stream_base::server, asio::use_awaitable);
    } catch (const std::exception&) {
      ++failed_handshakes_;
      co_return;
    }
    co_await exchange(stream);
  }

  template <class Stream>
  asio::awaitable<void> exchange(Stream& stream) {
    auto& socket = beast::get_lowest_layer(stream);
    try {
      beast::flat_buffer buffer;
      http::request<http::string_body> req;
      co_await http::async_read(stream, buffer, req, asio::use_awaitable);
      Request r;
      r.method = std::string(req.method_string());
      r.target = std::string(req.target());
      r.body = req.body();
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(field.value());
      }
      unsigned status = 200;
      std::chrono::milliseconds stall{0};
      {
        std::lock_guard lock(mutex_);
        requests_.push_back(r);
        auto& queue = script_[r.target];
        if (!queue.empty()) {
          status = queue.front();
          queue.pop_front();
        }
        stall = stall_;
      }
      if (stall.count() > 0) {
        asio::steady_timer timer(socket.get_executor(), stall);
        co_await timer.async_wait(asio::use_awaitable);
      }
      http::response<http::string_body> res{static_cast<http::status>(status), 11};
      res.set(http::field::content_type, "text/plain");
      res.keep_alive(false);
      res.body() = "ok";
      res.prepare_payload();
      co_await http::async_write(stream, res, asio::use_awaitable);
      boost::system::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);
    } catch (const std::exception&) {
      // the client went away
    }
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::deque<unsigned>> script_;
  std::chrono::milliseconds stall_{0};
  std::vector<Request> requests_;
  ssl::context* tls_ = nullptr;
  std::atomic<std::size_t> failed_handshakes_{0};
  // Last: stopped before the state above goes.
  testing::LoopbackServer server_{[this](tcp::socket socket) { return serve(std::move(socket)); }};
};

std::vector<unsigned char> key_bytes() { return adapters::consumers::decode_webhook_secret(kSecret); }

// The signature recomputed independently of the consumer's code path: HMAC (RFC 2104) built by
// hand over plain SHA-256 (libsodium's one-shot HMAC API takes only 32-byte keys), then base64.
std::string expected_signature(const std::string& id, const std::string& ts, const std::string& body) {
  const auto key = key_bytes();
  const std::string content = id + "." + ts + "." + body;
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  unsigned char k0[64] = {};
  std::copy(key.begin(), key.end(), k0);  // keys ≤ 64 bytes are used as is, zero-padded
  unsigned char ipad[64], opad[64];
  for (int i = 0; i < 64; ++i) {
    ipad[i] = k0[i] ^ 0x36;
    opad[i] = k0[i] ^ 0x5c;
  }
  unsigned char inner[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  crypto_hash_sha256_update(&h, ipad, 64);
  crypto_hash_sha256_update(&h, reinterpret_cast<const unsigned char*>(content.data()), content.size());
  crypto_hash_sha256_final(&h, inner);
  crypto_hash_sha256_init(&h);
  crypto_hash_sha256_update(&h, opad, 64);
  crypto_hash_sha256_update(&h, inner, sizeof inner);
  crypto_hash_sha256_final(&h, mac);
  char b64[sodium_base64_ENCODED_LEN(crypto_auth_hmacsha256_BYTES, sodium_base64_VARIANT_ORIGINAL)];
  sodium_bin2base64(b64, sizeof b64, mac, sizeof mac, sodium_base64_VARIANT_ORIGINAL);
  return std::string("v1,") + b64;
}

// One set of test certificates for the whole file (~0.3 s to make).
const testing::TestCertificates& certs_for_options() {
  static const testing::TestCertificates made;
  return made;
}

class WebhookConsumerTest : public ::testing::Test {
 protected:
  std::unique_ptr<WebhookConsumer> make(std::vector<std::string> urls, int attempts = 3, std::string ca_file = {}) {
    WebhookOptions o;
    o.urls = std::move(urls);
    o.secret = kSecret;
    o.ca_file = std::move(ca_file);
    o.attempts = attempts;
    o.timeout = std::chrono::milliseconds{2000};
    o.backoff = std::chrono::milliseconds{200};
    o.sleep = [this](std::chrono::milliseconds d) {
      std::lock_guard lock(mutex_);
      sleeps_.push_back(d);
    };
    return std::make_unique<WebhookConsumer>(std::move(o), processed_, clock_);
  }
  std::vector<std::chrono::milliseconds> sleeps() {
    std::lock_guard lock(mutex_);
    return sleeps_;
  }

  HookServer server_;
  MemoryProcessedEvents processed_;
  testing::FixedClock clock_;  // 2025-10-19T16:37:15.123Z → webhook-timestamp 1760891835
  std::mutex mutex_;
  std::vector<std::chrono::milliseconds> sleeps_;
};

TEST_F(WebhookConsumerTest, ASignedPostArrivesWithTheStandardWebhooksHeaders) {
  auto consumer = make({server_.url("/hooks/a?tenant=1")});
  EXPECT_EQ(consumer->name(), "webhook");
  const auto event = user_registered("evt-1");
  consumer->handle(event);

  const auto requests = server_.requests();
  ASSERT_EQ(requests.size(), 1u);
  const auto& r = requests[0];
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/hooks/a?tenant=1");
  EXPECT_EQ(r.body, event.payload);  // the wire body, byte for byte
  EXPECT_EQ(r.headers.at("host"), "127.0.0.1:" + std::to_string(server_.port()));
  EXPECT_EQ(r.headers.at("content-type"), "application/json");
  EXPECT_EQ(r.headers.at("webhook-id"), "evt-1");
  EXPECT_EQ(r.headers.at("webhook-timestamp"), "1760891835");
  EXPECT_EQ(r.headers.at("webhook-signature"), expected_signature("evt-1", "1760891835", event.payload));
  EXPECT_TRUE(processed_.is_processed("webhook", "evt-1"));
  EXPECT_TRUE(processed_.is_processed(adapters::consumers::webhook_url_key(server_.url("/hooks/a?tenant=1")), "evt-1"));
}

TEST_F(WebhookConsumerTest, ARedeliveryPostsNothingNew) {
  auto consumer = make({server_.url("/a"), server_.url("/b")});
  consumer->handle(user_registered("evt-1"));
  consumer->handle(user_registered("evt-1"));
  // A new consumer instance (a restarted process) with the same ProcessedEvents: still nothing.
  make({server_.url("/a"), server_.url("/b")})->handle(user_registered("evt-1"));
  EXPECT_EQ(server_.count("/a"), 1u);
  EXPECT_EQ(server_.count("/b"), 1u);
  consumer->handle(user_registered("evt-2"));
  EXPECT_EQ(server_.requests().size(), 4u);
}

TEST_F(WebhookConsumerTest, ATransientFailureIsRetriedWithBackoffWithinOneHandle) {
  server_.answer("/b", {500, 503});
  auto consumer = make({server_.url("/a"), server_.url("/b")});
  consumer->handle(user_registered("evt-1"));
  EXPECT_EQ(server_.count("/a"), 1u);
  EXPECT_EQ(server_.count("/b"), 3u);
  EXPECT_EQ(sleeps(), (std::vector<std::chrono::milliseconds>{std::chrono::milliseconds{200}, std::chrono::milliseconds{400}}));
  for (const auto& r : server_.requests()) EXPECT_EQ(r.headers.at("webhook-id"), "evt-1");
  EXPECT_TRUE(processed_.is_processed("webhook", "evt-1"));
}

TEST_F(WebhookConsumerTest, WhenRetriesRunOutOnlyTheFailedUrlIsPostedAgainOnRedelivery) {
  server_.answer("/b", {500, 500, 500});
  auto consumer = make({server_.url("/a"), server_.url("/b")});
  EXPECT_THROW(consumer->handle(user_registered("evt-1")), ports::BackendUnavailable);
  EXPECT_FALSE(processed_.is_processed("webhook", "evt-1"));
  EXPECT_EQ(server_.count("/a"), 1u);
  EXPECT_EQ(server_.count("/b"), 3u);

  consumer->handle(user_registered("evt-1"));  // the runner's redelivery; /b answers 200 now
  EXPECT_EQ(server_.count("/a"), 1u);          // already had it
  EXPECT_EQ(server_.count("/b"), 4u);
  EXPECT_TRUE(processed_.is_processed("webhook", "evt-1"));
}

TEST_F(WebhookConsumerTest, TimeoutAndRateLimitAnswersAreTransient) {
  server_.answer("/a", {408, 429});
  auto consumer = make({server_.url("/a")});
  consumer->handle(user_registered("evt-1"));
  EXPECT_EQ(server_.count("/a"), 3u);
}

TEST_F(WebhookConsumerTest, A400IsAPermanentFailureWithoutRetries) {
  server_.answer("/a", {400});
  auto consumer = make({server_.url("/a")});
  EXPECT_THROW(consumer->handle(user_registered("evt-1")), PermanentFailure);
  EXPECT_EQ(server_.count("/a"), 1u);
  EXPECT_TRUE(sleeps().empty());
  EXPECT_FALSE(processed_.is_processed("webhook", "evt-1"));
}

TEST_F(WebhookConsumerTest, ARedirectIsNotFollowedAndIsPermanent) {
  server_.answer("/a", {301});
  EXPECT_THROW(make({server_.url("/a")})->handle(user_registered("evt-1")), PermanentFailure);
  EXPECT_EQ(server_.count("/a"), 1u);
}

TEST_F(WebhookConsumerTest, APermanentAndATransientFailureTogetherAreRetried) {
  server_.answer("/a", {404});
  server_.answer("/b", {500, 500, 500});
  auto consumer = make({server_.url("/a"), server_.url("/b")});
  // Not PermanentFailure: /b may still succeed, so the runner must retry.
  try {
    consumer->handle(user_registered("evt-1"));
    FAIL() << "expected a throw";
  } catch (const PermanentFailure&) {
    FAIL() << "a transient failure is left: the event must be retried";
  } catch (const ports::BackendUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("2 of 2"), std::string::npos) << e.what();
  }
}

TEST_F(WebhookConsumerTest, AMalformedEventThrowsAndPostsNothing) {
  auto consumer = make({server_.url("/a")});
  auto event = user_registered("evt-1");
  for (const char* body : {"", "{", "[]", R"({"event":"user.registered","pattern":"user.registered"})",
                           R"({"event":"user.registered","pattern":"user.registered","data":{"id":"u","email":"a@b.c","username":"a","createdAt":"nope"},"timestamp":"2025-10-19T16:37:15.456Z"})"}) {
    event.payload = body;
    EXPECT_THROW(consumer->handle(event), MalformedEvent) << body;
  }
  auto no_id = user_registered("");
  EXPECT_THROW(consumer->handle(no_id), MalformedEvent);
  auto bad_id = user_registered("evt\r\nX-Injected: 1");
  EXPECT_THROW(consumer->handle(bad_id), MalformedEvent);
  EXPECT_TRUE(server_.requests().empty());
  EXPECT_EQ(processed_.size(), 0u);
}

TEST_F(WebhookConsumerTest, OtherEventTypesAreIgnored) {
  auto event = user_registered("evt-1");
  event.type = "user.deleted";
  make({server_.url("/a")})->handle(event);
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(WebhookConsumerTest, ConnectionRefusedIsTransientAndNeverLeaksThePath) {
  std::string url;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    url = "http://127.0.0.1:" + std::to_string(a.local_endpoint().port()) + "/hook/s3cr3t-token?key=abc";
  }  // nothing listens there now
  auto consumer = make({url});
  try {
    consumer->handle(user_registered("evt-1"));
    FAIL() << "expected a throw";
  } catch (const ports::BackendUnavailable& e) {
    EXPECT_EQ(std::string(e.what()).find("s3cr3t"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(adapters::consumers::webhook_url_key(url)), std::string::npos) << e.what();
  }
  EXPECT_EQ(sleeps().size(), 2u);  // 3 tries
}

TEST_F(WebhookConsumerTest, AHungReceiverTimesOut) {
  server_.stall_for(std::chrono::milliseconds{1500});
  WebhookOptions o;
  o.urls = {server_.url("/a")};
  o.secret = kSecret;
  o.attempts = 1;
  o.timeout = std::chrono::milliseconds{200};
  WebhookConsumer consumer(std::move(o), processed_, clock_);
  const auto start = std::chrono::steady_clock::now();
  try {
    consumer.handle(user_registered("evt-1"));
    FAIL() << "expected a timeout";
  } catch (const ports::BackendUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds{1200});
}

TEST(WebhookSignature, MatchesTheStandardWebhooksExampleVector) {
  // The example of the Standard Webhooks spec; the same value comes out of Node's
  // crypto.createHmac("sha256", Buffer.from(<base64 part>, "base64")).update(<content>).digest("base64").
  const auto key = adapters::consumers::decode_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  EXPECT_EQ(key.size(), 24u);
  EXPECT_EQ(adapters::consumers::webhook_signature(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                                                   R"({"test": 2432232314})"),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(WebhookSignature, AgreesWithNodeCryptoOnAnEventBody) {
  if (std::system("node -e 0 >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not available";
  const auto event = user_registered("0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b");
  const std::string ts = "1760891835";
  // The body is JSON without single quotes, so it can travel in a single-quoted shell argument.
  ASSERT_EQ(event.payload.find('\''), std::string::npos);
  const std::string script =
      "const c=require('crypto');const [k,id,ts,body]=process.argv.slice(1);"
      "process.stdout.write('v1,'+c.createHmac('sha256',Buffer.from(k.slice(6),'base64'))"
      ".update(id+'.'+ts+'.'+body).digest('base64'))";
  const std::string command = "node -e \"" + script + "\" '" + kSecret + "' '" + event.id + "' '" + ts + "' '" +
                              event.payload + "'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[256];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) out.append(buf, n);
  ASSERT_EQ(::pclose(pipe), 0);
  EXPECT_EQ(adapters::consumers::webhook_signature(key_bytes(), event.id, 1760891835, event.payload), out);
}

TEST(WebhookSecret, AcceptsThePrefixOrBareBase64AndRefusesJunk) {
  EXPECT_EQ(adapters::consumers::decode_webhook_secret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), key_bytes());
  EXPECT_THROW(adapters::consumers::decode_webhook_secret("whsec_not base64!"), std::invalid_argument);
  EXPECT_THROW(adapters::consumers::decode_webhook_secret("whsec_c2hvcnQ="), std::invalid_argument);  // 5 bytes
  EXPECT_THROW(adapters::consumers::decode_webhook_secret(""), std::invalid_argument);
  // libsodium 1.0.18 decodes bytes 0x80-0xFF as '/': a secret with one is refused, not misread.
  std::string high = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
  high[10] = '\xaf';
  EXPECT_THROW(adapters::consumers::decode_webhook_secret(high), std::invalid_argument);
}

TEST(WebhookConsumerOptions, RefusesBadConfiguration) {
  MemoryProcessedEvents processed;
  testing::FixedClock clock;
  auto make = [&](std::vector<std::string> urls, std::string secret = kSecret) {
    WebhookOptions o;
    o.urls = std::move(urls);
    o.secret = std::move(secret);
    return WebhookConsumer(std::move(o), processed, clock);
  };
  EXPECT_THROW(make({}), std::invalid_argument);
  EXPECT_THROW(make({"http://127.0.0.1/a"}, ""), std::invalid_argument);
  EXPECT_THROW(make({"ftp://example.com/a"}), std::invalid_argument);
  EXPECT_THROW(make({"http://user:pw@example.com/a"}), std::invalid_argument);
  EXPECT_THROW(make({"not a url"}), std::invalid_argument);
  EXPECT_THROW(make({"http://127.0.0.1/a", "http://127.0.0.1/a"}), std::invalid_argument);
  EXPECT_NO_THROW(make({"http://[::1]:8080/a", "http://hooks.example.com"}));
  EXPECT_NO_THROW(make({"https://hooks.example.com/a", "http://127.0.0.1/b"}));  // the system's CAs
}

TEST(WebhookConsumerOptions, ACaFileMustLoadAndServeAnHttpsUrl) {
  MemoryProcessedEvents processed;
  testing::FixedClock clock;
  auto make = [&](std::vector<std::string> urls, std::string ca_file) {
    WebhookOptions o;
    o.urls = std::move(urls);
    o.secret = kSecret;
    o.ca_file = std::move(ca_file);
    return WebhookConsumer(std::move(o), processed, clock);
  };
  try {
    make({"https://hooks.example.com/a"}, "/nonexistent/ca.pem");
    FAIL() << "a CA file that does not exist was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cannot load the CA certificates from /nonexistent/ca.pem"), std::string::npos)
        << e.what();
  }
  // Not PEM: refused at start, not at the first event.
  EXPECT_THROW(make({"https://hooks.example.com/a"}, REGISTRAR_SOURCE_DIR "/CMakeLists.txt"), std::invalid_argument);
  // A CA file that no URL would use is a mistake (a forgotten https://), not silently ignored.
  try {
    make({"http://hooks.example.com/a"}, certs_for_options().ca());
    FAIL() << "a CA file with only http:// URLs was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("no URL is https://"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(make({"http://hooks.example.com/a", "https://hooks.example.com/b"}, certs_for_options().ca()));
}

// --- https: the receiver's certificate is verified; never a retry in plain text -----------------

class WebhookHttpsTest : public WebhookConsumerTest {
 protected:
  static const testing::TestCertificates& certs() { return certs_for_options(); }
  static std::unique_ptr<ssl::context> server_context(const std::string& cert, const std::string& key) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_server);
    ctx->use_certificate_chain_file(cert);
    ctx->use_private_key_file(key, ssl::context::pem);
    return ctx;
  }
  // handle() must fail transiently (the runner retries, then dead-letters), with `reason` in the
  // message and no secret in it; nothing reaches `receiver`.
  void expect_refused(WebhookConsumer& consumer, const HookServer& receiver, const std::string& reason) {
    try {
      consumer.handle(user_registered("evt-1"));
      FAIL() << "delivered";
    } catch (const PermanentFailure& e) {
      FAIL() << "a TLS failure is retried like an unreachable receiver: " << e.what();
    } catch (const ports::BackendUnavailable& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(reason), std::string::npos) << what;
      EXPECT_NE(what.find("TLS handshake failed"), std::string::npos) << what;
      EXPECT_EQ(what.find("s3cr3t"), std::string::npos) << what;                   // the URL's path
      EXPECT_EQ(what.find(std::string(kSecret).substr(6)), std::string::npos) << what;  // the signing key
      EXPECT_EQ(what.find("user.registered"), std::string::npos) << what;          // the event body
    }
    EXPECT_TRUE(receiver.requests().empty()) << "an event went to an unverified receiver";
    EXPECT_FALSE(processed_.is_processed("webhook", "evt-1"));
  }
};

TEST_F(WebhookHttpsTest, DeliversOverHttpsWithTheCaFileNextToAnHttpUrl) {
  auto tls = server_context(certs().server_cert(), certs().server_key());
  HookServer receiver(*tls);
  // The certificate names 127.0.0.1 and localhost: both the address and the name are checked.
  auto consumer = make({receiver.url("/a"), receiver.url("/b", "localhost"), server_.url("/plain")}, 3, certs().ca());
  const auto event = user_registered("evt-1");
  consumer->handle(event);

  const auto requests = receiver.requests();
  ASSERT_EQ(requests.size(), 2u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.body, event.payload);
    EXPECT_EQ(r.headers.at("webhook-id"), "evt-1");
    EXPECT_EQ(r.headers.at("webhook-signature"), expected_signature("evt-1", "1760891835", event.payload));
  }
  EXPECT_EQ(requests[1].headers.at("host"), "localhost:" + std::to_string(receiver.port()));
  EXPECT_EQ(server_.count("/plain"), 1u);
  EXPECT_EQ(receiver.failed_handshakes(), 0u);
  EXPECT_TRUE(sleeps().empty());
  EXPECT_TRUE(processed_.is_processed("webhook", "evt-1"));
}

TEST_F(WebhookHttpsTest, ACertificateOfAnotherCaIsRefusedWithTheReasonAndRetried) {
  auto tls = server_context(certs().self_signed_cert(), certs().self_signed_key());
  HookServer receiver(*tls);
  auto consumer = make({receiver.url("/hook/s3cr3t")}, 3, certs().ca());
  expect_refused(*consumer, receiver, "certificate verify failed");
  EXPECT_EQ(sleeps().size(), 2u);  // the consumer's usual retries with backoff, each one refused
}

TEST_F(WebhookHttpsTest, WithoutACaFileTheSystemsCasDoNotKnowTheTestCa) {
  auto tls = server_context(certs().server_cert(), certs().server_key());
  HookServer receiver(*tls);
  auto consumer = make({receiver.url("/hook/s3cr3t")}, 1);
  expect_refused(*consumer, receiver, "unable to get local issuer certificate");
}

TEST_F(WebhookHttpsTest, ACertificateForAnotherHostIsRefused) {
  // Signed by the trusted CA, for wrong.example only: refused for an address and for a name.
  auto tls = server_context(certs().wrong_host_cert(), certs().wrong_host_key());
  HookServer receiver(*tls);
  expect_refused(*make({receiver.url("/hook/s3cr3t")}, 1, certs().ca()), receiver, "IP address mismatch");
  expect_refused(*make({receiver.url("/hook/s3cr3t", "localhost")}, 1, certs().ca()), receiver, "hostname mismatch");
}

TEST_F(WebhookHttpsTest, HttpsToAPlainHttpPortFailsAndSendsNothingInClear) {
  // server_ speaks plain HTTP; the URL says https. It gets a TLS ClientHello, which is no HTTP
  // request, and closes: the handshake fails; no request is ever written in clear.
  const std::string url = "https://127.0.0.1:" + std::to_string(server_.port()) + "/hook/s3cr3t";
  auto consumer = make({url}, 2, certs().ca());
  expect_refused(*consumer, server_, "TLS handshake failed");
  EXPECT_EQ(sleeps().size(), 1u);
}

TEST(WebhookUrlKey, FitsTheProcessedEventsConsumerColumn) {
  const auto key = adapters::consumers::webhook_url_key("http://127.0.0.1:8080/a");
  EXPECT_TRUE(key.starts_with("webhook:"));
  EXPECT_EQ(key.size(), 8u + 32u);  // ≤ 64, the MySQL column
  EXPECT_NE(key, adapters::consumers::webhook_url_key("http://127.0.0.1:8080/b"));
}

}  // namespace
}  // namespace registrar
