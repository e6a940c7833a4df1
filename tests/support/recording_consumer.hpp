#pragma once
// Event consumers for tests of the embedded event path (the in-process bus, the relay loop): they
// record what they handled, can be told to fail, and let a test wait for a number of handled
// events instead of sleeping.
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "domain/event.hpp"
#include "ports/event_bus.hpp"

namespace registrar::testing {

// A consumer that records what it handled and can be told to fail. Thread-safe; tests wait on
// it for a number of handled events.
class RecordingConsumer : public ports::EventConsumer {
 public:
  explicit RecordingConsumer(std::string name) : name_(std::move(name)) {}
  // Called with the event and how many times this consumer has seen its id before; returning
  // true makes handle() throw.
  std::function<bool(const domain::EventEnvelope&, int seen_before)> fail_when;
  // Called at the start of handle(), outside the lock (to block a delivery in a test).
  std::function<void()> on_enter;

  std::string name() const override { return name_; }

  void handle(const domain::EventEnvelope& event) override {
    if (on_enter) on_enter();
    std::unique_lock lock(mutex_);
    int seen = seen_[event.id]++;
    if (fail_when && fail_when(event, seen)) throw std::runtime_error("consumer failure for a test");
    handled_.push_back(event);
    ++handled_count_[event.id];
    cv_.notify_all();
  }

  // Waits (up to 10 s: only reached when a test fails) until `n` events were handled.
  bool wait_for_handled(std::size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(10), [&] { return handled_.size() >= n; });
  }
  std::vector<domain::EventEnvelope> handled() const {
    std::lock_guard lock(mutex_);
    return handled_;
  }
  std::map<std::string, int> handled_count() const {
    std::lock_guard lock(mutex_);
    return handled_count_;
  }
  int attempts(const std::string& id) const {
    std::lock_guard lock(mutex_);
    auto it = seen_.find(id);
    return it == seen_.end() ? 0 : it->second;
  }

 private:
  std::string name_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<domain::EventEnvelope> handled_;
  std::map<std::string, int> handled_count_, seen_;
};

// A user.registered envelope with a placeholder payload (these tests look at ids and order only).
inline domain::EventEnvelope event(std::string id, std::string aggregate) {
  domain::EventEnvelope e;
  e.id = std::move(id);
  e.type = "user.registered";
  e.aggregate_id = std::move(aggregate);
  e.payload = R"({"event":"user.registered"})";
  return e;
}

inline std::vector<std::string> ids_of(const std::vector<domain::EventEnvelope>& events) {
  std::vector<std::string> ids;
  for (const auto& e : events) ids.push_back(e.id);
  return ids;
}

// A consumer that takes whole batches (as the audit consumer does); records each batch's size.
class BatchingConsumer : public RecordingConsumer {
 public:
  using RecordingConsumer::RecordingConsumer;
  bool fail_batches = false;

  bool handle_batch(std::span<const domain::EventEnvelope> events) override {
    {
      std::lock_guard lock(batch_mutex_);
      batch_sizes_.push_back(events.size());
    }
    if (fail_batches) throw std::runtime_error("batch failure for a test");
    for (const auto& e : events) handle(e);
    return true;
  }
  std::vector<std::size_t> batch_sizes() const {
    std::lock_guard lock(batch_mutex_);
    return batch_sizes_;
  }

 private:
  mutable std::mutex batch_mutex_;
  std::vector<std::size_t> batch_sizes_;
};

}  // namespace registrar::testing
