#pragma once
// The invariant check of the fuzz targets. When an invariant of the code under test does not hold,
// say which and stop with a crash that libFuzzer records (SIGILL from __builtin_trap, the input saved
// as an artifact). Not assert(): it must stay on in every build type.
#include <cstdio>

#define FUZZ_CHECK(cond, what)                                                                       \
  do {                                                                                               \
    if (!(cond)) {                                                                                   \
      std::fprintf(stderr, "\nFUZZ_CHECK failed: %s\n  at %s:%d: %s\n", (what), __FILE__, __LINE__, \
                   #cond);                                                                           \
      __builtin_trap();                                                                              \
    }                                                                                                \
  } while (0)
