// RESP2 (src/adapters/redis/resp.hpp): the command encoder, and the reply parser fed the way a
// socket feeds it (split anywhere, several replies at once), its refusals and its limits.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "adapters/redis/resp.hpp"

namespace {

using registrar::adapters::redis::Reply;
namespace resp = registrar::adapters::redis::resp;
using Type = Reply::Type;

Reply bulk(std::string s) { return Reply{Type::bulk, std::move(s), 0, {}}; }
Reply status(std::string s) { return Reply{Type::status, std::move(s), 0, {}}; }
Reply error(std::string s) { return Reply{Type::error, std::move(s), 0, {}}; }
Reply integer(long long n) { return Reply{Type::integer, {}, n, {}}; }
Reply nil() { return Reply{}; }
Reply array(std::vector<Reply> e) { return Reply{Type::array, {}, 0, std::move(e)}; }

// Every reply in `bytes`, fed in one piece; fails the test if bytes are left over.
std::vector<Reply> parse_all(std::string_view bytes, resp::Limits limits = {}) {
  resp::Parser p(limits);
  p.feed(bytes);
  std::vector<Reply> out;
  while (auto r = p.next()) out.push_back(std::move(*r));
  EXPECT_TRUE(p.idle()) << "bytes left over: " << p.buffered();
  return out;
}

Reply parse_one(std::string_view bytes) {
  auto all = parse_all(bytes);
  EXPECT_EQ(all.size(), 1u);
  return all.empty() ? Reply{} : all.front();
}

std::string refusal(std::string_view bytes, resp::Limits limits = {}) {
  resp::Parser p(limits);
  p.feed(bytes);
  try {
    while (p.next()) {
    }
  } catch (const resp::ProtocolError& e) {
    return e.what();
  }
  return "";
}

TEST(RespEncode, CommandIsAnArrayOfBulkStringsBinarySafe) {
  std::string out;
  const std::string_view args[] = {"SET", "k", std::string_view("a\r\n\0b", 5)};
  resp::append_command(out, args);
  using namespace std::string_literals;
  EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na\r\n\0b\r\n"s);
  out.clear();
  const std::vector<std::string> owned = {"GET", ""};
  resp::append_command(out, owned);
  EXPECT_EQ(out, "*2\r\n$3\r\nGET\r\n$0\r\n\r\n");
}

TEST(RespParse, EachType) {
  EXPECT_EQ(parse_one("+OK\r\n"), status("OK"));
  EXPECT_EQ(parse_one("-ERR unknown command\r\n"), error("ERR unknown command"));
  EXPECT_EQ(parse_one(":0\r\n"), integer(0));
  EXPECT_EQ(parse_one(":-42\r\n"), integer(-42));
  EXPECT_EQ(parse_one(":9223372036854775807\r\n"), integer(9223372036854775807LL));
  EXPECT_EQ(parse_one(":-9223372036854775808\r\n"), integer(-9223372036854775807LL - 1));
  EXPECT_EQ(parse_one("$5\r\nhello\r\n"), bulk("hello"));
  EXPECT_EQ(parse_one("$0\r\n\r\n"), bulk(""));
  EXPECT_EQ(parse_one("$-1\r\n"), nil());
  EXPECT_EQ(parse_one("*-1\r\n"), nil());
  EXPECT_EQ(parse_one("*0\r\n"), array({}));
  EXPECT_TRUE(parse_one("$-1\r\n").is_nil());
  EXPECT_TRUE(parse_one("-NOSCRIPT x\r\n").is_error());
}

TEST(RespParse, BulkStringsAreBinarySafe) {
  const std::string payload("\r\n\0$3\r\n\xff", 8);
  EXPECT_EQ(parse_one("$8\r\n" + payload + "\r\n"), bulk(payload));
}

TEST(RespParse, NestedArraysWithNilsAndErrorsInside) {
  const std::string bytes = "*4\r\n$1\r\na\r\n*2\r\n:1\r\n*1\r\n$-1\r\n*-1\r\n-ERR in exec\r\n";
  EXPECT_EQ(parse_one(bytes), array({bulk("a"), array({integer(1), array({nil()})}), nil(), error("ERR in exec")}));
}

TEST(RespParse, SeveralRepliesInOneReadComeOutInOrder) {
  const auto all = parse_all("+OK\r\n:1\r\n$1\r\nx\r\n*1\r\n+y\r\n");
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0], status("OK"));
  EXPECT_EQ(all[1], integer(1));
  EXPECT_EQ(all[2], bulk("x"));
  EXPECT_EQ(all[3], array({status("y")}));
}

// Every split of a stream of replies into two reads, and the whole stream a byte at a time, give
// the replies of the stream read at once.
TEST(RespParse, SplitReadsAtEveryByteGiveTheSameReplies) {
  const std::string stream =
      "*3\r\n$3\r\nfoo\r\n*2\r\n:-7\r\n$0\r\n\r\n$-1\r\n+PONG\r\n$6\r\na\r\nb\r\n\r\n-ERR x\r\n*-1\r\n:12345\r\n";
  const auto expected = parse_all(stream);
  ASSERT_EQ(expected.size(), 6u);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    resp::Parser p;
    std::vector<Reply> got;
    p.feed(std::string_view(stream).substr(0, cut));
    while (auto r = p.next()) got.push_back(std::move(*r));
    p.feed(std::string_view(stream).substr(cut));
    while (auto r = p.next()) got.push_back(std::move(*r));
    EXPECT_EQ(got, expected) << "cut at " << cut;
    EXPECT_TRUE(p.idle());
  }
  resp::Parser p;
  std::vector<Reply> got;
  for (char c : stream) {
    p.feed(std::string_view(&c, 1));
    while (auto r = p.next()) got.push_back(std::move(*r));
  }
  EXPECT_EQ(got, expected);
}

TEST(RespParse, IncompleteInputWaitsForMore) {
  resp::Parser p;
  p.feed("$10\r\nhello");
  EXPECT_FALSE(p.next());
  EXPECT_FALSE(p.idle());
  p.feed("world\r");
  EXPECT_FALSE(p.next());
  p.feed("\n");
  EXPECT_EQ(p.next(), bulk("helloworld"));
  EXPECT_TRUE(p.idle());
}

TEST(RespParse, EncodeOfAParsedReplyGivesTheBytesBack) {
  const std::vector<std::string> cases = {"+OK\r\n", "-ERR x y\r\n", ":-1\r\n", std::string("$3\r\na\0b\r\n", 9),
                                         "*2\r\n*0\r\n$-1\r\n", "*3\r\n:1\r\n*1\r\n+s\r\n$0\r\n\r\n"};
  for (const auto& bytes : cases) EXPECT_EQ(resp::encode_reply(parse_one(bytes)), bytes);
  EXPECT_EQ(resp::encode_reply(parse_one("*-1\r\n")), "$-1\r\n");  // one nil for both
}

TEST(RespParse, RefusesWhatIsNotCanonicalResp2) {
  EXPECT_NE(refusal("?x\r\n"), "");
  EXPECT_NE(refusal("%1\r\n"), "");      // RESP3 map: never sent to a RESP2 client
  EXPECT_NE(refusal(":\r\n"), "");
  EXPECT_NE(refusal(":+1\r\n"), "");
  EXPECT_NE(refusal(":01\r\n"), "");
  EXPECT_NE(refusal(":-0\r\n"), "");
  EXPECT_NE(refusal(": 1\r\n"), "");
  EXPECT_NE(refusal(":1x\r\n"), "");
  EXPECT_NE(refusal(":9223372036854775808\r\n"), "");
  EXPECT_NE(refusal(":-9223372036854775809\r\n"), "");
  EXPECT_NE(refusal(":99999999999999999999\r\n"), "");
  EXPECT_NE(refusal("$-2\r\n"), "");
  EXPECT_NE(refusal("$03\r\nabc\r\n"), "");
  EXPECT_NE(refusal("$x\r\n"), "");
  EXPECT_NE(refusal("$3\r\nabcd\r\n"), "");  // no CR LF after the payload
  EXPECT_NE(refusal("*-2\r\n"), "");
  EXPECT_NE(refusal("*1\r\n!\r\n"), "");
}

TEST(RespParse, AFailedParserStaysFailed) {
  resp::Parser p;
  p.feed("?\r\n+OK\r\n");
  EXPECT_THROW(p.next(), resp::ProtocolError);
  EXPECT_THROW(p.next(), resp::ProtocolError);
  p.feed("+OK\r\n");
  EXPECT_THROW(p.next(), resp::ProtocolError);
}

TEST(RespLimits, ABulkStringOverTheLimitIsRefusedFromItsHeaderAlone) {
  resp::Limits limits;
  limits.max_bulk = 10;
  EXPECT_EQ(parse_all("$10\r\n0123456789\r\n", limits).size(), 1u);
  // Refused before any payload arrived: nothing is allocated or awaited for the claimed size.
  EXPECT_NE(refusal("$11\r\n", limits), "");
  // The default limit is Redis's own 512 MiB.
  EXPECT_NE(refusal("$536870913\r\n"), "");
  resp::Parser p;
  p.feed("$536870912\r\n");
  EXPECT_FALSE(p.next());  // allowed: waits for the payload
}

TEST(RespLimits, ArraysNestedTooDeepAreRefused) {
  resp::Limits limits;
  limits.max_depth = 3;
  EXPECT_EQ(parse_all("*1\r\n*1\r\n*1\r\n:1\r\n", limits).size(), 1u);
  EXPECT_NE(refusal("*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n", limits), "");
  // An empty array is a level too (fuzz/fuzz_resp found it was not counted).
  EXPECT_EQ(parse_all("*1\r\n*1\r\n*0\r\n", limits).size(), 1u);
  EXPECT_NE(refusal("*1\r\n*1\r\n*1\r\n*0\r\n", limits), "");
  // The default: a deep chain of "*1" (3 bytes each) cannot exhaust the stack.
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "*1\r\n";
  EXPECT_NE(refusal(deep), "");
}

TEST(RespLimits, ArraysWithTooManyElementsAreRefused) {
  resp::Limits limits;
  limits.max_array = 3;
  EXPECT_EQ(parse_all("*3\r\n:1\r\n:2\r\n:3\r\n", limits).size(), 1u);
  EXPECT_NE(refusal("*4\r\n", limits), "");
  EXPECT_NE(refusal("*1048577\r\n"), "");  // default: 2^20 elements in one array
  EXPECT_NE(refusal("*99999999999\r\n"), "");
}

TEST(RespLimits, RepliesWithTooManyValuesInAllAreRefused) {
  resp::Limits limits;
  limits.max_elements = 7;  // the arrays count too
  EXPECT_EQ(parse_all("*2\r\n*2\r\n:1\r\n:2\r\n*2\r\n:3\r\n:4\r\n", limits).size(), 1u);
  EXPECT_NE(refusal("*3\r\n*2\r\n:1\r\n:2\r\n*2\r\n:3\r\n:4\r\n:5\r\n", limits), "");
  // The count starts again with each reply.
  EXPECT_EQ(parse_all("*2\r\n:1\r\n:2\r\n*2\r\n:1\r\n:2\r\n*2\r\n:1\r\n:2\r\n", limits).size(), 3u);
}

TEST(RespLimits, LinesWithoutAnEndAreRefusedAtTheLimit) {
  resp::Limits limits;
  limits.max_line = 8;
  EXPECT_EQ(parse_all("+12345678\r\n", limits).size(), 1u);
  EXPECT_NE(refusal("+123456789\r\n", limits), "");
  resp::Parser p(limits);
  p.feed("+12345678\r");  // the longest line, its LF still to come
  EXPECT_FALSE(p.next());
  p.feed("\n");
  EXPECT_EQ(p.next(), status("12345678"));
  // No CR LF in sight: refused once more bytes than a line may hold arrived, not kept forever.
  resp::Parser q(limits);
  q.feed("+1234567890");
  EXPECT_THROW(q.next(), resp::ProtocolError);
}

TEST(RespLimits, ALongLineFedByteByByteIsNotRescannedFromItsStart) {
  // 64 KiB (the default limit) one byte at a time: linear work, so this returns promptly.
  resp::Parser p;
  p.feed("+");
  for (int i = 0; i < 64 * 1024; ++i) {
    p.feed("a");
    ASSERT_FALSE(p.next());
  }
  p.feed("\r\n");
  auto r = p.next();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->str.size(), 64u * 1024);
}

TEST(ReplyThrowIfError, ThrowsServerErrorWithTheServersText) {
  EXPECT_THROW(error("ERR x").throw_if_error(), registrar::adapters::redis::ServerError);
  try {
    error("WRONGTYPE Operation against a key").throw_if_error();
  } catch (const registrar::adapters::redis::ServerError& e) {
    EXPECT_STREQ(e.what(), "WRONGTYPE Operation against a key");
  }
  EXPECT_EQ(status("OK").throw_if_error(), status("OK"));
}

}  // namespace
