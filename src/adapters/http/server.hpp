#pragma once
// The HTTP server, in the parts of Beast's chat-multi example: a Listener accepts, an HttpSession
// serves each connection (taken over by a route where one asks), and one ConnectionRegistry holds
// every open connection so that the shutdown drain reaches each, whatever it carries.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include "adapters/http/connection_registry.hpp"
#include "adapters/http/http_session.hpp"
#include "adapters/http/listener.hpp"
#include "adapters/http/middleware.hpp"
#include "adapters/http/server_tls.hpp"
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::http {

class HttpServer {
 public:
  // `pipeline` (middleware + router) and `log` must outlive the server; so must `tls`, when given:
  // then every connection speaks TLS with the certificate current when it is accepted.
  HttpServer(boost::asio::io_context& ioc, const Pipeline& pipeline, const logging::Logger& log, ServerOptions options,
             const ServerTls* tls = nullptr);

  // Binds and starts accepting; returns the bound endpoint (port 0 → the port picked).
  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& endpoint);

  // Graceful: stop accepting, close idle keep-alive connections, let in-flight requests finish
  // (their responses carry Connection: close), answer held requests and drain taken-over
  // connections (each route says how). Safe to call from any thread.
  void drain();
  // Hard stop after the grace period: closes every connection.
  void close_all();
  std::size_t connection_count() const { return registry_.size(); }

 private:
  const Pipeline& pipeline_;
  const logging::Logger& log_;
  ServerOptions options_;
  const ServerTls* tls_;
  ConnectionRegistry registry_;
  Listener listener_;
};

}  // namespace registrar::adapters::http
