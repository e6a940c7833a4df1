// Password hashing in worker processes (adapters/sodium/hash_workers.hpp), with the real registrar
// binary as the worker: answers agree with in-process libsodium (as shipped) both ways, at the
// production cost too; a worker keeps one argon2 region (argon2_memory.hpp) for all its hashes,
// with no page faults per hash, wiped after each, private to it and gone with it; a worker that
// dies or hangs (before or during a hash) is replaced and the call still answers; workers carry no
// secrets and no inherited descriptors, and they are gone when the pool is.
#include "adapters/sodium/hash_workers.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/sodium/argon2_hasher.hpp"
#include "adapters/sodium/argon2_memory.hpp"
#include "support/captured_log.hpp"

namespace {

namespace so = registrar::adapters::sodium;
using registrar::testing::CapturedLog;
using namespace std::chrono_literals;
using namespace std::string_literals;

so::HashWorkersOptions cheap(unsigned count = 2) {
  return {.executable = REGISTRAR_BINARY, .count = count, .memory_kib = 8, .iterations = 1};
}

so::HashWorkersOptions production(unsigned count = 1) {
  return {.executable = REGISTRAR_BINARY, .count = count, .memory_kib = 19 * 1024, .iterations = 2};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Alive and not a zombie.
bool alive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// A "Name:   123 kB" line of /proc/<pid>/status (readable for any process, dumpable or not).
long status_kib(pid_t pid, const std::string& name) {
  auto status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("\n" + name + ":");
  return at == std::string::npos ? -1 : std::strtol(status.c_str() + at + name.size() + 2, nullptr, 10);
}

// Field `n` (1-based, as in proc(5)) of /proc/<pid>/stat, as a number; also readable for any process.
long stat_field(pid_t pid, int n) {
  auto stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(stat.substr(close + 2));  // from field 3
  std::string field;
  for (int i = 3; i <= n && rest >> field; ++i) {
  }
  return std::strtol(field.c_str(), nullptr, 10);
}
long minor_faults(pid_t pid) { return stat_field(pid, 10); }
long cpu_ticks(pid_t pid) { return stat_field(pid, 14) + stat_field(pid, 15); }  // utime + stime

// One mapping of /proc/<pid>/smaps: its range, permissions, path (empty: anonymous) and VmFlags.
struct Mapping {
  std::uintptr_t start = 0, end = 0;
  std::string perms, path, flags;
  std::size_t size() const { return end - start; }
};

// A worker's mappings; nothing if they cannot be read (a worker is not dumpable, so that takes
// CAP_SYS_PTRACE, which root usually has).
std::optional<std::vector<Mapping>> mappings(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps");
  std::vector<Mapping> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string first;
    fields >> first;
    if (first.starts_with("VmFlags:") && !out.empty()) {
      out.back().flags = line.substr(8);
    } else if (first.find('-') != std::string::npos && first.back() != ':') {
      Mapping m;
      m.start = std::stoull(first.substr(0, first.find('-')), nullptr, 16);
      m.end = std::stoull(first.substr(first.find('-') + 1), nullptr, 16);
      std::string offset, device, inode;
      fields >> m.perms >> offset >> device >> inode;
      std::getline(fields >> std::ws, m.path);
      out.push_back(m);
    }
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// The writable mappings just big enough for argon2's memory for m = memory_kib: from its size up to
// one huge page more (the kept region is rounded up to whole huge pages; libsodium's own is the
// exact size). Nothing else writable in a worker has such a size (a sanitizer runtime's
// reservations are far larger).
std::optional<std::vector<Mapping>> argon2_sized(pid_t pid, std::uint32_t memory_kib) {
  auto all = mappings(pid);
  if (!all) return std::nullopt;
  const auto bytes = so::argon2_region_bytes(memory_kib);
  std::vector<Mapping> big;
  for (const auto& m : *all)
    if (m.perms[1] == 'w' && m.size() >= bytes && m.size() < bytes + 2 * 1024 * 1024) big.push_back(m);
  return big;
}

bool has_flag(const Mapping& m, const std::string& flag) { return (" " + m.flags + " ").find(" " + flag + " ") != std::string::npos; }

// `bytes` of a worker's memory at `address`, through /proc/<pid>/mem (CAP_SYS_PTRACE, as above).
std::string read_memory(int mem_fd, std::uintptr_t address, std::size_t bytes) {
  std::string out(bytes, '\0');
  std::size_t done = 0;
  while (done < bytes) {
    ssize_t n = ::pread(mem_fd, out.data() + done, bytes - done, static_cast<off_t>(address + done));
    if (n <= 0) return {};
    done += static_cast<std::size_t>(n);
  }
  return out;
}

// A password nobody else uses, so that finding its bytes means finding this request's.
std::string distinctive_password() {
  unsigned char random[16];
  randombytes_buf(random, sizeof random);
  std::string pw = "region-test-";
  for (unsigned char c : random) pw += "0123456789abcdef"[c % 16];
  return pw;
}

template <class P>
bool wait_until(P probe, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (!probe()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

TEST(HashWorkers, AnswersAgreeWithInProcessLibsodiumBothWays) {
  CapturedLog log;
  so::HashWorkers workers(cheap(), log.logger);
  const auto phc = workers.hash("correct horse battery staple");
  EXPECT_EQ(phc.rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u) << phc;
  EXPECT_TRUE(so::argon2id_verify(phc, "correct horse battery staple"));
  EXPECT_FALSE(so::argon2id_verify(phc, "correct horse battery stapler"));

  const auto local = so::argon2id_hash("another password", 8, 1);
  EXPECT_TRUE(workers.verify(local, "another password"));
  EXPECT_FALSE(workers.verify(local, "another passwore"));
  EXPECT_FALSE(workers.verify("$argon2id$not-a-hash", "another password"));

  // Every byte crosses the socket: NULs, non-ASCII, the empty password, the largest one sent.
  for (const std::string& pw : {"a\0b"s, "\xff\xfe pässwörd"s, ""s, std::string(so::HashWorkers::kMaxPassword, 'x')}) {
    const auto h = workers.hash(pw);
    EXPECT_TRUE(so::argon2id_verify(h, pw)) << pw.size();
    EXPECT_TRUE(workers.verify(h, pw)) << pw.size();
    if (!pw.empty()) {
      EXPECT_FALSE(workers.verify(h, pw.substr(0, pw.size() - 1))) << pw.size();
    }
  }
  EXPECT_EQ(workers.replaced(), 0u);
}

TEST(HashWorkers, AtTheProductionCostHashesAreStandardPhcStringsThatLibsodiumAsShippedVerifiesAndTheOtherWayRound) {
  // Nothing keeps argon2 memory in this test process: crypto_pwhash_* here is libsodium as shipped.
  ASSERT_EQ(so::kept_argon2_memory().base, nullptr);
  CapturedLog log;
  so::HashWorkers workers(production(), log.logger);
  const std::string pw = "correct horse battery staple";
  for (int i = 0; i < 2; ++i) {  // the second one in the region the first one used
    const auto phc = workers.hash(pw);
    EXPECT_EQ(phc.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << phc;
    EXPECT_EQ(crypto_pwhash_str_verify(phc.c_str(), pw.data(), pw.size()), 0) << phc;
    EXPECT_NE(crypto_pwhash_str_verify(phc.c_str(), "correct horse battery stapler", pw.size() + 1), 0) << phc;
  }
  char shipped[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str_alg(shipped, pw.data(), pw.size(), 2, 19 * 1024 * 1024, crypto_pwhash_ALG_ARGON2ID13), 0);
  EXPECT_TRUE(workers.verify(shipped, pw));
  EXPECT_FALSE(workers.verify(shipped, "correct horse battery stapler"));
  EXPECT_EQ(workers.replaced(), 0u);
}

TEST(HashWorkers, AWorkerHashesInOneKeptRegionWithoutAPageFaultPerHash) {
  if (!so::kKeptArgon2MemoryAvailable) GTEST_SKIP() << "this build cannot keep argon2 memory (argon2_memory.hpp)";
  auto o = production();
  o.iterations = 1;  // the production memory; one pass is enough here
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t pid = workers.pids().at(0);
  const long peak_kib = status_kib(pid, "VmHWM");  // the region is already in (faulted in at start)
  ASSERT_TRUE(workers.verify(workers.hash("warm-up"), "warm-up"));  // first use of the heap and stack
  const auto regions = argon2_sized(pid, o.memory_kib);
  const long faults = minor_faults(pid);
  for (int i = 0; i < 20; ++i) {
    const auto pw = "password-" + std::to_string(i);
    ASSERT_TRUE(workers.verify(workers.hash(pw), pw));
  }
  // 40 argon2 runs. libsodium as shipped maps and populates 19 MiB for each: 4,864 page faults
  // (10 with transparent huge pages); in the kept region, none. (Not counted under a sanitizer,
  // whose runtime faults in shadow and allocator pages of its own as the worker's heap is used.)
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(minor_faults(pid) - faults, 40);
#else
  (void)faults;
#endif
  // Never a second region next to the kept one, not even for a moment.
  EXPECT_LT(status_kib(pid, "VmHWM") - peak_kib, static_cast<long>(o.memory_kib / 2));

  if (!regions) GTEST_SKIP() << "a worker's /proc/<pid>/smaps (not dumpable) needs CAP_SYS_PTRACE";
  // One region, the same one throughout, private and anonymous (no file, nothing another process
  // could map), excluded from core dumps (dd) and zeroed in any child (wf: wipe on fork).
  ASSERT_EQ(regions->size(), 1u);
  const auto after = argon2_sized(pid, o.memory_kib);
  ASSERT_TRUE(after);
  ASSERT_EQ(after->size(), 1u);
  const auto& region = regions->front();
  EXPECT_EQ(after->front().start, region.start);
  EXPECT_EQ(region.perms, "rw-p");
  EXPECT_EQ(region.path, "");
  EXPECT_TRUE(has_flag(region, "dd")) << region.flags;
  EXPECT_TRUE(has_flag(region, "wf")) << region.flags;
}

TEST(HashWorkers, NoPasswordBytesAreLeftInAWorkersArgon2RegionOrAnywhereElseInItAfterAHash) {
  if (!so::kKeptArgon2MemoryAvailable) GTEST_SKIP() << "this build cannot keep argon2 memory (argon2_memory.hpp)";
  // 128 MiB, 4 passes: long enough (~0.1 s) to watch libsodium fill the region while it hashes.
  auto o = cheap(1);
  o.memory_kib = 128 * 1024;
  o.iterations = 4;
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t pid = workers.pids().at(0);
  const auto regions = argon2_sized(pid, o.memory_kib);
  const int mem = ::open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (!regions || mem < 0) GTEST_SKIP() << "reading a worker's memory (not dumpable) needs CAP_SYS_PTRACE";
  ASSERT_EQ(regions->size(), 1u);
  const auto region = regions->front();
  auto zero = [](const std::string& bytes) { return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; }); };
  ASSERT_TRUE(zero(read_memory(mem, region.start, region.size())));

  const auto pw = distinctive_password();
  auto pending = std::async(std::launch::async, [&] { return workers.hash(pw); });
  // This is the memory libsodium hashes in: its first blocks appear there.
  EXPECT_TRUE(wait_until([&] { return !zero(read_memory(mem, region.start, 64 * 1024)); }, 30s));
  const auto phc = pending.get();
  EXPECT_TRUE(so::argon2id_verify(phc, pw));
  // After the hash and after a verification: the region is all zero, so no password byte and no
  // argon2 block (each a function of the password) is left in it; and the password is nowhere
  // else in the worker's memory either (its request buffer is wiped too).
  for (int round = 0; round < 2; ++round) {
    const auto bytes = read_memory(mem, region.start, region.size());
    ASSERT_EQ(bytes.size(), region.size());
    EXPECT_EQ(std::count_if(bytes.begin(), bytes.end(), [](char c) { return c != 0; }), 0) << "round " << round;
    const auto all = mappings(pid);
    ASSERT_TRUE(all);
    std::size_t scanned = 0;
    for (const auto& m : *all) {
      // Past 64 MiB: the region (checked above) and a sanitizer runtime's reservations (shadow,
      // heap, traces: 100 MiB to terabytes, minutes to hours to read); nothing else of a worker.
      if (m.perms[0] != 'r' || m.size() > (std::size_t{64} << 20)) continue;
      const auto contents = read_memory(mem, m.start, m.size());  // empty for what cannot be read ([vvar])
      scanned += contents.size();
      EXPECT_EQ(contents.find(pw), std::string::npos) << "round " << round << ": " << m.path;
      EXPECT_EQ(contents.find(pw.substr(pw.size() - 12)), std::string::npos) << "round " << round << ": " << m.path;
    }
    EXPECT_GT(scanned, std::size_t{1} << 20);
    if (round == 0) {
      EXPECT_TRUE(workers.verify(phc, pw));
    }
  }
  ::close(mem);
}

TEST(HashWorkers, AKilledWorkerLeavesNoRegionBehind) {
  if (!so::kKeptArgon2MemoryAvailable) GTEST_SKIP() << "this build cannot keep argon2 memory (argon2_memory.hpp)";
  auto o = production();
  o.iterations = 1;
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t first = workers.pids().at(0);
  ASSERT_TRUE(workers.verify(workers.hash("pw"), "pw"));
  const auto regions = argon2_sized(first, o.memory_kib);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  EXPECT_TRUE(workers.verify(workers.hash("pw"), "pw"));  // on a replacement
  const pid_t second = workers.pids().at(0);
  EXPECT_NE(second, first);
  // Reaped: the process is gone, and its memory with it.
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(first)));
  if (!regions) GTEST_SKIP() << "a worker's /proc/<pid>/smaps (not dumpable) needs CAP_SYS_PTRACE";
  // Nothing of the region could outlive the process: it was private anonymous memory (no file, no
  // shared mapping, wiped in any child), and the replacement maps a region of its own.
  ASSERT_EQ(regions->size(), 1u);
  EXPECT_EQ(regions->front().perms, "rw-p");
  EXPECT_EQ(regions->front().path, "");
  EXPECT_TRUE(has_flag(regions->front(), "wf")) << regions->front().flags;
  const auto replacement = argon2_sized(second, o.memory_kib);
  ASSERT_TRUE(replacement);
  EXPECT_EQ(replacement->size(), 1u);
}

TEST(HashWorkers, AWorkerThatCannotMapItsArgon2RegionSaysWhyOnStderrAndExits) {
  if (!so::kKeptArgon2MemoryAvailable) GTEST_SKIP() << "this build cannot keep argon2 memory (argon2_memory.hpp)";
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "a sanitizer runtime cannot start under the address-space limit this test sets";
#endif
  // 256 MiB of argon2 memory under a 200 MB address-space limit. The worker runs as the service
  // starts it (its parent is this process, given as PARENT), but with no socket: it must stop
  // before reading one.
  FILE* out = ::popen("ulimit -v 200000; exec " REGISTRAR_BINARY " __hash-worker 262144 1 $PPID 2>&1", "r");
  ASSERT_NE(out, nullptr);
  std::string text;
  char chunk[256];
  while (std::fgets(chunk, sizeof chunk, out) != nullptr) text += chunk;
  const int status = ::pclose(out);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status;
  EXPECT_EQ(text.rfind("registrar __hash-worker: argon2 memory: mmap: ", 0), 0u) << text;
}

TEST(HashWorkers, ManyCallersShareTheWorkers) {
  CapturedLog log;
  so::HashWorkers workers(cheap(2), log.logger);
  std::vector<std::future<bool>> calls;
  for (int i = 0; i < 16; ++i)
    calls.push_back(std::async(std::launch::async, [&, i] {
      auto pw = "password-" + std::to_string(i);
      return workers.verify(workers.hash(pw), pw);
    }));
  for (auto& c : calls) EXPECT_TRUE(c.get());
  EXPECT_EQ(workers.pids().size(), 2u);
}

TEST(HashWorkers, DeadWorkersAreReplacedAndTheCallsStillAnswer) {
  CapturedLog log;
  so::HashWorkers workers(cheap(2), log.logger);
  auto before = workers.pids();
  for (auto pid : before) ASSERT_EQ(::kill(pid, SIGKILL), 0);
  // Sequential calls take the workers in turn: the first two each find theirs dead, replace it and
  // run on the new one; the calls after them use the new ones.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(so::argon2id_verify(workers.hash("pw"), "pw"));
  EXPECT_EQ(workers.replaced(), 2u);
  EXPECT_EQ(log.count(R"("msg":"hash worker stopped answering (it died or hung); starting another")"), 2u) << log.text();
  const auto now = workers.pids();
  EXPECT_EQ(std::count_if(now.begin(), now.end(), [&](pid_t p) { return alive(p); }), 2);
  for (auto pid : before) EXPECT_FALSE(alive(pid)) << pid;  // dead (the replaced one reaped)
}

TEST(HashWorkers, AWorkerKilledInTheMiddleOfAHashIsReplacedAndTheHashStillReturns) {
  // 128 MiB, 3 passes: long enough to be caught while hashing. An idle worker uses no CPU, so its
  // CPU time growing by 30 ms says it is hashing (its memory does not grow: the region is kept).
  auto o = cheap(1);
  o.memory_kib = 128 * 1024;
  o.iterations = 3;
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t first = workers.pids().at(0);
  const long baseline = cpu_ticks(first);
  const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
  auto pending = std::async(std::launch::async, [&] { return workers.hash("in flight"); });
  ASSERT_TRUE(wait_until([&] { return (cpu_ticks(first) - baseline) * 1000 >= 30 * ticks_per_second; }))
      << "the worker never started hashing";
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const auto phc = pending.get();
  EXPECT_TRUE(so::argon2id_verify(phc, "in flight"));
  EXPECT_EQ(workers.replaced(), 1u);
  EXPECT_NE(workers.pids().at(0), first);
}

TEST(HashWorkers, AHungWorkerIsReplacedAfterTheTimeout) {
  auto o = cheap(1);
  // Also the time the replacement has to start and answer: an instrumented worker starting on a
  // loaded machine took over 300 ms (the hash then failed twice in a row under ASan).
  o.timeout = 1500ms;
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t first = workers.pids().at(0);
  ASSERT_EQ(::kill(first, SIGSTOP), 0);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(so::argon2id_verify(workers.hash("pw"), "pw"));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 1500ms);
  EXPECT_EQ(workers.replaced(), 1u);
  EXPECT_EQ(log.count(R"("pid":)" + std::to_string(first)), 1u) << log.text();
  EXPECT_FALSE(alive(first));
}

TEST(HashWorkers, WorkersInheritNoSecretsAndNoDescriptors) {
  ::setenv("REGISTRAR_JWT_SECRET", "a-secret-the-workers-must-not-see", 1);
  ::setenv("TSAN_OPTIONS", "verbosity=0", 0);  // passed on (sanitizer settings are), unless already set
  // A descriptor the service opened without close-on-exec (a library may) is not passed on.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 0);
  CapturedLog log;
  so::HashWorkers workers(cheap(1), log.logger);
  const auto pid = workers.pids().at(0);
  ::unsetenv("REGISTRAR_JWT_SECRET");
  ::close(leaky);
  ASSERT_TRUE(workers.verify(workers.hash("pw"), "pw"));  // the worker is up and serving
  const std::string proc = "/proc/" + std::to_string(pid);
  if (::geteuid() != 0) GTEST_SKIP() << "a worker's /proc files (PR_SET_DUMPABLE 0) are readable by root only";
  auto environment = read_file(proc + "/environ");
  EXPECT_NE(environment.find("TSAN_OPTIONS="), std::string::npos) << environment;
  EXPECT_EQ(environment.find("REGISTRAR_"), std::string::npos) << environment;
  std::set<int> fds;
  for (const auto& entry : std::filesystem::directory_iterator(proc + "/fd")) fds.insert(std::stoi(entry.path().filename()));
  EXPECT_EQ(fds, (std::set<int>{0, 1, 2, 3}));
  auto cmdline = read_file(proc + "/cmdline");
  EXPECT_NE(cmdline.find("__hash-worker"), std::string::npos) << cmdline.size() << ": " << cmdline;
}

TEST(HashWorkers, WorkersAreGoneWithThePool) {
  std::vector<pid_t> pids;
  {
    CapturedLog log;
    so::HashWorkers workers(cheap(3), log.logger);
    pids = workers.pids();
    for (auto pid : pids) EXPECT_TRUE(alive(pid));
  }
  for (auto pid : pids) EXPECT_FALSE(alive(pid)) << pid;
}

TEST(HashWorkers, AnExecutableThatCannotStartIsAClearError) {
  auto o = cheap(1);
  o.executable = "/nonexistent/registrar";
  try {
    CapturedLog log;
    so::HashWorkers workers(o, log.logger);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/registrar"), std::string::npos) << e.what();
  }
}

TEST(HashWorkers, ABinaryThatDoesNotAnswerAsAWorkerFailsTheStart) {
  auto o = cheap(1);
  o.executable = "/bin/true";  // runs, exits at once
  CapturedLog log;
  EXPECT_THROW(so::HashWorkers workers(o, log.logger), std::runtime_error);
}

TEST(Argon2HasherWithWorkers, HashesVerifiesAndKeepsOverlongPasswordsInProcess) {
  so::Argon2Options o;
  o.memory_kib = 8;
  o.iterations = 1;
  o.concurrency = 2;
  o.worker_executable = REGISTRAR_BINARY;
  EXPECT_THROW(so::Argon2Hasher{o}, std::invalid_argument);  // workers need somewhere to report to
  CapturedLog log;
  o.log = &log.logger;
  so::Argon2Hasher hasher(o);
  ASSERT_NE(hasher.workers(), nullptr);
  EXPECT_EQ(hasher.workers()->pids().size(), 2u);
  const auto phc = hasher.hash("correct horse battery staple");
  EXPECT_TRUE(hasher.verify(phc, "correct horse battery staple"));
  EXPECT_FALSE(hasher.verify(phc, "wrong"));
  EXPECT_FALSE(hasher.verify("garbage", "correct horse battery staple"));
  hasher.verify_dummy("anything");
  // Longer than a worker request carries: hashed and verified in-process, same result.
  const std::string huge(so::HashWorkers::kMaxPassword + 1, 'p');
  const auto big = hasher.hash(huge);
  EXPECT_TRUE(hasher.verify(big, huge));
  EXPECT_FALSE(hasher.verify(big, huge.substr(1)));
}

}  // namespace
