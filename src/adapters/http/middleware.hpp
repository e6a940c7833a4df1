#pragma once
// The middleware seam: ordered filters around every request, outermost first. Each one may look
// at the request and the context, answer by itself, or call `next` and look at the response. The
// HTTP session runs every request through the pipeline, including the answers it makes itself
// (a 400 for bad framing, a 413), so that every response gets a request id and an access-log line.
#include <cstddef>
#include <functional>
#include <vector>
#include "adapters/http/client_address.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/types.hpp"
#include "adapters/logging/failure_episodes.hpp"
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::http {

class Pipeline;

// The rest of the pipeline after a middleware. Cheap to copy; valid while the request runs.
class Next {
 public:
  boost::asio::awaitable<Response> operator()(const Request& req, RequestContext& ctx) const;

 private:
  friend class Pipeline;
  Next(const Pipeline& pipeline, std::size_t index, const Handler& terminal)
      : pipeline_(&pipeline), index_(index), terminal_(&terminal) {}
  const Pipeline* pipeline_;
  std::size_t index_;
  const Handler* terminal_;
};

using Middleware = std::function<boost::asio::awaitable<Response>(const Request&, RequestContext&, Next next)>;

class Pipeline {
 public:
  // Requests that pass every middleware go to `router` (which must outlive the pipeline).
  explicit Pipeline(const Router& router);
  Pipeline(const Pipeline&) = delete;  // its route to the router points at itself
  Pipeline& operator=(const Pipeline&) = delete;
  // Appends a middleware: the first added is the outermost.
  Pipeline& use(Middleware middleware);

  // Runs the request through the middleware to the router.
  boost::asio::awaitable<Response> handle(const Request& req, RequestContext& ctx) const;
  // Runs the request through the middleware to `terminal` instead (the session's own answers).
  boost::asio::awaitable<Response> handle(const Request& req, RequestContext& ctx, const Handler& terminal) const;

 private:
  friend class Next;
  const Router& router_;
  Handler to_router_;
  std::vector<Middleware> middleware_;
};

namespace middleware {

// ctx.client_ip: the peer's IP, or the client a trusted proxy's X-Forwarded-For names.
Middleware client_address(TrustedProxies trusted);

// ctx.request_id: a client-supplied X-Request-Id when it is short and plain (it is logged and
// echoed), else a fresh random one; echoed in the response's X-Request-Id.
Middleware request_id();

// One log line per request: id, method, path (never the query: it may carry a token), status,
// duration, client IP. Never headers or bodies.
Middleware access_log(const logging::Logger& log);

// An exception that escapes the handler becomes its problem answer (503 for overload and
// unavailable backends, else 500 without detail); `on_failure` reports it (the internal message
// is logged there, never sent to the client).
using FailureReport = std::function<void(const Request&, const RequestContext&, std::exception_ptr)>;
Middleware map_exceptions(FailureReport on_failure);
// The default report: one error line per failed request with its id and the internal message.
FailureReport log_each_failure(const logging::Logger& log);
// The service's report: failures as episodes per problem type (one line when a run of failures
// starts, summaries while it lasts, one when it ends); each request's own line at debug level.
FailureReport report_episodes(logging::FailureEpisodes& episodes);

// The service's middleware, outermost first: client_address, request_id, access_log (when
// enabled), map_exceptions. Later middleware (rate limits, metrics, admin authentication) joins here.
struct StandardMiddleware {
  TrustedProxies trusted_proxies{};
  bool access_log = true;
  FailureReport on_failure{};  // empty: log_each_failure
};
Pipeline& use_standard(Pipeline& pipeline, const logging::Logger& log, StandardMiddleware options);

}  // namespace middleware

// The request id rule of middleware::request_id, for callers outside a pipeline (fuzzing).
std::string request_id_for(const Request& req);

}  // namespace registrar::adapters::http
