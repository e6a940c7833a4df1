#pragma once
// argon2id in worker processes, one hash at a time each.
//
// Why processes: libsodium maps a fresh region for every hash (19 MiB, mmap with MAP_POPULATE) and
// unmaps it afterwards. In one process, the hashing threads share one address space, so each
// thread's mmap/populate and the other threads' munmap serialise on the address space's lock and
// trade TLB shoot-downs: measured on 2 cores, 2 threads in one process make 131 hashes/s with 12 %
// of the CPU idle, 2 single-threaded processes 154 hashes/s with none idle (BENCHMARKS.md). A
// worker process has an address space of its own and a single thread, so nothing contends. And
// being alone in its process, a worker can keep its argon2 memory: one region, faulted in once and
// wiped after every hash, instead of a fresh mapping per hash (argon2_memory.hpp), which takes the
// kernel's per-hash work (faulting in, zeroing and unmapping ~4,900 pages) out of every sign-up
// and login.
//
// The workers are the service's own binary (`/proc/self/exe __hash-worker M T PARENT`) started at
// construction, each talking over a SOCK_SEQPACKET socket pair (one datagram per request and per
// answer). A worker:
//  - has no secrets: its environment holds only sanitizer settings, its descriptors only 0–2 and
//    its socket (fd 3); it cannot be ptrace-attached or dumped (PR_SET_DUMPABLE 0);
//  - dies with the service (PR_SET_PDEATHSIG SIGKILL), ignores SIGINT/SIGTERM (a Ctrl-C reaches the
//    whole process group, and the service still needs its workers while it drains), and exits when
//    its socket closes;
//  - wipes each request's password from memory after use (so does the service side), and its
//    argon2 region after every hash; the region is excluded from core dumps and from any child.
// A worker that dies or stops answering within `timeout` is killed, reaped and replaced, and the
// request runs once more on the new one (hashing is a pure function: repeating it is harmless).
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/logging/json_logger.hpp"

namespace registrar::adapters::sodium {

// argv[1] that makes the binary a hash worker (main() checks it before anything else).
inline constexpr std::string_view kHashWorkerCommand = "__hash-worker";

// The worker side: `argv` = {exe, kHashWorkerCommand, memory_kib, iterations, parent_pid}; serves
// requests on fd 3 until it closes. Returns the process exit code.
int run_hash_worker(int argc, char** argv);

struct HashWorkersOptions {
  std::string executable = "/proc/self/exe";  // a binary whose main() calls run_hash_worker
  unsigned count = 1;
  std::uint32_t memory_kib = 19 * 1024;
  std::uint32_t iterations = 2;
  std::chrono::milliseconds timeout{60'000};  // for one answer; then the worker is replaced
};

class HashWorkers {
 public:
  // Starts `count` workers. Throws std::runtime_error if one cannot be started. A worker replaced
  // later is reported to `log` as a warning.
  HashWorkers(HashWorkersOptions options, logging::Logger log);
  // Closes the sockets (workers exit) and reaps them; SIGKILL for any still there after 2 s.
  ~HashWorkers();
  HashWorkers(const HashWorkers&) = delete;
  HashWorkers& operator=(const HashWorkers&) = delete;

  // The PHC string of `password` (argon2id with the workers' m and t). Blocks for the hash; waits
  // for a free worker if all are busy. Throws std::runtime_error if hashing fails twice.
  std::string hash(std::string_view password);
  // crypto_pwhash_str_verify in a worker. `phc` must be a NUL-free string shorter than
  // crypto_pwhash_STRBYTES (the caller checks).
  bool verify(std::string_view phc, std::string_view password);

  // The largest password a request carries (a datagram must fit the socket buffer); longer ones
  // are for the caller to hash in-process.
  static constexpr std::size_t kMaxPassword = 64 * 1024;

  std::vector<pid_t> pids() const;  // the current workers (for tests and diagnostics)
  std::uint64_t replaced() const;   // workers replaced after dying or hanging so far

 private:
  struct Worker {
    pid_t pid = -1;
    int fd = -1;
  };
  Worker spawn() const;
  // Closes the socket, SIGKILLs the worker (alive or a zombie: its pid is not reused before it is
  // reaped) and reaps it.
  static void kill_and_reap(Worker& w) noexcept;
  std::string call(std::string& request);
  bool exchange(const Worker& w, const std::string& request, std::string& answer) const;

  HashWorkersOptions options_;
  logging::Logger log_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::vector<Worker> workers_;    // one slot per worker, busy or not
  // Indexes into workers_ of the free ones, taken in turn (FIFO): every worker gets used, so a dead
  // one is found and replaced by the next calls even when they come one at a time.
  std::deque<std::size_t> idle_;
  std::uint64_t replaced_ = 0;
};

}  // namespace registrar::adapters::sodium
