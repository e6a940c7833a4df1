#pragma once
// HTTP/1.1 server on Boost.Beast: one coroutine per connection on its own strand, requests on a
// connection handled strictly in order (pipelining-safe), limits on header and body size,
// timeouts for the head, the body and keep-alive idling, and a graceful drain on stop().
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <unordered_map>
#include "adapters/http/router.hpp"
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::http {

struct ServerOptions {
  std::size_t body_limit = 16 * 1024;
  std::size_t header_limit = 8 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds body_timeout{30'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds write_timeout{30'000};
  bool access_log = true;
};

// The request id of `req`: a client-supplied X-Request-Id when it is short and plain (it is logged
// and echoed), else a fresh random one.
std::string request_id_for(const Request& req);

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& ioc, const Router& router, const logging::Logger& log, ServerOptions options);
  ~HttpServer();

  // Binds and starts accepting; returns the bound endpoint (port 0 → the port picked).
  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& endpoint);

  // Graceful: stop accepting, close idle keep-alive connections, let in-flight requests finish
  // (their responses carry Connection: close). Safe to call from any thread.
  void drain();
  // Hard stop after the grace period: closes every connection.
  void close_all();
  std::size_t connection_count() const;

 private:
  struct Connection;
  boost::asio::awaitable<void> accept_loop();
  boost::asio::awaitable<void> serve(std::shared_ptr<Connection> conn);
  void forget(Connection* conn);

  boost::asio::io_context& ioc_;
  const Router& router_;
  const logging::Logger& log_;
  ServerOptions options_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::atomic<bool> draining_{false};
  mutable std::mutex mutex_;
  std::unordered_map<Connection*, std::weak_ptr<Connection>> connections_;
};

}  // namespace registrar::adapters::http
