#pragma once
// The answer to a held request (a long-poll): the handler keeps the reply and answers it when its
// event comes, from any thread; the connection waits for it without holding a thread. Whoever
// holds requests keeps its own timeouts (answering when they expire). If the server drains
// first, the reply is answered with the drain answer (by default 503 shutting_down), so a held
// request never keeps a shutdown waiting.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

class HeldReply : public std::enable_shared_from_this<HeldReply> {
 public:
  // `executor`: the connection's strand, where wait() runs. Always owned by a shared_ptr.
  explicit HeldReply(boost::asio::any_io_executor executor);

  // Answers the request. Any thread; the first answer wins, later ones return false.
  bool answer(Response res);
  bool answered() const;

  // What to answer when the server drains before the handler did (runs on the connection's strand).
  void on_drain(std::function<Response()> make);
  // The server is draining: answer with the drain answer unless answered already.
  void drain();

  // Completes with the answer (called once, by the route, on the connection's strand).
  boost::asio::awaitable<Response> wait();

 private:
  mutable std::mutex mutex_;
  std::optional<Response> response_;
  bool taken_ = false;
  std::function<Response()> drain_answer_;
  boost::asio::steady_timer wake_;  // waits "forever"; cancelled on the strand to wake wait()
};

}  // namespace registrar::adapters::http
