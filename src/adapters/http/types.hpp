#pragma once
// The vocabulary of the HTTP adapter: requests, responses, the per-request context, handlers.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace registrar::adapters::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;

// What a handler that holds on to a request (a long-poll answer, a taken-over stream) tells the
// connection it runs on: how to end early when the server drains. Used on the connection's strand.
class ConnectionControl {
 public:
  virtual ~ConnectionControl() = default;
  // `hook` runs (on the connection's strand) if the server starts draining while it is set; it
  // should make the held request end soon (answer it, send a close frame). Cleared with {}.
  virtual void on_drain(std::function<void()> hook) = 0;
};

struct Takeover;
// Runs a taken-over connection until it ends (takeover.hpp).
using StreamHandler = std::function<boost::asio::awaitable<void>(Takeover&)>;

// Per-request facts that middleware fills in and handlers may use.
struct RequestContext {
  std::string request_id;
  // The client's IP address: the peer's, or, when the peer is a trusted proxy, the one its
  // X-Forwarded-For names (middleware::client_address). Never with a port.
  std::string client_ip;
  std::string peer_ip;  // the TCP peer's IP address
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // Path parameters of the matched route (`{id}` → ("id", value, percent-decoded)); a prefix
  // route's remainder is the parameter "*".
  std::vector<std::pair<std::string, std::string>> params{};
  ConnectionControl* connection = nullptr;  // null outside a server (tests, fuzzing)
  StreamHandler take_over{};                 // set by take_over(): the session hands the connection to it

  // The value of path parameter `name` (empty if the route has none of that name).
  std::string_view param(std::string_view name) const {
    for (const auto& [k, v] : params)
      if (k == name) return v;
    return {};
  }
};

using Handler = std::function<boost::asio::awaitable<Response>(const Request&, RequestContext&)>;

}  // namespace registrar::adapters::http
