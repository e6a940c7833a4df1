#include "adapters/http/listener.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace registrar::adapters::http {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::chrono::milliseconds kAcceptRetryPause{100};
}  // namespace

Listener::Listener(asio::io_context& ioc, const logging::Logger& log, OnAccept on_accept)
    : ioc_(ioc), log_(log), on_accept_(std::move(on_accept)), acceptor_(asio::make_strand(ioc)) {}

tcp::endpoint Listener::listen(const tcp::endpoint& endpoint) {
  acceptor_.open(endpoint.protocol());
  acceptor_.set_option(asio::socket_base::reuse_address(true));
  acceptor_.bind(endpoint);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  asio::co_spawn(acceptor_.get_executor(), accept_loop(), [&log = log_](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      log.error("accept loop failed; no new connections are accepted", {{"error", ex.what()}});
    }
  });
  return acceptor_.local_endpoint();
}

void Listener::stop() {
  asio::post(acceptor_.get_executor(), [this] {
    boost::system::error_code ec;
    acceptor_.close(ec);
  });
}

asio::awaitable<void> Listener::accept_loop() {
  // Failed accepts in a row. EMFILE/ENFILE and friends leave the connection in the backlog, so an
  // immediate retry fails again at once: without a pause a flood that exhausts the descriptors
  // would turn this loop into a busy loop writing a log line per turn. So: pause between retries,
  // warn once per episode, and say when accepting works again (the OS recovers as connections close).
  std::uint64_t failed_accepts = 0;
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) break;
      if (failed_accepts++ == 0)
        log_.warn("accept failed; pausing new connections", {{"error", ec.message()}, {"retryInMs", kAcceptRetryPause.count()}});
      else
        log_.debug("accept still failing", {{"error", ec.message()}, {"failedAccepts", failed_accepts}});
      asio::steady_timer pause(acceptor_.get_executor(), kAcceptRetryPause);
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (failed_accepts != 0) {
      log_.info("accepting connections again", {{"failedAccepts", failed_accepts}});
      failed_accepts = 0;
    }
    on_accept_(std::move(socket));
  }
}

}  // namespace registrar::adapters::http
