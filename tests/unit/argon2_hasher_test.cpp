#include "adapters/sodium/argon2_hasher.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ports/errors.hpp"

namespace {

using registrar::adapters::sodium::Argon2Hasher;
using registrar::adapters::sodium::Argon2Options;
using namespace std::chrono_literals;

// libsodium's minimum cost (8 KiB, one pass): fast enough for tests that are not about the cost.
Argon2Options cheap() {
  Argon2Options o;
  o.memory_kib = 8;
  o.iterations = 1;
  o.concurrency = 4;
  return o;
}

TEST(Argon2Hasher, DefaultsAreTheOwaspArgon2idParameters) {
  Argon2Hasher hasher;
  const auto phc = hasher.hash("correct horse battery staple");
  EXPECT_EQ(phc.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << phc;
  EXPECT_TRUE(hasher.verify(phc, "correct horse battery staple"));
  EXPECT_GE(hasher.concurrency(), 1u);
}

TEST(Argon2Hasher, ConfiguredParametersAppearInTheHash) {
  Argon2Hasher hasher(cheap());
  EXPECT_EQ(hasher.hash("pw").rfind("$argon2id$v=19$m=8,t=1,p=1$", 0), 0u);
}

TEST(Argon2Hasher, VerifiesTheRightPasswordOnly) {
  Argon2Hasher hasher(cheap());
  const auto phc = hasher.hash("correct horse battery staple");
  EXPECT_TRUE(hasher.verify(phc, "correct horse battery staple"));
  EXPECT_FALSE(hasher.verify(phc, "correct horse battery stapl"));
  EXPECT_FALSE(hasher.verify(phc, "Correct horse battery staple"));
  EXPECT_FALSE(hasher.verify(phc, ""));
}

TEST(Argon2Hasher, SaltsEveryHash) {
  Argon2Hasher hasher(cheap());
  EXPECT_NE(hasher.hash("same password"), hasher.hash("same password"));
}

TEST(Argon2Hasher, UnicodePasswords) {
  Argon2Hasher hasher(cheap());
  const std::string composed = "p\xC3\xA4sswort \xF0\x9F\x94\x90 \xE5\xAF\x86\xE7\xA0\x81";  // "pässwort 🔐 密码"
  const std::string decomposed = "pa\xCC\x88sswort \xF0\x9F\x94\x90 \xE5\xAF\x86\xE7\xA0\x81";  // ä as a + ◌̈
  const auto phc = hasher.hash(composed);
  EXPECT_TRUE(hasher.verify(phc, composed));
  EXPECT_FALSE(hasher.verify(phc, decomposed));  // bytes are hashed as given, no normalization
}

TEST(Argon2Hasher, LongPasswordsAreNotTruncated) {
  Argon2Hasher hasher(cheap());
  const std::string a(127, 'x');
  const auto phc = hasher.hash(a + "a");
  EXPECT_TRUE(hasher.verify(phc, a + "a"));
  EXPECT_FALSE(hasher.verify(phc, a + "b"));
  const std::string huge(4096, 'y');
  EXPECT_FALSE(hasher.verify(hasher.hash(huge + "1"), huge + "2"));
}

TEST(Argon2Hasher, EmbeddedNulBytesCount) {
  Argon2Hasher hasher(cheap());
  const std::string with_nul("abc\0def", 7);
  const auto phc = hasher.hash(with_nul);
  EXPECT_TRUE(hasher.verify(phc, with_nul));
  EXPECT_FALSE(hasher.verify(phc, "abc"));
}

TEST(Argon2Hasher, VerifiesHashesMadeWithOtherParameters) {
  Argon2Options other = cheap();
  other.memory_kib = 64;
  other.iterations = 3;
  const auto phc = Argon2Hasher(other).hash("password");
  EXPECT_EQ(phc.rfind("$argon2id$v=19$m=64,t=3,p=1$", 0), 0u);
  Argon2Hasher hasher(cheap());
  EXPECT_TRUE(hasher.verify(phc, "password"));
  EXPECT_FALSE(hasher.verify(phc, "passwore"));

  // And argon2i hashes (another member of the family), as older systems may have stored.
  char argon2i[crypto_pwhash_STRBYTES];
  ASSERT_EQ(crypto_pwhash_str_alg(argon2i, "pw", 2, 3, 8192, crypto_pwhash_ALG_ARGON2I13), 0);
  EXPECT_TRUE(hasher.verify(argon2i, "pw"));
  EXPECT_FALSE(hasher.verify(argon2i, "pW"));
}

// The Node `argon2` package (0.4x, the library of the Node service registrar replaces) writes the
// parameters m, p, t; libsodium reads only m, t, p. The hasher reorders them, and nothing else.
TEST(Argon2Hasher, VerifiesHashesWhoseParametersAreInTheOrderTheNodeArgon2PackageWritesThem) {
  Argon2Options o = cheap();
  o.memory_kib = 64;
  o.iterations = 3;
  Argon2Hasher hasher(o);
  const auto phc = hasher.hash("password");
  const std::string params = "m=64,t=3,p=1";
  const auto at = phc.find(params);
  ASSERT_NE(at, std::string::npos) << phc;
  auto with = [&](const std::string& other) { return phc.substr(0, at) + other + phc.substr(at + params.size()); };
  for (const std::string order : {"m=64,p=1,t=3", "t=3,p=1,m=64", "p=1,m=64,t=3"}) {
    EXPECT_TRUE(hasher.verify(with(order), "password")) << order;
    EXPECT_FALSE(hasher.verify(with(order), "passwore")) << order;
  }
  // Not one each of m, t and p: left as it is, and libsodium refuses it.
  for (const std::string bad : {"m=64,p=1,p=1", "m=64,t=3", "m=64,p=1,t=3,", "m=64,,p=1,t=3", "m=64,p=1,t=3,x=1",
                                "m=64,p=1,t3=", "m=64,p=1,t=", "mm=64,p=1,t=3"}) {
    EXPECT_FALSE(hasher.verify(with(bad), "password")) << bad;
  }
}

TEST(Argon2Hasher, MalformedHashesDoNotVerify) {
  Argon2Hasher hasher(cheap());
  const auto phc = hasher.hash("password");
  EXPECT_FALSE(hasher.verify("", "password"));
  EXPECT_FALSE(hasher.verify("not a hash", "password"));
  EXPECT_FALSE(hasher.verify("$2b$12$abcdefghijklmnopqrstuu", "password"));  // bcrypt
  EXPECT_FALSE(hasher.verify(phc.substr(0, phc.size() - 4), "password"));
  EXPECT_FALSE(hasher.verify(phc + std::string(200, 'A'), "password"));  // longer than libsodium allows
  EXPECT_FALSE(hasher.verify(phc + std::string(1, '\0') + "junk", "password"));
}

TEST(Argon2Hasher, RejectsOutOfRangeParameters) {
  Argon2Options o = cheap();
  o.memory_kib = 4;  // below libsodium's 8 KiB floor
  EXPECT_THROW(Argon2Hasher{o}, std::invalid_argument);
  o = cheap();
  o.iterations = 0;
  EXPECT_THROW(Argon2Hasher{o}, std::invalid_argument);
}

// Every operation holds its slot for a while (via the hook) and we record how many overlap.
TEST(Argon2Hasher, AtMostConcurrencyOperationsRunAtOnce) {
  std::atomic<int> in_flight{0}, peak{0};
  Argon2Options o = cheap();
  o.concurrency = 2;
  o.on_slot_held = [&] {
    const int now = ++in_flight;
    int seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(20ms);
    --in_flight;
  };
  Argon2Hasher hasher(o);
  const auto phc = hasher.hash("pw");

  std::vector<std::thread> threads;
  std::atomic<int> verified{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      if (i % 3 == 0) {
        hasher.verify_dummy("pw");
      } else if (hasher.verify(phc, "pw")) {
        ++verified;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(peak.load(), 2);  // reached, never exceeded
  EXPECT_EQ(verified.load(), 5);
  EXPECT_EQ(hasher.waiting(), 0u);
}

TEST(Argon2Hasher, RefusesWhenTheWaitingQueueIsFull) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> entered{0};
  Argon2Options o = cheap();
  o.concurrency = 1;
  o.queue_limit = 1;
  o.on_slot_held = [&] {
    ++entered;
    released.wait();
  };
  Argon2Hasher hasher(o);

  auto holder = std::async(std::launch::async, [&] { return hasher.hash("a"); });
  while (entered.load() == 0) std::this_thread::sleep_for(1ms);
  auto waiter = std::async(std::launch::async, [&] { return hasher.hash("b"); });
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (hasher.waiting() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  ASSERT_EQ(hasher.waiting(), 1u);

  EXPECT_THROW(hasher.hash("c"), registrar::ports::Overloaded);
  EXPECT_THROW(hasher.verify_dummy("c"), registrar::ports::Overloaded);

  release.set_value();
  EXPECT_TRUE(hasher.verify(holder.get(), "a"));
  EXPECT_TRUE(hasher.verify(waiter.get(), "b"));
  EXPECT_EQ(entered.load(), 4);
}

}  // namespace
