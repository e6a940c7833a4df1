#include "domain/time.hpp"

#include <cstdint>
#include <cstdlib>

// Hand-rolled on top of std::chrono's calendar types: GCC 12's libstdc++ has neither
// std::format nor std::chrono::parse.
namespace registrar::domain {

namespace {

using namespace std::chrono;

constexpr int kMaxYear = 32767;  // static_cast<int>(year::max())

void append_digits(std::string& out, long long value, int width) {
  char buf[24];
  int n = 0;
  do {
    buf[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value > 0);
  for (int i = n; i < width; ++i) out.push_back('0');
  while (n > 0) out.push_back(buf[--n]);
}

// Reads exactly `count` ASCII digits at s[pos], advancing pos.
std::optional<int> read_digits(std::string_view s, std::size_t& pos, std::size_t count) {
  if (s.size() - pos < count) return std::nullopt;
  int value = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const char c = s[pos + i];
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  pos += count;
  return value;
}

bool expect(std::string_view s, std::size_t& pos, char c) {
  if (pos >= s.size() || s[pos] != c) return false;
  ++pos;
  return true;
}

}  // namespace

std::string to_iso8601(Timestamp t) {
  const auto day = floor<days>(t);  // floor, so instants before 1970 land on the right day
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> tod{t - day};

  std::string out;
  out.reserve(27);
  // Like toISOString(): four-digit years for 0000–9999, otherwise a signed six-digit year.
  const int y = static_cast<int>(ymd.year());
  if (y >= 0 && y <= 9999) {
    append_digits(out, y, 4);
  } else {
    out.push_back(y < 0 ? '-' : '+');
    append_digits(out, std::llabs(y), 6);
  }
  out.push_back('-');
  append_digits(out, static_cast<unsigned>(ymd.month()), 2);
  out.push_back('-');
  append_digits(out, static_cast<unsigned>(ymd.day()), 2);
  out.push_back('T');
  append_digits(out, tod.hours().count(), 2);
  out.push_back(':');
  append_digits(out, tod.minutes().count(), 2);
  out.push_back(':');
  append_digits(out, tod.seconds().count(), 2);
  out.push_back('.');
  append_digits(out, tod.subseconds().count(), 3);
  out.push_back('Z');
  return out;
}

// Accepts what to_iso8601 writes (YYYY-MM-DDTHH:MM:SS.sssZ, or ±YYYYYY for the year) and, as
// JavaScript's Date.parse does for this format, a missing or shorter/longer fraction:
// "…:15Z", "…:15.1Z", "…:15.123456Z" (digits beyond milliseconds are truncated). Only UTC ('Z').
std::optional<Timestamp> parse_iso8601(std::string_view s) {
  std::size_t pos = 0;
  int sign = 1;
  std::optional<int> y;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    sign = s[0] == '-' ? -1 : 1;
    pos = 1;
    y = read_digits(s, pos, 6);
    if (y && *y == 0 && sign < 0) return std::nullopt;  // "-000000" is not allowed by ECMAScript
  } else {
    y = read_digits(s, pos, 4);
  }
  if (!y || !expect(s, pos, '-')) return std::nullopt;
  // std::chrono::year holds -32767..32767; a six-digit year beyond that was silently truncated to
  // 16 bits, giving a time in another year (found by fuzz/fuzz_amqp_message).
  if (*y > kMaxYear) return std::nullopt;
  const auto mo = read_digits(s, pos, 2);
  if (!mo || !expect(s, pos, '-')) return std::nullopt;
  const auto d = read_digits(s, pos, 2);
  if (!d || !expect(s, pos, 'T')) return std::nullopt;
  const auto h = read_digits(s, pos, 2);
  if (!h || !expect(s, pos, ':')) return std::nullopt;
  const auto mi = read_digits(s, pos, 2);
  if (!mi || !expect(s, pos, ':')) return std::nullopt;
  const auto sec = read_digits(s, pos, 2);
  if (!sec) return std::nullopt;

  int millis = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t digits = 0;
    for (; pos < s.size() && s[pos] >= '0' && s[pos] <= '9'; ++pos, ++digits)
      if (digits < 3) millis = millis * 10 + (s[pos] - '0');
    if (digits == 0) return std::nullopt;
    for (std::size_t i = digits; i < 3; ++i) millis *= 10;
  }
  if (!expect(s, pos, 'Z') || pos != s.size()) return std::nullopt;

  const year_month_day ymd{year{sign * *y}, month{static_cast<unsigned>(*mo)}, day{static_cast<unsigned>(*d)}};
  if (!ymd.ok() || *h > 23 || *mi > 59 || *sec > 59) return std::nullopt;
  return Timestamp{sys_days{ymd}.time_since_epoch() + hours{*h} + minutes{*mi} + seconds{*sec} +
                   milliseconds{millis}};
}

}  // namespace registrar::domain
