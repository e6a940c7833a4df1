#pragma once
// Resolves the JWT signing key and the webhook signing secret into Settings, after load_settings()
// chose where each one comes from (inline REGISTRAR_X vs --x-file / REGISTRAR_X_FILE, by layer
// precedence). Reads files and may create the generated JWT key; never logs or echoes a secret's
// value.
#include <cstddef>
#include <cstdint>
#include <filesystem>
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

// The webhook signing secret: REGISTRAR_WEBHOOK_SECRET, already copied in by the loader, else
// settings.webhook.secret_file, else none (the webhook consumer refuses to start without one). Its
// format (whsec_<base64>) is checked by the consumer.
std::optional<Exit> resolve_webhook_secret(Settings& settings, std::vector<std::string>& notes);

// The SMS webhook's bearer secret: REGISTRAR_SMS_WEBHOOK_SECRET, already copied in by the loader,
// else settings.sms.webhook_secret_file, else none (no Authorization header).
std::optional<Exit> resolve_sms_webhook_secret(Settings& settings, std::vector<std::string>& notes);

// The admin token: REGISTRAR_ADMIN_TOKEN, already copied in by the loader, else
// settings.admin_token_file, else none (admin surfaces off). At least 32 bytes: it is a bearer
// credential that is compared, not derived from, so its length is its strength.
std::optional<Exit> resolve_admin_token(Settings& settings, std::vector<std::string>& notes);

// The secrets settings.command needs: `serve` the JWT key, the SMS webhook's and the webhook secret, the admin token, `consume` the
// webhook secret (the only consumer that has one); the other commands none.
std::optional<Exit> resolve_secrets(Settings& settings, std::vector<std::string>& notes);

// The one reader of secret files: `path` must be a regular file of at most kMaxSecretFileBytes;
// the secret is its bytes with trailing whitespace (the newline an editor adds) trimmed. `what`
// names the file in messages, which never quote its content. On failure returns what to print and
// exit code 2; a file readable by group or others is read, with a warning appended to `notes`.
inline constexpr std::uintmax_t kMaxSecretFileBytes = 64 * 1024;  // anything bigger is not a key file
std::optional<Exit> read_secret_file(const std::filesystem::path& path, const std::string& what, std::string& out,
                                     std::vector<std::string>& notes);

}  // namespace registrar::config
