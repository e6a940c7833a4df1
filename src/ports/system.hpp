#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "domain/time.hpp"

namespace registrar::ports {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual domain::Timestamp now() = 0;
};

// For adapters with an optional injected clock: its time, or else the system clock's at
// millisecond precision (what the stores keep).
inline domain::Timestamp now_from(Clock* clock) {
  if (clock != nullptr) return clock->now();
  return std::chrono::time_point_cast<std::chrono::milliseconds>(domain::Clock::now());
}

// Unique, time-ordered ids (UUIDv7) for users and events.
class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  virtual std::string new_id() = 0;
};

// Random numbers from a CSPRNG (one-time codes). Behind a port so that use cases stay free of I/O
// and their tests deterministic.
class RandomSource {
 public:
  virtual ~RandomSource() = default;
  // Uniform in [0, upper_bound), without modulo bias; upper_bound ≥ 1.
  virtual std::uint32_t uniform(std::uint32_t upper_bound) = 0;
};

}  // namespace registrar::ports
