#include "app/idempotency.hpp"

namespace registrar::app {

KeysInFlight::Hold::Hold(KeysInFlight& keys, std::string key_hash) : keys_(keys), key_hash_(std::move(key_hash)) {
  std::lock_guard lock(keys_.mutex_);
  held_ = keys_.keys_.insert(key_hash_).second;
}

KeysInFlight::Hold::~Hold() {
  if (!held_) return;
  std::lock_guard lock(keys_.mutex_);
  keys_.keys_.erase(key_hash_);
}

}  // namespace registrar::app
