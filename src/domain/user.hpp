#pragma once
#include <string>
#include "domain/time.hpp"

namespace registrar::domain {

// A registered user as stored. `email` is normalized (trimmed, domain lower-cased); `username`
// keeps the case the user chose; uniqueness of both is case-insensitive (see canonical forms).
struct User {
  std::string id;
  std::string email;
  std::string username;
  std::string password_hash;  // argon2id PHC string; never leaves the service
  Timestamp created_at{};
};

}  // namespace registrar::domain
