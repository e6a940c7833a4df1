#pragma once
#include <string>
#include "domain/time.hpp"

namespace registrar::ports {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual domain::Timestamp now() = 0;
};

// Unique, time-ordered ids (UUIDv7) for users and events.
class IdGenerator {
 public:
  virtual ~IdGenerator() = default;
  virtual std::string new_id() = 0;
};

}  // namespace registrar::ports
