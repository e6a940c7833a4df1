#pragma once
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "adapters/logging/json_logger.hpp"
#include "ports/password_hasher.hpp"

namespace registrar::adapters::sodium {

class HashWorkers;

// The libsodium calls themselves, in the calling thread: argon2id with m = memory_kib and
// t = iterations, as a PHC string (std::runtime_error if libsodium fails, e.g. out of memory); and
// verification of `password` against a PHC string (false for a string libsodium cannot read).
std::string argon2id_hash(std::string_view password, std::uint32_t memory_kib, std::uint32_t iterations);
bool argon2id_verify(std::string_view phc_hash, std::string_view password);

struct Argon2Options {
  std::uint32_t memory_kib = 19 * 1024;  // m (OWASP floor 19 MiB); libsodium's minimum is 8 KiB
  std::uint32_t iterations = 2;          // t; p is always 1 in libsodium's argon2id
  unsigned concurrency = 0;              // hash/verify operations at once; 0 = hardware threads
  unsigned queue_limit = 0;              // callers allowed to wait for a slot; 0 = unlimited
  // Instrumentation hook, run while an operation holds a slot (tests use it to observe the
  // bound). Leave empty in production.
  std::function<void()> on_slot_held;
  // Non-empty: hashes run in `concurrency` worker processes of this binary (hash_workers.hpp says
  // why), which must call run_hash_worker() for kHashWorkerCommand. Empty: in the calling thread.
  std::string worker_executable;
  // Where the workers report one replaced after dying or hanging; required with worker_executable.
  const logging::Logger* log = nullptr;
};

// argon2id password hashing (libsodium crypto_pwhash, PHC string format).
//
// At most `concurrency` operations run at once, so memory stays bounded at concurrency × m;
// further callers block until a slot frees. If `queue_limit` callers are already waiting, the
// next one gets ports::Overloaded at once rather than joining an unbounded queue.
// Calls block the calling thread for the whole hash: run them off I/O threads.
class Argon2Hasher final : public ports::PasswordHasher {
 public:
  explicit Argon2Hasher(Argon2Options options = {});
  ~Argon2Hasher() override;

  std::string hash(std::string_view password) override;
  bool verify(std::string_view phc_hash, std::string_view password) override;
  void verify_dummy(std::string_view password) override;

  unsigned concurrency() const { return slots_; }
  unsigned waiting() const;  // callers currently blocked for a slot (for metrics and tests)
  HashWorkers* workers() const { return workers_.get(); }  // null when hashing in-process

 private:
  class SlotGuard;

  std::string hash_unbounded(std::string_view password) const;
  bool verify_unbounded(std::string_view phc_hash, std::string_view password) const;

  Argon2Options options_;
  unsigned slots_;

  mutable std::mutex mutex_;
  std::condition_variable slot_freed_;
  unsigned in_use_ = 0;
  unsigned waiting_ = 0;

  std::string dummy_hash_;  // a hash of a random password with our own parameters
  std::unique_ptr<HashWorkers> workers_;
};

}  // namespace registrar::adapters::sodium
