#pragma once
// Runs blocking work (argon2, a blocking database client) off the I/O threads and resumes the
// calling coroutine on its own executor when done. Admission is bounded: past `queue_limit`
// waiting jobs the call fails fast with ports::Overloaded (→ 503) instead of queueing without end.
#include <atomic>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>
#include "ports/errors.hpp"

namespace registrar::adapters::threads {

class BlockingRunner {
 public:
  // threads == 0: run inline on the calling I/O thread (for work that never blocks long, such as
  // an embedded SQLite read by primary key).
  BlockingRunner(unsigned threads, unsigned queue_limit) : queue_limit_(queue_limit) {
    if (threads > 0) pool_.emplace(threads);
  }
  ~BlockingRunner() { stop(); }
  BlockingRunner(const BlockingRunner&) = delete;
  BlockingRunner& operator=(const BlockingRunner&) = delete;

  template <class F>
  auto run(F f) -> boost::asio::awaitable<decltype(f())> {
    using R = decltype(f());
    if (!pool_) co_return f();
    if (queued_.fetch_add(1, std::memory_order_relaxed) >= queue_limit_) {
      queued_.fetch_sub(1, std::memory_order_relaxed);
      throw ports::Overloaded("blocking pool queue full");
    }
    struct Release {
      std::atomic<unsigned>& n;
      ~Release() { n.fetch_sub(1, std::memory_order_relaxed); }
    } release{queued_};
    // Run `f` on the pool, then complete on the awaiting coroutine's own executor. `f` stays in
    // this coroutine's frame, which outlives the pooled call.
    auto result = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                       void(std::exception_ptr, std::optional<R>)>(
        [this, &f](auto handler) {
          boost::asio::post(*pool_, [&f, handler = std::move(handler)]() mutable {
            std::exception_ptr error;
            std::optional<R> value;
            try {
              value.emplace(f());
            } catch (...) {
              error = std::current_exception();
            }
            auto home = boost::asio::get_associated_executor(handler);
            boost::asio::dispatch(home, [handler = std::move(handler), error, value = std::move(value)]() mutable {
              std::move(handler)(error, std::move(value));
            });
          });
        },
        boost::asio::use_awaitable);
    co_return std::move(*result);
  }

  void stop() {
    if (pool_) pool_->join();
  }

 private:
  std::optional<boost::asio::thread_pool> pool_;
  unsigned queue_limit_;
  std::atomic<unsigned> queued_{0};
};

}  // namespace registrar::adapters::threads
