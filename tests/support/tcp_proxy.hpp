#pragma once
// A TCP relay on 127.0.0.1 between a client under test and a real server, for faults no server
// can be asked to make: cut_next_reply() lets the server receive and answer the next request, then
// drops that answer and closes the connection, so the client sees a lost connection for a request
// the server did apply (the "outcome unknown" case of a network failure).
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "support/loopback_server.hpp"

namespace registrar::testing {

class TcpProxy {
 public:
  TcpProxy(std::string upstream_host, std::uint16_t upstream_port)
      : host_(std::move(upstream_host)), port_(upstream_port), server_([this](tcp::socket s) { return serve(std::move(s)); }) {}

  std::uint16_t port() const { return server_.port(); }
  // The next data any server sends back is dropped and its connection closed (both ends).
  void cut_next_reply() { armed_ = true; }
  // How many answers were dropped so far.
  int cuts() const { return cuts_; }

 private:
  using tcp = boost::asio::ip::tcp;
  struct Pair {
    tcp::socket client, upstream;
    void close() {
      boost::system::error_code ignored;
      client.close(ignored);
      upstream.close(ignored);
    }
  };

  boost::asio::awaitable<void> serve(tcp::socket client) {
    auto executor = client.get_executor();
    auto pair = std::make_shared<Pair>(Pair{std::move(client), tcp::socket(executor)});
    try {
      tcp::resolver resolver(executor);
      auto endpoints = co_await resolver.async_resolve(host_, std::to_string(port_), boost::asio::use_awaitable);
      co_await boost::asio::async_connect(pair->upstream, endpoints, boost::asio::use_awaitable);
    } catch (const std::exception&) {
      pair->close();
      co_return;
    }
    boost::asio::co_spawn(executor, pipe(pair, false), boost::asio::detached);
    boost::asio::co_spawn(executor, pipe(pair, true), boost::asio::detached);
  }

  // Copies one direction until either side closes; `reply` is the server → client direction.
  boost::asio::awaitable<void> pipe(std::shared_ptr<Pair> pair, bool reply) {
    tcp::socket& from = reply ? pair->upstream : pair->client;
    tcp::socket& to = reply ? pair->client : pair->upstream;
    std::array<char, 16384> buffer{};
    try {
      for (;;) {
        std::size_t n = co_await from.async_read_some(boost::asio::buffer(buffer), boost::asio::use_awaitable);
        if (reply && armed_.exchange(false)) {
          ++cuts_;
          pair->close();
          co_return;
        }
        co_await boost::asio::async_write(to, boost::asio::buffer(buffer.data(), n), boost::asio::use_awaitable);
      }
    } catch (const std::exception&) {
      pair->close();
    }
  }

  std::string host_;
  std::uint16_t port_;
  std::atomic<bool> armed_{false};
  std::atomic<int> cuts_{0};
  LoopbackServer server_;  // last: its thread stops before the members it uses go
};

}  // namespace registrar::testing
