// ISO 8601 timestamps in the format of JavaScript's Date.prototype.toISOString().
#include "domain/time.hpp"

#include <gtest/gtest.h>

namespace {

using registrar::domain::parse_iso8601;
using registrar::domain::Timestamp;
using registrar::domain::to_iso8601;
using std::chrono::milliseconds;

Timestamp ms(long long v) { return Timestamp{milliseconds{v}}; }

// Expected strings below were produced by Node: new Date(v).toISOString().
TEST(ToIso8601, MatchesJavaScriptToIsoString) {
  EXPECT_EQ(to_iso8601(ms(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(to_iso8601(ms(1'760'891'835'123)), "2025-10-19T16:37:15.123Z");
  EXPECT_EQ(to_iso8601(ms(1'760'891'835'456)), "2025-10-19T16:37:15.456Z");
  EXPECT_EQ(to_iso8601(ms(1'709'208'000'007)), "2024-02-29T12:00:00.007Z");  // leap day
  EXPECT_EQ(to_iso8601(ms(951'868'799'999)), "2000-02-29T23:59:59.999Z");
  EXPECT_EQ(to_iso8601(ms(253'402'300'799'999)), "9999-12-31T23:59:59.999Z");
}

TEST(ToIso8601, BeforeTheEpochRoundsTowardsThePast) {
  EXPECT_EQ(to_iso8601(ms(-1)), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(to_iso8601(ms(-86'400'000)), "1969-12-31T00:00:00.000Z");
  EXPECT_EQ(to_iso8601(ms(-62'167'219'200'000)), "0000-01-01T00:00:00.000Z");
}

TEST(ToIso8601, YearsOutside0To9999UseSixDigitsAndASign) {
  EXPECT_EQ(to_iso8601(ms(253'402'300'800'000)), "+010000-01-01T00:00:00.000Z");
  EXPECT_EQ(to_iso8601(ms(-62'198'755'200'000)), "-000001-01-01T00:00:00.000Z");
}

TEST(ParseIso8601, ParsesItsOwnOutput) {
  EXPECT_EQ(parse_iso8601("2025-10-19T16:37:15.123Z"), ms(1'760'891'835'123));
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:00.000Z"), ms(0));
  EXPECT_EQ(parse_iso8601("1969-12-31T23:59:59.999Z"), ms(-1));
  EXPECT_EQ(parse_iso8601("+010000-01-01T00:00:00.000Z"), ms(253'402'300'800'000));
  EXPECT_EQ(parse_iso8601("-000001-01-01T00:00:00.000Z"), ms(-62'198'755'200'000));
}

TEST(ParseIso8601, FractionMayBeAbsentShortOrLong) {
  EXPECT_EQ(parse_iso8601("2025-10-19T16:37:15Z"), ms(1'760'891'835'000));
  EXPECT_EQ(parse_iso8601("2025-10-19T16:37:15.1Z"), ms(1'760'891'835'100));
  EXPECT_EQ(parse_iso8601("2025-10-19T16:37:15.12Z"), ms(1'760'891'835'120));
  EXPECT_EQ(parse_iso8601("2025-10-19T16:37:15.123999Z"), ms(1'760'891'835'123));  // truncated
}

TEST(ParseIso8601, RejectsOtherShapes) {
  for (const char* bad : {
           "",
           "2025-10-19",
           "2025-10-19T16:37:15.123",        // no zone
           "2025-10-19T16:37:15.123+00:00",  // only 'Z' is accepted
           "2025-10-19t16:37:15.123Z",
           "2025-10-19T16:37:15.123z",
           "2025-10-19 16:37:15.123Z",
           "2025-10-19T16:37:15.Z",  // dot without digits
           "2025-10-19T16:37Z",
           "2025-1-19T16:37:15.123Z",
           "25-10-19T16:37:15.123Z",
           " 2025-10-19T16:37:15.123Z",
           "2025-10-19T16:37:15.123Z ",
           "2025-10-19T16:37:15.123Zjunk",
           "+2025-10-19T16:37:15.123Z",  // a sign needs six digits
           "-000000-01-01T00:00:00.000Z",
           "2025-1a-19T16:37:15.123Z",
       }) {
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  }
}

TEST(ParseIso8601, RejectsImpossibleDatesAndTimes) {
  for (const char* bad : {
           "2025-00-10T00:00:00.000Z",
           "2025-13-10T00:00:00.000Z",
           "2025-10-00T00:00:00.000Z",
           "2025-10-32T00:00:00.000Z",
           "2025-02-29T00:00:00.000Z",  // not a leap year
           "1900-02-29T00:00:00.000Z",
           "2025-04-31T00:00:00.000Z",
           "2025-10-19T24:00:00.000Z",
           "2025-10-19T23:60:00.000Z",
           "2025-10-19T23:59:60.000Z",  // no leap seconds, as in JavaScript
       }) {
    EXPECT_FALSE(parse_iso8601(bad)) << bad;
  }
  EXPECT_TRUE(parse_iso8601("2000-02-29T00:00:00.000Z"));
  EXPECT_TRUE(parse_iso8601("2024-02-29T00:00:00.000Z"));
}

// Found by fuzz/fuzz_amqp_message: "+275760-…" (JavaScript's largest year) was read into
// std::chrono::year (16 bits) and came out as a time in the year -20606.
TEST(ParseIso8601, RejectsYearsBeyondWhatChronoYearHolds) {
  EXPECT_EQ(parse_iso8601("+032767-12-31T23:59:59.999Z"), ms(971'890'963'199'999));
  EXPECT_EQ(parse_iso8601("-032767-01-01T00:00:00.000Z"), ms(-1'096'193'779'200'000));
  EXPECT_EQ(parse_iso8601("+032768-01-01T00:00:00.000Z"), std::nullopt);
  EXPECT_EQ(parse_iso8601("-032768-01-01T00:00:00.000Z"), std::nullopt);
  EXPECT_EQ(parse_iso8601("+275760-09-13T00:00:00.000Z"), std::nullopt);
  EXPECT_EQ(parse_iso8601("+999999-12-31T23:59:59.999Z"), std::nullopt);
}

TEST(Iso8601, RoundTripsAcrossARange) {
  // A stride that is not a whole number of seconds, minutes or days visits many field values.
  for (long long v = -5'000'000'000'000; v <= 5'000'000'000'000; v += 7'777'777'777) {
    const auto s = to_iso8601(ms(v));
    ASSERT_EQ(s.size(), 24u) << s;
    ASSERT_EQ(parse_iso8601(s), ms(v)) << s;
  }
}

}  // namespace
