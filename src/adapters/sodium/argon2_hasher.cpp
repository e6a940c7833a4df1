#include "adapters/sodium/argon2_hasher.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <stdexcept>
#include <thread>

#include "adapters/sodium/hash_workers.hpp"
#include "adapters/sodium/sodium.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::sodium {

namespace {

// libsodium reads an argon2 PHC string's parameters in the order m, t, p only (decode_string in
// argon2-encoding.c, 1.0.18 as today); the Node `argon2` package (0.4x, the library of the Node
// service registrar replaces) writes them m, p, t: "$argon2id$v=19$m=19456,p=1,t=2$salt$hash".
// That is the same hash spelled otherwise, so spell it libsodium's way: the same bytes, reordered.
// Anything but exactly one each of m, t and p is left as it is, for libsodium to refuse.
std::string in_libsodium_order(std::string_view phc) {
  // "$argon2id" "$v=19" (optional in the format) "$m=…,t=…,p=…" "$salt" "$hash"
  if (phc.substr(0, 7) != "$argon2") return std::string(phc);
  std::size_t params = phc.find('$', 1);
  if (params != std::string_view::npos && phc.substr(params, 3) == "$v=") params = phc.find('$', params + 1);
  if (params == std::string_view::npos) return std::string(phc);
  ++params;
  const std::size_t end = std::min(phc.find('$', params), phc.size());
  std::array<std::string_view, 3> ordered;  // m, t, p
  for (std::size_t i = 0, at = params; i < ordered.size(); ++i) {
    const std::size_t stop = std::min(phc.find(',', at), end);
    const auto item = phc.substr(at, stop - at);
    const auto slot = item.size() < 2 || item[1] != '=' ? std::string_view::npos : std::string_view("mtp").find(item[0]);
    // Three items: the first two end at a comma, the last at the '$' (or the end).
    if (slot == std::string_view::npos || !ordered[slot].empty() || (i + 1 < ordered.size()) != (stop < end))
      return std::string(phc);
    ordered[slot] = item;
    at = stop + 1;
  }
  std::string out(phc.substr(0, params));
  out.append(ordered[0]).append(",").append(ordered[1]).append(",").append(ordered[2]).append(phc.substr(end));
  return out;
}

// libsodium reads PHC strings as NUL-terminated C strings of bounded size: copy the view (its
// parameters in libsodium's order) into such a buffer, refusing anything that would be cut short
// or overflow it.
bool to_c_phc(std::string_view phc, std::array<char, crypto_pwhash_STRBYTES>& out) {
  if (phc.empty() || phc.size() >= out.size() || phc.find('\0') != std::string_view::npos) return false;
  const auto ordered = in_libsodium_order(phc);
  std::copy(ordered.begin(), ordered.end(), out.begin());
  out[ordered.size()] = '\0';
  return true;
}

// libsodium declares its pointer arguments nonnull; an empty view may carry a null data().
const char* bytes_of(std::string_view s) { return s.data() != nullptr ? s.data() : ""; }

}  // namespace

// Holds one of the hasher's slots for the lifetime of the guard.
class Argon2Hasher::SlotGuard {
 public:
  explicit SlotGuard(Argon2Hasher& h) : h_(h) {
    std::unique_lock lock(h_.mutex_);
    if (h_.in_use_ >= h_.slots_) {
      if (h_.options_.queue_limit != 0 && h_.waiting_ >= h_.options_.queue_limit)
        throw ports::Overloaded("too many password hashes waiting");
      ++h_.waiting_;
      h_.slot_freed_.wait(lock, [&] { return h_.in_use_ < h_.slots_; });
      --h_.waiting_;
    }
    ++h_.in_use_;
  }
  ~SlotGuard() {
    {
      std::lock_guard lock(h_.mutex_);
      --h_.in_use_;
    }
    h_.slot_freed_.notify_one();
  }
  SlotGuard(const SlotGuard&) = delete;
  SlotGuard& operator=(const SlotGuard&) = delete;

 private:
  Argon2Hasher& h_;
};

Argon2Hasher::Argon2Hasher(Argon2Options options) : options_(std::move(options)) {
  ensure_sodium();
  const auto bytes = static_cast<unsigned long long>(options_.memory_kib) * 1024ULL;
  if (bytes < crypto_pwhash_argon2id_MEMLIMIT_MIN || bytes > crypto_pwhash_argon2id_MEMLIMIT_MAX)
    throw std::invalid_argument("argon2id memory cost out of range");
  if (options_.iterations < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      options_.iterations > crypto_pwhash_argon2id_OPSLIMIT_MAX)
    throw std::invalid_argument("argon2id iteration count out of range");
  slots_ = options_.concurrency != 0 ? options_.concurrency
                                      : std::max(1U, std::thread::hardware_concurrency());

  if (!options_.worker_executable.empty()) {
    if (options_.log == nullptr) throw std::invalid_argument("argon2: hash workers need a logger");
    workers_ = std::make_unique<HashWorkers>(HashWorkersOptions{.executable = options_.worker_executable,
                                                                .count = slots_,
                                                                .memory_kib = options_.memory_kib,
                                                                .iterations = options_.iterations},
                                             *options_.log);
  }

  // The dummy hash is of a random password nobody knows; verifying against it costs exactly
  // what verifying a real user's hash costs, so "no such user" cannot be told apart by timing.
  // (Made by a worker when there are workers, so the service itself never maps the hash memory.)
  std::array<unsigned char, 32> random_password{};
  randombytes_buf(random_password.data(), random_password.size());
  dummy_hash_ = hash_unbounded(
      std::string_view(reinterpret_cast<const char*>(random_password.data()), random_password.size()));
  sodium_memzero(random_password.data(), random_password.size());
}

Argon2Hasher::~Argon2Hasher() = default;

std::string Argon2Hasher::hash(std::string_view password) {
  SlotGuard slot(*this);
  if (options_.on_slot_held) options_.on_slot_held();
  return hash_unbounded(password);
}

bool Argon2Hasher::verify(std::string_view phc_hash, std::string_view password) {
  SlotGuard slot(*this);
  if (options_.on_slot_held) options_.on_slot_held();
  return verify_unbounded(phc_hash, password);
}

void Argon2Hasher::verify_dummy(std::string_view password) {
  SlotGuard slot(*this);
  if (options_.on_slot_held) options_.on_slot_held();
  // The result is meaningless (and almost surely false); only the cost matters.
  (void)verify_unbounded(dummy_hash_, password);
}

unsigned Argon2Hasher::waiting() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

std::string argon2id_hash(std::string_view password, std::uint32_t memory_kib, std::uint32_t iterations) {
  std::array<char, crypto_pwhash_STRBYTES> out{};
  // The whole password is hashed, whatever its length or bytes (NULs included): no truncation.
  if (crypto_pwhash_str_alg(out.data(), bytes_of(password), password.size(), iterations,
                            static_cast<std::size_t>(memory_kib) * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0)
    throw std::runtime_error("argon2id hashing failed (out of memory?)");
  return std::string(out.data());
}

bool argon2id_verify(std::string_view phc_hash, std::string_view password) {
  std::array<char, crypto_pwhash_STRBYTES> c_phc{};
  if (!to_c_phc(phc_hash, c_phc)) return false;
  // Reads m, t and the algorithm from the string itself, so hashes made with other parameters
  // (older settings, other argon2id implementations) still verify.
  return crypto_pwhash_str_verify(c_phc.data(), bytes_of(password), password.size()) == 0;
}

std::string Argon2Hasher::hash_unbounded(std::string_view password) const {
  if (workers_ && password.size() <= HashWorkers::kMaxPassword) return workers_->hash(password);
  return argon2id_hash(password, options_.memory_kib, options_.iterations);
}

bool Argon2Hasher::verify_unbounded(std::string_view phc_hash, std::string_view password) const {
  if (!workers_ || password.size() > HashWorkers::kMaxPassword) return argon2id_verify(phc_hash, password);
  std::array<char, crypto_pwhash_STRBYTES> c_phc{};
  if (!to_c_phc(phc_hash, c_phc)) return false;  // checked here: the workers expect a readable string
  return workers_->verify(phc_hash, password);
}

}  // namespace registrar::adapters::sodium
