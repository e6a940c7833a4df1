#include "adapters/sodium/pii_cipher.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"

namespace registrar::adapters::sodium {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kKeyBytes = 32;
static_assert(kKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);
static_assert(kKeyBytes >= crypto_generichash_KEYBYTES_MIN && kKeyBytes <= crypto_generichash_KEYBYTES_MAX);
constexpr std::size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;  // 24
constexpr std::size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;       // 16
constexpr std::size_t kIndexBytes = 32;

constexpr std::string_view kKeyPrefix = "pii-";
constexpr std::string_view kKeySuffix = ".key";
constexpr std::string_view kIndexKeyFile = "blind-index.key";

using Key = SodiumPiiCipher::Key;

fs::path key_path(const fs::path& dir, std::string_view id) {
  return dir / (std::string(kKeyPrefix) + std::string(id) + std::string(kKeySuffix));
}

// The id of a key file name (pii-<id>.key), or nothing for any other file.
std::optional<std::string> id_of(const std::string& name) {
  if (!name.starts_with(kKeyPrefix) || !name.ends_with(kKeySuffix)) return std::nullopt;
  std::string id = name.substr(kKeyPrefix.size(), name.size() - kKeyPrefix.size() - kKeySuffix.size());
  if (!valid_pii_key_id(id)) return std::nullopt;
  return id;
}

Key read_key_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::invalid_argument("cannot read the PII key file " + path.string() + ": " + std::strerror(errno));
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad() || bytes.size() != kKeyBytes) {
    sodium_memzero(bytes.data(), bytes.size());
    throw std::invalid_argument("the PII key file " + path.string() + " is not 32 bytes");
  }
  Key key{};
  std::memcpy(key.data(), bytes.data(), kKeyBytes);
  sodium_memzero(bytes.data(), bytes.size());
  return key;
}

Key decode_key(std::string_view base64, const std::string& what) {
  auto bytes = base64_decode(base64, sodium_base64_VARIANT_ORIGINAL);
  if (!bytes) bytes = base64_decode(base64, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  if (!bytes || bytes->size() != kKeyBytes) {
    if (bytes) sodium_memzero(bytes->data(), bytes->size());
    throw std::invalid_argument(what + " must be 32 bytes in base64 (e.g. the output of: head -c 32 /dev/urandom | base64)");
  }
  Key key{};
  std::memcpy(key.data(), bytes->data(), kKeyBytes);
  sodium_memzero(bytes->data(), bytes->size());
  return key;
}

void ensure_dir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) return;
  fs::create_directories(dir, ec);
  if (ec) throw std::runtime_error("cannot create the PII key directory " + dir.string() + ": " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);  // 0700
}

// Writes 32 fresh random bytes to `file` without ever exposing them: a 0600 temp file (mkstemp),
// filled and fsync'ed, then published with link(), which fails if `file` exists (two first runs
// racing each other end up sharing the winner's key). Returns false if `file` already existed.
bool write_new_key(const fs::path& dir, const fs::path& file) {
  ensure_dir(dir);
  Key key{};
  randombytes_buf(key.data(), key.size());
  std::string temp = (dir / ".pii-key.XXXXXX").string();
  int fd = ::mkstemp(temp.data());
  if (fd < 0) throw std::runtime_error("cannot create a file in " + dir.string() + ": " + std::strerror(errno));
  std::size_t done = 0;
  bool ok = true;
  while (ok && done < key.size()) {
    auto n = ::write(fd, key.data() + done, key.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  sodium_memzero(key.data(), key.size());
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) {
    ::unlink(temp.c_str());
    throw std::runtime_error("cannot write " + temp);
  }
  bool created = ::link(temp.c_str(), file.c_str()) == 0;
  int link_errno = errno;
  ::unlink(temp.c_str());
  if (!created && link_errno != EEXIST)
    throw std::runtime_error("cannot create " + file.string() + ": " + std::strerror(link_errno));
  if (int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); dir_fd >= 0) {  // persist the new name
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return created;
}

}  // namespace

bool valid_pii_key_id(std::string_view id) {
  if (id.empty() || id.size() > 64 || id.front() == '.') return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

std::string new_pii_key_id() {
  ensure_sodium();
  const auto now = std::chrono::system_clock::now();
  std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char stamp[40];
  std::size_t n = std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &utc);
  std::snprintf(stamp + n, sizeof stamp - n, ".%03d", static_cast<int>(ms));
  unsigned char random[2];
  randombytes_buf(random, sizeof random);
  return std::string(stamp) + "-" + hex_encode(std::span<const unsigned char>(random, sizeof random));
}

std::string create_pii_key_file(const fs::path& dir, std::string id) {
  ensure_sodium();
  if (id.empty()) {
    // Newest = greatest id: a generated id must sort after every key already there, also when
    // made within the same millisecond as one of them (or after a clock step back).
    id = new_pii_key_id();
    std::string greatest;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
      if (auto existing = id_of(it->path().filename().string()); existing && *existing > greatest) greatest = *existing;
    if (id <= greatest) {
      if (greatest.size() > 59)
        throw std::invalid_argument("the key " + greatest + " sorts after any generated id: name the new key (--pii-key-id)");
      id = greatest + "-" + id.substr(id.size() - 4);
    }
  }
  if (!valid_pii_key_id(id)) throw std::invalid_argument("invalid PII key id \"" + id + "\": expected 1 to 64 of [A-Za-z0-9_.-]");
  if (!write_new_key(dir, key_path(dir, id)))
    throw std::invalid_argument("the PII key " + id + " already exists in " + dir.string());
  return id;
}

SodiumPiiCipher::SodiumPiiCipher(PiiKeyringOptions options) : options_(std::move(options)) {
  ensure_sodium();
  if (!options_.pinned_key_id.empty() && !valid_pii_key_id(options_.pinned_key_id))
    throw std::invalid_argument("invalid PII key id \"" + options_.pinned_key_id + "\": expected 1 to 64 of [A-Za-z0-9_.-]");
  if (!options_.inline_keys.empty()) {
    // REGISTRAR_PII_KEYS: ID:BASE64, comma-separated. Messages name ids, never key material.
    std::string_view rest = options_.inline_keys;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
      while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
      if (item.empty()) continue;
      auto colon = item.find(':');
      if (colon == std::string_view::npos || !valid_pii_key_id(item.substr(0, colon)))
        throw std::invalid_argument("REGISTRAR_PII_KEYS must be ID:BASE64[,ID:BASE64…] with ids of [A-Za-z0-9_.-]");
      std::string id(item.substr(0, colon));
      keys_[id] = decode_key(item.substr(colon + 1), "the key " + id + " in REGISTRAR_PII_KEYS");
    }
    if (options_.inline_index_key.empty())
      throw std::invalid_argument("REGISTRAR_PII_KEYS needs REGISTRAR_PII_INDEX_KEY: every process must share the blind-index key");
    index_key_ = decode_key(options_.inline_index_key, "REGISTRAR_PII_INDEX_KEY");
    return;
  }
  if (!options_.inline_index_key.empty()) index_key_ = decode_key(options_.inline_index_key, "REGISTRAR_PII_INDEX_KEY");
  std::lock_guard lock(mutex_);
  scan_dir_locked();
  if (options_.create_missing) {
    if (keys_.empty() && options_.pinned_key_id.empty()) {
      write_new_key(options_.dir, key_path(options_.dir, new_pii_key_id()));
      scan_dir_locked();
    }
    if (!index_key_ && !fs::exists(options_.dir / kIndexKeyFile)) write_new_key(options_.dir, options_.dir / kIndexKeyFile);
  }
  if (!index_key_ && fs::exists(options_.dir / kIndexKeyFile)) index_key_ = read_key_file(options_.dir / kIndexKeyFile);
}

SodiumPiiCipher::~SodiumPiiCipher() {
  for (auto& [id, key] : keys_) sodium_memzero(key.data(), key.size());
  if (index_key_) sodium_memzero(index_key_->data(), index_key_->size());
}

void SodiumPiiCipher::scan_dir_locked() {
  if (!options_.inline_keys.empty() || options_.dir.empty()) return;
  std::error_code ec;
  for (fs::directory_iterator it(options_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    auto id = id_of(it->path().filename().string());
    if (!id || keys_.contains(*id)) continue;
    keys_[*id] = read_key_file(it->path());
  }
}

std::string SodiumPiiCipher::current_locked() const {
  if (!options_.pinned_key_id.empty()) return options_.pinned_key_id;
  return keys_.empty() ? std::string() : keys_.rbegin()->first;
}

std::string SodiumPiiCipher::current_key_id() const {
  std::lock_guard lock(mutex_);
  return current_locked();
}

std::vector<std::string> SodiumPiiCipher::key_ids() const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [id, key] : keys_) out.push_back(id);
  return out;
}

bool SodiumPiiCipher::has_index_key() const {
  std::lock_guard lock(mutex_);
  return index_key_.has_value();
}

ports::SealedValue SodiumPiiCipher::seal(std::string_view plaintext, std::string_view context) {
  std::lock_guard lock(mutex_);
  scan_dir_locked();  // a key made by `keys rotate` since: it becomes current here too
  const std::string id = current_locked();
  auto it = keys_.find(id);
  if (it == keys_.end())
    throw ports::KeyUnavailable(id.empty() ? "pii: no encryption key" : "pii: the encryption key " + id + " is not available");
  std::string out(kNonceBytes + plaintext.size() + kTagBytes, '\0');
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  randombytes_buf(nonce, kNonceBytes);
  unsigned long long written = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(nonce + kNonceBytes, &written,
                                             reinterpret_cast<const unsigned char*>(plaintext.data()), plaintext.size(),
                                             reinterpret_cast<const unsigned char*>(context.data()), context.size(),
                                             nullptr, nonce, it->second.data());
  out.resize(kNonceBytes + written);
  return {id, std::move(out)};
}

std::string SodiumPiiCipher::open(const ports::SealedValue& sealed, std::string_view context) {
  std::lock_guard lock(mutex_);
  auto it = keys_.find(sealed.key_id);
  if (it == keys_.end()) {
    scan_dir_locked();  // a key created by another process since we loaded ours
    it = keys_.find(sealed.key_id);
    if (it == keys_.end()) throw ports::KeyUnavailable("pii: the key " + sealed.key_id + " is not available");
  }
  if (sealed.ciphertext.size() < kNonceBytes + kTagBytes) throw std::runtime_error("pii: the ciphertext is too short");
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.ciphertext.data());
  std::string out(sealed.ciphertext.size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long written = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(reinterpret_cast<unsigned char*>(out.data()), &written, nullptr,
                                                 nonce + kNonceBytes, sealed.ciphertext.size() - kNonceBytes,
                                                 reinterpret_cast<const unsigned char*>(context.data()), context.size(),
                                                 nonce, it->second.data()) != 0)
    throw std::runtime_error("pii: the ciphertext does not authenticate (tampered, or another context)");
  out.resize(written);
  return out;
}

std::string SodiumPiiCipher::blind_index(std::string_view value, std::string_view purpose) {
  std::lock_guard lock(mutex_);
  if (!index_key_) throw ports::KeyUnavailable("pii: the blind-index key is not available");
  // len(purpose) as 8 bytes, purpose, value: an unambiguous encoding, so ("ab","c") and ("a","bc")
  // hash different inputs and each purpose has its own index space.
  unsigned char length[8];
  std::uint64_t n = purpose.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(n >> (8 * i));
  crypto_generichash_state state;
  crypto_generichash_init(&state, index_key_->data(), index_key_->size(), kIndexBytes);
  crypto_generichash_update(&state, length, sizeof length);
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(purpose.data()), purpose.size());
  crypto_generichash_update(&state, reinterpret_cast<const unsigned char*>(value.data()), value.size());
  unsigned char digest[kIndexBytes];
  crypto_generichash_final(&state, digest, sizeof digest);
  sodium_memzero(&state, sizeof state);
  return hex_encode(std::span<const unsigned char>(digest, sizeof digest));
}

}  // namespace registrar::adapters::sodium
