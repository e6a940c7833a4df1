#include "adapters/http/middleware.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <random>
#include "adapters/http/problem.hpp"
#include "adapters/sodium/hex.hpp"

namespace registrar::adapters::http {

namespace asio = boost::asio;

namespace {

std::string new_request_id() {
  // Correlation only, not a secret: a fast per-thread PRNG is enough (12 bytes, 24 hex digits).
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::array<unsigned char, 12> bytes;
  for (std::size_t i = 0; i < bytes.size(); i += 6) {
    auto v = rng();
    for (std::size_t k = 0; k < 6; ++k, v >>= 8) bytes[i + k] = static_cast<unsigned char>(v);
  }
  return sodium::hex_encode(bytes);
}

// All X-Forwarded-For fields of `req` as one list, in order (RFC 9110 §5.3).
std::string forwarded_for(const Request& req) {
  // Beast has no enumerator for X-Forwarded-For (not a registered field): look it up by name.
  std::string out;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) {
    if (!out.empty()) out += ", ";
    out += it->value();
  }
  return out;
}

}  // namespace

std::string request_id_for(const Request& req) {
  auto given = req["X-Request-Id"];
  if (!given.empty() && given.size() <= 64 && std::all_of(given.begin(), given.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
      }))
    return std::string(given);
  return new_request_id();
}

asio::awaitable<Response> Next::operator()(const Request& req, RequestContext& ctx) const {
  if (index_ == pipeline_->middleware_.size()) return (*terminal_)(req, ctx);
  return pipeline_->middleware_[index_](req, ctx, Next(*pipeline_, index_ + 1, *terminal_));
}

Pipeline::Pipeline(const Router& router)
    : router_(router), to_router_([this](const Request& req, RequestContext& ctx) { return router_.handle(req, ctx); }) {}

Pipeline& Pipeline::use(Middleware middleware) {
  middleware_.push_back(std::move(middleware));
  return *this;
}

asio::awaitable<Response> Pipeline::handle(const Request& req, RequestContext& ctx) const {
  return Next(*this, 0, to_router_)(req, ctx);
}

asio::awaitable<Response> Pipeline::handle(const Request& req, RequestContext& ctx, const Handler& terminal) const {
  return Next(*this, 0, terminal)(req, ctx);
}

namespace middleware {

Middleware client_address(TrustedProxies trusted) {
  return [trusted = std::move(trusted)](const Request& req, RequestContext& ctx, Next next) -> asio::awaitable<Response> {
    boost::system::error_code ec;
    auto peer = asio::ip::make_address(ctx.peer_ip, ec);
    if (!ec) {
      // Only a trusted peer's header is read at all; from anyone else it is ignored.
      ctx.client_ip = trusted.trusts(unmapped(peer)) ? trusted.client_ip(peer, forwarded_for(req))
                                                      : unmapped(peer).to_string();
    } else {
      ctx.client_ip = ctx.peer_ip;
    }
    co_return co_await next(req, ctx);
  };
}

Middleware request_id() {
  return [](const Request& req, RequestContext& ctx, Next next) -> asio::awaitable<Response> {
    ctx.request_id = request_id_for(req);
    Response res = co_await next(req, ctx);
    res.set("X-Request-Id", ctx.request_id);
    co_return res;
  };
}

Middleware access_log(const logging::Logger& log) {
  return [&log](const Request& req, RequestContext& ctx, Next next) -> asio::awaitable<Response> {
    Response res = co_await next(req, ctx);
    if (log.enabled(logging::Level::info)) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - ctx.started).count();
      log.info("request", {{"requestId", ctx.request_id},
                           {"method", std::string(req.method_string().substr(0, 16))},
                           {"path", std::string(target_path(req.target()).substr(0, 256))},
                           {"status", res.result_int()},
                           {"durationUs", us},
                           {"client", ctx.client_ip}});
    }
    co_return res;
  };
}

Middleware map_exceptions(FailureReport on_failure) {
  return [on_failure = std::move(on_failure)](const Request& req, RequestContext& ctx, Next next) -> asio::awaitable<Response> {
    std::exception_ptr failure;
    try {
      co_return co_await next(req, ctx);
    } catch (...) {
      failure = std::current_exception();
    }
    on_failure(req, ctx, failure);
    co_return problem(req, ctx, failure);
  };
}

FailureReport log_each_failure(const logging::Logger& log) {
  return [&log](const Request&, const RequestContext& ctx, std::exception_ptr failure) {
    log.error("request failed", {{"requestId", ctx.request_id}, {"error", internal_message(failure)}});
  };
}

FailureReport report_episodes(logging::FailureEpisodes& episodes) {
  return [&episodes](const Request&, const RequestContext& ctx, std::exception_ptr failure) {
    episodes.failure(problem_type_of(failure).code, "request failed",
                     {{"requestId", ctx.request_id}, {"error", internal_message(failure)}});
  };
}

Pipeline& use_standard(Pipeline& pipeline, const logging::Logger& log, StandardMiddleware options) {
  pipeline.use(client_address(std::move(options.trusted_proxies))).use(request_id());
  if (options.access_log) pipeline.use(access_log(log));
  pipeline.use(map_exceptions(options.on_failure ? std::move(options.on_failure) : log_each_failure(log)));
  return pipeline;
}

}  // namespace middleware

}  // namespace registrar::adapters::http
