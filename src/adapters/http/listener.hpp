#pragma once
// The accept loop: binds, accepts connections onto strands of their own and hands each socket on.
// When accepting fails (descriptors exhausted: EMFILE/ENFILE), it pauses instead of spinning and
// logs one line per episode.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::http {

class Listener {
 public:
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket)>;
  Listener(boost::asio::io_context& ioc, const logging::Logger& log, OnAccept on_accept);

  // Binds and starts accepting; returns the bound endpoint (port 0 → the port picked).
  boost::asio::ip::tcp::endpoint listen(const boost::asio::ip::tcp::endpoint& endpoint);
  // Stops accepting (closes the listening socket). Any thread; idempotent.
  void stop();

 private:
  boost::asio::awaitable<void> accept_loop();

  boost::asio::io_context& ioc_;
  const logging::Logger& log_;
  OnAccept on_accept_;
  boost::asio::ip::tcp::acceptor acceptor_;
};

}  // namespace registrar::adapters::http
