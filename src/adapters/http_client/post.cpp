#include "adapters/http_client/post.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <exception>
#include <stdexcept>

#include "adapters/tls/peer_name.hpp"

namespace registrar::adapters::http_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

std::invalid_argument url_error(std::string_view what, std::string_view message) {
  return std::invalid_argument(std::string(what) + ": " + std::string(message));
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

// One POST on its own connection; the response's status (the body is not read). Every step after
// name resolution is bounded by `deadline` (the stream's timer); the resolver by the system
// resolver's own timeouts.
asio::awaitable<unsigned> post_once(const PostUrl& url, ssl::context* tls, http::request<http::string_body>& request,
                                    std::chrono::steady_clock::time_point deadline) {
  auto executor = co_await asio::this_coro::executor;
  tcp::resolver resolver(executor);
  auto endpoints = co_await resolver.async_resolve(url.host, url.port, asio::use_awaitable);
  if (!url.tls) {
    beast::tcp_stream stream(executor);
    stream.expires_at(deadline);
    co_await stream.async_connect(endpoints, asio::use_awaitable);
    const unsigned status = co_await write_and_read_status(stream, request);
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    co_return status;
  }
  beast::ssl_stream<beast::tcp_stream> stream(executor, *tls);
  SSL* handle = stream.native_handle();
  // SNI, and the certificate must name the host (checked by OpenSSL's verification, so that a
  // mismatch has its own verify result, "hostname mismatch", for the message below).
  if (!tls::send_sni(handle, url.host) || !tls::verify_peer_name(SSL_get0_param(handle), url.host))
    throw boost::system::system_error(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
  stream.set_verify_mode(ssl::verify_peer);
  beast::get_lowest_layer(stream).expires_at(deadline);
  co_await beast::get_lowest_layer(stream).async_connect(endpoints, asio::use_awaitable);
  try {
    co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
  } catch (const boost::system::system_error& e) {
    if (e.code() == beast::error::timeout) throw;
    // "certificate verify failed (SSL routines)" and why: "(unable to get local issuer
    // certificate)", "(hostname mismatch)", …; "wrong version number" for a plain-HTTP port.
    std::string reason = "TLS handshake failed: " + e.code().message();
    if (const long verify = SSL_get_verify_result(handle); verify != X509_V_OK)
      reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
    throw std::runtime_error(reason);
  }
  // Connection: close; no TLS close_notify exchange (a server that does not answer it would cost
  // the timeout after the request was accepted).
  co_return co_await write_and_read_status(stream, request);
}

}  // namespace

PostUrl parse_post_url(std::string_view text, std::string_view what, const PostUrlRules& rules) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw url_error(what, "not a valid URL (" + std::to_string(text.size()) + " characters)");
  const auto& u = *parsed;
  PostUrl url;
  if (u.scheme_id() == boost::urls::scheme::https) {
    if (!rules.allow_https) throw url_error(what, rules.https_refusal);
    url.tls = true;
  } else if (u.scheme_id() != boost::urls::scheme::http) {
    throw url_error(what, rules.allow_https ? "only http:// and https:// URLs are supported"
                                            : "only http:// URLs are supported");
  }
  if (u.has_userinfo()) throw url_error(what, "no user:password@ in the URL");
  if (u.host_type() == boost::urls::host_type::none || u.host_address().empty())
    throw url_error(what, "the URL has no host");
  if (u.has_fragment()) throw url_error(what, "unexpected #fragment in the URL");
  url.host = u.host_address();
  if (u.has_port()) {
    if (u.port().empty() || u.port_number() == 0) throw url_error(what, "invalid port in the URL");
    url.port = std::string(u.port());
  } else {
    url.port = url.tls ? "443" : "80";
  }
  url.host_header = std::string(u.encoded_host_and_port());
  url.display = (url.tls ? "https://" : "http://") + url.host_header;
  url.target = u.encoded_path().empty() ? std::string("/") : std::string(u.encoded_path());
  if (u.has_query()) url.target += "?" + std::string(u.encoded_query());
  return url;
}

struct Poster::Tls {
  ssl::context context{ssl::context::tls_client};
};

Poster::Poster(const PosterOptions& options, std::string_view what) {
  if (!options.https) return;
  tls_ = std::make_unique<Tls>();
  auto& ctx = tls_->context;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  ctx.set_verify_mode(ssl::verify_peer);
  try {
    if (options.ca_file.empty()) ctx.set_default_verify_paths();
    else ctx.load_verify_file(options.ca_file);
  } catch (const boost::system::system_error& e) {
    throw std::invalid_argument(std::string(what) + ": cannot load the CA certificates" +
                                (options.ca_file.empty() ? std::string() : " from " + options.ca_file) + ": " +
                                e.code().message());
  }
}

Poster::~Poster() = default;
Poster::Poster(Poster&&) noexcept = default;
Poster& Poster::operator=(Poster&&) noexcept = default;

unsigned Poster::post(const PostUrl& url, http::request<http::string_body>& request,
                      std::chrono::milliseconds timeout) const {
  if (url.tls && !tls_) throw std::logic_error("http client: an https URL for a Poster made without https");
  asio::io_context ioc;
  std::exception_ptr failure;
  unsigned status = 0;
  asio::co_spawn(ioc, post_once(url, tls_ ? &tls_->context : nullptr, request, std::chrono::steady_clock::now() + timeout),
                 [&](std::exception_ptr e, unsigned s) {
                   failure = e;
                   status = s;
                 });
  try {
    ioc.run();
    if (failure) std::rethrow_exception(failure);
  } catch (const boost::system::system_error& e) {
    throw PostFailed(url.display + ": " + (e.code() == beast::error::timeout ? std::string("timed out") : e.code().message()));
  } catch (const std::exception& e) {
    throw PostFailed(url.display + ": " + e.what());
  }
  return status;
}

}  // namespace registrar::adapters::http_client
