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
 public:
  // Removes its connection from the registry when destroyed.
  class Registration {
   public:
    Registration() = default;
    Registration(ConnectionRegistry* registry, RegisteredConnection* key) : registry_(registry), key_(key) {}
    Registration(Registration&& o) noexcept : registry_(o.registry_), key_(o.key_) { o.registry_ = nullptr; }
    Registration& operator=(Registration&& o) noexcept;
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { reset(); }
    void reset();

   private:
    ConnectionRegistry* registry_ = nullptr;
    RegisteredConnection* key_ = nullptr;
  };

  // Adds `connection`; a connection added while draining is drained at once.
  [[nodiscard]] Registration add(const std::shared_ptr<RegisteredConnection>& connection);

  void drain_all();
  void close_all();
  bool draining() const { return draining_.load(std::memory_order_acquire); }
  std::size_t size() const;

 private:
  void remove(RegisteredConnection* key);

  mutable std::mutex mutex_;
  std::unordered_map<RegisteredConnection*, std::weak_ptr<RegisteredConnection>> connections_;
  std::atomic<bool> draining_{false};
};

}  // namespace registrar::adapters::http
