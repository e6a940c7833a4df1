#pragma once
#include <string>
#include <string_view>

namespace registrar::ports {

// One-way password hashing (argon2id). Implementations bound their own concurrency and memory.
class PasswordHasher {
 public:
  virtual ~PasswordHasher() = default;
  virtual std::string hash(std::string_view password) = 0;  // PHC string
  virtual bool verify(std::string_view phc_hash, std::string_view password) = 0;
  // Same cost as verify() against a real hash, for unknown users (no timing oracle).
  virtual void verify_dummy(std::string_view password) = 0;
};

}  // namespace registrar::ports
