#include <gtest/gtest.h>
#include <sodium.h>

#include <chrono>
#include <cstdint>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "adapters/sodium/random_ids.hpp"
#include "adapters/system/system_clock.hpp"

namespace {

using registrar::adapters::sodium::random_secret_base64url;
using registrar::adapters::system::SystemClock;
using registrar::adapters::sodium::UuidV7Generator;

class FakeClock final : public registrar::ports::Clock {
 public:
  registrar::domain::Timestamp now() override { return t; }
  registrar::domain::Timestamp t{std::chrono::milliseconds{1'760'000'000'123}};
};

std::uint64_t timestamp_of(const std::string& uuid) {
  std::string hex = uuid.substr(0, 8) + uuid.substr(9, 4);
  return std::stoull(hex, nullptr, 16);
}

const std::regex kUuidV7("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");

TEST(UuidV7, HasVersionVariantAndLowerCaseHyphenatedForm) {
  UuidV7Generator gen;
  for (int i = 0; i < 100; ++i) {
    const auto id = gen.new_id();
    EXPECT_EQ(id.size(), 36u);
    EXPECT_TRUE(std::regex_match(id, kUuidV7)) << id;
  }
}

TEST(UuidV7, CarriesTheUnixMillisecondTimestamp) {
  FakeClock clock;
  UuidV7Generator gen(clock);
  const auto id = gen.new_id();
  EXPECT_EQ(timestamp_of(id), 1'760'000'000'123u);
  EXPECT_EQ(id.substr(0, 13), "0199c82c-c07b");  // 1760000000123 = 0x0199c82cc07b

  UuidV7Generator real;
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count();
  const auto ts = timestamp_of(real.new_id());
  const auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_GE(ts, static_cast<std::uint64_t>(before));
  EXPECT_LE(ts, static_cast<std::uint64_t>(after));
}

TEST(UuidV7, StrictlyIncreasingWithinOneMillisecond) {
  FakeClock clock;  // time stands still
  UuidV7Generator gen(clock);
  std::string previous = gen.new_id();
  for (int i = 0; i < 10'000; ++i) {  // more than the 12-bit counter holds: borrows later ms
    const auto id = gen.new_id();
    ASSERT_LT(previous, id);
    ASSERT_TRUE(std::regex_match(id, kUuidV7)) << id;
    previous = id;
  }
  EXPECT_GT(timestamp_of(previous), 1'760'000'000'123u);
  EXPECT_LT(timestamp_of(previous), 1'760'000'000'123u + 10u);
}

TEST(UuidV7, StaysOrderedWhenTheClockStepsBack) {
  FakeClock clock;
  UuidV7Generator gen(clock);
  const auto first = gen.new_id();
  clock.t -= std::chrono::seconds{5};
  const auto second = gen.new_id();
  EXPECT_LT(first, second);
  clock.t += std::chrono::seconds{10};
  const auto third = gen.new_id();
  EXPECT_LT(second, third);
  EXPECT_EQ(timestamp_of(third), 1'760'000'005'123u);
}

TEST(UuidV7, UniqueAcrossThreads) {
  UuidV7Generator gen;
  constexpr int kThreads = 4, kEach = 5'000;
  std::vector<std::vector<std::string>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) ids[t].push_back(gen.new_id());
    });
  for (auto& th : threads) th.join();
  std::set<std::string> all;
  for (const auto& v : ids) {
    for (std::size_t i = 1; i < v.size(); ++i) EXPECT_LT(v[i - 1], v[i]);  // ordered per thread
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kThreads * kEach));
}

TEST(RandomSecret, UrlSafeUnpaddedAndOfTheRightLength) {
  const std::regex url_safe("^[A-Za-z0-9_-]*$");
  for (std::size_t n : {0u, 1u, 2u, 3u, 16u, 32u, 33u, 64u}) {
    const auto s = random_secret_base64url(n);
    EXPECT_EQ(s.size(), (n * 4 + 2) / 3) << n;
    EXPECT_TRUE(std::regex_match(s, url_safe)) << s;
    std::vector<unsigned char> back(n + 1);
    std::size_t len = 0;
    if (n != 0) {
      ASSERT_EQ(sodium_base642bin(back.data(), back.size(), s.data(), s.size(), nullptr, &len, nullptr,
                                  sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                0);
      EXPECT_EQ(len, n);
    }
  }
  EXPECT_NE(random_secret_base64url(32), random_secret_base64url(32));
}

TEST(SystemClock, MillisecondsNearNow) {
  SystemClock clock;
  const auto t = clock.now();
  const auto diff = std::chrono::system_clock::now() - t;
  EXPECT_GE(diff, std::chrono::milliseconds{0});
  EXPECT_LT(diff, std::chrono::seconds{1});
}

}  // namespace
