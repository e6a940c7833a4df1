#pragma once
// Timestamps are stored as ISO 8601 UTC text with milliseconds (readable in the sqlite3 shell and
// identical to the wire format); lease deadlines as integer Unix milliseconds (compared in SQL).
#include <string>
#include <string_view>

#include "adapters/sqlite/connection.hpp"
#include "domain/time.hpp"

namespace registrar::adapters::sqlite {

inline std::int64_t unix_ms(domain::Timestamp t) { return t.time_since_epoch().count(); }

inline domain::Timestamp timestamp_column(const Query& q, int column) {
  auto t = domain::parse_iso8601(q.text(column));
  if (!t) throw SqliteError(SQLITE_CORRUPT, "sqlite: a stored timestamp is not ISO 8601");
  return *t;
}

}  // namespace registrar::adapters::sqlite
