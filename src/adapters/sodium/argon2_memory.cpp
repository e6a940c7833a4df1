#include "adapters/sodium/argon2_memory.hpp"

#include <dlfcn.h>
#include <sodium.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

// On 64-bit Linux, mmap and mmap64 are one function, and libsodium calls `mmap`. (A 32-bit build
// with 64-bit file offsets would call mmap64, which is not interposed here.)
static_assert(sizeof(off_t) == 8 && sizeof(void*) == 8, "argon2_memory.cpp interposes mmap for 64-bit Linux");

namespace registrar::adapters::sodium {

std::size_t argon2_region_bytes(std::uint32_t memory_kib) {
  constexpr std::uint32_t kSyncPoints = 4;  // ARGON2_SYNC_POINTS; p = 1, so one lane
  const std::uint32_t blocks = std::max(memory_kib, 2 * kSyncPoints) / kSyncPoints * kSyncPoints;
  return std::size_t{blocks} * 1024;  // ARGON2_BLOCK_SIZE
}

#if !REGISTRAR_KEEP_ARGON2_MEMORY

bool keep_argon2_memory(std::uint32_t) { return false; }
KeptArgon2Memory kept_argon2_memory() { return {}; }

}  // namespace registrar::adapters::sodium

#else

namespace {

using MmapFn = void* (*)(void*, std::size_t, int, int, int, off_t);
using MunmapFn = int (*)(void*, std::size_t);

// Transparent huge pages back only whole, aligned 2 MiB ranges (x86-64, and arm64 with 4 KiB
// pages); argon2 reads its blocks at random over the whole region, so fewer TLB misses help.
constexpr std::size_t kHugePage = 2 * 1024 * 1024;

// The definition a call reaches without this file: libc's, or a sanitizer runtime's interceptor
// in front of it. Looked up on first use, not at start-up: other libraries' constructors (which
// run before this executable's) may already map memory.
template <class Fn>
Fn next_definition(std::atomic<Fn>& cache, const char* name) {
  Fn fn = cache.load(std::memory_order_acquire);
  if (fn == nullptr) {
    fn = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
    if (fn == nullptr) std::abort();  // no mmap/munmap behind ours: nothing in the process can work
    cache.store(fn, std::memory_order_release);
  }
  return fn;
}
std::atomic<MmapFn> next_mmap{nullptr};
std::atomic<MunmapFn> next_munmap{nullptr};
// And looked up again when this executable's constructors run, whether or not anything mapped
// memory before: so that no later call needs dlsym. A sanitizer runtime unmaps memory while it
// writes a report, holding its own allocator's lock; a dlsym there (which allocates through that
// runtime) never returned (found under ThreadSanitizer).
[[gnu::constructor]] void resolve_next_definitions() {
  next_definition(next_mmap, "mmap");
  next_definition(next_munmap, "munmap");
}

struct Kept {
  unsigned char* base = nullptr;
  std::size_t bytes = 0;  // lent to libsodium: argon2_region_bytes
  bool out = false;       // lent right now
  std::uint64_t lent = 0;
};
// Filled once by keep_argon2_memory, then published through `kept`, which stays null in every
// process that never keeps a region (the service itself): there, mmap and munmap only pass on.
// `out` and `lent` change inside libsodium's calls, in the one thread that hashes.
Kept state;
std::atomic<Kept*> kept{nullptr};

// libsodium 1.0.18 asks for MAP_ANON | MAP_PRIVATE | MAP_POPULATE (later versions drop
// MAP_POPULATE); the kept region is already populated, so that flag makes no difference.
bool is_argon2_request(const Kept& k, void* addr, std::size_t length, int prot, int flags, int fd, off_t offset) {
  return !k.out && addr == nullptr && length == k.bytes && prot == (PROT_READ | PROT_WRITE) && fd == -1 &&
         offset == 0 && (flags & ~(MAP_POPULATE | MAP_NORESERVE)) == (MAP_PRIVATE | MAP_ANONYMOUS);
}

}  // namespace

bool keep_argon2_memory(std::uint32_t memory_kib) {
  if (kept.load(std::memory_order_acquire) != nullptr) throw std::logic_error("keep_argon2_memory: called twice");
  const std::size_t bytes = argon2_region_bytes(memory_kib);
  const std::size_t mapped = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  const auto mmap_ = next_definition(next_mmap, "mmap");
  const auto munmap_ = next_definition(next_munmap, "munmap");
  auto fail = [](const char* what) {
    throw std::runtime_error(std::string("argon2 memory: ") + what + ": " + std::strerror(errno));
  };

  // One huge page more than needed, so that a huge-page boundary lies in the first one; both ends
  // beyond the aligned range go back at once.
  auto* raw = static_cast<unsigned char*>(
      mmap_(nullptr, mapped + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (raw == MAP_FAILED) fail("mmap");
  const auto at = reinterpret_cast<std::uintptr_t>(raw);
  auto* base = raw + ((at + kHugePage - 1) / kHugePage * kHugePage - at);
  if (base != raw) munmap_(raw, static_cast<std::size_t>(base - raw));
  munmap_(base + mapped, kHugePage - static_cast<std::size_t>(base - raw));

  // A hint: EINVAL where the kernel has no transparent huge pages, and the region works without.
  ::madvise(base, mapped, MADV_HUGEPAGE);
  // Not optional: whatever a worker's memory holds must not reach a core file (workers are also
  // not dumpable at all: hash_workers.cpp), nor a child process.
  if (::madvise(base, mapped, MADV_DONTDUMP) != 0 || ::madvise(base, mapped, MADV_WIPEONFORK) != 0) {
    const int err = errno;
    munmap_(base, mapped);
    errno = err;
    fail("madvise");
  }
  // Writing faults every page in now (huge ones where the kernel gives them), so no hash does.
  std::memset(base, 0, mapped);

  state = Kept{.base = base, .bytes = bytes};
  kept.store(&state, std::memory_order_release);
  return true;
}

KeptArgon2Memory kept_argon2_memory() {
  const Kept* k = kept.load(std::memory_order_acquire);
  if (k == nullptr) return {};
  return {.base = k->base, .bytes = k->bytes, .lent = k->lent};
}

}  // namespace registrar::adapters::sodium

// The definitions libsodium.so binds to (see argon2_memory.hpp). Both are on every mapping's path
// in the process, so the pass-on case is one atomic load and a compare before the next definition.

extern "C" void* mmap(void* addr, std::size_t length, int prot, int flags, int fd, off_t offset) noexcept {
  namespace so = registrar::adapters::sodium;
  if (so::Kept* k = so::kept.load(std::memory_order_acquire);
      k != nullptr && so::is_argon2_request(*k, addr, length, prot, flags, fd, offset)) {
    k->out = true;
    ++k->lent;
    return k->base;
  }
  return so::next_definition(so::next_mmap, "mmap")(addr, length, prot, flags, fd, offset);
}

extern "C" int munmap(void* addr, std::size_t length) noexcept {
  namespace so = registrar::adapters::sodium;
  if (so::Kept* k = so::kept.load(std::memory_order_acquire);
      k != nullptr && k->out && addr == k->base && length == k->bytes) {
    // Where libsodium would have given the pages back to the kernel (which discards them), wipe
    // them: the region is zero again, as the next mmap of it promises.
    sodium_memzero(k->base, k->bytes);
    k->out = false;
    return 0;
  }
  return so::next_definition(so::next_munmap, "munmap")(addr, length);
}
#endif
