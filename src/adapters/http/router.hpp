#pragma once
// The route table: (method, path pattern) → handler. Unknown paths get 404, known paths with
// another method 405 with Allow; HEAD is served by a GET route.
//
// Patterns are literal segments, `{name}` parameters (one non-empty segment, percent-decoded, in
// RequestContext::params) and a trailing `*` for prefix routes (`/socket.io/*` matches
// `/socket.io/` and everything under it; the rest is the parameter "*"). A literal segment beats a
// parameter, and a parameter beats a prefix, at the first segment where two patterns differ.
//
// Three kinds of route:
//  - add():          a handler that answers (request → response);
//  - add_held():     a request answered later, from any thread (a long-poll): see HeldReply;
//  - add_stream():   a handler that takes the connection over after the request passed every
//                    check and every middleware (a WebSocket upgrade): see Takeover.
// Exceptions from handlers are mapped by middleware (middleware.hpp), not here.
#include <memory>
#include <string>
#include <vector>
#include "adapters/http/held_reply.hpp"
#include "adapters/http/takeover.hpp"
#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

// Starts a held request: keep `reply` and answer it when the event comes (any thread).
using HeldHandler = std::function<void(const Request&, RequestContext&, std::shared_ptr<HeldReply> reply)>;

class Router {
 public:
  void add(beast_http::verb method, std::string_view pattern, Handler handler);
  void add_held(beast_http::verb method, std::string_view pattern, HeldHandler handler);
  void add_stream(beast_http::verb method, std::string_view pattern, StreamHandler handler);

  // Finds the route and runs its handler; 404/405 when there is none.
  boost::asio::awaitable<Response> handle(const Request& req, RequestContext& ctx) const;

 private:
  struct Segment {
    enum class Kind { literal, param, rest } kind;
    std::string text;  // the literal, or the parameter's name
  };
  struct Route {
    std::string pattern;
    std::vector<Segment> segments;
    beast_http::verb method;
    Handler handler;
  };
  // Whether `path` matches `route`; fills `params` when it does.
  static bool match(const Route& route, std::string_view path, std::vector<std::pair<std::string, std::string>>& params);
  // Orders routes so that the first matching pattern is the most specific one.
  static bool more_specific(const Route& a, const Route& b);

  std::vector<Route> routes_;  // sorted by more_specific
};

// The path of a request target, without the query string.
std::string_view target_path(std::string_view target);

}  // namespace registrar::adapters::http
