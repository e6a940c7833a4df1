// The argon2id ceiling of this machine: how many password hashes per second all cores can make at
// the production cost (libsodium, m=19 MiB, t=2, p=1). A sign-up costs one such hash, so this is
// the upper bound for POST /auth/register throughput.
//
//   argon2_ceiling [--threads N | --processes N] [--seconds S] [--memory-kib M] [--iterations T]
//
// --threads N hashes in N threads of this process; --processes N in N single-threaded child
// processes. The second is the higher ceiling on Linux: libsodium maps (and populates) a fresh
// region per hash and unmaps it after, and threads sharing one address space serialise on it
// (hash_workers.hpp in the service says more). Compare a service with the higher of the two.
//
// Prints a human-readable summary and one machine-readable line:
//   RESULT threads=2 mode=processes seconds=5.00 hashes=940 hashes_per_sec=188.0 ms_per_hash=10.64
#include <sodium.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  bool processes = false;
  double seconds = 5.0;
  unsigned long long memory_kib = 19 * 1024;
  unsigned long long iterations = 2;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--threads N | --processes N] [--seconds S] [--memory-kib M] [--iterations T]\n", argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const char* v = argv[++i];
    if (a == "--threads" || a == "--processes") {
      o.threads = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
      o.processes = a == "--processes";
    }
    else if (a == "--seconds") o.seconds = std::strtod(v, nullptr);
    else if (a == "--memory-kib") o.memory_kib = std::strtoull(v, nullptr, 10);
    else if (a == "--iterations") o.iterations = std::strtoull(v, nullptr, 10);
    else usage(argv[0]);
  }
  if (o.threads == 0 || o.seconds <= 0 || o.memory_kib < 8 || o.iterations < 1) usage(argv[0]);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  if (sodium_init() < 0) {
    std::fprintf(stderr, "sodium_init failed\n");
    return 1;
  }
  const std::size_t memlimit = static_cast<std::size_t>(opt.memory_kib) * 1024;

  // One warm-up hash (page faults of the first allocation, CPU frequency ramp).
  {
    char out[crypto_pwhash_STRBYTES];
    const char pw[] = "warm-up-password";
    if (crypto_pwhash_str_alg(out, pw, sizeof pw - 1, opt.iterations, memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
      std::fprintf(stderr, "crypto_pwhash_str_alg failed (out of memory?)\n");
      return 1;
    }
  }

  // Hashes until `end`; returns the count, or -1 if libsodium failed.
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(opt.seconds);
  auto hash_until_end = [&](unsigned t) -> long long {
    char out[crypto_pwhash_STRBYTES];
    char pw[64];
    long long n = 0;
    for (;;) {
      const int len = std::snprintf(pw, sizeof pw, "ceiling-%u-%lld-password", t, n);
      if (crypto_pwhash_str_alg(out, pw, static_cast<unsigned long long>(len), opt.iterations, memlimit,
                                crypto_pwhash_ALG_ARGON2ID13) != 0)
        return -1;
      ++n;
      if (std::chrono::steady_clock::now() >= end) return n;
    }
  };

  std::vector<long long> counts(opt.threads, 0);
  if (opt.processes) {
    // Each child reports its count through a pipe of its own.
    std::vector<std::pair<pid_t, int>> children;
    for (unsigned t = 0; t < opt.threads; ++t) {
      int fds[2];
      if (::pipe(fds) != 0) return 1;
      pid_t pid = ::fork();
      if (pid < 0) return 1;
      if (pid == 0) {
        ::close(fds[0]);
        long long n = hash_until_end(t);
        ssize_t written = ::write(fds[1], &n, sizeof n);
        ::_exit(written == static_cast<ssize_t>(sizeof n) ? 0 : 1);
      }
      ::close(fds[1]);
      children.emplace_back(pid, fds[0]);
    }
    for (unsigned t = 0; t < opt.threads; ++t) {
      long long n = -1;
      if (::read(children[t].second, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) n = -1;
      ::close(children[t].second);
      ::waitpid(children[t].first, nullptr, 0);
      counts[t] = n;
    }
  } else {
    std::vector<std::thread> workers;
    for (unsigned t = 0; t < opt.threads; ++t) workers.emplace_back([&, t] { counts[t] = hash_until_end(t); });
    for (auto& w : workers) w.join();
  }
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (std::any_of(counts.begin(), counts.end(), [](long long c) { return c < 0; })) {
    std::fprintf(stderr, "crypto_pwhash_str_alg failed during the run\n");
    return 1;
  }
  unsigned long long total = 0;
  for (auto c : counts) total += c;
  const double per_sec = static_cast<double>(total) / elapsed;
  const double ms_per_hash = elapsed * 1000.0 * opt.threads / static_cast<double>(total);
  const char* mode = opt.processes ? "processes" : "threads";

  std::printf("argon2id m=%llu KiB t=%llu p=1, %u %s, %.2f s: %llu hashes, %.1f hashes/s, %.2f ms per hash per core\n",
              opt.memory_kib, opt.iterations, opt.threads, mode, elapsed, total, per_sec, ms_per_hash);
  std::printf("RESULT threads=%u mode=%s seconds=%.2f hashes=%llu hashes_per_sec=%.1f ms_per_hash=%.2f\n", opt.threads,
              mode, elapsed, total, per_sec, ms_per_hash);
  return 0;
}
