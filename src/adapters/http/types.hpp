#pragma once
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace registrar::adapters::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;

// Per-request facts a handler may use (and the access log reports).
struct RequestContext {
  std::string request_id;
  std::string remote;  // peer address
  std::chrono::steady_clock::time_point started;
};

using Handler = std::function<boost::asio::awaitable<Response>(const Request&, RequestContext&)>;

}  // namespace registrar::adapters::http
