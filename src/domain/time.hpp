#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include <optional>

namespace registrar::domain {

using Clock = std::chrono::system_clock;
using Timestamp = std::chrono::time_point<Clock, std::chrono::milliseconds>;

// ISO 8601 UTC with milliseconds, as JavaScript's Date.toISOString(): 2025-10-19T16:37:15.123Z.
// Years from -32767 to 32767 (std::chrono::year's range): parse_iso8601 refuses others.
std::string to_iso8601(Timestamp t);
std::optional<Timestamp> parse_iso8601(std::string_view s);

}  // namespace registrar::domain
