#pragma once
#include <optional>
#include <string>
#include "domain/time.hpp"

namespace registrar::domain {

// A value encrypted for storage (ports::PiiCipher): the id of the key that sealed it, and
// nonce ‖ ciphertext ‖ tag as raw bytes. Holds nothing readable without that key.
struct SealedValue {
  std::string key_id;
  std::string ciphertext;
  bool operator==(const SealedValue&) const = default;
};

// A phone number as stored: sealed under a key id (so keys rotate), and its keyed blind index
// (hex; equal numbers give equal indexes under one index key), which carries the uniqueness and
// the lookups. The clear number is never part of a stored user: it exists only transiently, in
// the use case that seals it or opens it.
struct StoredPhone {
  SealedValue sealed;
  std::string blind_index;
  bool operator==(const StoredPhone&) const = default;
};

// A registered user as stored. An account has a username and at least one contact: an email
// (from /auth/register) or a phone (from a Create_User job); the store refuses a row with neither.
//  - `email` is normalized (trimmed, domain lower-cased); `username` keeps the case the user
//    chose; uniqueness of both is case-insensitive (see canonical forms), the email's only when
//    there is one.
//  - `email_verified_at`: when the address was proven (email verification); none until then.
//  - `image`: an absolute http(s) URL (app::parse_image_url), or none.
//  - `verification_id`: the verification session a phone account was created from; unique, so
//    one session (a Create_User job run twice) can never make two accounts.
struct User {
  std::string id;
  std::optional<std::string> email;
  std::optional<Timestamp> email_verified_at;
  std::string username;
  std::string password_hash;  // argon2id PHC string; never leaves the service
  std::optional<StoredPhone> phone;
  std::optional<std::string> image;
  std::optional<std::string> verification_id;
  Timestamp created_at{};
};

}  // namespace registrar::domain
