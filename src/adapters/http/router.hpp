#pragma once
// The route table: (method, path) → handler. Unknown paths get 404, known paths with another
// method 405 with Allow. Exceptions escaping a handler are mapped here, once, for HTTP.
#include <map>
#include <string>
#include <vector>
#include "adapters/http/types.hpp"
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::http {

class Router {
 public:
  explicit Router(const logging::Logger& log) : log_(log) {}
  void add(beast_http::verb method, std::string path, Handler handler);
  boost::asio::awaitable<Response> handle(const Request& req, RequestContext& ctx) const;

 private:
  struct Route {
    beast_http::verb method;
    Handler handler;
  };
  const logging::Logger& log_;
  std::map<std::string, std::vector<Route>, std::less<>> routes_;
};

// The path of a request target, without the query string.
std::string_view target_path(std::string_view target);

}  // namespace registrar::adapters::http
