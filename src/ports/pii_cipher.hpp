#pragma once
// Protection of personal data that must be read back (a phone number): AEAD encryption under a
// key id so keys rotate, and a keyed blind index for uniqueness and lookup (equal inputs give
// equal indexes; the index reveals nothing without the key). Adapter: libsodium
// (XChaCha20-Poly1305-IETF, BLAKE2b keyed hash), keys from the data dir or the environment.
#include <stdexcept>
#include <string>
#include <string_view>

#include "domain/user.hpp"

namespace registrar::ports {

// key_id: which key sealed it; ciphertext: nonce ‖ ciphertext ‖ tag, raw bytes. Defined in the
// domain, since a stored user holds its phone in this form (domain/user.hpp).
using SealedValue = domain::SealedValue;

// No key to seal or open with (a missing or unknown key id): the Create_User message
// "Error encrypting your credentials. Please try again".
struct KeyUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class PiiCipher {
 public:
  virtual ~PiiCipher() = default;
  // `context` binds the ciphertext to its place (e.g. "users.phone:<user id>") as associated data.
  virtual SealedValue seal(std::string_view plaintext, std::string_view context) = 0;
  // Throws KeyUnavailable (unknown key id) or std::runtime_error (tampered).
  virtual std::string open(const SealedValue& sealed, std::string_view context) = 0;
  // The current key id: values under another id are re-sealed by `registrar keys rotate`.
  virtual std::string current_key_id() const = 0;
  // Deterministic keyed hash, hex; `purpose` separates uses ("phone", "code", "session").
  virtual std::string blind_index(std::string_view value, std::string_view purpose) = 0;
};

}  // namespace registrar::ports
