#pragma once
// A TCP server on 127.0.0.1 for tests that need a peer (fake SMTP, webhook receivers): listens on
// a free port of its own, runs one io_context thread, and serves each accepted connection with a
// coroutine the owner provides. Stopping it (the destructor) abandons connections still open.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdint>
#include <functional>
#include <thread>
#include <utility>

namespace registrar::testing {

class LoopbackServer {
 public:
  using tcp = boost::asio::ip::tcp;
  // Called on the server's thread for each accepted connection, in accept order; the coroutine it
  // returns serves that connection.
  using Handler = std::function<boost::asio::awaitable<void>(tcp::socket)>;

  // An owner whose handler touches the owner's members declares its LoopbackServer after them,
  // so that the server thread has stopped before they go.
  explicit LoopbackServer(Handler handler) : handler_(std::move(handler)), acceptor_(ioc_) {
    const tcp::endpoint ep(boost::asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    boost::asio::co_spawn(ioc_, accept_loop(), boost::asio::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~LoopbackServer() {
    ioc_.stop();
    thread_.join();
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::uint16_t port() const { return port_; }

 private:
  boost::asio::awaitable<void> accept_loop() {
    for (;;) {
      auto socket = co_await acceptor_.async_accept(boost::asio::use_awaitable);
      boost::asio::co_spawn(ioc_, handler_(std::move(socket)), boost::asio::detached);
    }
  }

  Handler handler_;
  boost::asio::io_context ioc_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace registrar::testing
