#include "adapters/http/held_reply.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace registrar::adapters::http {

namespace asio = boost::asio;

HeldReply::HeldReply(asio::any_io_executor executor) : wake_(std::move(executor)) {
  wake_.expires_at(asio::steady_timer::time_point::max());
}

bool HeldReply::answer(Response res) {
  {
    std::lock_guard lock(mutex_);
    if (response_ || taken_) return false;
    response_ = std::move(res);
  }
  // The timer is only touched on its strand: wake the waiter there. wait() checks for an answer
  // and starts waiting in one turn of the strand, so this cancel cannot fall between the two.
  asio::post(wake_.get_executor(), [self = shared_from_this()] { self->wake_.cancel(); });
  return true;
}

bool HeldReply::answered() const {
  std::lock_guard lock(mutex_);
  return response_.has_value() || taken_;
}

void HeldReply::on_drain(std::function<Response()> make) {
  std::lock_guard lock(mutex_);
  drain_answer_ = std::move(make);
}

void HeldReply::drain() {
  std::function<Response()> make;
  {
    std::lock_guard lock(mutex_);
    if (response_ || taken_) return;
    make = drain_answer_;
  }
  // The router sets a problem+json drain answer for every held route; a bare 503 is the fallback.
  answer(make ? make() : Response{beast_http::status::service_unavailable, 11});
}

asio::awaitable<Response> HeldReply::wait() {
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (response_) {
        taken_ = true;
        Response res = std::move(*response_);
        response_.reset();
        co_return res;
      }
    }
    co_await wake_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace registrar::adapters::http
