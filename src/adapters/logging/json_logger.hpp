#pragma once
// Structured logs: one JSON object per line, {"ts","level","msg",...fields}. spdlog provides the
// thread-safe sink and level filtering; lines are rendered with Boost.JSON so every value is
// escaped. Callers pass only what is safe to log: never passwords, tokens, secrets or bodies.
#include <memory>
#include <string_view>
#include <boost/json/object.hpp>

namespace spdlog { class logger; }

namespace registrar::adapters::logging {

enum class Level { trace, debug, info, warn, error };

class Logger {
 public:
  // Writes to stdout. `level` is one of trace|debug|info|warn|error.
  explicit Logger(std::string_view level = "info");
  // Writes to an existing spdlog logger (tests use an in-memory sink).
  explicit Logger(std::shared_ptr<spdlog::logger> sink);

  bool enabled(Level level) const;
  void log(Level level, std::string_view msg, boost::json::object fields = {}) const;
  void debug(std::string_view msg, boost::json::object fields = {}) const { log(Level::debug, msg, std::move(fields)); }
  void info(std::string_view msg, boost::json::object fields = {}) const { log(Level::info, msg, std::move(fields)); }
  void warn(std::string_view msg, boost::json::object fields = {}) const { log(Level::warn, msg, std::move(fields)); }
  void error(std::string_view msg, boost::json::object fields = {}) const { log(Level::error, msg, std::move(fields)); }
  void flush() const;

 private:
  std::shared_ptr<spdlog::logger> sink_;
};

}  // namespace registrar::adapters::logging
