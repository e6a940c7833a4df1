#pragma once
// argon2 memory kept for the life of a hash-worker process, instead of libsodium's fresh mapping
// per hash.
//
// Why: libsodium (1.0.18, crypto_pwhash/argon2/argon2-core.c allocate_memory/free_memory) maps
// every hash's memory with mmap(MAP_ANON | MAP_PRIVATE | MAP_POPULATE) and munmaps it afterwards,
// so the kernel faults in and zeroes ~4,900 pages for each 19 MiB hash and tears them down again:
// almost half of a hash's time (issue 11). It offers no way to pass memory in.
//
// How: this file defines `mmap` and `munmap` in the executable, which exports them (the sodium
// adapter's link options), so libsodium.so's calls to them bind here (an executable's definition
// comes first in the ELF symbol lookup order). Once keep_argon2_memory() has run in a process, an
// anonymous private read-write mapping of exactly the argon2 region's size, at no fixed address,
// gets the kept region, and its munmap wipes the region and keeps it. Every other call (any other
// size or kind of mapping, any other range, and every call in a process that never called
// keep_argon2_memory, such as the service itself) goes to the next definition (libc's, or a
// sanitizer runtime's interceptor in front of it). In a worker, libsodium is the only caller that
// maps memory of that exact kind and size; another would get the region too, and with it exactly
// what an mmap promises (below).
//
// The kept region is what an mmap would give: fresh anonymous memory is zero, and the region is
// zero whenever it is handed out (zeroed when mapped, wiped after every use). libsodium 1.0.18 does
// not wipe argon2 memory itself (argon2_hash sets no ARGON2_FLAG_CLEAR_MEMORY; munmap was its
// wipe), so the wipe here is what keeps the previous hash's blocks out of the process between
// hashes.
//
// Alternatives not taken: Debian's libargon2 accepts caller memory but is the reference build
// without SIMD (~25 ms of CPU per hash against libsodium's ~10); linking libsodium statically with
// `ld --wrap=mmap` would reach only its calls, but a static libsodium breaks the tests that
// interpose libsodium's own functions (tests/unit/security_test.cpp).
#include <cstddef>
#include <cstdint>

namespace registrar::adapters::sodium {

// Whether this build can hand libsodium the kept region: 0 where a sanitizer runtime is linked into
// the executable itself (clang's), whose interceptors are weak `mmap`/`munmap` definitions that the
// ones here would silently replace, hiding every mapping of the process from the sanitizer. The
// build says so (CMakeLists.txt), since this file's own compile flags leave out the sanitizers.
// GCC's runtimes are shared libraries, after the executable in the lookup order: calls passed on
// from here reach their interceptors, so GCC's ASan/UBSan and TSan builds keep the memory.
#ifndef REGISTRAR_KEEP_ARGON2_MEMORY
#define REGISTRAR_KEEP_ARGON2_MEMORY 1
#endif
inline constexpr bool kKeptArgon2MemoryAvailable = REGISTRAR_KEEP_ARGON2_MEMORY;

// Bytes libsodium maps for one argon2 hash of m = memory_kib with p = 1 (argon2_ctx in
// argon2.c): m KiB blocks, at least 8, rounded down to a multiple of the 4 sync points.
std::size_t argon2_region_bytes(std::uint32_t memory_kib);

// From now on, every argon2 hash and verification of m = memory_kib (p = 1) that libsodium makes in
// this process runs in one region mapped here: aligned to and advised for transparent huge pages
// (if the kernel has them), excluded from core dumps (MADV_DONTDUMP), zeroed in a child after a
// fork (MADV_WIPEONFORK: never shared with another process), faulted in now, wiped after every
// hash. Hashes with another m still get libsodium's own mapping.
//
// Call at most once, in a process with a single thread that hashes (a hash worker; a benchmark's
// hashing process): the region is lent to one hash at a time. Returns false, mapping nothing, when
// kKeptArgon2MemoryAvailable is false; throws std::runtime_error if the region cannot be mapped or
// advised, std::logic_error on a second call.
bool keep_argon2_memory(std::uint32_t memory_kib);

// The kept region (null and 0 before keep_argon2_memory) and how many times libsodium has taken it
// so far: 0 after hashes of the kept size means libsodium's calls do not reach this file (a binary
// that does not export mmap/munmap, or a libsodium that allocates otherwise).
struct KeptArgon2Memory {
  const unsigned char* base = nullptr;
  std::size_t bytes = 0;  // what libsodium is lent (argon2_region_bytes)
  std::uint64_t lent = 0;
};
KeptArgon2Memory kept_argon2_memory();

}  // namespace registrar::adapters::sodium
