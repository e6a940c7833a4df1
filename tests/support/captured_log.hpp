#pragma once
// A Logger whose JSON lines a test can read back (from any thread): an spdlog ring buffer sink
// holding the last `capacity` lines.
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/logging/json_logger.hpp"

namespace registrar::testing {

class CapturedLog {
 public:
  explicit CapturedLog(spdlog::level::level_enum level = spdlog::level::info, std::size_t capacity = 200'000)
      : sink(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(capacity)), logger([&] {
          auto l = std::make_shared<spdlog::logger>("test", sink);
          l->set_pattern("%v");
          l->set_level(level);
          return l;
        }()) {}

  // Every line kept, concatenated.
  std::string text() const {
    std::string all;
    for (const auto& line : sink->last_formatted()) all += line;
    return all;
  }
  // How many of the lines kept contain `needle`.
  std::size_t count(std::string_view needle) const {
    std::size_t n = 0;
    for (const auto& line : sink->last_formatted())
      if (line.find(needle) != std::string::npos) ++n;
    return n;
  }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink;
  adapters::logging::Logger logger;  // hand this to the code under test
};

}  // namespace registrar::testing
