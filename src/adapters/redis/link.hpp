#pragma once
// The connection under a Client or a Subscriber (internal to the adapter): TCP or TLS to the server
// of a Url, the handshake (AUTH, SELECT, CLIENT SETNAME), then RESP replies handed over one by one;
// made again after every loss, with capped exponential back-off (±20 % jitter), until stop().
//
// Everything here runs on the owner's io_context thread (a single thread): the hooks are called
// there, and write()/drop()/stop() must be called there too.
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "adapters/redis/client.hpp"

namespace registrar::adapters::redis::detail {

class Link {
 public:
  struct Hooks {
    std::function<void()> connecting;                    // an attempt begins
    std::function<void()> up;                            // handshake done: commands may be written
    std::function<void(Reply&&)> reply;                  // each reply after the handshake, in order
    std::function<void(const std::string& why)> down;    // an attempt failed, or the connection was lost
  };

  // Throws std::invalid_argument for a TLS setting that cannot work (an unreadable CA file).
  Link(boost::asio::io_context& ioc, Url url, ClientOptions options, Hooks hooks);
  ~Link();
  Link(const Link&) = delete;
  Link& operator=(const Link&) = delete;

  void start();  // begins the first attempt
  void stop();   // closes the connection; no more attempts (the hooks are not called again)
  bool up() const { return up_; }
  // Appends to what is being sent (coalesced into one write while one is in progress). Only while up.
  void write(std::string_view bytes);
  // Treats the connection as lost (hook `down` with `why`), then reconnects. No-op while not up.
  void drop(const std::string& why);
  // The URL without its password, for messages.
  const std::string& where() const { return where_; }

 private:
  struct Conn;
  boost::asio::awaitable<void> supervise();
  boost::asio::awaitable<void> connect_once(std::shared_ptr<Conn> conn);
  void start_read(const std::shared_ptr<Conn>& conn);
  void flush(const std::shared_ptr<Conn>& conn);

  boost::asio::io_context& ioc_;
  Url url_;
  ClientOptions options_;
  Hooks hooks_;
  std::string where_;
  std::optional<boost::asio::ssl::context> tls_context_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer attempt_timer_;  // bounds one attempt by connect_timeout
  boost::asio::steady_timer wait_timer_;     // back-off between attempts; "until lost" while up
  std::shared_ptr<Conn> conn_;               // the connection being made or up; null otherwise
  bool up_ = false;
  bool stopped_ = false;
  std::minstd_rand random_;  // back-off jitter
};

}  // namespace registrar::adapters::redis::detail
