// redis::Client and redis::Subscriber against real redis-server processes (a private server per
// test, tests/support/redis_server.hpp: they start in tens of milliseconds):
//   * commands and replies of every type, binary-safe keys and values, 8 threads pipelining on one
//     connection each get their own replies;
//   * eval: EVALSHA with the SHA-1 computed here (the server knows it by that name), EVAL after
//     SCRIPT FLUSH (NOSCRIPT);
//   * AUTH with a password and with an ACL user, a wrong password (a clear error), SELECT;
//   * outages: a stopped server fails commands promptly (also those in flight), and the same
//     Client works again once it is back; a reply that does not come within the timeout;
//   * TLS: rediss:// with the right CA, the wrong CA (verification fails), plain to a TLS port;
//   * pub/sub: subscribe, psubscribe, unsubscribe, binary messages, resubscribed after a restart
//     with on_connected called.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/redis/client.hpp"
#include "ports/errors.hpp"
#include "support/redis_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
using adapters::redis::Client;
using adapters::redis::ClientOptions;
using adapters::redis::Reply;
using adapters::redis::ServerError;
using adapters::redis::Subscriber;
using adapters::redis::Url;
using testing::RedisServer;
using testing::RedisServerOptions;
using Clock = std::chrono::steady_clock;

constexpr auto kTimeout = 15s;  // only reached when a test fails

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = kTimeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

ClientOptions quick_options() {
  ClientOptions o;
  o.connect_timeout = 2s;
  o.command_timeout = 3s;
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  o.client_name = "registrar-test";
  return o;
}

// The exception message of `f`, which must throw BackendUnavailable.
std::string unavailable(const std::function<void()>& f) {
  try {
    f();
  } catch (const ports::BackendUnavailable& e) {
    return e.what();
  }
  ADD_FAILURE() << "no BackendUnavailable";
  return "";
}

// True once `client` answers PING (it reconnects in the background).
bool answers(Client& client) {
  return wait_until([&] {
    try {
      return client.command({"PING"}).str == "PONG";
    } catch (const ports::BackendUnavailable&) {
      return false;
    }
  });
}

RedisServerOptions with_password(std::string password) {
  RedisServerOptions o;
  o.password = std::move(password);
  return o;
}

// A password for `default` and an ACL user.
RedisServerOptions secured() {
  RedisServerOptions o = with_password("s3cret-pw");
  o.acl_user = "app";
  o.acl_password = "app-pw";
  return o;
}

RedisServerOptions tls_only(std::string password = "") {
  RedisServerOptions o = with_password(std::move(password));
  o.tls = true;
  return o;
}

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisServer::available()) GTEST_SKIP() << "redis-server is not installed";
  }
};

TEST_F(RedisClientTest, CommandsAndRepliesOfEveryType) {
  RedisServer server;
  Client client(Url::parse(server.url()), quick_options());
  EXPECT_EQ(client.command({"SET", "k", "v"}).type, Reply::Type::status);
  EXPECT_EQ(client.command({"GET", "k"}).str, "v");
  EXPECT_EQ(client.command({"GET", "k"}).type, Reply::Type::bulk);
  EXPECT_TRUE(client.command({"GET", "missing"}).is_nil());
  const Reply n = client.command({"INCRBY", "n", "41"});
  EXPECT_EQ(n.type, Reply::Type::integer);
  EXPECT_EQ(n.integer, 41);
  client.command({"RPUSH", "list", "a", "b", "c"});
  const Reply list = client.command({"LRANGE", "list", "0", "-1"});
  ASSERT_EQ(list.type, Reply::Type::array);
  ASSERT_EQ(list.elements.size(), 3u);
  EXPECT_EQ(list.elements[2].str, "c");
  const Reply wrong = client.command({"INCR", "list"});
  EXPECT_TRUE(wrong.is_error());
  EXPECT_TRUE(wrong.str.starts_with("WRONGTYPE")) << wrong.str;
  EXPECT_THROW(wrong.throw_if_error(), ServerError);
  EXPECT_TRUE(client.connected());
  // The vector form, and the name set on connect.
  EXPECT_EQ(client.command(std::vector<std::string>{"CLIENT", "GETNAME"}).str, "registrar-test");
  // Commands that would change the shared connection are refused before anything is sent.
  EXPECT_THROW(client.command({"SELECT", "1"}), std::invalid_argument);
  EXPECT_THROW(client.command({"subscribe", "x"}), std::invalid_argument);
  EXPECT_THROW(client.command({"MULTI"}), std::invalid_argument);
}

TEST_F(RedisClientTest, KeysAndValuesAreBinarySafe) {
  RedisServer server;
  Client client(Url::parse(server.url()), quick_options());
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte += static_cast<char>(i);
  const std::string key("key\r\n\0with bytes", 16);
  EXPECT_EQ(client.command({"SET", key, every_byte}).str, "OK");
  EXPECT_EQ(client.command({"GET", key}).str, every_byte);
  const std::string big(3 * 1024 * 1024 + 17, '\xab');  // spans many reads
  client.command({"SET", "big", big});
  EXPECT_EQ(client.command({"GET", "big"}).str, big);
  EXPECT_EQ(client.command({"STRLEN", "big"}).integer, static_cast<long long>(big.size()));
}

TEST_F(RedisClientTest, ManyThreadsPipeliningOnOneConnectionGetTheirOwnReplies) {
  RedisServer server;
  Client client(Url::parse(server.url()), quick_options());
  constexpr int kThreads = 8, kPerThread = 3000;
  std::atomic<int> mismatches{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string counter = "counter-" + std::to_string(t);
      for (int i = 0; i < kPerThread; ++i) {
        try {
          const std::string token = std::to_string(t) + ":" + std::to_string(i) + std::string(i % 50, 'x');
          if (client.command({"ECHO", token}).str != token) ++mismatches;
          if (client.command({"INCR", counter}).integer != i + 1) ++mismatches;
        } catch (const std::exception&) {
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(failures.load(), 0);
  for (int t = 0; t < kThreads; ++t)
    EXPECT_EQ(client.command({"GET", "counter-" + std::to_string(t)}).str, std::to_string(kPerThread));
  // One connection for all of them (plus none other of ours): the pipelining did not open more.
  const std::string clients = server.cli({"CLIENT", "LIST"});
  std::size_t ours = 0;
  for (std::size_t at = clients.find("name=registrar-test"); at != std::string::npos;
       at = clients.find("name=registrar-test", at + 1))
    ++ours;
  EXPECT_EQ(ours, 1u) << clients;
}

// eval_all: the calls pipelined (written together), their replies in the calls' order; a server
// without the script gets each call again by EVAL, and every call runs once.
TEST_F(RedisClientTest, EvalAllPipelinesTheCallsAndRunsEachOnceAfterNoscript) {
  RedisServer server;
  Client client(Url::parse(server.url()), quick_options());
  const std::string script = "return {ARGV[1], redis.call('INCR', KEYS[1])}";
  std::vector<Client::ScriptCall> calls;
  for (int i = 0; i < 100; ++i) calls.push_back({{"pipelined"}, {"call-" + std::to_string(i)}});
  server.cli({"SCRIPT", "FLUSH"});
  server.cli({"CONFIG", "RESETSTAT"});
  auto replies = client.eval_all(script, calls);
  ASSERT_EQ(replies.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(replies[i].elements.at(0).str, "call-" + std::to_string(i));
    EXPECT_EQ(replies[i].elements.at(1).integer, i + 1);  // in order, each once
  }
  EXPECT_EQ(client.command({"GET", "pipelined"}).str, "100");
  // Cached now: the next batch runs by SHA only.
  server.cli({"CONFIG", "RESETSTAT"});
  replies = client.eval_all(script, calls);
  EXPECT_EQ(replies.back().elements.at(1).integer, 200);
  const std::string stats = client.command({"INFO", "commandstats"}).str;
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=100,"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_eval:"), std::string::npos) << stats;
  EXPECT_TRUE(client.eval_all(script, {}).empty());
}

TEST_F(RedisClientTest, EvalRunsByShaAndLoadsTheScriptWhenTheServerLacksIt) {
  RedisServer server;
  Client client(Url::parse(server.url()), quick_options());
  const std::string script = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}";
  // The SHA-1 the server would give the script (SCRIPT LOAD) is the one EVALSHA uses.
  const std::string sha = client.command({"SCRIPT", "LOAD", script}).str;
  ASSERT_EQ(sha.size(), 40u);
  server.cli({"SCRIPT", "FLUSH"});
  EXPECT_EQ(client.command({"SCRIPT", "EXISTS", sha}).elements.at(0).integer, 0);

  const std::string binary_arg("arg\r\n\0x", 7);
  Reply r = client.eval(script, {"counter"}, {binary_arg});  // NOSCRIPT, then EVAL
  ASSERT_EQ(r.type, Reply::Type::array) << r.str;
  EXPECT_EQ(r.elements.at(0).str, "counter");
  EXPECT_EQ(r.elements.at(1).str, binary_arg);
  EXPECT_EQ(r.elements.at(2).integer, 1);
  EXPECT_EQ(client.command({"SCRIPT", "EXISTS", sha}).elements.at(0).integer, 1);

  // Cached now: EVALSHA alone. The server counts the calls of each command.
  server.cli({"CONFIG", "RESETSTAT"});
  r = client.eval(script, {"counter"}, {"again"});
  EXPECT_EQ(r.elements.at(2).integer, 2);
  const std::string stats = client.command({"INFO", "commandstats"}).str;
  EXPECT_NE(stats.find("cmdstat_evalsha:calls=1,"), std::string::npos) << stats;
  EXPECT_EQ(stats.find("cmdstat_eval:"), std::string::npos) << stats;

  server.cli({"SCRIPT", "FLUSH"});
  r = client.eval(script, {"counter"}, {"after flush"});
  EXPECT_EQ(r.elements.at(2).integer, 3);

  // A script's error reply comes back as an error Reply.
  const Reply e = client.eval("return redis.error_reply('MYERR no luck')", {}, {});
  EXPECT_TRUE(e.is_error());
  EXPECT_EQ(e.str, "MYERR no luck");
}

TEST_F(RedisClientTest, AuthenticatesWithAPasswordOrAnAclUser) {
  RedisServer server(secured());
  Client by_password(Url::parse(server.url()), quick_options());
  EXPECT_EQ(by_password.command({"ACL", "WHOAMI"}).str, "default");
  Client by_user(Url::parse(server.acl_url()), quick_options());
  EXPECT_EQ(by_user.command({"ACL", "WHOAMI"}).str, "app");
  EXPECT_EQ(by_user.command({"SET", "k", "v"}).str, "OK");
}

TEST_F(RedisClientTest, AWrongPasswordIsAClearErrorWithoutThePassword) {
  RedisServer server(secured());
  Url wrong = Url::parse(server.url());
  wrong.password = "not-the-pw";
  Client client(wrong, quick_options());
  const auto t0 = Clock::now();
  const std::string why = unavailable([&] { client.command({"PING"}); });
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_NE(why.find("AUTH refused: WRONGPASS"), std::string::npos) << why;
  EXPECT_EQ(why.find("not-the-pw"), std::string::npos) << why;

  Url wrong_user = Url::parse(server.acl_url());
  wrong_user.password = "nope-pw";
  Client user_client(wrong_user, quick_options());
  const std::string user_why = unavailable([&] { user_client.command({"PING"}); });
  EXPECT_NE(user_why.find("WRONGPASS"), std::string::npos) << user_why;
  EXPECT_EQ(user_why.find("nope-pw"), std::string::npos) << user_why;

  Url none = Url::parse(server.url());
  none.password.clear();
  Client anonymous(none, quick_options());
  const std::string anonymous_why = unavailable([&] { anonymous.command({"PING"}); });
  EXPECT_NE(anonymous_why.find("NOAUTH"), std::string::npos) << anonymous_why;
}

TEST_F(RedisClientTest, SelectsTheDatabaseOfTheUrl) {
  RedisServer server;
  Client db3(Url::parse(server.url(3)), quick_options());
  Client db0(Url::parse(server.url(0)), quick_options());
  db3.command({"SET", "where", "three"});
  EXPECT_TRUE(db0.command({"GET", "where"}).is_nil());
  EXPECT_EQ(db3.command({"GET", "where"}).str, "three");
  EXPECT_EQ(server.cli({"-n", "3", "GET", "where"}), "three");
  Client by_query(Url::parse("redis://127.0.0.1:" + std::to_string(server.port()) + "?db=3"), quick_options());
  EXPECT_EQ(by_query.command({"GET", "where"}).str, "three");
}

TEST_F(RedisClientTest, AStoppedServerFailsCommandsPromptlyAndTheSameClientRecovers) {
  RedisServer server;
  ClientOptions options = quick_options();
  options.command_timeout = 5s;
  Client client(Url::parse(server.url()), options);
  client.command({"SET", "k", "before"});

  server.stop();
  // Once the loss is seen, every command fails at once, not after the 5 s timeout.
  ASSERT_TRUE(wait_until([&] { return !client.connected(); }));
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Clock::now();
    const std::string why = unavailable([&] { client.command({"GET", "k"}); });
    EXPECT_LT(Clock::now() - t0, 3s) << why;  // not the 5 s timeout (margin for sanitizer builds on a busy machine)
    EXPECT_NE(why.find("127.0.0.1:" + std::to_string(server.port())), std::string::npos) << why;
  }

  server.start();  // the same port; the data is gone (nothing is saved)
  ASSERT_TRUE(answers(client));
  EXPECT_TRUE(client.connected());
  EXPECT_EQ(client.command({"SET", "k", "after"}).str, "OK");
  EXPECT_EQ(client.command({"GET", "k"}).str, "after");
  EXPECT_EQ(client.command({"CLIENT", "GETNAME"}).str, "registrar-test");  // the handshake again
}

TEST_F(RedisClientTest, CommandsInFlightWhenTheConnectionIsLostFailPromptly) {
  RedisServer server;
  Client blocking(Url::parse(server.url()), quick_options());
  std::string why;
  std::atomic<bool> done{false};
  Clock::time_point failed_at;
  std::thread waiter([&] {
    why = unavailable([&] { blocking.command({"BLPOP", "nothing-comes", "30"}, 31s); });
    failed_at = Clock::now();
    done = true;
  });
  // The BLPOP is in: the server lists it as blocked.
  ASSERT_TRUE(wait_until([&] { return server.cli({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos; }));
  const auto killed_at = Clock::now();
  server.kill();
  waiter.join();
  EXPECT_LT(failed_at - killed_at, 2s);
  EXPECT_NE(why.find("closed the connection"), std::string::npos) << why;
}

TEST_F(RedisClientTest, BlockingCommandsWaitTheirOwnTimeoutOnTopOfTheCommandTimeout) {
  RedisServer server;
  ClientOptions options = quick_options();
  options.command_timeout = 300ms;
  Client blocking(Url::parse(server.url()), options);
  Client other(Url::parse(server.url()), options);
  // BLPOP for 1 s on a 300 ms command timeout: the extra time keeps it alive.
  const auto t0 = Clock::now();
  EXPECT_TRUE(blocking.command({"BLPOP", "q", "1"}, 2s).is_nil());
  EXPECT_GE(Clock::now() - t0, 900ms);
  std::thread pusher([&] {
    ASSERT_TRUE(wait_until([&] { return server.cli({"INFO", "clients"}).find("blocked_clients:1") != std::string::npos; }));
    other.command({"RPUSH", "q", "job"});
  });
  const Reply popped = blocking.command({"BLPOP", "q", "5"}, 6s);
  pusher.join();
  ASSERT_EQ(popped.elements.size(), 2u);
  EXPECT_EQ(popped.elements[1].str, "job");
}

TEST_F(RedisClientTest, AReplyThatDoesNotComeInTimeFailsAndTheClientRecovers) {
  RedisServer server;
  ClientOptions options = quick_options();
  options.command_timeout = 300ms;
  Client client(Url::parse(server.url()), options);
  Client admin(Url::parse(server.url()), quick_options());
  client.command({"SET", "k", "v"});
  // Every client's commands wait 1.5 s from now (the server's own pause, not a sleep here).
  ASSERT_EQ(admin.command({"CLIENT", "PAUSE", "1500", "ALL"}).str, "OK");
  const auto t0 = Clock::now();
  const std::string why = unavailable([&] { client.command({"GET", "k"}); });
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 250ms);
  EXPECT_LT(took, 1200ms);
  EXPECT_NE(why.find("no reply within"), std::string::npos) << why;
  ASSERT_TRUE(answers(client));
  EXPECT_EQ(client.command({"GET", "k"}).str, "v");
}

TEST_F(RedisClientTest, AServerThatIsDownFromTheStartFailsTheFirstCommandQuickly) {
  RedisServer server({}, /*start_now=*/false);
  Client client(Url::parse(server.url()), quick_options());
  const auto t0 = Clock::now();
  const std::string why = unavailable([&] { client.command({"PING"}); });
  EXPECT_LT(Clock::now() - t0, 1800ms);  // not the 2 s connect timeout
  EXPECT_NE(why.find("refused"), std::string::npos) << why;
  server.start();
  EXPECT_TRUE(answers(client));
}

// ---- TLS ----

TEST_F(RedisClientTest, RedissWithTheServersCaWorks) {
  RedisServer server(tls_only("tls-pw"));
  Client client(Url::parse(server.url()), quick_options());
  EXPECT_EQ(client.command({"SET", "k", "over tls"}).str, "OK");
  EXPECT_EQ(client.command({"GET", "k"}).str, "over tls");
  // By host name too: the certificate names localhost.
  Url by_name = Url::parse(server.url());
  by_name.host = "localhost";
  Client named(by_name, quick_options());
  EXPECT_EQ(named.command({"GET", "k"}).str, "over tls");
}

TEST_F(RedisClientTest, RedissWithAnotherCaFailsVerification) {
  RedisServer server(tls_only());
  Url url = Url::parse(server.url());
  url.ca_file = server.other_ca_file();
  Client client(url, quick_options());
  const std::string why = unavailable([&] { client.command({"PING"}); });
  EXPECT_NE(why.find("TLS handshake failed"), std::string::npos) << why;
  EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;
  // The system's CAs do not know the test CA either.
  Url system = Url::parse(server.url());
  system.ca_file.clear();
  Client with_system_cas(system, quick_options());
  EXPECT_NE(unavailable([&] { with_system_cas.command({"PING"}); }).find("certificate verify failed"), std::string::npos);
  // Verification off (verify_peer=false) connects anyway.
  Url unchecked = url;
  unchecked.verify_peer = false;
  Client insecure(unchecked, quick_options());
  EXPECT_EQ(insecure.command({"PING"}).str, "PONG");
}

TEST_F(RedisClientTest, AMissingCaFileIsRefusedWhenTheClientIsMade) {
  Url url = Url::parse("rediss://127.0.0.1:1?ca_file=/nonexistent/ca.pem");
  EXPECT_THROW({ Client client(url, quick_options()); }, std::invalid_argument);
}

TEST_F(RedisClientTest, PlainToATlsPortAndTlsToAPlainPortFailCleanly) {
  RedisServer tls_server(tls_only());
  Url plain = Url::parse(tls_server.url());
  plain.tls = false;
  plain.ca_file.clear();
  ClientOptions options = quick_options();
  options.connect_timeout = 1s;
  Client to_tls_port(plain, options);
  const auto t0 = Clock::now();
  const std::string why = unavailable([&] { to_tls_port.command({"PING"}); });
  EXPECT_LT(Clock::now() - t0, 2s);
  EXPECT_FALSE(why.empty());

  RedisServer plain_server;
  Url tls = Url::parse(plain_server.url());
  tls.tls = true;
  tls.ca_file = tls_server.ca_file();
  Client to_plain_port(tls, options);
  // The server answers the ClientHello with an error (wrong version number), or waits for the end
  // of what it takes for an inline command until the attempt times out: a failed TLS handshake.
  const std::string tls_why = unavailable([&] { to_plain_port.command({"PING"}); });
  EXPECT_NE(tls_why.find("TLS handshake"), std::string::npos) << tls_why;
}

// ---- pub/sub ----

struct Received {
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> messages;
  Subscriber::Handler handler() {
    return [this](std::string_view channel, std::string_view message) {
      std::lock_guard lock(mutex);
      messages.emplace_back(channel, message);
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return messages.size();
  }
  std::pair<std::string, std::string> at(std::size_t i) {
    std::lock_guard lock(mutex);
    return messages.at(i);
  }
};

TEST_F(RedisClientTest, SubscribersGetMessagesOfTheirChannelsAndPatterns) {
  RedisServer server;
  Client client(Url::parse(server.url()), quick_options());
  Subscriber subscriber(Url::parse(server.url()), quick_options());
  Received exact, pattern;
  subscriber.subscribe("events", exact.handler());
  subscriber.psubscribe("news.*", pattern.handler());

  const std::string binary("a\r\n\0\xff", 5);
  EXPECT_EQ(client.command({"PUBLISH", "events", binary}).integer, 1);  // subscribed when subscribe returned
  EXPECT_EQ(client.command({"PUBLISH", "news.sport", "goal"}).integer, 1);
  EXPECT_EQ(client.command({"PUBLISH", "other", "x"}).integer, 0);
  ASSERT_TRUE(wait_until([&] { return exact.size() == 1 && pattern.size() == 1; }));
  EXPECT_EQ(exact.at(0), std::make_pair(std::string("events"), binary));
  EXPECT_EQ(pattern.at(0), std::make_pair(std::string("news.sport"), std::string("goal")));

  subscriber.unsubscribe("events");
  ASSERT_TRUE(wait_until([&] { return client.command({"PUBLISH", "events", "late"}).integer == 0; }));
  EXPECT_EQ(client.command({"PUBLISH", "news.weather", "rain"}).integer, 1);
  ASSERT_TRUE(wait_until([&] { return pattern.size() == 2; }));
  EXPECT_EQ(exact.size(), 1u);
}

TEST_F(RedisClientTest, SubscriptionsAreMadeAgainAfterTheServerRestartsAndOnConnectedIsCalled) {
  RedisServer server(with_password("pw"));
  ClientOptions options = quick_options();
  Subscriber subscriber(Url::parse(server.url()), options);
  std::atomic<int> connects{0};
  subscriber.on_connected([&] { ++connects; });
  Received exact, pattern;
  subscriber.subscribe("jobs", exact.handler());
  subscriber.psubscribe("bull:*:completed", pattern.handler());
  ASSERT_TRUE(wait_until([&] { return connects.load() == 1; }));

  server.stop();
  server.start();
  ASSERT_TRUE(wait_until([&] { return connects.load() == 2; }));
  // on_connected came after the subscriptions were in place: a publish now reaches both.
  Client client(Url::parse(server.url()), options);
  EXPECT_EQ(client.command({"PUBLISH", "jobs", "j1"}).integer, 1);
  EXPECT_EQ(client.command({"PUBLISH", "bull:q:completed", "7"}).integer, 1);
  ASSERT_TRUE(wait_until([&] { return exact.size() == 1 && pattern.size() == 1; }));
  EXPECT_EQ(exact.at(0).second, "j1");
  EXPECT_EQ(pattern.at(0), std::make_pair(std::string("bull:q:completed"), std::string("7")));
}

TEST_F(RedisClientTest, ASubscriptionTheServerRefusesThrowsServerErrorAndOthersStillWork) {
  RedisServer server;
  server.cli({"ACL", "SETUSER", "limited", "on", ">limited-pw", "~*", "resetchannels", "&allowed:*", "+@all"});
  Url url = Url::parse(server.url());
  url.username = "limited";
  url.password = "limited-pw";
  Subscriber subscriber(url, quick_options());
  Received allowed;
  subscriber.subscribe("allowed:1", allowed.handler());
  try {
    subscriber.subscribe("secret", [](std::string_view, std::string_view) {});
    ADD_FAILURE() << "no ServerError";
  } catch (const ServerError& e) {
    EXPECT_NE(std::string(e.what()).find("NOPERM"), std::string::npos) << e.what();
  }
  Client client(Url::parse(server.url()), quick_options());
  EXPECT_EQ(client.command({"PUBLISH", "allowed:1", "hello"}).integer, 1);
  EXPECT_EQ(client.command({"PUBLISH", "secret", "hello"}).integer, 0);
  ASSERT_TRUE(wait_until([&] { return allowed.size() == 1; }));
  // A pattern goes by its name too.
  Received by_pattern;
  subscriber.psubscribe("allowed:*", by_pattern.handler());
  EXPECT_EQ(client.command({"PUBLISH", "allowed:2", "x"}).integer, 1);
  ASSERT_TRUE(wait_until([&] { return by_pattern.size() == 1; }));
  subscriber.unsubscribe("allowed:*");
  ASSERT_TRUE(wait_until([&] { return client.command({"PUBLISH", "allowed:2", "y"}).integer == 0; }));
  EXPECT_EQ(by_pattern.size(), 1u);
  EXPECT_EQ(by_pattern.at(0), std::make_pair(std::string("allowed:2"), std::string("x")));
}

}  // namespace
}  // namespace registrar
