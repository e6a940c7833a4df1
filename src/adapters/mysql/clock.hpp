#pragma once
#include <chrono>

#include "domain/time.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::mysql {

// The injected clock (tests) or the system clock, at millisecond precision (what DATETIME(3) keeps).
inline domain::Timestamp now_from(ports::Clock* clock) {
  if (clock != nullptr) return clock->now();
  return std::chrono::time_point_cast<std::chrono::milliseconds>(domain::Clock::now());
}

}  // namespace registrar::adapters::mysql
