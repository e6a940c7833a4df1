#pragma once
#include <chrono>

#include "domain/time.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::system {

// The real wall clock, truncated to milliseconds (the precision of domain::Timestamp).
class SystemClock final : public ports::Clock {
 public:
  domain::Timestamp now() override {
    return std::chrono::time_point_cast<std::chrono::milliseconds>(domain::Clock::now());
  }
};

}  // namespace registrar::adapters::system
