// The argon2id ceiling of this machine: how many password hashes per second all cores can make at
// the production cost (libsodium, m=19 MiB, t=2, p=1). A sign-up costs one such hash, so this is
// the upper bound for POST /auth/register throughput.
//
//   argon2_ceiling [--threads N] [--seconds S] [--memory-kib M] [--iterations T]
//
// Prints a human-readable summary and one machine-readable line:
//   RESULT threads=2 seconds=5.00 hashes=940 hashes_per_sec=188.0 ms_per_hash=10.64
#include <sodium.h>

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
  double seconds = 5.0;
  unsigned long long memory_kib = 19 * 1024;
  unsigned long long iterations = 2;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--threads N] [--seconds S] [--memory-kib M] [--iterations T]\n", argv0);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    const char* v = argv[++i];
    if (a == "--threads") o.threads = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
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

  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::vector<unsigned long long> counts(opt.threads, 0);
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  const auto end = start + std::chrono::duration<double>(opt.seconds);
  for (unsigned t = 0; t < opt.threads; ++t) {
    workers.emplace_back([&, t] {
      char out[crypto_pwhash_STRBYTES];
      char pw[64];
      unsigned long long n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const int len = std::snprintf(pw, sizeof pw, "ceiling-%u-%llu-password", t, n);
        if (crypto_pwhash_str_alg(out, pw, static_cast<unsigned long long>(len), opt.iterations, memlimit,
                                  crypto_pwhash_ALG_ARGON2ID13) != 0) {
          failed = true;
          break;
        }
        ++n;
        if (std::chrono::steady_clock::now() >= end) break;
      }
      counts[t] = n;
    });
  }
  for (auto& w : workers) w.join();
  stop = true;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (failed) {
    std::fprintf(stderr, "crypto_pwhash_str_alg failed during the run\n");
    return 1;
  }
  unsigned long long total = 0;
  for (auto c : counts) total += c;
  const double per_sec = static_cast<double>(total) / elapsed;
  const double ms_per_hash = elapsed * 1000.0 * opt.threads / static_cast<double>(total);

  std::printf("argon2id m=%llu KiB t=%llu p=1, %u thread(s), %.2f s: %llu hashes, %.1f hashes/s, %.2f ms per hash per core\n",
              opt.memory_kib, opt.iterations, opt.threads, elapsed, total, per_sec, ms_per_hash);
  std::printf("RESULT threads=%u seconds=%.2f hashes=%llu hashes_per_sec=%.1f ms_per_hash=%.2f\n", opt.threads, elapsed,
              total, per_sec, ms_per_hash);
  return 0;
}
