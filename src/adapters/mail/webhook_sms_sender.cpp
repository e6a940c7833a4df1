#include "adapters/mail/webhook_sms_sender.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include <exception>
#include <memory>
#include <stdexcept>

#include "ports/errors.hpp"

namespace registrar::adapters::mail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

SmsWebhookSender::Target parse_target(const std::string& url) {
  auto parsed = boost::urls::parse_uri(url);
  // Messages name the URL by scheme and host only: its path or query may hold a key.
  if (!parsed) throw std::invalid_argument("sms webhook: not a valid URL");
  const auto& u = *parsed;
  SmsWebhookSender::Target t;
  if (u.scheme_id() == boost::urls::scheme::https) t.tls = true;
  else if (u.scheme_id() != boost::urls::scheme::http)
    throw std::invalid_argument("sms webhook: only http:// and https:// URLs are supported");
  if (u.has_userinfo()) throw std::invalid_argument("sms webhook: no user:password@ in the URL; use the bearer secret");
  if (u.host_type() == boost::urls::host_type::none || u.host_address().empty())
    throw std::invalid_argument("sms webhook: the URL has no host");
  if (u.has_fragment()) throw std::invalid_argument("sms webhook: unexpected #fragment in the URL");
  t.host = u.host_address();  // IPv6 without brackets
  if (u.has_port()) {
    if (u.port().empty() || u.port_number() == 0) throw std::invalid_argument("sms webhook: invalid port in the URL");
    t.port = std::string(u.port());
  } else {
    t.port = t.tls ? "443" : "80";
  }
  t.host_header = std::string(u.encoded_host_and_port());
  t.display = (t.tls ? "https://" : "http://") + t.host_header;
  t.target = u.encoded_path().empty() ? std::string("/") : std::string(u.encoded_path());
  if (u.has_query()) t.target += "?" + std::string(u.encoded_query());
  return t;
}

bool is_ip_address(const std::string& host) {
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  return !ec;
}

template <class Stream>
asio::awaitable<unsigned> write_and_read_status(Stream& stream, http::request<http::string_body>& request) {
  co_await http::async_write(stream, request, asio::use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.header_limit(16 * 1024);
  co_await http::async_read_header(stream, buffer, parser, asio::use_awaitable);
  co_return parser.get().result_int();
}

// One POST on its own connection; returns the response status (the body is not read). Every
// step after name resolution is bounded by `deadline` (the stream's timer).
asio::awaitable<unsigned> post(const SmsWebhookSender::Target& t, ssl::context* tls,
                               http::request<http::string_body>& request,
                               std::chrono::steady_clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(t.host, t.port, asio::use_awaitable);
  if (!t.tls) {
    beast::tcp_stream stream(executor);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::use_awaitable);
    co_return co_await write_and_read_status(stream, request);
  }
  beast::ssl_stream<beast::tcp_stream> stream(executor, *tls);
  // SNI for host names (not for IP addresses, RFC 6066 §3); the certificate must name the host.
  if (!is_ip_address(t.host) && !SSL_set_tlsext_host_name(stream.native_handle(), t.host.c_str()))
    throw boost::system::system_error(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
  stream.set_verify_mode(ssl::verify_peer);
  stream.set_verify_callback(ssl::host_name_verification(t.host));
  beast::get_lowest_layer(stream).expires_at(deadline);
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
  co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
  const unsigned status = co_await write_and_read_status(stream, request);
  // Connection: close; no TLS close_notify exchange (a gateway that does not answer it would cost
  // us the timeout after the message was accepted).
  co_return status;
}

}  // namespace

struct SmsWebhookSender::Tls {
  ssl::context context{ssl::context::tls_client};
};

std::string sms_webhook_body(const ports::MailMessage& message) {
  boost::json::object o;
  o["channel"] = message.channel;
  o["to"] = message.to;
  o["body"] = message.body;
  if (message.code) o["code"] = *message.code;
  if (!message.session_id.empty()) o["session"] = message.session_id;
  o["idempotencyKey"] = message.idempotency_key;
  return boost::json::serialize(o);
}

SmsWebhookSender::SmsWebhookSender(SmsWebhookOptions options)
    : options_(std::move(options)), target_(parse_target(options_.url)) {
  if (options_.timeout <= std::chrono::milliseconds::zero())
    throw std::invalid_argument("sms webhook: the timeout must be positive");
  if (target_.tls) {
    tls_ = std::make_unique<Tls>();
    auto& ctx = tls_->context;
    ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                    ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    ctx.set_verify_mode(ssl::verify_peer);
    try {
      if (options_.ca_file.empty()) ctx.set_default_verify_paths();
      else ctx.load_verify_file(options_.ca_file);
    } catch (const boost::system::system_error& e) {
      throw std::invalid_argument("sms webhook: cannot load the CA certificates" +
                                  (options_.ca_file.empty() ? std::string() : " from " + options_.ca_file) + ": " +
                                  e.code().message());
    }
  }
}

SmsWebhookSender::~SmsWebhookSender() = default;

void SmsWebhookSender::send(const ports::MailMessage& message) {
  if (message.channel != "sms")
    throw std::invalid_argument("sms webhook: cannot send a message of channel \"" + message.channel + "\"");
  http::request<http::string_body> request{http::verb::post, target_.target, 11};
  request.set(http::field::host, target_.host_header);
  request.set(http::field::user_agent, options_.user_agent);
  request.set(http::field::content_type, "application/json");
  request.set(http::field::connection, "close");
  if (!message.idempotency_key.empty()) request.set("Idempotency-Key", message.idempotency_key);
  if (!options_.bearer_secret.empty()) request.set(http::field::authorization, "Bearer " + options_.bearer_secret);
  request.body() = sms_webhook_body(message);
  request.prepare_payload();

  asio::io_context ioc;
  std::exception_ptr failure;
  unsigned status = 0;
  asio::co_spawn(ioc, post(target_, tls_ ? &tls_->context : nullptr, request,
                           std::chrono::steady_clock::now() + options_.timeout),
                 [&](std::exception_ptr e, unsigned s) {
                   failure = e;
                   status = s;
                 });
  // Messages name the gateway by scheme and host, never the number or the code.
  try {
    ioc.run();
    if (failure) std::rethrow_exception(failure);
  } catch (const boost::system::system_error& e) {
    throw ports::BackendUnavailable("sms webhook " + target_.display + ": " +
                                    (e.code() == beast::error::timeout ? std::string("timed out") : e.code().message()));
  } catch (const std::exception& e) {
    throw ports::BackendUnavailable("sms webhook " + target_.display + ": " + e.what());
  }
  if (status >= 200 && status < 300) return;
  const std::string what = "sms webhook " + target_.display + ": HTTP " + std::to_string(status);
  if (status == 408 || status == 429 || status >= 500 || status < 200) throw ports::BackendUnavailable(what);
  throw ports::MailRejected(what);
}

}  // namespace registrar::adapters::mail
