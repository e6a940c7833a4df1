#pragma once
// An Engine.IO link (adapters/socketio/engine_link.hpp) that records what the Socket.IO layer sends
// on it: tests of the Socket.IO server and of what emits through it.
#include <mutex>
#include <string>
#include <vector>

#include "adapters/socketio/engine_link.hpp"

namespace registrar::testing {

class RecordingLink final : public adapters::socketio::EngineLink {
 public:
  void send(std::vector<adapters::socketio::EngineMessage> messages) override {
    std::lock_guard lock(mutex_);
    batches_.push_back(std::move(messages));
  }
  void close() override { closed = true; }

  // Every message sent, text as it is, binary as "<bin:…>".
  std::vector<std::string> sent() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& b : batches_)
      for (const auto& m : b) out.push_back(m.binary ? "<bin:" + m.data + ">" : m.data);
    return out;
  }
  std::size_t batches() const {
    std::lock_guard lock(mutex_);
    return batches_.size();
  }
  std::string last() const {
    auto all = sent();
    return all.empty() ? std::string() : all.back();
  }
  bool closed = false;

 private:
  mutable std::mutex mutex_;
  std::vector<std::vector<adapters::socketio::EngineMessage>> batches_;
};

}  // namespace registrar::testing
