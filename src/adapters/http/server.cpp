#include "adapters/http/server.hpp"

#include <memory>

namespace registrar::adapters::http {

HttpServer::HttpServer(boost::asio::io_context& ioc, const Pipeline& pipeline, const logging::Logger& log,
                       ServerOptions options, const ServerTls* tls)
    : pipeline_(pipeline),
      log_(log),
      options_(options),
      tls_(tls),
      listener_(ioc, log, [this](boost::asio::ip::tcp::socket socket) {
        std::make_shared<HttpSession>(std::move(socket), tls_ ? tls_->current() : nullptr, pipeline_, options_,
                                      registry_, log_)
            ->start();
      }) {}

boost::asio::ip::tcp::endpoint HttpServer::listen(const boost::asio::ip::tcp::endpoint& endpoint) {
  return listener_.listen(endpoint);
}

void HttpServer::drain() {
  listener_.stop();
  registry_.drain_all();
}

void HttpServer::close_all() { registry_.close_all(); }

}  // namespace registrar::adapters::http
