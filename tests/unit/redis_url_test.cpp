// redis::Url::parse (redis:// and rediss:// URLs) and Url::redacted().
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

#include "adapters/redis/client.hpp"

namespace {

using registrar::adapters::redis::Url;

std::string refusal(std::string_view text) {
  try {
    Url::parse(text);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

TEST(RedisUrl, HostPortAndDefaults) {
  const Url u = Url::parse("redis://cache.example.com:6380");
  EXPECT_EQ(u.host, "cache.example.com");
  EXPECT_EQ(u.port, 6380);
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.username, "");
  EXPECT_EQ(u.password, "");
  EXPECT_EQ(u.db, 0);
  EXPECT_TRUE(u.verify_peer);
  const Url d = Url::parse("redis://10.0.0.5");
  EXPECT_EQ(d.host, "10.0.0.5");
  EXPECT_EQ(d.port, 6379);
  EXPECT_EQ(Url::parse("redis://").host, "127.0.0.1");
  EXPECT_EQ(Url::parse("redis://[::1]:7000/").host, "::1");
  EXPECT_EQ(Url::parse("REDIS://h").host, "h");
}

TEST(RedisUrl, CredentialsArePercentDecoded) {
  const Url acl = Url::parse("redis://app:s%40cr%3At@h:1/2");
  EXPECT_EQ(acl.username, "app");
  EXPECT_EQ(acl.password, "s@cr:t");
  EXPECT_EQ(acl.db, 2);
  const Url password_only = Url::parse("redis://:hunter2@h");
  EXPECT_EQ(password_only.username, "");
  EXPECT_EQ(password_only.password, "hunter2");
}

TEST(RedisUrl, DatabaseFromThePathOrTheQuery) {
  EXPECT_EQ(Url::parse("redis://h/3").db, 3);
  EXPECT_EQ(Url::parse("redis://h?db=4").db, 4);
  EXPECT_EQ(Url::parse("redis://h/5?db=5").db, 5);
  EXPECT_EQ(Url::parse("redis://h/").db, 0);
}

TEST(RedisUrl, TlsAndItsOptions) {
  const Url u = Url::parse("rediss://:pw@redis.internal:6390/1?ca_file=/etc/ca%20dir/ca.pem");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.ca_file, "/etc/ca dir/ca.pem");
  EXPECT_TRUE(u.verify_peer);
  EXPECT_FALSE(Url::parse("rediss://h?verify_peer=false").verify_peer);
  EXPECT_TRUE(Url::parse("rediss://h").ca_file.empty());
}

TEST(RedisUrl, RefusalsSayWhatIsWrong) {
  EXPECT_NE(refusal("http://h").find("redis:// or rediss://"), std::string::npos);
  EXPECT_NE(refusal("not a url").find("not a valid URL"), std::string::npos);
  EXPECT_NE(refusal("redis:h").find("no host"), std::string::npos);
  EXPECT_NE(refusal("redis://h:0").find("port"), std::string::npos);
  EXPECT_NE(refusal("redis://h:65536").find("port"), std::string::npos);
  EXPECT_NE(refusal("redis://h/x").find("database"), std::string::npos);
  EXPECT_NE(refusal("redis://h/-1").find("database"), std::string::npos);
  EXPECT_NE(refusal("redis://h/1/2").find("/DB"), std::string::npos);
  EXPECT_NE(refusal("redis://h?db=x").find("database"), std::string::npos);
  EXPECT_NE(refusal("redis://h/1?db=2").find("two different databases"), std::string::npos);
  EXPECT_NE(refusal("redis://h?timeout=3").find("unknown parameter \"timeout\""), std::string::npos);
  EXPECT_NE(refusal("redis://h?ca_file=/x").find("need rediss://"), std::string::npos);
  EXPECT_NE(refusal("rediss://h?verify_peer=maybe").find("true or false"), std::string::npos);
  EXPECT_NE(refusal("redis://h#x").find("fragment"), std::string::npos);
  EXPECT_NE(refusal("redis://alice@h").find("a user without a password"), std::string::npos);
}

TEST(RedisUrl, RefusalsNeverShowThePassword) {
  for (const char* text : {"redis://u:Secret-pw@h:0", "redis://u:Secret-pw@h/x", "redis://:Secret-pw@h?x=1"}) {
    const std::string why = refusal(text);
    EXPECT_NE(why, "") << text;
    EXPECT_EQ(why.find("Secret-pw"), std::string::npos) << why;
  }
}

TEST(RedisUrl, RedactedHidesThePasswordOnly) {
  EXPECT_EQ(Url::parse("redis://app:s%40cr%3At@h:1/2").redacted(), "redis://app:***@h:1/2");
  EXPECT_EQ(Url::parse("redis://:pw@h").redacted(), "redis://:***@h:6379/0");
  EXPECT_EQ(Url::parse("rediss://[::1]:7000?db=3").redacted(), "rediss://[::1]:7000/3");
  EXPECT_EQ(Url::parse("rediss://h?verify_peer=false").redacted(), "rediss://h:6379/0?verify_peer=false");
  // redacted() reads back as the same server and database.
  const Url back = Url::parse(Url::parse("redis://app:pw@h:1/2").redacted());
  EXPECT_EQ(back.host, "h");
  EXPECT_EQ(back.port, 1);
  EXPECT_EQ(back.db, 2);
}

}  // namespace
