#include "adapters/http/router.hpp"
#include "adapters/http/problem.hpp"

namespace registrar::adapters::http {

std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

void Router::add(beast_http::verb method, std::string path, Handler handler) {
  routes_[std::move(path)].push_back({method, std::move(handler)});
}

boost::asio::awaitable<Response> Router::handle(const Request& req, RequestContext& ctx) const {
  auto it = routes_.find(target_path(req.target()));
  if (it == routes_.end())
    co_return problem(req, ctx, {beast_http::status::not_found, "not_found", "Not found", "No such resource"});
  const Handler* handler = nullptr;
  std::string allow;
  for (const auto& r : it->second) {
    if (r.method == req.method() || (req.method() == beast_http::verb::head && r.method == beast_http::verb::get)) handler = &r.handler;
    if (!allow.empty()) allow += ", ";
    allow += std::string(beast_http::to_string(r.method));
  }
  if (!handler) {
    auto res = problem(req, ctx, {beast_http::status::method_not_allowed, "method_not_allowed", "Method not allowed",
                                  "Allowed methods: " + allow});
    res.set(beast_http::field::allow, allow);
    co_return res;
  }
  std::exception_ptr failure;
  try {
    co_return co_await (*handler)(req, ctx);
  } catch (...) {
    failure = std::current_exception();
  }
  // Log the internal message here, at the edge; the client only gets the stable problem.
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& e) {
    log_.error("request failed", {{"requestId", ctx.request_id}, {"error", e.what()}});
  } catch (...) {
    log_.error("request failed", {{"requestId", ctx.request_id}});
  }
  co_return problem(req, ctx, failure);
}

}  // namespace registrar::adapters::http
