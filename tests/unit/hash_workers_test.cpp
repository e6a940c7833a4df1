// Password hashing in worker processes (adapters/sodium/hash_workers.hpp), with the real registrar
// binary as the worker: answers agree with in-process libsodium both ways, a worker that dies or
// hangs (before or during a hash) is replaced and the call still answers, workers carry no secrets
// and no inherited descriptors, and they are gone when the pool is.
#include "adapters/sodium/hash_workers.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <string>
#include <thread>

#include "adapters/sodium/argon2_hasher.hpp"
#include "support/captured_log.hpp"

namespace {

namespace so = registrar::adapters::sodium;
using registrar::testing::CapturedLog;
using namespace std::chrono_literals;
using namespace std::string_literals;

so::HashWorkersOptions cheap(unsigned count = 2) {
  return {.executable = REGISTRAR_BINARY, .count = count, .memory_kib = 8, .iterations = 1};
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

long rss_kib(pid_t pid) {
  auto status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("VmRSS:");
  return at == std::string::npos ? 0 : std::strtol(status.c_str() + at + 6, nullptr, 10);
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
  // Sequential calls reuse the most recently freed worker: the first call finds it dead, replaces
  // it, and runs on the new one; the calls after it use that one too.
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(so::argon2id_verify(workers.hash("pw"), "pw"));
  EXPECT_EQ(workers.replaced(), 1u);
  EXPECT_EQ(log.count(R"("msg":"hash worker stopped answering (it died or hung); starting another")"), 1u) << log.text();
  const auto now = workers.pids();
  EXPECT_EQ(std::count_if(now.begin(), now.end(), [&](pid_t p) { return alive(p); }), 1);
  for (auto pid : before) EXPECT_FALSE(alive(pid)) << pid;  // dead (the replaced one reaped)
}

TEST(HashWorkers, AWorkerKilledInTheMiddleOfAHashIsReplacedAndTheHashStillReturns) {
  // 128 MiB, 3 passes: long enough to be caught while hashing (its resident memory grows).
  auto o = cheap(1);
  o.memory_kib = 128 * 1024;
  o.iterations = 3;
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t first = workers.pids().at(0);
  const long baseline = rss_kib(first);
  auto pending = std::async(std::launch::async, [&] { return workers.hash("in flight"); });
  ASSERT_TRUE(wait_until([&] { return rss_kib(first) - baseline > 64 * 1024; })) << "the worker never started hashing";
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  const auto phc = pending.get();
  EXPECT_TRUE(so::argon2id_verify(phc, "in flight"));
  EXPECT_EQ(workers.replaced(), 1u);
  EXPECT_NE(workers.pids().at(0), first);
}

TEST(HashWorkers, AHungWorkerIsReplacedAfterTheTimeout) {
  auto o = cheap(1);
  o.timeout = 300ms;
  CapturedLog log;
  so::HashWorkers workers(o, log.logger);
  const pid_t first = workers.pids().at(0);
  ASSERT_EQ(::kill(first, SIGSTOP), 0);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(so::argon2id_verify(workers.hash("pw"), "pw"));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
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
