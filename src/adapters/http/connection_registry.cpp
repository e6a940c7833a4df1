#include "adapters/http/connection_registry.hpp"

#include <vector>

namespace registrar::adapters::http {

ConnectionRegistry::Registration& ConnectionRegistry::Registration::operator=(Registration&& o) noexcept {
  if (this != &o) {
    reset();
    registry_ = o.registry_;
    key_ = o.key_;
    o.registry_ = nullptr;
  }
  return *this;
}

void ConnectionRegistry::Registration::reset() {
  if (registry_) registry_->remove(key_);
  registry_ = nullptr;
}

ConnectionRegistry::Registration ConnectionRegistry::add(const std::shared_ptr<RegisteredConnection>& connection) {
  {
    std::lock_guard lock(mutex_);
    connections_.emplace(connection.get(), connection);
  }
  if (draining()) connection->drain();
  return Registration(this, connection.get());
}

void ConnectionRegistry::remove(RegisteredConnection* key) {
  std::lock_guard lock(mutex_);
  connections_.erase(key);
}

std::size_t ConnectionRegistry::size() const {
  std::lock_guard lock(mutex_);
  return connections_.size();
}

namespace {
// The live connections, collected under the lock and called outside it (a connection's drain or
// close may end it, and its Registration then takes the lock to remove it).
std::vector<std::shared_ptr<RegisteredConnection>> live(
    std::mutex& mutex, const std::unordered_map<RegisteredConnection*, std::weak_ptr<RegisteredConnection>>& all) {
  std::vector<std::shared_ptr<RegisteredConnection>> out;
  std::lock_guard lock(mutex);
  out.reserve(all.size());
  for (const auto& [key, weak] : all)
    if (auto c = weak.lock()) out.push_back(std::move(c));
  return out;
}
}  // namespace

void ConnectionRegistry::drain_all() {
  draining_.store(true, std::memory_order_release);
  for (auto& c : live(mutex_, connections_)) c->drain();
}

void ConnectionRegistry::close_all() {
  for (auto& c : live(mutex_, connections_)) c->close();
}

}  // namespace registrar::adapters::http
