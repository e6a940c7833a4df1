// The kept argon2 region (adapters/sodium/argon2_memory.hpp) in this test process: libsodium's
// hashes and verifications of the kept size run in it, it is zero whenever it is not lent (wiped
// after every hash), other sizes and other callers' mappings pass through, and what an mmap of the
// kept size gets is what an mmap promises (zeroed memory). The hash workers' tests
// (hash_workers_test.cpp) check the same from outside a real worker.
//
// Every test here runs in a process with one thread, as keep_argon2_memory requires, and only one
// test keeps a region (a process keeps at most one).
#include "adapters/sodium/argon2_memory.hpp"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "adapters/sodium/argon2_hasher.hpp"
#include "adapters/sodium/sodium.hpp"

namespace {

namespace so = registrar::adapters::sodium;

bool all_zero(const unsigned char* p, std::size_t n) {
  return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

TEST(Argon2Memory, RegionBytesAreWhatLibsodiumMapsForAnArgon2idHashWithOneLane) {
  EXPECT_EQ(so::argon2_region_bytes(19 * 1024), 19u * 1024 * 1024);
  EXPECT_EQ(so::argon2_region_bytes(8), 8u * 1024);     // libsodium's minimum
  EXPECT_EQ(so::argon2_region_bytes(13), 12u * 1024);   // whole segments: a multiple of 4 blocks
  EXPECT_EQ(so::argon2_region_bytes(4), 8u * 1024);     // at least 8 blocks (libsodium refuses m < 8 KiB itself)
}

TEST(Argon2Memory, LibsodiumHashesInTheKeptRegionWhichIsZeroWheneverItIsNotLent) {
  if (!so::kKeptArgon2MemoryAvailable) GTEST_SKIP() << "this build cannot keep argon2 memory (argon2_memory.hpp)";
  so::ensure_sodium();
  constexpr std::uint32_t kKib = 256;
  EXPECT_EQ(so::kept_argon2_memory().base, nullptr);
  ASSERT_TRUE(so::keep_argon2_memory(kKib));
  EXPECT_THROW(so::keep_argon2_memory(kKib), std::logic_error);
  const auto kept = so::kept_argon2_memory();
  ASSERT_NE(kept.base, nullptr);
  EXPECT_EQ(kept.bytes, so::argon2_region_bytes(kKib));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(kept.base) % (2 * 1024 * 1024), 0u);  // huge-page aligned
  EXPECT_EQ(kept.lent, 0u);
  EXPECT_TRUE(all_zero(kept.base, kept.bytes));

  // A hash and its verification: libsodium takes the region each time and it is zero afterwards.
  const std::string pw = "kept region password";
  const auto phc = so::argon2id_hash(pw, kKib, 3);
  EXPECT_EQ(so::kept_argon2_memory().lent, 1u);
  EXPECT_TRUE(all_zero(kept.base, kept.bytes));
  EXPECT_TRUE(so::argon2id_verify(phc, pw));
  EXPECT_FALSE(so::argon2id_verify(phc, pw + "!"));
  EXPECT_EQ(so::kept_argon2_memory().lent, 3u);
  EXPECT_TRUE(all_zero(kept.base, kept.bytes));

  // Another m: libsodium's own mapping, as shipped; same results.
  const auto other = so::argon2id_hash(pw, 2 * kKib, 1);
  EXPECT_TRUE(so::argon2id_verify(other, pw));
  EXPECT_EQ(so::kept_argon2_memory().lent, 3u);

  // Any anonymous private mapping of the kept size gets the region, zeroed as an mmap promises; one
  // asked for while it is lent, or of another kind, is a mapping of its own.
  auto* lent = static_cast<unsigned char*>(::mmap(nullptr, kept.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_EQ(lent, kept.base);
  EXPECT_TRUE(all_zero(lent, kept.bytes));
  auto* fresh = static_cast<unsigned char*>(::mmap(nullptr, kept.bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(fresh, MAP_FAILED);
  EXPECT_NE(fresh, kept.base);
  auto* shared = static_cast<unsigned char*>(::mmap(nullptr, kept.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(shared, MAP_FAILED);
  EXPECT_NE(shared, kept.base);
  std::fill(lent, lent + kept.bytes, 0x5a);
  EXPECT_EQ(::munmap(lent, kept.bytes), 0);  // kept, and wiped
  EXPECT_TRUE(all_zero(kept.base, kept.bytes));
  EXPECT_EQ(::munmap(fresh, kept.bytes), 0);
  EXPECT_EQ(::munmap(shared, kept.bytes), 0);
  EXPECT_EQ(so::kept_argon2_memory().lent, 4u);

  // And the region still serves libsodium.
  EXPECT_TRUE(so::argon2id_verify(phc, pw));
  EXPECT_EQ(so::kept_argon2_memory().lent, 5u);
}

}  // namespace
