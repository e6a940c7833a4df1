#pragma once
// Every open connection of the server, whatever it carries (HTTP requests, a held long-poll, a
// taken-over WebSocket), so that a shutdown reaches each one: drain() asks every connection to
// finish what is in flight and close; close_all() ends them at once when the grace period is over.
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace registrar::adapters::http {

class RegisteredConnection {
 public:
  virtual ~RegisteredConnection() = default;
  // The server is draining: finish what is in flight, then close. Any thread (post to your strand).
  virtual void drain() = 0;
  // The grace period is over: close now. Any thread (post to your strand).
  virtual void close() = 0;
};

class ConnectionRegistry {
  struct State {
    std::mutex mutex;
    std::unordered_map<RegisteredConnection*, std::weak_ptr<RegisteredConnection>> connections;
    std::atomic<bool> draining{false};
  };

 public:
  // Removes its connection from the registry when destroyed. It may outlive the registry (a
  // connection whose last handler is destroyed with the io_context, after the server): then it
  // has nothing to remove.
  class Registration {
   public:
    Registration() = default;
    Registration(std::weak_ptr<State> state, RegisteredConnection* key) : state_(std::move(state)), key_(key) {}
    Registration(Registration&&) noexcept = default;
    Registration& operator=(Registration&& o) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { reset(); }
    void reset();

   private:
    std::weak_ptr<State> state_;
    RegisteredConnection* key_ = nullptr;
  };

  // Adds `connection`; a connection added while draining is drained at once.
  [[nodiscard]] Registration add(const std::shared_ptr<RegisteredConnection>& connection);

  void drain_all();
  void close_all();
  bool draining() const { return state_->draining.load(std::memory_order_acquire); }
  std::size_t size() const;

 private:
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

}  // namespace registrar::adapters::http
