// Mail senders: the file spool (messages.jsonl + one spool file per idempotency key) and the
// SMTP client, the latter against a small fake SMTP server on 127.0.0.1 that records the talk and
// speaks real TLS (Asio's OpenSSL stream: STARTTLS or implicit) with certificates made by
// scripts/make-test-certs.sh.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sodium.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/mail/file_mail_sender.hpp"
#include "adapters/mail/smtp_mail_sender.hpp"
#include "ports/errors.hpp"
#include "support/certs.hpp"
#include "support/fakes.hpp"
#include "support/loopback_server.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using adapters::mail::FileMailSender;
using adapters::mail::SmtpMailSender;
using adapters::mail::SmtpOptions;
using asio::ip::tcp;
using testing::TempDir;

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> read_lines(const std::filesystem::path& p) {
  std::vector<std::string> lines;
  std::ifstream in(p, std::ios::binary);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) return 0;
  return st.st_mode & 0777;
}

std::size_t spool_count(const std::filesystem::path& dir) {
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    (void)entry;
    ++n;
  }
  return n;
}

ports::MailMessage message(std::string key, std::optional<std::string> code = std::nullopt) {
  ports::MailMessage m;
  m.to = "alice@example.com";
  m.subject = "Welcome to registrar";
  m.body = "Hello alice,\n\nwelcome!\n";
  m.code = std::move(code);
  m.idempotency_key = std::move(key);
  return m;
}

// ---------------------------------------------------------------------------------------------
// FileMailSender

TEST(FileMailSender, AppendsTheDesignLineAndWritesOneSpoolFile) {
  TempDir dir;
  FileMailSender sender(dir.path());
  sender.send(message("evt-1", "123456"));

  const auto lines = read_lines(dir.path() / "messages.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  const json::object line = json::parse(lines[0]).as_object();
  EXPECT_EQ(line.size(), 5u);  // exactly {"channel","to","subject","body","code"}
  EXPECT_EQ(line.at("channel"), "email");
  EXPECT_EQ(line.at("to"), "alice@example.com");
  EXPECT_EQ(line.at("subject"), "Welcome to registrar");
  EXPECT_EQ(line.at("body"), "Hello alice,\n\nwelcome!\n");
  EXPECT_EQ(line.at("code"), "123456");

  const auto spooled = dir.path() / "spool" / "mail" / "evt-1.json";
  EXPECT_EQ(sender.spool_file("evt-1"), spooled);
  ASSERT_TRUE(std::filesystem::exists(spooled));
  const json::object doc = json::parse(read_file(spooled)).as_object();
  EXPECT_EQ(doc.at("idempotencyKey"), "evt-1");
  EXPECT_EQ(doc.at("to"), "alice@example.com");
  EXPECT_EQ(doc.at("code"), "123456");

  EXPECT_EQ(mode_of(dir.path() / "messages.jsonl"), 0600u);
  EXPECT_EQ(mode_of(spooled), 0600u);
  EXPECT_EQ(mode_of(dir.path() / "spool" / "mail"), 0700u);
  EXPECT_EQ(spool_count(sender.spool_dir()), 1u);  // no temporary file left behind
}

TEST(FileMailSender, ASecondSendWithTheSameKeyIsANoOp) {
  TempDir dir;
  FileMailSender sender(dir.path());
  sender.send(message("evt-1"));
  const std::string before = read_file(sender.spool_file("evt-1"));
  auto changed = message("evt-1");
  changed.subject = "something else";
  sender.send(changed);
  // A new sender on the same data dir (a restarted process) also sees it as sent.
  FileMailSender restarted(dir.path());
  restarted.send(message("evt-1"));

  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 1u);
  EXPECT_EQ(read_file(sender.spool_file("evt-1")), before);
}

TEST(FileMailSender, DistinctKeysAreDistinctMessagesAndNoCodeIsNull) {
  TempDir dir;
  FileMailSender sender(dir.path());
  sender.send(message("evt-1"));
  sender.send(message("evt-2"));
  const auto lines = read_lines(dir.path() / "messages.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(json::parse(lines[0]).as_object().at("code").is_null());
  EXPECT_EQ(spool_count(sender.spool_dir()), 2u);
}

TEST(FileMailSender, AnEmptyKeyMeansEverySendIsNew) {
  TempDir dir;
  FileMailSender sender(dir.path());
  sender.send(message(""));
  sender.send(message(""));
  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 2u);
  EXPECT_EQ(spool_count(sender.spool_dir()), 2u);
}

TEST(FileMailSender, AnUnsafeKeyNeverEscapesTheSpoolDir) {
  TempDir dir;
  FileMailSender sender(dir.path());
  const std::string key = "../../escape/me\n";
  sender.send(message(key));
  const auto file = sender.spool_file(key);
  EXPECT_EQ(file.parent_path(), sender.spool_dir());
  EXPECT_TRUE(file.filename().string().starts_with("k-"));
  EXPECT_TRUE(std::filesystem::exists(file));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "escape"));
  sender.send(message(key));  // the same digest: still a no-op
  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 1u);
}

TEST(FileMailSender, ControlCharactersStayInsideOneLine) {
  TempDir dir;
  FileMailSender sender(dir.path());
  auto m = message("evt-1");
  m.body = "line1\nline2\r\n\"quoted\"\t\x01";
  sender.send(m);
  const auto lines = read_lines(dir.path() / "messages.jsonl");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(json::parse(lines[0]).as_object().at("body").as_string(), m.body);
}

TEST(FileMailSender, ConcurrentSendsOfOneKeyWriteOneLine) {
  TempDir dir;
  FileMailSender a(dir.path());
  FileMailSender b(dir.path());  // a second instance: exercises the cross-instance flock
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      for (int k = 0; k < 5; ++k) (i % 2 ? a : b).send(message("evt-" + std::to_string(k)));
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 5u);
  EXPECT_EQ(spool_count(a.spool_dir()), 5u);
}

// Bounded storage (issue 14): messages.jsonl rotates by size, keeping `keep` files; two senders on
// one data dir (two processes) rotate it once and lose no line.
TEST(FileMailSender, MessagesFileRotatesBySizeKeepingKFilesAcrossInstances) {
  TempDir dir;
  const auto line_size = adapters::mail::message_line(message("evt-0")).size() + 1;  // evt-0 … evt-9: one size
  const adapters::mail::FileMailOptions options{.max_bytes = 2 * line_size, .keep = 2};
  FileMailSender a(dir.path(), options);
  FileMailSender b(dir.path(), options);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i)
    threads.emplace_back([&, i] {
      for (int k = i; k < 8; k += 2) (i ? a : b).send(message("evt-" + std::to_string(k)));
    });
  for (auto& t : threads) t.join();
  // 8 lines, 2 a file: the current file and two rotated ones hold the newest 6; the oldest went.
  const auto current = read_lines(dir.path() / "messages.jsonl");
  const auto first = read_lines(dir.path() / "messages.jsonl.1");
  const auto second = read_lines(dir.path() / "messages.jsonl.2");
  EXPECT_EQ(current.size(), 2u);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_EQ(second.size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "messages.jsonl.3"));
  EXPECT_EQ(mode_of(dir.path() / "messages.jsonl"), 0600u);
  // Every message was sent once: 8 spool files.
  EXPECT_EQ(spool_count(a.spool_dir()), 8u);
}

// A batch (send_all): every message as send() writes it, once each, in the batch's order.
TEST(FileMailSender, ABatchWritesEachMessageOnceSkippingKeysSentBeforeOrGivenTwice) {
  TempDir dir;
  FileMailSender sender(dir.path());
  sender.send(message("evt-1"));
  std::vector<ports::MailMessage> batch{message("evt-1"), message("evt-2", "222222"), message("evt-3"),
                                        message("evt-2", "999999"), message(""), message("")};
  sender.send_all(batch);
  const auto lines = read_lines(dir.path() / "messages.jsonl");
  ASSERT_EQ(lines.size(), 1u + 4u);  // evt-1 before; then evt-2 (once), evt-3 and the two without a key
  EXPECT_EQ(json::parse(lines[1]).as_object().at("code"), "222222");
  EXPECT_TRUE(json::parse(lines[2]).as_object().at("code").is_null());
  EXPECT_EQ(json::parse(read_file(sender.spool_file("evt-2"))).as_object().at("code"), "222222");
  EXPECT_EQ(json::parse(read_file(sender.spool_file("evt-3"))).as_object().at("idempotencyKey"), "evt-3");
  EXPECT_EQ(spool_count(sender.spool_dir()), 5u);  // evt-1, evt-2, evt-3 and two anonymous: no temporary file left
  for (const auto& entry : std::filesystem::directory_iterator(sender.spool_dir()))
    EXPECT_EQ(mode_of(entry.path()), 0600u) << entry.path();
  sender.send_all(batch);  // the whole batch again (a redelivery): only the two without a key are new
  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 5u + 2u);
  sender.send_all({});
  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 7u);
}

// The spool cannot be written (here its directory is gone, a file in its place): the batch fails
// with BackendUnavailable and marks nothing as sent, so the retry sends every message. (Here the
// check for an earlier send fails first, so not even the lines are written; a failure after the
// lines leaves them there: messages.jsonl holds a message at least once, the spool exactly once.)
TEST(FileMailSender, ABatchWhoseSpoolCannotBeWrittenMarksNothingSentAndTheRetrySendsAll) {
  TempDir dir;
  FileMailSender sender(dir.path());
  std::filesystem::remove(sender.spool_dir());
  std::ofstream(sender.spool_dir()) << "not a directory";
  const std::vector batch{message("evt-1"), message("evt-2")};
  EXPECT_THROW(sender.send_all(batch), ports::BackendUnavailable);
  std::filesystem::remove(sender.spool_dir());
  std::filesystem::create_directory(sender.spool_dir());
  sender.send_all(batch);
  EXPECT_EQ(spool_count(sender.spool_dir()), 2u);
  EXPECT_EQ(read_lines(dir.path() / "messages.jsonl").size(), 2u);
}

TEST(FileMailSender, ExpireSpoolRemovesOnlyFilesOlderThanTheCutoffInBatches) {
  TempDir dir;
  FileMailSender sender(dir.path());
  for (int k = 0; k < 5; ++k) sender.send(message("old-" + std::to_string(k)));
  sender.send(message("new"));
  // Age the old ones by a day.
  const auto day_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(24);
  for (int k = 0; k < 5; ++k) std::filesystem::last_write_time(sender.spool_file("old-" + std::to_string(k)), day_ago);
  const auto cutoff = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now()) -
                      std::chrono::hours(1);
  EXPECT_EQ(sender.expire_spool(cutoff, 3), 3u);
  EXPECT_EQ(sender.expire_spool(cutoff, 3), 2u);
  EXPECT_EQ(sender.expire_spool(cutoff, 3), 0u);
  EXPECT_TRUE(std::filesystem::exists(sender.spool_file("new")));
  EXPECT_EQ(spool_count(sender.spool_dir()), 1u);
  // A message whose mark expired counts as not sent any more: that is why the retention has a floor.
  sender.send(message("old-0"));
  EXPECT_TRUE(std::filesystem::exists(sender.spool_file("old-0")));
}

// ---------------------------------------------------------------------------------------------
// A fake SMTP server: one io_context thread, one coroutine per connection, scripted replies.

struct SmtpScript {
  std::vector<std::string> extensions = {"8BITMIME", "AUTH PLAIN LOGIN", "SIZE 10240000"};
  bool ehlo_unsupported = false;  // answer EHLO with 502 (an RFC 821 server)
  bool silent = false;            // never send the greeting (a hung server)
  std::string user = "alice", password = "s3cret";
  std::map<std::string, std::string> replies;  // verb ("RCPT", "MAIL", "DATA", "." for the end of
                                               // the message) → reply line used instead
  // TLS: none; STARTTLS offered in EHLO (and done on request); or TLS from the first byte.
  enum class Tls { none, starttls, implicit };
  Tls tls = Tls::none;
  std::string cert_file, key_file;  // the server's certificate and key (PEM), for tls != none
};

class FakeSmtpServer {
 public:
  using Script = SmtpScript;
  struct Session {
    std::vector<std::string> commands;  // each line the client sent, without CRLF (not the data)
    std::string data;                   // what followed DATA, up to and including CRLF "." CRLF
    bool tls = false;                   // the TLS handshake succeeded
    std::size_t clear_commands = 0;     // commands received before TLS (all of them without)
  };

  explicit FakeSmtpServer(Script script = {}) : script_(std::move(script)) {
    if (script_.tls == Script::Tls::none) return;
    tls_context_.use_certificate_chain_file(script_.cert_file);
    tls_context_.use_private_key_file(script_.key_file, asio::ssl::context::pem);
  }
  std::uint16_t port() const { return server_.port(); }
  std::vector<Session> sessions() const {
    std::lock_guard lock(mutex_);
    return sessions_;
  }
  Session only_session() const {
    auto all = sessions();
    if (all.size() != 1) throw std::runtime_error("expected one SMTP session, got " + std::to_string(all.size()));
    return all.front();
  }

 private:
  // Each connection is a session, recorded as it is accepted.
  asio::awaitable<void> accept(tcp::socket socket) {
    std::size_t index;
    {
      std::lock_guard lock(mutex_);
      sessions_.emplace_back();
      index = sessions_.size() - 1;
    }
    return serve(std::move(socket), index);
  }

  void record(std::size_t index, auto&& fn) {
    std::lock_guard lock(mutex_);
    fn(sessions_[index]);
  }

  std::string reply_for(const std::string& verb, std::string normal) const {
    auto it = script_.replies.find(verb);
    return (it != script_.replies.end() ? it->second : std::move(normal)) + "\r\n";
  }

  asio::awaitable<void> serve(tcp::socket socket, std::size_t index) {
    std::string buffer;
    std::optional<asio::ssl::stream<tcp::socket>> tls;  // the socket moves in at the handshake
    auto send = [&](std::string text) -> asio::awaitable<void> {
      if (tls) co_await asio::async_write(*tls, asio::buffer(text), asio::use_awaitable);
      else co_await asio::async_write(socket, asio::buffer(text), asio::use_awaitable);
    };
    auto read_until = [&](std::string_view delimiter) -> asio::awaitable<std::size_t> {
      if (tls) co_return co_await asio::async_read_until(*tls, asio::dynamic_buffer(buffer), delimiter, asio::use_awaitable);
      co_return co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), delimiter, asio::use_awaitable);
    };
    auto start_tls = [&]() -> asio::awaitable<void> {
      tls.emplace(std::move(socket), tls_context_);
      co_await tls->async_handshake(asio::ssl::stream_base::server, asio::use_awaitable);
      record(index, [&](Session& s) { s.tls = true; });
    };
    try {
      if (script_.tls == Script::Tls::implicit) co_await start_tls();
      if (script_.silent) {
        co_await read_until("\r\n");
        co_return;
      }
      co_await send("220 fake.test ESMTP ready\r\n");
      for (;;) {
        const std::size_t n = co_await read_until("\r\n");
        std::string line = buffer.substr(0, n - 2);
        buffer.erase(0, n);
        record(index, [&](Session& s) {
          s.commands.push_back(line);
          if (!tls) s.clear_commands = s.commands.size();
        });
        std::string verb = line.substr(0, line.find(' '));
        for (char& c : verb) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));

        if (verb == "EHLO") {
          if (script_.ehlo_unsupported) {
            co_await send(reply_for(verb, "502 5.5.1 command not implemented"));
            continue;
          }
          std::string reply = "250-fake.test greets you";
          for (const auto& ext : script_.extensions) reply += "\r\n250-" + ext;
          if (script_.tls == Script::Tls::starttls && !tls) reply += "\r\n250-STARTTLS";
          reply += "\r\n250 HELP";
          co_await send(reply_for(verb, reply));
        } else if (verb == "STARTTLS" && script_.tls == Script::Tls::starttls && !tls) {
          co_await send("220 2.0.0 Ready to start TLS\r\n");
          co_await start_tls();
        } else if (verb == "HELO") {
          co_await send(reply_for(verb, "250 fake.test"));
        } else if (verb == "AUTH") {
          std::string expected = std::string(1, '\0') + script_.user + '\0' + script_.password;
          std::string b64(sodium_base64_ENCODED_LEN(expected.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
          sodium_bin2base64(b64.data(), b64.size(), reinterpret_cast<const unsigned char*>(expected.data()),
                            expected.size(), sodium_base64_VARIANT_ORIGINAL);
          b64.resize(b64.size() - 1);
          const bool ok = line == "AUTH PLAIN " + b64;
          co_await send(reply_for(verb, ok ? "235 2.7.0 Authentication successful" : "535 5.7.8 Authentication failed"));
        } else if (verb == "MAIL" || verb == "RCPT") {
          co_await send(reply_for(verb, "250 2.1.0 OK"));
        } else if (verb == "DATA") {
          const std::string reply = reply_for(verb, "354 End data with <CR><LF>.<CR><LF>");
          co_await send(reply);
          if (!reply.starts_with("354")) continue;
          const std::size_t m = co_await read_until("\r\n.\r\n");
          record(index, [&](Session& s) { s.data = buffer.substr(0, m); });
          buffer.erase(0, m);
          co_await send(reply_for(".", "250 2.0.0 Ok: queued as 12345"));
        } else if (verb == "QUIT") {
          co_await send("221 2.0.0 Bye\r\n");
          co_return;
        } else {
          co_await send("500 5.5.2 unrecognized command\r\n");
        }
      }
    } catch (const std::exception&) {
      // the client went away
    }
  }

  Script script_;
  asio::ssl::context tls_context_{asio::ssl::context::tls_server};
  mutable std::mutex mutex_;
  std::vector<Session> sessions_;
  // Last: stopped before the state above goes.
  testing::LoopbackServer server_{[this](tcp::socket socket) { return accept(std::move(socket)); }};
};

SmtpOptions smtp_options(std::uint16_t port) {
  SmtpOptions o;
  o.host = "127.0.0.1";
  o.port = port;
  o.from = "noreply@example.com";
  o.timeout = std::chrono::milliseconds{2000};
  return o;
}

std::string header_block(const std::string& data) { return data.substr(0, data.find("\r\n\r\n") + 2); }
std::string body_block(const std::string& data) { return data.substr(data.find("\r\n\r\n") + 4); }

TEST(SmtpMailSender, SpeaksTheConversationAndFormatsTheMessage) {
  FakeSmtpServer server;
  testing::FixedClock clock;  // 2025-10-19T16:37:15.123Z, a Sunday
  SmtpMailSender sender(smtp_options(server.port()), &clock);
  auto m = message("0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b");
  m.body = "Hello alice,\n.hidden line\n..two dots\nbare CR\rend";
  sender.send(m);

  const auto s = server.only_session();
  const std::vector<std::string> expected = {"EHLO localhost", "MAIL FROM:<noreply@example.com>",
                                             "RCPT TO:<alice@example.com>", "DATA", "QUIT"};
  EXPECT_EQ(s.commands, expected);
  const std::string headers = header_block(s.data);
  EXPECT_NE(headers.find("From: noreply@example.com\r\n"), std::string::npos);
  EXPECT_NE(headers.find("To: alice@example.com\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Subject: Welcome to registrar\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Date: Sun, 19 Oct 2025 16:37:15 +0000\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Message-ID: <0192a3b4-c5d6-7e8f-9a0b-1c2d3e4f5a6b@example.com>\r\n"), std::string::npos);
  EXPECT_NE(headers.find("MIME-Version: 1.0\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Content-Type: text/plain; charset=utf-8\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Content-Transfer-Encoding: 7bit\r\n"), std::string::npos);
  // CRLF everywhere, leading dots doubled, then the terminator.
  EXPECT_EQ(body_block(s.data), "Hello alice,\r\n..hidden line\r\n...two dots\r\nbare CR\r\nend\r\n.\r\n");
  for (std::size_t i = 0; i < s.data.size(); ++i) {
    if (s.data[i] == '\n') {
      EXPECT_EQ(s.data[i - 1], '\r') << "bare LF at " << i;
    }
    if (s.data[i] == '\r') {
      EXPECT_EQ(s.data[i + 1], '\n') << "bare CR at " << i;
    }
  }
}

TEST(SmtpMailSender, AuthenticatesWithAuthPlain) {
  FakeSmtpServer server;
  auto o = smtp_options(server.port());
  o.username = "alice";
  o.password = "s3cret";
  SmtpMailSender(o).send(message("evt-1"));
  const auto s = server.only_session();
  ASSERT_GE(s.commands.size(), 2u);
  EXPECT_EQ(s.commands[1], "AUTH PLAIN AGFsaWNlAHMzY3JldA==");  // base64("\0alice\0s3cret")
  EXPECT_EQ(s.commands[2], "MAIL FROM:<noreply@example.com>");
}

TEST(SmtpMailSender, BadCredentialsAreAConfigurationErrorNotARejectedMessage) {
  FakeSmtpServer server;
  auto o = smtp_options(server.port());
  o.username = "alice";
  o.password = "wrong";
  SmtpMailSender sender(o);
  try {
    sender.send(message("evt-1"));
    FAIL() << "expected a throw";
  } catch (const ports::MailRejected&) {
    FAIL() << "bad credentials are not the message's fault";
  } catch (const ports::BackendUnavailable&) {
    FAIL() << "a 5xx is not transient";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("535"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("wrong"), std::string::npos) << "the password leaked into " << e.what();
  }
  EXPECT_TRUE(server.only_session().data.empty());
}

TEST(SmtpMailSender, RefusesToAuthenticateWhenTheServerDoesNotOfferPlain) {
  FakeSmtpServer::Script script;
  script.extensions = {"8BITMIME"};
  FakeSmtpServer server(script);
  auto o = smtp_options(server.port());
  o.username = "alice";
  o.password = "s3cret";
  EXPECT_THROW(SmtpMailSender(o).send(message("evt-1")), std::runtime_error);
}

TEST(SmtpMailSender, ARecipientRefusedForGoodIsMailRejected) {
  FakeSmtpServer::Script script;
  script.replies["RCPT"] = "550 5.1.1 <alice@example.com>: Recipient address rejected";
  FakeSmtpServer server(script);
  EXPECT_THROW(SmtpMailSender(smtp_options(server.port())).send(message("evt-1")), ports::MailRejected);
}

TEST(SmtpMailSender, ATransientRefusalIsBackendUnavailable) {
  FakeSmtpServer::Script script;
  script.replies["RCPT"] = "451 4.3.0 try again later";
  FakeSmtpServer server(script);
  EXPECT_THROW(SmtpMailSender(smtp_options(server.port())).send(message("evt-1")), ports::BackendUnavailable);
}

TEST(SmtpMailSender, RejectedContentIsMailRejected) {
  FakeSmtpServer::Script script;
  script.replies["."] = "554 5.7.1 message content rejected";
  FakeSmtpServer server(script);
  EXPECT_THROW(SmtpMailSender(smtp_options(server.port())).send(message("evt-1")), ports::MailRejected);
}

TEST(SmtpMailSender, FallsBackToHeloAndEncodesNonAsciiWithout8BitMime) {
  FakeSmtpServer::Script script;
  script.ehlo_unsupported = true;
  FakeSmtpServer server(script);
  auto m = message("evt-1");
  m.subject = "Willkommen bei Größe";
  m.body = "Grüße, ünïcödé\n";
  SmtpMailSender(smtp_options(server.port())).send(m);
  const auto s = server.only_session();
  ASSERT_GE(s.commands.size(), 3u);
  EXPECT_EQ(s.commands[0], "EHLO localhost");
  EXPECT_EQ(s.commands[1], "HELO localhost");
  EXPECT_EQ(s.commands[2], "MAIL FROM:<noreply@example.com>");  // no BODY=8BITMIME
  const std::string headers = header_block(s.data);
  EXPECT_NE(headers.find("Content-Transfer-Encoding: base64\r\n"), std::string::npos);
  EXPECT_NE(headers.find("Subject: =?UTF-8?B?"), std::string::npos);
  // The base64 body decodes back to the CRLF text.
  std::string b64 = body_block(s.data);
  b64.resize(b64.size() - 3);  // ".\r\n"
  std::erase(b64, '\r');
  std::erase(b64, '\n');
  std::string decoded(b64.size(), '\0');
  std::size_t len = 0;
  ASSERT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(decoded.data()), decoded.size(), b64.data(), b64.size(),
                              nullptr, &len, nullptr, sodium_base64_VARIANT_ORIGINAL),
            0);
  decoded.resize(len);
  EXPECT_EQ(decoded, "Grüße, ünïcödé\r\n");
}

TEST(SmtpMailSender, Uses8BitMimeWhenOffered) {
  FakeSmtpServer server;
  auto m = message("evt-1");
  m.body = "Grüße\n";
  SmtpMailSender(smtp_options(server.port())).send(m);
  const auto s = server.only_session();
  EXPECT_EQ(s.commands[1], "MAIL FROM:<noreply@example.com> BODY=8BITMIME");
  EXPECT_NE(header_block(s.data).find("Content-Transfer-Encoding: 8bit\r\n"), std::string::npos);
  EXPECT_EQ(body_block(s.data), "Grüße\r\n.\r\n");
}

TEST(SmtpMailSender, AnInjectedRecipientIsRejectedBeforeConnecting) {
  FakeSmtpServer server;
  auto m = message("evt-1");
  m.to = "alice@example.com>\r\nRCPT TO:<mallory@example.com";
  EXPECT_THROW(SmtpMailSender(smtp_options(server.port())).send(m), ports::MailRejected);
  EXPECT_TRUE(server.sessions().empty());
}

TEST(SmtpMailSender, ConnectionRefusedIsBackendUnavailable) {
  std::uint16_t port;
  {
    asio::io_context ioc;
    tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  EXPECT_THROW(SmtpMailSender(smtp_options(port)).send(message("evt-1")), ports::BackendUnavailable);
}

TEST(SmtpMailSender, ASilentServerTimesOut) {
  FakeSmtpServer::Script script;
  script.silent = true;
  FakeSmtpServer server(script);
  auto o = smtp_options(server.port());
  o.timeout = std::chrono::milliseconds{200};
  const auto start = std::chrono::steady_clock::now();
  try {
    SmtpMailSender(o).send(message("evt-1"));
    FAIL() << "expected a timeout";
  } catch (const ports::BackendUnavailable& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds{2});
}

TEST(SmtpMailSender, ValidatesOptions) {
  auto o = smtp_options(25);
  o.from = "";
  EXPECT_THROW(SmtpMailSender{o}, std::invalid_argument);
  o = smtp_options(25);
  o.host = "mail.example.com";
  o.username = "alice";
  o.password = "s3cret";
  EXPECT_THROW(SmtpMailSender{o}, std::invalid_argument);  // clear-text credentials off-host
  o.allow_plaintext_auth = true;
  EXPECT_NO_THROW(SmtpMailSender{o});
  o = smtp_options(25);
  o.host = "localhost";
  o.username = "alice";
  EXPECT_NO_THROW(SmtpMailSender{o});
}

TEST(SmtpUrl, ParsesHostPortAndCredentials) {
  const auto o = adapters::mail::parse_smtp_url("smtp://user%40example.com:p%40ss@mail.example.com:2525");
  EXPECT_EQ(o.host, "mail.example.com");
  EXPECT_EQ(o.port, 2525);
  EXPECT_EQ(o.username, "user@example.com");
  EXPECT_EQ(o.password, "p@ss");
  const auto d = adapters::mail::parse_smtp_url("smtp://127.0.0.1");
  EXPECT_EQ(d.port, 25);
  EXPECT_FALSE(d.username.has_value());
  EXPECT_EQ(adapters::mail::parse_smtp_url("smtp://[::1]:26").host, "::1");
}

TEST(SmtpUrl, SmtpsIsImplicitTlsOnPort465AndSmtpLeavesTlsToTheCaller) {
  const auto o = adapters::mail::parse_smtp_url("smtps://mail.example.com");
  EXPECT_EQ(o.tls, adapters::mail::SmtpTls::implicit);
  EXPECT_EQ(o.port, 465);
  EXPECT_EQ(adapters::mail::parse_smtp_url("smtps://mail.example.com:2465").port, 2465);
  EXPECT_EQ(adapters::mail::parse_smtp_url("smtp://mail.example.com").tls, adapters::mail::SmtpTls::none);
}

TEST(SmtpUrl, RefusesOtherSchemesAndJunkWithoutEchoingThePassword) {
  for (const char* url : {"submissions://u:hunter2@mail.example.com", "http://u:hunter2@mail.example.com",
                          "smtp://u:hunter2@mail.example.com/path", "smtp://u:hunter2@:25", "not a url hunter2"}) {
    try {
      adapters::mail::parse_smtp_url(url);
      ADD_FAILURE() << url << " was accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// TLS: implicit (smtps) and STARTTLS against the fake server's real TLS.

const testing::TestCertificates& certs() {
  static const testing::TestCertificates made;  // one set for the whole file (~0.2 s)
  return made;
}

SmtpScript tls_script(SmtpScript::Tls tls, const std::string& cert = certs().server_cert(),
                      const std::string& key = certs().server_key()) {
  SmtpScript script;
  script.tls = tls;
  script.cert_file = cert;
  script.key_file = key;
  return script;
}

SmtpOptions tls_options(std::uint16_t port, adapters::mail::SmtpTls tls, const std::string& ca_file = certs().ca()) {
  auto o = smtp_options(port);
  o.tls = tls;
  o.ca_file = ca_file;
  return o;
}

// The message a failed send() threw (and that it threw one of `E`).
template <class E>
std::string failure_of(SmtpMailSender& sender) {
  try {
    sender.send(message("evt-tls"));
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "sent";
}

TEST(SmtpTls, ImplicitTlsVerifiesTheServerThenSpeaksSmtpInsideIt) {
  FakeSmtpServer server(tls_script(SmtpScript::Tls::implicit));
  auto o = tls_options(server.port(), adapters::mail::SmtpTls::implicit);
  o.username = "alice";
  o.password = "s3cret";
  SmtpMailSender(o).send(message("evt-1"));
  const auto s = server.only_session();
  EXPECT_TRUE(s.tls);
  EXPECT_EQ(s.clear_commands, 0u);
  ASSERT_GE(s.commands.size(), 5u);
  EXPECT_TRUE(s.commands[1].starts_with("AUTH PLAIN "));
  EXPECT_NE(s.data.find("Subject: Welcome"), std::string::npos);
}

TEST(SmtpTls, StartTlsUpgradesAfterTheFirstEhloAndEverythingElseGoesInsideTls) {
  // A host name (localhost) this time: SNI and the certificate's DNS name.
  FakeSmtpServer server(tls_script(SmtpScript::Tls::starttls));
  auto o = tls_options(server.port(), adapters::mail::SmtpTls::starttls);
  o.host = "localhost";
  o.username = "alice";
  o.password = "s3cret";
  SmtpMailSender(o).send(message("evt-1"));
  const auto s = server.only_session();
  EXPECT_TRUE(s.tls);
  ASSERT_EQ(s.clear_commands, 2u);
  EXPECT_EQ(s.commands[0], "EHLO localhost");
  EXPECT_EQ(s.commands[1], "STARTTLS");
  EXPECT_EQ(s.commands[2], "EHLO localhost");  // RFC 3207: EHLO again inside TLS
  EXPECT_TRUE(s.commands[3].starts_with("AUTH PLAIN "));
  EXPECT_FALSE(s.data.empty());
}

TEST(SmtpTls, StartTlsRequiredButNotOfferedIsAClearErrorAndNothingButEhloIsSent) {
  FakeSmtpServer server;  // plain, no STARTTLS in its EHLO
  auto o = tls_options(server.port(), adapters::mail::SmtpTls::starttls);
  o.username = "alice";
  o.password = "s3cret";
  SmtpMailSender sender(o);
  const std::string why = failure_of<std::runtime_error>(sender);
  EXPECT_NE(why.find("does not offer STARTTLS"), std::string::npos) << why;
  const auto s = server.only_session();
  EXPECT_EQ(s.commands, std::vector<std::string>{"EHLO localhost"});
  EXPECT_TRUE(s.data.empty());
}

TEST(SmtpTls, AWrongCaASelfSignedOrAnotherHostsCertificateIsRefusedAndNothingIsSent) {
  struct Case {
    const char* what;
    std::string cert, key, ca_file;
    const char* reason;  // OpenSSL's verify error, in the message
  };
  const std::vector<Case> cases = {
      {"the CA file of another CA", certs().server_cert(), certs().server_key(), certs().other_ca(),
       "unable to get local issuer certificate"},
      {"a self-signed certificate", certs().self_signed_cert(), certs().self_signed_key(), certs().ca(),
       "self-signed certificate"},
      {"a certificate for another host", certs().wrong_host_cert(), certs().wrong_host_key(), certs().ca(),
       "IP address mismatch"},
      {"no CA file: the system's CAs do not know the test CA", certs().server_cert(), certs().server_key(), "",
       "unable to get local issuer certificate"},
  };
  for (const auto& c : cases) {
    for (auto mode : {SmtpScript::Tls::implicit, SmtpScript::Tls::starttls}) {
      SCOPED_TRACE(std::string(c.what) + (mode == SmtpScript::Tls::implicit ? " (smtps)" : " (STARTTLS)"));
      FakeSmtpServer server(tls_script(mode, c.cert, c.key));
      auto o = tls_options(server.port(),
                           mode == SmtpScript::Tls::implicit ? adapters::mail::SmtpTls::implicit
                                                             : adapters::mail::SmtpTls::starttls,
                           c.ca_file);
      o.username = "alice";
      o.password = "s3cret";
      SmtpMailSender sender(o);
      const std::string why = failure_of<ports::BackendUnavailable>(sender);
      EXPECT_NE(why.find(std::string("certificate verify failed: ") + c.reason), std::string::npos) << why;
      const auto sessions = server.sessions();
      ASSERT_EQ(sessions.size(), 1u);
      EXPECT_FALSE(sessions[0].tls);
      // Only what STARTTLS needs went in clear; no credentials, no message, nothing after.
      if (mode == SmtpScript::Tls::starttls)
        EXPECT_EQ(sessions[0].commands, (std::vector<std::string>{"EHLO localhost", "STARTTLS"}));
      else
        EXPECT_TRUE(sessions[0].commands.empty());
      EXPECT_TRUE(sessions[0].data.empty());
    }
  }
}

TEST(SmtpTls, ImplicitTlsToAPlainServerFailsWithoutSpeakingSmtp) {
  FakeSmtpServer server;  // plain: its greeting is no TLS record
  SmtpMailSender sender(tls_options(server.port(), adapters::mail::SmtpTls::implicit));
  const std::string why = failure_of<ports::BackendUnavailable>(sender);
  EXPECT_NE(why.find("TLS handshake"), std::string::npos) << why;
  // The ClientHello may hold a CRLF by chance (the fake then records it as a line): what matters is
  // that no SMTP command was sent.
  for (const auto& line : server.only_session().commands)
    EXPECT_FALSE(line.starts_with("EHLO") || line.starts_with("MAIL") || line.starts_with("AUTH")) << line;
}

TEST(SmtpTls, CredentialsOffHostNeedTlsAndTheCaFileMustLoad) {
  auto o = smtp_options(25);
  o.host = "mail.example.com";
  o.username = "alice";
  o.password = "s3cret";
  EXPECT_THROW(SmtpMailSender{o}, std::invalid_argument);  // clear text
  o.tls = adapters::mail::SmtpTls::starttls;
  EXPECT_NO_THROW(SmtpMailSender{o});  // the system's CAs
  o.tls = adapters::mail::SmtpTls::implicit;
  o.ca_file = certs().file("no-such-ca.pem");
  EXPECT_THROW(SmtpMailSender{o}, std::invalid_argument);
  o.tls = adapters::mail::SmtpTls::none;
  o.ca_file = certs().ca();
  o.allow_plaintext_auth = true;
  EXPECT_THROW(SmtpMailSender{o}, std::invalid_argument);  // a CA file that would verify nothing
}

TEST(SmtpFormat, DotStuffingAndDates) {
  EXPECT_EQ(adapters::mail::dot_stuff(""), ".\r\n");
  EXPECT_EQ(adapters::mail::dot_stuff(".\n"), "..\r\n.\r\n");
  EXPECT_EQ(adapters::mail::dot_stuff("a\r\n.b\nc"), "a\r\n..b\r\nc\r\n.\r\n");
  using namespace std::chrono;
  EXPECT_EQ(adapters::mail::rfc5322_date(sys_days{2025y / October / 19} + 16h + 37min + 15s),
            "Sun, 19 Oct 2025 16:37:15 +0000");
  EXPECT_EQ(adapters::mail::rfc5322_date(sys_days{2000y / January / 1}), "Sat, 1 Jan 2000 00:00:00 +0000");
}

}  // namespace
}  // namespace registrar
