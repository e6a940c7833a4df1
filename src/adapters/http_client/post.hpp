#pragma once
// One-shot outbound HTTP POSTs for the senders that call a configured URL: the event webhook
// (adapters/consumers) and the SMS gateway (adapters/mail). Boost.Beast over Boost.Asio, with its
// SSL stream on OpenSSL for https: the stack the HTTP server already uses.
//
//   auto url = parse_post_url(text, "sms webhook", {.allow_https = true});
//   Poster poster({.ca_file = ...});
//   unsigned status = poster.post(url, request, timeout);   // throws PostFailed
//
// Over https the server's certificate is verified (chain against the system's CA store or
// `ca_file`, and the URL's host name or IP address), with SNI for host names; no fallback to
// plain text. Each post() opens its own connection (callers send `Connection: close`), runs its
// own short-lived io_context on the calling thread (callers run it off the I/O threads) and reads
// only the response head. Every step after name resolution is bounded by the timeout. Thread-safe.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace registrar::adapters::http_client {

struct PostUrl {
  bool tls = false;
  std::string host;         // a name or an IP address (IPv6 without brackets)
  std::string port;         // explicit, or 80 / 443
  std::string host_header;  // as the URL spells host[:port]
  std::string target;       // path and query
  std::string display;      // scheme://host[:port]: what messages show (a path or query may hold a key)
};

struct PostUrlRules {
  bool allow_https = true;
  // Said when an https:// URL is refused (allow_https false).
  std::string_view https_refusal = "https:// URLs are not supported here; use http://";
};

// Parses an http:// or https:// URL with a host; refuses user:password@, a #fragment, a zero or
// empty port. `what` starts each message ("webhook: …"); messages never quote the URL (its path or
// query may hold a key). Throws std::invalid_argument.
PostUrl parse_post_url(std::string_view url, std::string_view what, const PostUrlRules& rules = {});

// The exchange did not give an HTTP status: cannot resolve or connect, TLS failure (an
// unverifiable certificate included), timed out, or an answer that is not HTTP. what() names the
// URL by its display form and the cause, never the request.
class PostFailed : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PosterOptions {
  bool https = false;   // load a TLS client context (only then may post() take an https URL)
  std::string ca_file;  // https: PEM bundle to verify servers with; empty: the system's CAs
};

class Poster {
 public:
  // Throws std::invalid_argument if the CA certificates cannot be loaded; `what` starts the message.
  // An https URL given to a Poster made without `https` is a programming error (std::logic_error).
  explicit Poster(const PosterOptions& options = {}, std::string_view what = "http client");
  ~Poster();
  Poster(Poster&&) noexcept;
  Poster& operator=(Poster&&) noexcept;

  // Sends `request` to `url` and returns the response's status code.
  unsigned post(const PostUrl& url, boost::beast::http::request<boost::beast::http::string_body>& request,
                std::chrono::milliseconds timeout) const;

 private:
  struct Tls;  // the OpenSSL client context, kept out of this header
  std::unique_ptr<Tls> tls_;
};

}  // namespace registrar::adapters::http_client
