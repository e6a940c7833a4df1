// The user.registered wire format (app/events): the body the sign-up writes and the parser the
// consumers read it with.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "app/events.hpp"
#include "domain/time.hpp"
#include "support/events.hpp"

namespace registrar {
namespace {

domain::EventEnvelope with_payload(std::string payload) {
  auto e = testing::user_registered("evt-1");
  e.payload = std::move(payload);
  return e;
}

TEST(UserRegisteredEvent, TheBodyHasTheNestJsStructureOfDesignMd) {
  const auto e = testing::user_registered("evt-1", "bob", "u1");
  EXPECT_EQ(e.id, "evt-1");
  EXPECT_EQ(e.type, "user.registered");
  EXPECT_EQ(e.aggregate_id, "u1");
  EXPECT_EQ(boost::json::parse(e.payload),
            boost::json::parse(R"({"event":"user.registered","pattern":"user.registered",
              "data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},
              "timestamp":"2025-10-19T16:37:15.456Z"})"));
}

TEST(UserRegisteredEvent, ParsesWhatItWrites) {
  const auto e = testing::user_registered("evt-1", "bob", "u1");
  const auto u = app::parse_user_registered(e);
  ASSERT_TRUE(u) << u.error();
  EXPECT_EQ(u->user_id, "u1");
  EXPECT_EQ(u->email, "bob@example.com");
  EXPECT_EQ(u->username, "bob");
  EXPECT_EQ(domain::to_iso8601(u->created_at), "2025-10-19T16:37:15.123Z");
  EXPECT_EQ(domain::to_iso8601(u->timestamp), "2025-10-19T16:37:15.456Z");
}

TEST(UserRegisteredEvent, APhoneAccountHasANullEmailAndNoPhone) {
  domain::User u;
  u.id = "u2";
  u.username = "phoney";
  u.phone = domain::StoredPhone{{"k1", "sealed-bytes"}, "index-hex"};
  u.created_at = domain::Timestamp{std::chrono::milliseconds{1'760'891'835'123}};
  const auto e = app::make_user_registered(u, "evt-2", u.created_at);
  EXPECT_EQ(boost::json::parse(e.payload).as_object().at("data"),
            boost::json::parse(R"({"id":"u2","email":null,"username":"phoney","createdAt":"2025-10-19T16:37:15.123Z"})"));
  EXPECT_EQ(e.payload.find("sealed"), std::string::npos);
  EXPECT_EQ(e.payload.find("index"), std::string::npos);
  const auto parsed = app::parse_user_registered(e);
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_FALSE(parsed->email);
  EXPECT_EQ(parsed->username, "phoney");
}

TEST(UserRegisteredEvent, ExtraFieldsAreAllowed) {
  const auto u = app::parse_user_registered(with_payload(
      R"({"event":"user.registered","pattern":"user.registered","version":2,"data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z","plan":"pro"},"timestamp":"2025-10-19T16:37:15.456Z"})"));
  ASSERT_TRUE(u) << u.error();
  EXPECT_EQ(u->email, "bob@example.com");
}

TEST(UserRegisteredEvent, AMalformedBodyGivesItsFirstProblemWithoutQuotingIt) {
  const std::string data = R"("data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"})";
  const std::string head = R"({"event":"user.registered","pattern":"user.registered",)";
  const std::string ts = R"("timestamp":"2025-10-19T16:37:15.456Z")";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "the body is not JSON"},
      {"not json", "the body is not JSON"},
      {"[1,2,3]", "the body is not a JSON object"},
      {R"({"pattern":"user.registered",)" + data + "," + ts + "}", "missing event"},
      {R"({"event":"user.deleted","pattern":"user.registered",)" + data + "," + ts + "}",
       R"("event" is not "user.registered")"},
      {R"({"event":"user.registered",)" + data + "," + ts + "}", "missing pattern"},
      {head + ts + "}", R"("data" is missing or not an object)"},
      {head + R"("data":"x",)" + ts + "}", R"("data" is missing or not an object)"},
      {head + R"("data":{"id":"u1","email":7,"username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},)" + ts + "}",
       "data.email is not a non-empty string"},
      {head + R"("data":{"id":"u1","email":"bob@example.com","username":"","createdAt":"2025-10-19T16:37:15.123Z"},)" + ts +
           "}",
       "data.username is not a non-empty string"},
      {head + R"("data":{"id":"u1","email":"bob@example.com","username":"bob","createdAt":"yesterday"},)" + ts + "}",
       "data.createdAt is not an ISO 8601 time"},
      {head + data + "}", "missing timestamp"},
      {head + R"("data":{"id":"u1","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},)" + ts + "}",
       "missing data.email"},
      {head + R"("data":{"id":"u1","email":"","username":"bob","createdAt":"2025-10-19T16:37:15.123Z"},)" + ts + "}",
       "data.email is not a non-empty string"},
  };
  for (const auto& [body, reason] : cases) {
    const auto u = app::parse_user_registered(with_payload(body));
    ASSERT_FALSE(u) << body;
    EXPECT_EQ(u.error(), "user.registered: " + reason) << body;
    EXPECT_EQ(u.error().find("bob@example.com"), std::string::npos) << u.error();
  }
}

}  // namespace
}  // namespace registrar
