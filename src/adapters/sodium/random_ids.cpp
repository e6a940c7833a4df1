#include "adapters/sodium/random_ids.hpp"

#include <sodium.h>

#include <array>
#include <chrono>
#include <stdexcept>
#include <vector>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"
#include "adapters/system/system_clock.hpp"

namespace registrar::adapters::sodium {

namespace {

constexpr std::uint16_t kCounterMax = 0x0FFF;

std::uint16_t fresh_counter() {
  // Random start with the top bit clear: at least 2048 increments stay available within the
  // millisecond, and the start itself does not reveal how many ids were made before.
  std::uint16_t r = 0;
  randombytes_buf(&r, sizeof r);
  return r & 0x07FF;
}

ports::Clock& default_clock() {
  static system::SystemClock clock;
  return clock;
}

}  // namespace

UuidV7Generator::UuidV7Generator() : UuidV7Generator(default_clock()) {}

UuidV7Generator::UuidV7Generator(ports::Clock& clock) : clock_(&clock) { ensure_sodium(); }

std::string UuidV7Generator::new_id() {
  const auto now_ms = static_cast<std::uint64_t>(clock_->now().time_since_epoch().count());
  std::uint64_t ms = 0;
  std::uint16_t counter = 0;
  {
    std::lock_guard lock(mutex_);
    if (now_ms > last_ms_) {
      last_ms_ = now_ms;
      counter_ = fresh_counter();
    } else if (counter_ < kCounterMax) {
      ++counter_;  // same millisecond (or the clock stepped back): keep order by counting
    } else {
      ++last_ms_;  // counter exhausted: borrow the next millisecond (RFC 9562 allows this)
      counter_ = fresh_counter();
    }
    ms = last_ms_;
    counter = counter_;
  }

  std::array<unsigned char, 16> b{};
  randombytes_buf(b.data() + 8, 8);  // rand_b (62 bits used)
  for (int i = 0; i < 6; ++i) b[i] = static_cast<unsigned char>(ms >> (40 - 8 * i));
  b[6] = static_cast<unsigned char>(0x70 | ((counter >> 8) & 0x0F));  // version 7 + rand_a high
  b[7] = static_cast<unsigned char>(counter & 0xFF);
  b[8] = static_cast<unsigned char>(0x80 | (b[8] & 0x3F));  // variant 10

  // 8-4-4-4-12 hex digits.
  const std::string hex = hex_encode(b);
  return hex.substr(0, 8) + '-' + hex.substr(8, 4) + '-' + hex.substr(12, 4) + '-' + hex.substr(16, 4) + '-' +
         hex.substr(20);
}

std::string random_secret_base64url(std::size_t bytes) {
  if (bytes == 0) return {};
  ensure_sodium();
  std::vector<unsigned char> raw(bytes);
  randombytes_buf(raw.data(), raw.size());
  std::string out = base64_encode(raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw.data(), raw.size());
  return out;
}

SodiumRandom::SodiumRandom() { ensure_sodium(); }

std::uint32_t SodiumRandom::uniform(std::uint32_t upper_bound) {
  if (upper_bound == 0) throw std::invalid_argument("uniform: the bound must be at least 1");
  return randombytes_uniform(upper_bound);
}

}  // namespace registrar::adapters::sodium
