#include "adapters/sodium/hash_workers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "adapters/sodium/argon2_hasher.hpp"
#include "adapters/sodium/argon2_memory.hpp"
#include "adapters/sodium/sodium.hpp"
#include "ports/errors.hpp"

extern char** environ;

namespace registrar::adapters::sodium {

namespace {

// The wire format, one SOCK_SEQPACKET datagram each way (both ends are this binary, so host byte
// order is fine):
//   request: op ('h' hash | 'v' verify), u32 password length, password, then for 'v' the PHC string
//   answer:  'k' then the PHC string ('h') or '1' / '0' ('v'); or 'e' then a message
constexpr char kOpHash = 'h';
constexpr char kOpVerify = 'v';
constexpr char kOk = 'k';
constexpr char kError = 'e';
constexpr int kWorkerFd = 3;
constexpr std::size_t kHeader = 1 + sizeof(std::uint32_t);
constexpr std::size_t kMaxRequest = kHeader + HashWorkers::kMaxPassword + crypto_pwhash_STRBYTES;
constexpr std::size_t kMaxAnswer = 1 + crypto_pwhash_STRBYTES + 256;

std::string errno_text(int err) { return std::strerror(err); }

template <class T>
bool parse_number(const char* text, T& out) {
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && ptr == end;
}

std::string request_of(char op, std::string_view password, std::string_view phc = {}) {
  std::string r;
  r.reserve(kHeader + password.size() + phc.size());
  r.push_back(op);
  auto length = static_cast<std::uint32_t>(password.size());
  r.append(reinterpret_cast<const char*>(&length), sizeof length);
  r.append(password);
  r.append(phc);
  return r;
}

// Only what a sanitizer or the dynamic loader needs: a worker never sees the service's secrets.
std::vector<std::string> worker_environment() {
  std::vector<std::string> kept;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view v(*e);
    for (std::string_view prefix : {"ASAN_", "UBSAN_", "TSAN_", "LSAN_", "LD_LIBRARY_PATH=", "LD_PRELOAD="})
      if (v.substr(0, prefix.size()) == prefix) {
        kept.emplace_back(v);
        break;
      }
  }
  return kept;
}

// The answer to one request, computed in this (worker) process.
std::string answer_to(std::string_view request, std::uint32_t memory_kib, std::uint32_t iterations) {
  if (request.size() < kHeader) return std::string(1, kError) + "short request";
  std::uint32_t length = 0;
  std::memcpy(&length, request.data() + 1, sizeof length);
  if (length > request.size() - kHeader) return std::string(1, kError) + "bad password length";
  auto password = request.substr(kHeader, length);
  auto rest = request.substr(kHeader + length);
  try {
    switch (request[0]) {
      case kOpHash:
        return kOk + argon2id_hash(password, memory_kib, iterations);
      case kOpVerify:
        return std::string(1, kOk) + (argon2id_verify(rest, password) ? '1' : '0');
      default:
        return std::string(1, kError) + "unknown operation";
    }
  } catch (const std::exception& e) {
    return kError + std::string(e.what());
  }
}

}  // namespace

int run_hash_worker(int argc, char** argv) {
  std::uint32_t memory_kib = 0, iterations = 0;
  pid_t parent = 0;
  if (argc != 5 || !parse_number(argv[2], memory_kib) || !parse_number(argv[3], iterations) ||
      !parse_number(argv[4], parent))
    return 2;
  // Die with the service; if it is already gone (it died before the line above), stop now.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || ::getppid() != parent) return 0;
  ::prctl(PR_SET_DUMPABLE, 0);  // no ptrace attach, no core dump with passwords in it
  ::signal(SIGINT, SIG_IGN);     // the service stops its workers by closing their sockets
  ::signal(SIGTERM, SIG_IGN);
  try {
    ensure_sodium();
    // One argon2 region for every hash and verification this worker makes, instead of
    // libsodium's fresh mapping per hash (argon2_memory.hpp says why and how).
    keep_argon2_memory(memory_kib);
  } catch (const std::exception& e) {
    // The service only sees a worker that did not answer: say why on the stderr they share.
    std::fprintf(stderr, "registrar %s: %s\n", kHashWorkerCommand.data(), e.what());
    return 1;
  }

  std::vector<char> buffer(kMaxRequest);
  for (;;) {
    ssize_t n = ::recv(kWorkerFd, buffer.data(), buffer.size(), 0);
    if (n == 0) return 0;  // the service closed the socket
    if (n < 0) {
      if (errno == EINTR) continue;
      return 1;
    }
    auto answer = answer_to(std::string_view(buffer.data(), static_cast<std::size_t>(n)), memory_kib, iterations);
    sodium_memzero(buffer.data(), static_cast<std::size_t>(n));
    if (::send(kWorkerFd, answer.data(), answer.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(answer.size())) return 1;
  }
}

HashWorkers::HashWorkers(HashWorkersOptions options, logging::Logger log)
    : options_(std::move(options)), log_(std::move(log)) {
  if (options_.count == 0) throw std::invalid_argument("hash workers: count must be at least 1");
  try {
    // Each worker must answer once before the service relies on it: a binary that does not run as
    // a worker (a wrong path, a sandbox refusing exec) fails the start, not every later sign-up.
    // Verifying a tiny hash made here costs microseconds.
    const auto probe = request_of(kOpVerify, "probe", argon2id_hash("probe", 8, 1));
    for (unsigned i = 0; i < options_.count; ++i) {
      workers_.push_back(spawn());
      idle_.push_back(i);
      std::string answer;
      if (!exchange(workers_.back(), probe, answer) || answer != std::string(1, kOk) + '1')
        throw std::runtime_error("hash workers: " + options_.executable + " started but did not answer as a hash worker");
    }
  } catch (...) {
    for (auto& w : workers_) kill_and_reap(w);
    throw;
  }
}

HashWorkers::~HashWorkers() {
  // Closing a worker's socket ends its loop; give each a moment to exit on its own.
  for (auto& w : workers_) {
    if (w.fd >= 0) ::close(w.fd);
    w.fd = -1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  for (auto& w : workers_) {
    while (w.pid > 0) {
      pid_t r = ::waitpid(w.pid, nullptr, WNOHANG);
      if (r == w.pid || (r < 0 && errno != EINTR)) {
        w.pid = -1;  // reaped (or not ours to wait for): never signal a pid that may be reused
        break;
      }
      if (std::chrono::steady_clock::now() >= deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    kill_and_reap(w);  // kills and reaps a worker still there after the grace time; no-op otherwise
  }
}

HashWorkers::Worker HashWorkers::spawn() const {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
    throw std::runtime_error("hash workers: socketpair failed: " + errno_text(errno));
  int child_end = sv[1];
  if (child_end == kWorkerFd) {
    // dup2(3, 3) would keep close-on-exec set: move it out of the way first.
    child_end = ::fcntl(sv[1], F_DUPFD_CLOEXEC, kWorkerFd + 1);
    ::close(sv[1]);
    if (child_end < 0) {
      ::close(sv[0]);
      throw std::runtime_error("hash workers: fcntl failed: " + errno_text(errno));
    }
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_end, kWorkerFd);
  posix_spawn_file_actions_addclosefrom_np(&actions, kWorkerFd + 1);  // nothing else is inherited
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGPIPE, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> args{options_.executable, std::string(kHashWorkerCommand),
                                std::to_string(options_.memory_kib), std::to_string(options_.iterations),
                                std::to_string(::getpid())};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  auto env = worker_environment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, options_.executable.c_str(), &actions, &attributes, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  ::close(child_end);
  if (rc != 0) {
    ::close(sv[0]);
    throw std::runtime_error("hash workers: cannot start " + options_.executable + ": " + errno_text(rc));
  }
  return Worker{pid, sv[0]};
}

void HashWorkers::kill_and_reap(Worker& w) noexcept {
  if (w.fd >= 0) ::close(w.fd);
  w.fd = -1;
  if (w.pid > 0) {
    ::kill(w.pid, SIGKILL);
    while (::waitpid(w.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  w.pid = -1;
}

bool HashWorkers::exchange(const Worker& w, const std::string& request, std::string& answer) const {
  if (w.fd < 0) return false;
  if (::send(w.fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return false;
  const auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;  // hung: the caller replaces it
    pollfd p{w.fd, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return false;
    break;
  }
  answer.resize(kMaxAnswer);
  ssize_t n;
  do {
    n = ::recv(w.fd, answer.data(), answer.size(), 0);
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return false;  // the worker died (0: its end closed)
  answer.resize(static_cast<std::size_t>(n));
  return true;
}

std::string HashWorkers::call(std::string& request) {
  std::size_t index;
  {
    std::unique_lock lock(mutex_);
    freed_.wait(lock, [&] { return !idle_.empty(); });
    index = idle_.front();
    idle_.pop_front();
  }
  // Gives the worker back and wipes the password from the request, however this call ends.
  struct Release {
    HashWorkers& self;
    std::size_t index;
    std::string& request;
    ~Release() {
      sodium_memzero(request.data(), request.size());
      {
        std::lock_guard lock(self.mutex_);
        self.idle_.push_back(index);
      }
      self.freed_.notify_one();
    }
  } release{*this, index, request};

  std::string answer;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Worker w;
    {
      std::lock_guard lock(mutex_);
      w = workers_[index];
    }
    if (exchange(w, request, answer)) {
      if (!answer.empty() && answer[0] == kOk) return answer.substr(1);
      throw std::runtime_error("argon2id in a hash worker: " + (answer.empty() ? std::string("empty answer") : answer.substr(1)));
    }
    // Dead or hung: replace it, and try once more on the new one.
    log_.warn("hash worker stopped answering (it died or hung); starting another",
              {{"pid", w.pid}, {"timeoutMs", options_.timeout.count()}});
    kill_and_reap(w);
    Worker fresh;
    try {
      fresh = spawn();
    } catch (const std::exception&) {
      // Leave an empty slot: the next call through it tries to start a worker again.
    }
    std::lock_guard lock(mutex_);
    workers_[index] = fresh;
    ++replaced_;
  }
  throw ports::BackendUnavailable("password hashing: a hash worker failed twice in a row");
}

std::string HashWorkers::hash(std::string_view password) {
  auto request = request_of(kOpHash, password);
  return call(request);
}

bool HashWorkers::verify(std::string_view phc, std::string_view password) {
  auto request = request_of(kOpVerify, password, phc);
  return call(request) == "1";
}

std::vector<pid_t> HashWorkers::pids() const {
  std::lock_guard lock(mutex_);
  std::vector<pid_t> out;
  for (const auto& w : workers_) out.push_back(w.pid);
  return out;
}

std::uint64_t HashWorkers::replaced() const {
  std::lock_guard lock(mutex_);
  return replaced_;
}

}  // namespace registrar::adapters::sodium
