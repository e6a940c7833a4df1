// What a login for an unknown user costs next to one for a known user with a wrong password: the
// dummy verification (Argon2Hasher::verify_dummy) against a real one, at light, shipped and heavy
// argon2id settings. The unit tests show the dummy hash has the configured parameters (so the
// same work); this measures the times, which a unit test must not assert (a shared machine makes
// any one run of a timed test noisy).
//
//   build/dummy_verification --benchmark_repetitions=9 --benchmark_enable_random_interleaving=true \
//                            --benchmark_report_aggregates_only=true
//
// Random interleaving runs the real and dummy cases in turns, so drift hits both alike; quote the
// medians and their ratio (BENCHMARKS.md).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "adapters/sodium/argon2_hasher.hpp"

namespace {

using registrar::adapters::sodium::Argon2Hasher;
using registrar::adapters::sodium::Argon2Options;

Argon2Hasher& hasher_for(std::int64_t memory_kib, std::int64_t iterations) {
  // One hasher per setting for the whole run (its dummy hash is made once, at construction).
  static std::map<std::pair<std::int64_t, std::int64_t>, std::unique_ptr<Argon2Hasher>> hashers;
  auto& h = hashers[{memory_kib, iterations}];
  if (!h) {
    Argon2Options o;
    o.memory_kib = static_cast<std::uint32_t>(memory_kib);
    o.iterations = static_cast<std::uint32_t>(iterations);
    o.concurrency = 1;
    h = std::make_unique<Argon2Hasher>(o);
  }
  return *h;
}

void BM_RealVerification(benchmark::State& state) {
  auto& hasher = hasher_for(state.range(0), state.range(1));
  const auto phc = hasher.hash("the user's real password");
  for (auto _ : state) benchmark::DoNotOptimize(hasher.verify(phc, "a wrong password guess"));
}

void BM_DummyVerification(benchmark::State& state) {
  auto& hasher = hasher_for(state.range(0), state.range(1));
  for (auto _ : state) hasher.verify_dummy("a wrong password guess");
}

void settings(benchmark::internal::Benchmark* b) {
  b->ArgNames({"m_kib", "t"});
  b->Args({1024, 1})->Args({19 * 1024, 2})->Args({32 * 1024, 3});
  b->Unit(benchmark::kMillisecond)->MeasureProcessCPUTime()->UseRealTime();
}

}  // namespace

BENCHMARK(BM_RealVerification)->Apply(settings);
BENCHMARK(BM_DummyVerification)->Apply(settings);

BENCHMARK_MAIN();
