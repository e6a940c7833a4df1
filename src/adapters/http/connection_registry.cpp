#include "adapters/http/connection_registry.hpp"

#include <vector>

namespace registrar::adapters::http {

ConnectionRegistry::Registration& ConnectionRegistry::Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    reset();
    state_ = std::move(o.state_);
    key_ = o.key_;
  }
  return *this;
}

void ConnectionRegistry::Registration::reset() {
  if (auto state = state_.lock()) {
    std::lock_guard lock(state->mutex);
    state->connections.erase(key_);
  }
  state_.reset();
}

ConnectionRegistry::Registration ConnectionRegistry::add(const std::shared_ptr<RegisteredConnection>& connection) {
  {
    std::lock_guard lock(state_->mutex);
    state_->connections.emplace(connection.get(), connection);
  }
  if (draining()) connection->drain();
  return Registration(state_, connection.get());
}

std::size_t ConnectionRegistry::size() const {
  std::lock_guard lock(state_->mutex);
  return state_->connections.size();
}

namespace {
// The live connections, collected under the lock and called outside it (a connection's drain or
// close may end it, and its Registration then takes the lock to remove it).
template <class State>
std::vector<std::shared_ptr<RegisteredConnection>> live(State& state) {
  std::vector<std::shared_ptr<RegisteredConnection>> out;
  std::lock_guard lock(state.mutex);
  out.reserve(state.connections.size());
  for (const auto& [key, weak] : state.connections)
    if (auto c = weak.lock()) out.push_back(std::move(c));
  return out;
}
}  // namespace

void ConnectionRegistry::drain_all() {
  state_->draining.store(true, std::memory_order_release);
  for (auto& c : live(*state_)) c->drain();
}

void ConnectionRegistry::close_all() {
  for (auto& c : live(*state_)) c->close();
}

}  // namespace registrar::adapters::http
