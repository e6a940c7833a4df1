#pragma once
// Safe retries of a sign-up with the IETF Idempotency-Key header
// (draft-ietf-httpapi-idempotency-key-header): the keys this process is working on.
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

namespace registrar::app {

// The Idempotency-Keys (their keyed hashes) of the requests this process is running, so that a
// second request with a key whose first is not finished is refused (409) instead of racing it.
// Across processes, the database's unique key on the record decides (see RegisterUser).
class KeysInFlight {
 public:
  // Holds `key_hash` until destroyed; `held()` is false when another request holds it.
  class Hold {
   public:
    Hold(KeysInFlight& keys, std::string key_hash);
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    bool held() const { return held_; }

   private:
    KeysInFlight& keys_;
    std::string key_hash_;
    bool held_;
  };

 private:
  std::mutex mutex_;
  std::unordered_set<std::string> keys_;
};

}  // namespace registrar::app
