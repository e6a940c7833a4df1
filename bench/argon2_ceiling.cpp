// The argon2id ceilings of this machine: how many password hashes per second all cores can make at
// the production cost (libsodium, m=19 MiB, t=2, p=1). A sign-up costs one such hash, so this is
// the upper bound for POST /auth/register throughput.
//
//   argon2_ceiling [--threads N | --processes N] [--memory shipped|reused|both] [--seconds S]
//                  [--memory-kib M] [--iterations T]
//
// Two limits, by where argon2's memory comes from (--memory; default both, one after the other):
//  - shipped: libsodium as shipped, which maps (and populates) a fresh region per hash and unmaps
//    it after, so each hash also pays the kernel for faulting in, zeroing and tearing down its pages;
//  - reused: argon2's own computation, each process hashing in one region kept for all its hashes
//    and wiped after each, as the service's hash workers do (src/adapters/sodium/argon2_memory.hpp;
//    the same code): the ceiling for the service today. Processes only.
// --threads N hashes in N threads of this process; --processes N in N single-threaded child
// processes. Processes are the higher shipped ceiling on Linux: threads sharing one address space
// serialise on libsodium's per-hash mmap/munmap (hash_workers.hpp in the service says more).
//
// Prints a human-readable summary and one machine-readable line per limit:
//   RESULT threads=2 mode=processes memory=reused seconds=5.00 hashes=1640 hashes_per_sec=328.0 ms_per_hash=6.10
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "adapters/sodium/argon2_memory.hpp"

namespace {

namespace so = registrar::adapters::sodium;

struct Options {
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  bool processes = false;
  bool shipped = true;
  bool reused = true;
  double seconds = 5.0;
  unsigned long long memory_kib = 19 * 1024;
  unsigned long long iterations = 2;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--threads N | --processes N] [--memory shipped|reused|both] [--seconds S] [--memory-kib M] "
               "[--iterations T]\n(--memory reused needs --processes)\n",
               argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  bool memory_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const std::string v = argv[++i];
    if (a == "--threads" || a == "--processes") {
      o.threads = static_cast<unsigned>(std::strtoul(v.c_str(), nullptr, 10));
      o.processes = a == "--processes";
    } else if (a == "--memory" && (v == "shipped" || v == "reused" || v == "both")) {
      memory_given = true;
      o.shipped = v != "reused";
      o.reused = v != "shipped";
    } else if (a == "--seconds") {
      o.seconds = std::strtod(v.c_str(), nullptr);
    } else if (a == "--memory-kib") {
      o.memory_kib = std::strtoull(v.c_str(), nullptr, 10);
    } else if (a == "--iterations") {
      o.iterations = std::strtoull(v.c_str(), nullptr, 10);
    } else {
      usage(argv[0]);
    }
  }
  // A kept region serves one hash at a time: in threads of one process it would have to be one per
  // thread, which is not what the service does. Without --memory, threads measure shipped only.
  if (!o.processes && o.reused) {
    if (memory_given) usage(argv[0]);
    o.reused = false;
  }
  if (o.threads == 0 || o.seconds <= 0 || o.memory_kib < 8 || o.memory_kib > UINT32_MAX || o.iterations < 1) usage(argv[0]);
  return o;
}

// Hashes until `end`; returns the count, or -1 if libsodium failed.
long long hash_until(const Options& opt, unsigned t, std::chrono::steady_clock::time_point end) {
  char out[crypto_pwhash_STRBYTES];
  char pw[64];
  long long n = 0;
  for (;;) {
    const int len = std::snprintf(pw, sizeof pw, "ceiling-%u-%lld-password", t, n);
    if (crypto_pwhash_str_alg(out, pw, static_cast<unsigned long long>(len), opt.iterations,
                              static_cast<std::size_t>(opt.memory_kib) * 1024, crypto_pwhash_ALG_ARGON2ID13) != 0)
      return -1;
    ++n;
    if (std::chrono::steady_clock::now() >= end) return n;
  }
}

// One hash outside the clock: the first allocation's page faults, the CPU's frequency ramp, and
// (reused) faulting in the kept region. Returns false if libsodium failed.
bool warm_up(const Options& opt) {
  return hash_until(opt, 0, std::chrono::steady_clock::time_point::min()) == 1;
}

// One measured run; returns the total hash count (-1 on a failure, already reported).
long long measure(const Options& opt, bool reused, double& elapsed) {
  std::vector<long long> counts(opt.threads, 0);
  std::chrono::steady_clock::time_point start, end;
  if (opt.processes) {
    // Each child says through a pipe of its own when it is ready ('r'; 'f': it failed), and then
    // its count. The clock starts once all are ready, so a slow start (mapping and faulting in the
    // kept region, the warm-up hash) does not count; the parent then sends them the end time.
    std::vector<std::pair<pid_t, int>> children;
    int go[2];
    if (::pipe(go) != 0) return -1;
    for (unsigned t = 0; t < opt.threads; ++t) {
      int fds[2];
      if (::pipe(fds) != 0) return -1;
      pid_t pid = ::fork();
      if (pid < 0) return -1;
      if (pid == 0) {
        ::close(fds[0]);
        ::close(go[1]);
        bool ok = false;
        try {
          ok = (!reused || so::keep_argon2_memory(static_cast<std::uint32_t>(opt.memory_kib))) && warm_up(opt);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "%s\n", e.what());
        }
        const char status = ok ? 'r' : 'f';
        if (::write(fds[1], &status, 1) != 1 || !ok) ::_exit(1);
        std::chrono::steady_clock::time_point child_end;
        long long n = -1;
        if (::read(go[0], &child_end, sizeof child_end) == sizeof child_end) n = hash_until(opt, t, child_end);
        // Every hash of the kept size must have taken the region (the warm-up too), or this is not
        // the limit it claims to be (e.g. a build whose mmap libsodium does not reach).
        if (reused && n >= 0 && so::kept_argon2_memory().lent != static_cast<std::uint64_t>(n) + 1) n = -2;
        const ssize_t written = ::write(fds[1], &n, sizeof n);
        ::_exit(written == static_cast<ssize_t>(sizeof n) ? 0 : 1);
      }
      ::close(fds[1]);
      children.emplace_back(pid, fds[0]);
    }
    ::close(go[0]);
    bool ready = true;
    for (auto& c : children) {
      char status = 0;
      ready = ::read(c.second, &status, 1) == 1 && status == 'r' && ready;
    }
    start = std::chrono::steady_clock::now();
    end = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(opt.seconds));
    for (unsigned t = 0; t < opt.threads && ready; ++t)
      if (::write(go[1], &end, sizeof end) != sizeof end) ready = false;
    ::close(go[1]);  // a child still waiting for the end time reads end-of-file and reports -1
    for (unsigned t = 0; t < opt.threads; ++t) {
      long long n = -1;
      if (::read(children[t].second, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) n = -1;
      ::close(children[t].second);
      ::waitpid(children[t].first, nullptr, 0);
      counts[t] = n;
    }
  } else {
    if (!warm_up(opt)) counts[0] = -1;
    start = std::chrono::steady_clock::now();
    end = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(opt.seconds));
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < opt.threads && counts[0] >= 0; ++t)
      workers.emplace_back([&, t] { counts[t] = hash_until(opt, t, end); });
    for (auto& w : workers) w.join();
  }
  elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (std::any_of(counts.begin(), counts.end(), [](long long c) { return c == -2; })) {
    std::fprintf(stderr, "reused: libsodium did not take the kept region for every hash (is mmap interposed in this build?)\n");
    return -1;
  }
  if (std::any_of(counts.begin(), counts.end(), [](long long c) { return c < 0; })) {
    std::fprintf(stderr, "crypto_pwhash_str_alg failed (out of memory?)\n");
    return -1;
  }
  long long total = 0;
  for (auto c : counts) total += c;
  return total;
}

bool report(const Options& opt, bool reused) {
  double elapsed = 0;
  const long long total = measure(opt, reused, elapsed);
  if (total <= 0) return false;
  const double per_sec = static_cast<double>(total) / elapsed;
  const double ms_per_hash = elapsed * 1000.0 * opt.threads / static_cast<double>(total);
  const char* mode = opt.processes ? "processes" : "threads";
  const char* memory = reused ? "reused" : "shipped";
  std::printf("argon2id m=%llu KiB t=%llu p=1, %u %s, memory %s, %.2f s: %lld hashes, %.1f hashes/s, %.2f ms per hash per core\n",
              opt.memory_kib, opt.iterations, opt.threads, mode, memory, elapsed, total, per_sec, ms_per_hash);
  std::printf("RESULT threads=%u mode=%s memory=%s seconds=%.2f hashes=%lld hashes_per_sec=%.1f ms_per_hash=%.2f\n",
              opt.threads, mode, memory, elapsed, total, per_sec, ms_per_hash);
  std::fflush(stdout);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (sodium_init() < 0) {
    std::fprintf(stderr, "sodium_init failed\n");
    return 1;
  }
  if (opt.reused && !so::kKeptArgon2MemoryAvailable) {
    std::fprintf(stderr, "--memory reused: this build cannot keep argon2 memory (a clang sanitizer build)\n");
    return 1;
  }
  if (opt.shipped && !report(opt, false)) return 1;
  if (opt.reused && !report(opt, true)) return 1;
  return 0;
}
