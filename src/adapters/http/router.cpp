#include "adapters/http/router.hpp"

#include <algorithm>
#include <boost/asio/this_coro.hpp>
#include <boost/url/decode_view.hpp>
#include <boost/url/grammar/parse.hpp>
#include <boost/url/rfc/pchars.hpp>
#include <boost/url/rfc/pct_encoded_rule.hpp>
#include <stdexcept>
#include "adapters/http/problem.hpp"

namespace registrar::adapters::http {

namespace {

// The path's segments after the leading '/'; "/a/b/" gives "a", "b", "".
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  if (path.empty() || path.front() != '/') return out;
  path.remove_prefix(1);
  for (;;) {
    const auto slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

// A segment percent-decoded with Boost.URL; nothing if it is not valid percent-encoding.
std::optional<std::string> decode_segment(std::string_view segment) {
  auto valid = boost::urls::grammar::parse(segment, boost::urls::pct_encoded_rule(boost::urls::pchars));
  if (!valid) return std::nullopt;
  const boost::urls::decode_view decoded = **valid;
  return std::string(decoded.begin(), decoded.end());
}

}  // namespace

std::string_view target_path(std::string_view target) { return target.substr(0, target.find('?')); }

Response take_over(const Request& req, RequestContext& ctx, StreamHandler handler) {
  ctx.take_over = std::move(handler);
  return Response{beast_http::status::switching_protocols, req.version()};
}

bool Router::more_specific(const Route& a, const Route& b) {
  const auto n = std::min(a.segments.size(), b.segments.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a.segments[i].kind != b.segments[i].kind) return a.segments[i].kind < b.segments[i].kind;
  }
  // Same shape so far: the longer pattern is the more specific (a prefix after it matches less).
  return a.segments.size() > b.segments.size();
}

void Router::add(beast_http::verb method, std::string_view pattern, Handler handler) {
  Route route{std::string(pattern), {}, method, std::move(handler)};
  const auto parts = split_path(pattern);
  if (parts.empty()) throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto p = parts[i];
    if (p == "*") {
      if (i + 1 != parts.size()) throw std::invalid_argument("'*' must end a route pattern: " + std::string(pattern));
      route.segments.push_back({Segment::Kind::rest, "*"});
    } else if (p.size() > 2 && p.front() == '{' && p.back() == '}') {
      route.segments.push_back({Segment::Kind::param, std::string(p.substr(1, p.size() - 2))});
    } else {
      route.segments.push_back({Segment::Kind::literal, std::string(p)});
    }
  }
  // Stable: among equally specific patterns, the first added comes first.
  auto at = std::upper_bound(routes_.begin(), routes_.end(), route,
                             [](const Route& a, const Route& b) { return more_specific(a, b); });
  routes_.insert(at, std::move(route));
}

void Router::add_held(beast_http::verb method, std::string_view pattern, HeldHandler handler) {
  add(method, pattern, [handler = std::move(handler)](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    auto reply = std::make_shared<HeldReply>(co_await boost::asio::this_coro::executor);
    reply->on_drain([&req, &ctx] { return problem(req, ctx, {problems::shutting_down, "The server is shutting down"}); });
    if (ctx.connection) ctx.connection->on_drain([reply] { reply->drain(); });
    // Once answered, neither the connection nor the reply may call back into this request.
    struct ClearHooks {
      ConnectionControl* connection;
      HeldReply& reply;
      ~ClearHooks() {
        if (connection) connection->on_drain({});
        reply.on_drain({});
      }
    } clear{ctx.connection, *reply};
    handler(req, ctx, reply);
    co_return co_await reply->wait();
  });
}

void Router::add_stream(beast_http::verb method, std::string_view pattern, StreamHandler handler) {
  add(method, pattern, [handler = std::move(handler)](const Request& req, RequestContext& ctx) -> boost::asio::awaitable<Response> {
    co_return take_over(req, ctx, handler);
  });
}

bool Router::match(const Route& route, std::string_view path, std::vector<std::pair<std::string, std::string>>& params) {
  const auto parts = split_path(path);
  params.clear();
  std::size_t i = 0;
  for (; i < route.segments.size(); ++i) {
    const auto& seg = route.segments[i];
    if (seg.kind == Segment::Kind::rest) {
      // The prefix needs its trailing '/': `/socket.io/*` matches `/socket.io/…`, not `/socket.io`.
      if (i >= parts.size()) return false;
      // The rest of the path after the prefix's i + 1 slashes, as sent (the handler parses it).
      std::size_t at = 0;
      for (std::size_t slashes = 0; slashes <= i; ++slashes) at = path.find('/', at) + 1;
      params.emplace_back("*", std::string(path.substr(at)));
      return true;
    }
    if (i >= parts.size()) return false;
    if (seg.kind == Segment::Kind::literal) {
      if (parts[i] != seg.text) return false;
    } else {
      auto value = decode_segment(parts[i]);
      if (!value || value->empty()) return false;
      params.emplace_back(seg.text, std::move(*value));
    }
  }
  return i == parts.size();
}

boost::asio::awaitable<Response> Router::handle(const Request& req, RequestContext& ctx) const {
  const std::string_view path = target_path(req.target());
  const Route* resource = nullptr;  // the most specific pattern the path matches
  const Handler* handler = nullptr;
  std::string allow;
  std::vector<std::pair<std::string, std::string>> params;
  for (const auto& route : routes_) {
    if (resource && route.pattern != resource->pattern) continue;
    if (!resource && !match(route, path, params)) continue;
    if (!resource) {
      resource = &route;
      ctx.params = params;
    }
    if (!handler && (route.method == req.method() ||
                     (req.method() == beast_http::verb::head && route.method == beast_http::verb::get)))
      handler = &route.handler;
    if (!allow.empty()) allow += ", ";
    allow += std::string(beast_http::to_string(route.method));
  }
  if (!resource) co_return problem(req, ctx, {problems::not_found, "No such resource"});
  if (!handler) {
    auto res = problem(req, ctx, {problems::method_not_allowed, "Allowed methods: " + allow});
    res.set(beast_http::field::allow, allow);
    co_return res;
  }
  co_return co_await (*handler)(req, ctx);
}

}  // namespace registrar::adapters::http
