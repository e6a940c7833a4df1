#include "adapters/logging/json_logger.hpp"

#include <boost/json/serialize.hpp>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "domain/time.hpp"

namespace registrar::adapters::logging {

namespace {
spdlog::level::level_enum to_spdlog(Level l) {
  switch (l) {
    case Level::trace: return spdlog::level::trace;
    case Level::debug: return spdlog::level::debug;
    case Level::info: return spdlog::level::info;
    case Level::warn: return spdlog::level::warn;
    case Level::error: return spdlog::level::err;
  }
  return spdlog::level::info;
}
constexpr std::string_view name_of(Level l) {
  constexpr std::string_view names[] = {"trace", "debug", "info", "warn", "error"};
  return names[static_cast<int>(l)];
}
}  // namespace

Logger::Logger(std::string_view level) {
  // Not registered in spdlog's global registry: the composition root owns this logger.
  sink_ = std::make_shared<spdlog::logger>("registrar", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  sink_->set_pattern("%v");
  sink_->set_level(spdlog::level::from_str(std::string(level)));
  sink_->flush_on(spdlog::level::trace);
}

Logger::Logger(std::shared_ptr<spdlog::logger> sink) : sink_(std::move(sink)) {}

bool Logger::enabled(Level level) const { return sink_->should_log(to_spdlog(level)); }

void Logger::log(Level level, std::string_view msg, boost::json::object fields) const {
  if (!enabled(level)) return;
  boost::json::object line;
  line.reserve(fields.size() + 3);
  auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(domain::Clock::now());
  line["ts"] = domain::to_iso8601(now);
  line["level"] = name_of(level);
  line["msg"] = msg;
  for (auto& kv : fields) line[kv.key()] = std::move(kv.value());
  sink_->log(to_spdlog(level), boost::json::serialize(line));
}

void Logger::flush() const { sink_->flush(); }

}  // namespace registrar::adapters::logging
