#pragma once
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>

#include "ports/system.hpp"

namespace registrar::adapters::sodium {

// RFC 9562 UUIDv7 ids, lower-case and hyphenated: 48-bit Unix milliseconds, version 7, a 12-bit
// counter (rand_a) and 62 random bits (rand_b). Ids from one generator are strictly increasing,
// also within one millisecond and if the clock steps back (RFC 9562 §6.2, method 1).
// Thread-safe.
class UuidV7Generator final : public ports::IdGenerator {
 public:
  UuidV7Generator();                            // uses the system clock
  explicit UuidV7Generator(ports::Clock& clock);  // the clock must outlive the generator

  std::string new_id() override;

 private:
  ports::Clock* clock_;
  std::mutex mutex_;
  std::uint64_t last_ms_ = 0;
  std::uint16_t counter_ = 0;  // 12 bits used
};

// libsodium's CSPRNG. uniform() is randombytes_uniform(), which rejects the draws that would make
// the result biased (the top of the 2^32 range past the largest multiple of the bound).
class SodiumRandom final : public ports::RandomSource {
 public:
  SodiumRandom();
  std::uint32_t uniform(std::uint32_t upper_bound) override;
};

// `bytes` bytes from the CSPRNG, as URL-safe base64 without padding (the JWT key generated into the
// data dir).
std::string random_secret_base64url(std::size_t bytes);

}  // namespace registrar::adapters::sodium
