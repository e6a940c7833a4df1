#pragma once
// ports::PiiCipher on libsodium, with its keyring.
//
//  - seal/open: XChaCha20-Poly1305-IETF (crypto_aead_xchacha20poly1305_ietf_*), a fresh random
//    24-byte nonce per seal (random nonces are safe at this size), the context as associated data.
//    Stored form: nonce ‖ ciphertext ‖ tag, with the id of the key that sealed it.
//  - blind_index: BLAKE2b keyed (crypto_generichash, 32-byte output, hex) over
//    len(purpose) ‖ purpose ‖ value, so two purposes never share an index.
//
// Keys (32 random bytes each):
//  - Data keys rotate. From a directory (default <data-dir>/keys): one file pii-<ID>.key per key,
//    raw 32 bytes, mode 0600 in a 0700 directory; the first one is generated on first run. Or
//    from REGISTRAR_PII_KEYS ("ID:BASE64[,ID:BASE64…]") for deployments that inject secrets; then
//    no file is read or written. The current key (the one that seals) is the one --pii-key-id
//    names, else the greatest id (generated ids are UTC times, so the newest).
//  - The blind-index key does NOT rotate: an index must stay stable, or every stored index would
//    have to be recomputed from the clear values and uniqueness would break meanwhile. File
//    blind-index.key in the same directory (generated on first run), or REGISTRAR_PII_INDEX_KEY
//    (base64; required with REGISTRAR_PII_KEYS, since every process must share it).
// A directory keyring looks for new files when it seals (so a key made by `registrar keys rotate`
// becomes current in running processes without a restart, unless one is pinned) and when asked to
// open under an id it does not know yet. Thread-safe.
#include <array>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ports/pii_cipher.hpp"

namespace registrar::adapters::sodium {

struct PiiKeyringOptions {
  std::filesystem::path dir;  // where key files live (ignored with inline_keys)
  std::string pinned_key_id;  // the current key; "" = the greatest id
  std::string inline_keys;    // "ID:BASE64[,ID:BASE64…]" (REGISTRAR_PII_KEYS); non-empty → no files
  std::string inline_index_key;  // BASE64 (REGISTRAR_PII_INDEX_KEY)
  bool create_missing = true;    // generate the first data key and the index key in `dir` if absent
};

// A key id: 1 to 64 of [A-Za-z0-9_.-], not starting with '.' (it is part of a file name).
bool valid_pii_key_id(std::string_view id);

// A new key id from the UTC time and 4 random hex digits: 20261206-120000-3fa9.
std::string new_pii_key_id();

// Writes a new random key as <dir>/pii-<id>.key (0600, dir created 0700) and returns its id; a
// generated one when `id` is empty. Throws std::invalid_argument for an invalid id or one that
// exists, std::runtime_error if the file cannot be written.
std::string create_pii_key_file(const std::filesystem::path& dir, std::string id = "");

class SodiumPiiCipher final : public ports::PiiCipher {
 public:
  // Loads the keyring (generating missing files when options.create_missing). Throws
  // std::invalid_argument for malformed inline keys, an unreadable or malformed key file, or
  // inline data keys without an inline index key. A missing current or index key is not an error
  // here: seal/blind_index throw KeyUnavailable when used.
  explicit SodiumPiiCipher(PiiKeyringOptions options);
  ~SodiumPiiCipher() override;

  ports::SealedValue seal(std::string_view plaintext, std::string_view context) override;
  std::string open(const ports::SealedValue& sealed, std::string_view context) override;
  // "" when there is no data key at all.
  std::string current_key_id() const override;
  std::string blind_index(std::string_view value, std::string_view purpose) override;

  // The data key ids known now, in order.
  std::vector<std::string> key_ids() const;
  bool has_index_key() const;

  using Key = std::array<unsigned char, 32>;

 private:
  void scan_dir_locked();  // adds the key files not loaded yet
  std::string current_locked() const;

  PiiKeyringOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, Key> keys_;
  std::optional<Key> index_key_;
};

}  // namespace registrar::adapters::sodium
