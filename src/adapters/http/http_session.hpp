#pragma once
// One HTTP/1.1 connection: read a request → run it through the pipeline → write the answer, in
// order (pipelining-safe), on the connection's own strand. It enforces the request-head and body
// size limits, the head/body/idle/write timeouts and the framing and Host checks before anything
// routes the request, answers 100-continue, and closes with a lingering read after refusing a body.
// A route may take the connection over (takeover.hpp) or hold its request (held_reply.hpp); either
// way the session stays in the registry, so the shutdown drain reaches it, unless the take-over
// hands the connection off for good (Takeover::detach: its new owner registers itself). Over TLS (stream.hpp)
// the handshake comes first, within the head timeout, and the close sends close_notify.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include "adapters/http/connection_registry.hpp"
#include "adapters/http/middleware.hpp"
#include "adapters/http/problem.hpp"
#include "adapters/http/stream.hpp"
#include "adapters/http/takeover.hpp"
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::http {

struct ServerOptions {
  std::size_t body_limit = 16 * 1024;
  std::size_t header_limit = 8 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};
};

class HttpSession final : public RegisteredConnection,
                          public ConnectionControl,
                          public StreamOwner,
                          public std::enable_shared_from_this<HttpSession> {
 public:
  // TLS with `tls` (the server's certificate when the connection was accepted), plain without.
  HttpSession(boost::asio::ip::tcp::socket socket, std::shared_ptr<boost::asio::ssl::context> tls,
              const Pipeline& pipeline, const ServerOptions& options, ConnectionRegistry& registry,
              const logging::Logger& log);

  // Registers the session and starts serving it on its strand.
  void start();

  void drain() override;
  void close() override;
  void on_drain(std::function<void()> hook) override;
  HttpStream release_stream() override;
  ConnectionRegistry& registry() override { return registry_; }

 private:
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<void> serve();
  // Reads one request; nothing when the connection is to end (answered or not).
  boost::asio::awaitable<std::optional<Request>> read_request(bool first);
  // Reads the rest of a request head whose first bytes are in: the error, or header_timeout's
  // beast::error::timeout with the connection still open (to answer 408 on).
  boost::asio::awaitable<boost::system::error_code> read_head(
      boost::beast::http::request_parser<boost::beast::http::string_body>& parser);
  // Runs a problem the session found itself through the pipeline and writes it; then the connection closes.
  boost::asio::awaitable<void> refuse(const Request& req, const ProblemSpec& spec, bool linger);
  boost::asio::awaitable<bool> write(Response& res, bool keep_alive);
  boost::asio::awaitable<void> close_gracefully();
  boost::asio::awaitable<void> linger(std::chrono::seconds at_most);
  void log_failure(std::exception_ptr error) const;

  HttpStream stream_;
  const HttpStream::executor_type executor_;  // the connection's strand (the stream may be handed off)
  boost::beast::flat_buffer buffer_;
  const Pipeline& pipeline_;
  const ServerOptions& options_;
  ConnectionRegistry& registry_;
  const logging::Logger& log_;
  ConnectionRegistry::Registration registration_;
  std::string peer_ip_;
  // Only touched on the strand:
  bool idle_ = true;                  // waiting for the next request: drain() may close it now
  bool linger_ = false;               // a refused body may still be arriving: drain it before closing
  bool secured_ = false;              // the TLS handshake is through: close with close_notify
  bool released_ = false;             // the stream was handed off (Takeover::detach): not ours to close
  std::function<void()> drain_hook_;  // a held request's or taken-over connection's drain
  RequestContext ctx_;                // of the request being served (for the failure log too)
};

}  // namespace registrar::adapters::http
