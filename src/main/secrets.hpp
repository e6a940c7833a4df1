#pragma once
// Resolves the JWT signing key and the admin token into Settings, after load_settings() chose where
// each one comes from (inline REGISTRAR_X vs --x-file / REGISTRAR_X_FILE, by layer precedence).
// Reads files and may create the generated JWT key; never logs or echoes a secret's value.
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "main/config.hpp"
#include "main/config_loader.hpp"

namespace registrar::config {

inline constexpr std::size_t kMinSecretBytes = 32;  // 256 bits: the HS256 key floor

// The JWT key, first match wins, recorded in settings.jwt.secret_source:
//   1. REGISTRAR_JWT_SECRET, already copied in by the loader          "env" / ".env"
//   2. settings.jwt.secret_file                                          "file <path>"
//   3. <data-dir>/jwt-secret, if it exists                               "data-dir <path>"
//   4. 32 random bytes, base64url without padding, written atomically to
//      <data-dir>/jwt-secret with mode 0600 (data dir created 0700)      "generated <path>"
// A file's key is its bytes with trailing whitespace trimmed; any key must be ≥ 32 bytes.
// On failure returns what to print and the exit code (2: bad or unreadable secret; 1: could not
// store a generated one). Warnings (a group/world-readable secret file) are appended to `notes`.
std::optional<Exit> resolve_jwt_secret(Settings& settings, std::vector<std::string>& notes);

// The admin token: REGISTRAR_ADMIN_TOKEN ("env"/".env"), else settings.admin_token_file
// ("file <path>"), else none (admin surfaces off). Same length rule and warnings.
std::optional<Exit> resolve_admin_token(Settings& settings, std::vector<std::string>& notes);

// Both, JWT first.
std::optional<Exit> resolve_secrets(Settings& settings, std::vector<std::string>& notes);

}  // namespace registrar::config
