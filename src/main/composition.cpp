#include "main/composition.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <algorithm>
#include <iostream>
#include <map>
#include <optional>
#include <thread>

#include "adapters/amqp/consumer_runner.hpp"
#include "adapters/amqp/event_bus.hpp"
#include "adapters/consumers/builtin.hpp"
#include "adapters/consumers/email_verification_consumer.hpp"
#include "adapters/http/abuse_limits.hpp"
#include "adapters/http/auth_api.hpp"
#include "adapters/http/email_verification_api.hpp"
#include "adapters/http/middleware.hpp"
#include "adapters/http/problem.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/server.hpp"
#include "adapters/http/verification_api.hpp"
#include "adapters/http_client/post.hpp"
#include "adapters/inproc/code_store.hpp"
#include "adapters/inproc/event_bus.hpp"
#include "adapters/inproc/rate_limiter.hpp"
#include "adapters/jwt/hs256_token_service.hpp"
#include "adapters/logging/failure_episodes.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/mail/file_mail_sender.hpp"
#include "adapters/mail/smtp_mail_sender.hpp"
#include "adapters/mail/webhook_sms_sender.hpp"
#include "adapters/redis/client.hpp"
#include "adapters/redis/redis_code_store.hpp"
#include "adapters/redis/redis_rate_limiter.hpp"
#include "adapters/sodium/argon2_hasher.hpp"
#include "adapters/sodium/pii_cipher.hpp"
#include "adapters/sodium/random_ids.hpp"
#include "adapters/sodium/sodium.hpp"
#include "adapters/system/system_clock.hpp"
#include "app/abuse_limits.hpp"
#include "adapters/threads/blocking_runner.hpp"
#include "adapters/mysql/migrations.hpp"
#include "adapters/mysql/outbox_store.hpp"
#include "adapters/mysql/pool.hpp"
#include "adapters/mysql/processed_events.hpp"
#include "adapters/mysql/retention.hpp"
#include "adapters/mysql/user_store.hpp"
#include "adapters/relay/outbox_relay_loop.hpp"
#include "adapters/socketio/engineio_server.hpp"
#include "adapters/socketio/room_notifier.hpp"
#include "adapters/socketio/token_auth.hpp"
#include "adapters/socketio/sio_engine_bridge.hpp"
#include "adapters/socketio/sio_server.hpp"
#include "adapters/socketio_redis/redis_adapter.hpp"
#include "adapters/socketio_redis/redis_emitter.hpp"
#include "adapters/socketio_client/sio_client_notifier.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/processed_events.hpp"
#include "adapters/sqlite/retention.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "adapters/threads/supervised_loop.hpp"
#include "app/retention.hpp"
#include "app/use_cases.hpp"
#include "app/verification.hpp"
#include "main/config_loader.hpp"
#include "main/create_user_jobs.hpp"
#include "adapters/http/jobs_api.hpp"
#include "main/secrets.hpp"

namespace registrar {

namespace asio = boost::asio;
using adapters::logging::FailureEpisodes;
using adapters::logging::Logger;

namespace {

unsigned or_cores(unsigned n) { return n ? n : std::max(1u, std::thread::hardware_concurrency()); }

adapters::logging::EpisodeOptions episode_options(const config::Settings& s) {
  return {.summary_interval = s.log_failure_interval, .quiet_period = s.log_failure_interval};
}

// A usage error found while wiring (exit code 2, one line on stderr, like the settings loader).
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

asio::ip::tcp::endpoint resolve_listen(asio::io_context& ioc, const config::Listen& listen) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(listen.host, ec);
  if (!ec) return {address, listen.port};
  asio::ip::tcp::resolver resolver(ioc);
  auto results = resolver.resolve(listen.host, std::to_string(listen.port), ec);
  if (ec || results.empty()) throw UsageError("cannot resolve --listen host \"" + listen.host + "\": " + ec.message());
  return *results.begin();
}

// The database behind the storage ports: embedded SQLite, or MySQL/MariaDB through a pool.
// Migrated to the schema this binary knows on construction.
class Storage {
 public:
  Storage(const config::Settings& s, const Logger& log) {
    if (s.database.kind == config::Database::Kind::sqlite) {
      sqlite_ = std::make_unique<adapters::sqlite::SqliteDatabase>(s.database.sqlite_path);
      // Before the migrations: a new file takes the mode before it has tables (no VACUUM needed).
      if (adapters::sqlite::ensure_incremental_vacuum(*sqlite_))
        log.info("database switched to auto_vacuum = INCREMENTAL (once)", {{"file", s.database.sqlite_path.string()}});
      for (const auto& m : adapters::sqlite::apply_migrations(*sqlite_)) log_migration(log, m.version, m.name);
      users_ = std::make_unique<adapters::sqlite::SqliteUserStore>(*sqlite_);
      outbox_ = std::make_unique<adapters::sqlite::SqliteOutboxStore>(*sqlite_);
      processed_ = std::make_unique<adapters::sqlite::SqliteProcessedEvents>(*sqlite_);
      retention_ = std::make_unique<adapters::sqlite::SqliteRetention>(*sqlite_);
      return;
    }
    adapters::mysql::MysqlOptions o;
    o.host = s.database.host;
    o.port = s.database.port;
    o.user = s.database.user;
    o.password = s.database.password;
    o.database = s.database.name;
    using Mode = config::Database::SslMode;
    switch (s.database.ssl_mode.value_or(Mode::verify_identity)) {
      case Mode::disabled: o.ssl_mode = adapters::mysql::SslMode::disabled; break;
      case Mode::required: o.ssl_mode = adapters::mysql::SslMode::required; break;
      case Mode::verify_ca: o.ssl_mode = adapters::mysql::SslMode::verify_ca; break;
      case Mode::verify_identity: o.ssl_mode = adapters::mysql::SslMode::verify_identity; break;
    }
    o.ca_file = s.database.ca_file;
    try {
      adapters::mysql::check_tls_options(o);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--database-ca-file: ") + e.what());
    }
    // Every thread that may hold a connection at once: the cpu runner (2 × hashes; register/login run whole
    // use cases), store readers, the relay, consumers, the job worker.
    // Store threads: two per core keep a query in flight while another thread's answer is being
    // handled. More only add context switches: on 2 cores, 8 threads served GET /users/me ~20 %
    // slower than 2 or 4, with a p99 of 6–7 ms instead of 3–5 (BENCHMARKS.md, session 4). They
    // stay off the I/O threads so that a hung server cannot stall /healthz or /readyz.
    store_threads_ = 2 * or_cores(0);
    // Plus the Create_User worker's threads, each holding a connection while it writes an account.
    o.pool_size = 2 * or_cores(s.argon2.concurrency) + store_threads_ + 4 + s.jobs.effective_concurrency(or_cores(0));
    pool_ = std::make_unique<adapters::mysql::MysqlPool>(o);
    // The server may still be starting (a deployment's usual race): retry for a while.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (auto backoff = std::chrono::milliseconds(200);; backoff = std::min(backoff * 2, std::chrono::milliseconds(5000))) {
      try {
        for (const auto& m : adapters::mysql::apply_migrations(*pool_)) log_migration(log, m.version, m.name);
        break;
      } catch (const ports::BackendUnavailable& e) {
        if (std::chrono::steady_clock::now() + backoff > deadline) throw;
        log.warn("database unavailable; retrying", {{"error", e.what()}, {"retryInMs", backoff.count()}});
        std::this_thread::sleep_for(backoff);
      }
    }
    users_ = std::make_unique<adapters::mysql::MysqlUserStore>(*pool_);
    outbox_ = std::make_unique<adapters::mysql::MysqlOutboxStore>(*pool_);
    processed_ = std::make_unique<adapters::mysql::MysqlProcessedEvents>(*pool_);
    retention_ = std::make_unique<adapters::mysql::MysqlRetention>(*pool_);
  }

  ports::UserStore& users() { return *users_; }
  ports::OutboxStore& outbox() { return *outbox_; }
  ports::ProcessedEvents& processed() { return *processed_; }
  ports::RetentionStore& retention() { return *retention_; }
  std::string_view kind() const { return sqlite_ ? "sqlite" : "mysql"; }
  // Threads for blocking store calls: 0 = inline on the I/O threads (embedded SQLite reads by key
  // take microseconds); a network database needs a pool so that I/O threads never wait on it.
  unsigned store_threads() const { return store_threads_; }
  int schema_version() { return sqlite_ ? adapters::sqlite::schema_version(*sqlite_) : adapters::mysql::schema_version(*pool_); }

 private:
  static void log_migration(const Logger& log, int version, const std::string& name) {
    log.info("migration applied", {{"version", version}, {"name", name}});
  }
  std::unique_ptr<adapters::sqlite::SqliteDatabase> sqlite_;
  std::unique_ptr<adapters::mysql::MysqlPool> pool_;
  std::unique_ptr<ports::UserStore> users_;
  std::unique_ptr<ports::OutboxStore> outbox_;
  std::unique_ptr<ports::ProcessedEvents> processed_;
  std::unique_ptr<ports::RetentionStore> retention_;
  unsigned store_threads_ = 0;
};

// The HTTP server's limits and timeouts from the settings; `body_limit` where a command reads
// larger bodies than the API's (socketio-echo's polling POSTs).
adapters::http::ServerOptions server_options(const config::Settings& s, std::size_t body_limit) {
  return {.body_limit = body_limit,
          .header_limit = s.http.header_limit,
          .header_timeout = s.http.header_timeout,
          .body_timeout = s.http.body_timeout,
          .idle_timeout = s.http.idle_timeout,
          .write_timeout = std::chrono::seconds(30)};
}

// Graceful shutdown: SIGTERM/SIGINT stop accepting, close idle connections (and run `on_signal`,
// which closes the long-lived ones: Engine.IO sockets), and let in-flight requests finish up to
// the grace period; then the I/O threads run out of work and return.
void shutdown_on_signal(asio::io_context& ioc, asio::signal_set& signals, asio::steady_timer& grace,
                        adapters::http::HttpServer& server, const Logger& log, std::chrono::milliseconds grace_period,
                        std::function<void()> on_signal) {
  signals.async_wait([&ioc, &grace, &server, &log, grace_period, on_signal = std::move(on_signal)](
                         const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log.info("shutting down", {{"signal", signo}, {"connections", server.connection_count()}});
    server.drain();
    if (on_signal) on_signal();
    asio::co_spawn(ioc, [&grace, &server, &log, grace_period]() -> asio::awaitable<void> {
      auto deadline = std::chrono::steady_clock::now() + grace_period;
      while (server.connection_count() > 0 && std::chrono::steady_clock::now() < deadline) {
        grace.expires_after(std::chrono::milliseconds(20));
        co_await grace.async_wait(asio::use_awaitable);
      }
      if (server.connection_count() > 0) {
        log.warn("grace period over; closing remaining connections", {{"connections", server.connection_count()}});
        server.close_all();
      }
    }, asio::detached);
  });
}

// The API's certificate (--tls-cert, --tls-key), loaded at start: a pair that cannot be used
// stops the start with its reason (exit 2). None configured: plain HTTP.
std::unique_ptr<adapters::http::ServerTls> server_tls(const config::Settings& s, const Logger& log) {
  if (s.http.tls_cert.empty()) return nullptr;
  try {
    auto tls = std::make_unique<adapters::http::ServerTls>(s.http.tls_cert, s.http.tls_key);
    const auto& info = tls->loaded();
    log.info("TLS certificate loaded", {{"certFile", s.http.tls_cert.string()},
                                        {"subject", info.subject},
                                        {"notAfter", info.not_after},
                                        {"sha256", info.sha256_fingerprint}});
    return tls;
  } catch (const adapters::http::TlsSetupError& e) {
    throw UsageError(e.what());
  }
}

// SIGHUP reloads the API's certificate from its files, for new connections; a pair that cannot be
// used is logged and changes nothing (the previous one keeps serving). `hup` is on a strand: the
// shutdown cancels it there, so that the I/O threads run out of work.
void reload_on_sighup(asio::signal_set& hup, adapters::http::ServerTls& tls, const Logger& log) {
  hup.async_wait([&hup, &tls, &log](const boost::system::error_code& ec, int) {
    if (ec) return;
    try {
      auto info = tls.reload();
      log.info("TLS certificate reloaded", {{"certFile", tls.cert_file().string()},
                                            {"subject", info.subject},
                                            {"notAfter", info.not_after},
                                            {"sha256", info.sha256_fingerprint}});
    } catch (const std::exception& e) {
      log.error("TLS certificate reload failed; the previous certificate stays in use", {{"error", e.what()}});
    }
    reload_on_sighup(hup, tls, log);
  });
}

void stop_reloading(asio::signal_set& hup) {
  asio::post(hup.get_executor(), [&hup] {
    boost::system::error_code ignored;
    hup.cancel(ignored);
  });
}

// Runs the I/O context on `threads` threads (this one included) until it runs out of work.
void run_io(asio::io_context& ioc, unsigned threads) {
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
}

std::string endpoint_text(const asio::ip::tcp::endpoint& endpoint) {
  std::string address = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]" : endpoint.address().to_string();
  return address + ":" + std::to_string(endpoint.port());
}

adapters::amqp::AmqpOptions amqp_options(const config::Settings& s) {
  adapters::amqp::AmqpOptions o;
  o.url = s.amqp_url;
  o.exchange = s.amqp.exchange;
  o.routing = s.amqp.route_by_event ? adapters::amqp::RoutingKeyMode::event_type : adapters::amqp::RoutingKeyMode::fixed;
  o.routing_key = s.amqp.routing_key;
  o.queue = s.amqp.queue;
  o.ca_file = s.amqp.ca_file;
  o.cert_file = s.amqp.cert_file;
  o.key_file = s.amqp.key_file;
  try {
    adapters::amqp::check_amqp_options(o);  // the URL, and the TLS files load
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--amqp-url: ") + e.what());
  }
  return o;
}

adapters::amqp::ConsumerOptions consumer_options(const config::Settings& s) {
  adapters::amqp::ConsumerOptions o;
  o.prefetch = static_cast<std::uint16_t>(s.amqp.prefetch);
  o.max_attempts = static_cast<int>(s.amqp.max_attempts);
  return o;
}

// The mail sender of the settings: SMTP with --smtp-url, else the data dir's development files.
adapters::mail::FileMailOptions file_mail_options(const config::Settings& s) {
  return {.max_bytes = s.retention.messages_max_bytes, .keep = s.retention.messages_keep};
}

std::unique_ptr<ports::MailSender> make_mail_sender(const config::Settings& s, ports::Clock& clock) {
  if (s.mail.smtp_url.empty()) return std::make_unique<adapters::mail::FileMailSender>(s.data_dir, file_mail_options(s));
  auto smtp = adapters::mail::parse_smtp_url(s.mail.smtp_url);
  smtp.from = s.mail.from;
  if (smtp.tls == adapters::mail::SmtpTls::none && s.mail.starttls.value_or(true))
    smtp.tls = adapters::mail::SmtpTls::starttls;
  smtp.ca_file = s.mail.ca_file;
  try {
    return std::make_unique<adapters::mail::SmtpMailSender>(std::move(smtp), &clock);
  } catch (const std::invalid_argument& e) {  // the CA file, credentials in clear text
    throw UsageError(std::string(s.mail.ca_file.empty() ? "--smtp-url: " : "--smtp-ca-file: ") + e.what());
  }
}

// What the consumers share with the rest of their process: the mail sender and the use case that
// issues codes (none where this process issues no codes: email-verification), the Socket.IO hub
// (none outside `serve`: socketio).
struct ProcessParts {
  ports::MailSender* mail = nullptr;  // none: the consumers make their own
  const app::SendEmailVerificationCode* send = nullptr;
  ports::RoomBroadcaster* socketio = nullptr;
};

// The built-in consumers named in the settings, with what they need (mail sender, webhook secret).
struct Consumers {
  std::unique_ptr<ports::MailSender> own_mail;
  std::vector<std::unique_ptr<ports::EventConsumer>> list;

  Consumers(const config::Settings& s, Storage& storage, ports::Clock& clock, const Logger& log,
            const std::vector<std::string>& names, ProcessParts parts = {}) {
    ports::MailSender* mail = parts.mail;
    if (mail == nullptr) {
      own_mail = make_mail_sender(s, clock);
      mail = own_mail.get();
    }
    adapters::consumers::BuiltinConsumerDeps deps{.data_dir = s.data_dir,
                                                  .processed = storage.processed(),
                                                  .clock = clock,
                                                  .log = log,
                                                  .mail = *mail,
                                                  .product_name = s.mail.product_name,
                                                  .webhook_urls = s.webhook.urls,
                                                  .webhook_secret = s.webhook.secret,  // resolve_secrets() read its file
                                                  .webhook_ca_file = s.webhook.ca_file,
                                                  .email_verification = parts.send,
                                                  .socketio = parts.socketio,
                                                  .audit_max_bytes = s.retention.audit_max_bytes,
                                                  .audit_keep = s.retention.audit_keep};
    if (!s.webhook.ca_file.empty() && std::find(names.begin(), names.end(), "webhook") != names.end()) {
      try {  // the webhook consumer loads it too; here, for a message that names the setting
        const adapters::http_client::Poster check({.https = true, .ca_file = s.webhook.ca_file}, "--webhook-ca-file");
      } catch (const std::invalid_argument& e) {
        throw UsageError(e.what());
      }
    }
    for (const auto& name : names) {
      try {
        list.push_back(adapters::consumers::make_builtin_consumer(name, deps));
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("consumer ") + name + ": " + e.what() + " (see `registrar consume --list`)");
      }
    }
  }
};

// Outbox → bus → consumers. Embedded: an in-process bus calls the consumers. With --amqp-url: the
// relay publishes to RabbitMQ (confirms) and each consumer runs on its own durable queue.
class EventPath final : public ports::OutboxSignal {
 public:
  EventPath(const config::Settings& s, Storage& storage, ports::Clock& clock, const Logger& log,
            FailureEpisodes& episodes, const std::vector<std::string>& consumer_names, ProcessParts parts = {})
      : consumers_(s, storage, clock, log, consumer_names, parts) {
    adapters::relay::RelayLoopOptions loop_options;
    // Under load, relay passes start at most one linger apart, so the events committed meanwhile
    // share a pass: one claim and one mark-sent transaction, and one write + sync + commit in the
    // audit consumer, for the whole batch. Idle, an event goes at once. Embedded consumers are not
    // waited on by anyone, so they batch more (≤ 50 ms of delay) than RabbitMQ's (≤ 5 ms).
    loop_options.linger = std::chrono::milliseconds(50);
    unsigned relay_loops = 1;
    if (s.amqp_url.empty()) {
      std::vector<std::reference_wrapper<ports::EventConsumer>> refs;
      for (auto& c : consumers_.list) refs.emplace_back(*c);
      // A consumer whose backend is down (an SMTP server, a webhook endpoint) fails every event of
      // every relay pass: one episode per consumer instead of a warning per event and pass, lasting
      // while the passes, backing off up to backoff_max apart, keep failing. The exception text may
      // quote the event's e-mail address: debug level only.
      buses_.push_back(std::make_unique<adapters::inproc::InProcessEventBus>(
          refs, log,
          [&log, &episodes, retried_within = loop_options.backoff_max](
              const std::string& consumer, const domain::EventEnvelope& e, const std::string& error) {
            episodes.failure("consumer:" + consumer, "consumer failed an event; it will be retried",
                             {{"consumer", consumer}, {"eventId", e.id}, {"type", e.type}, {"attempt", e.attempts + 1}},
                             adapters::logging::Level::warn, retried_within);
            log.debug("consumer failure", {{"consumer", consumer}, {"eventId", e.id}, {"error", error}});
          }));
      description_ = "in-process";
    } else {
      auto options = amqp_options(s);
      for (auto& c : consumers_.list) options.consumer_queues.push_back(consumer_options(s).queue_prefix + c->name());
      // Two relay loops, each with its own connection, claim disjoint batches (the outbox lease
      // keeps them apart and per-user order intact): while one waits for the broker's confirms,
      // the other prepares and publishes its batch.
      relay_loops = s.amqp.relay_connections;
      loop_options.relay.batch_size = s.amqp.relay_batch;
      for (unsigned i = 0; i < relay_loops; ++i) buses_.push_back(std::make_unique<adapters::amqp::AmqpEventBus>(options, log));
      for (auto& c : consumers_.list) {
        runners_.push_back(std::make_unique<adapters::amqp::AmqpConsumerRunner>(options, consumer_options(s), *c, log, episodes));
        runners_.back()->start();
      }
      // Other processes' commits do not notify this relay: poll more often than embedded.
      loop_options.poll_interval = std::chrono::milliseconds(250);
      loop_options.linger = std::chrono::milliseconds(5);
      description_ = "rabbitmq " + adapters::amqp::parse_amqp_url(options.url).redacted();
    }
    for (auto& bus : buses_) {
      relay_loops_.push_back(std::make_unique<adapters::relay::OutboxRelayLoop>(storage.outbox(), *bus, log, loop_options));
      relay_loops_.back()->start();
    }
  }
  ~EventPath() override { stop(); }

  // Wakes every relay loop after a commit.
  void notify() override {
    for (auto& l : relay_loops_) l->notify();
  }
  const std::string& description() const { return description_; }

  // Delivers what the last requests committed (anything left goes at the next start), then stops.
  void stop() {
    if (relay_loops_.empty()) return;
    notify();
    for (auto& l : relay_loops_) l->wait_idle(std::chrono::seconds(5));
    for (auto& l : relay_loops_) l->stop();
    for (auto& r : runners_) r->stop();
    relay_loops_.clear();
  }

 private:
  Consumers consumers_;
  std::vector<std::unique_ptr<ports::EventBus>> buses_;
  std::vector<std::unique_ptr<adapters::amqp::AmqpConsumerRunner>> runners_;
  std::vector<std::unique_ptr<adapters::relay::OutboxRelayLoop>> relay_loops_;
  std::string description_;
};

// Bounded storage: a retention sweep every --retention-interval on a thread of its own, in batches
// of --retention-batch rows with a short pause between them (app/retention.hpp). Mail spool files
// expire here too when `spool` is this process's development mail sender.
class RetentionLoop {
 public:
  RetentionLoop(const config::Settings& s, Storage& storage, ports::Clock& clock, const Logger& log,
                adapters::mail::FileMailSender* spool)
      : sweep_(storage.retention(), clock, policy(s),
               spool == nullptr ? app::ExpireFiles{}
                                : app::ExpireFiles([spool](domain::Timestamp older_than, std::size_t limit) {
                                    return spool->expire_spool(older_than, limit);
                                  })),
        interval_(s.retention.interval),
        log_(log),
        loop_(adapters::threads::Backoff(std::chrono::seconds(1), s.retention.interval),
              [this](bool) { turn(); },
              [this](std::string_view error, std::chrono::milliseconds retry_in) {
                log_.warn("retention sweep failed; retrying", {{"error", std::string(error)}, {"retryInMs", retry_in.count()}});
              }) {
    loop_.start();
  }
  ~RetentionLoop() { stop(); }

  static app::RetentionPolicy policy(const config::Settings& s) {
    app::RetentionPolicy p;
    auto age = [](std::chrono::seconds v) { return v.count() > 0 ? std::optional(v) : std::nullopt; };
    p.sent_events_age = age(s.retention.sent_events);
    if (s.retention.sent_events_count > 0) p.sent_events_count = s.retention.sent_events_count;
    p.processed_events_age = age(s.retention.processed_events);
    p.messages_age = age(s.retention.messages);
    p.batch = s.retention.batch;
    return p;
  }

 private:
  void turn() {
    auto report = sweep_.run([this](std::chrono::milliseconds pause) {
      loop_.wait_for(pause, adapters::threads::SupervisedLoop::WakeOn::stop);
      return !stopping_.load();
    });
    loop_.reset_backoff();
    if (report.sent_events + report.processed_events + report.message_files > 0)
      log_.info("retention sweep", {{"sentEvents", report.sent_events},
                                    {"processedEvents", report.processed_events},
                                    {"messageFiles", report.message_files},
                                    {"reclaimedBytes", static_cast<std::int64_t>(report.reclaimed_bytes)}});
    if (!report.stopped) loop_.wait_for(interval_, adapters::threads::SupervisedLoop::WakeOn::stop);
  }

  app::RetentionSweep sweep_;
  std::chrono::milliseconds interval_;
  Logger log_;
  std::atomic<bool> stopping_{false};
  adapters::threads::SupervisedLoop loop_;

 public:
  void stop() {
    stopping_.store(true);
    loop_.stop();
  }
};

adapters::sodium::PiiKeyringOptions pii_options(const config::Settings& s, bool create_missing) {
  return {.dir = s.pii.keys_dir,
          .pinned_key_id = s.pii.key_id,
          .inline_keys = s.pii.inline_keys,
          .inline_index_key = s.pii.inline_index_key,
          .create_missing = create_missing};
}

// The PII keyring of the settings; a malformed key or key file is a usage error (exit 2).
std::unique_ptr<adapters::sodium::SodiumPiiCipher> make_pii_cipher(const config::Settings& s, bool create_missing) {
  try {
    return std::make_unique<adapters::sodium::SodiumPiiCipher>(pii_options(s, create_missing));
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
}

std::string pii_source(const config::Settings& s) {
  return s.pii.inline_keys.empty() ? "dir " + s.pii.keys_dir.string() : std::string("env REGISTRAR_PII_KEYS");
}

// The keyring as loaded, and a warning when the current key (--pii-key-id names a key whose file is
// not in the keys dir, or is not among REGISTRAR_PII_KEYS) or the blind-index key is missing. The
// process starts all the same: each Create_User job then ends with the Node service's "Error
// encrypting your credentials. Please try again" (producers' job.finished() resolves, the code is
// not spent), logins and codes keep working, and the key, once in place, is found without a
// restart. Refusing to start would leave every job waiting with no answer.
void log_pii_keys(const adapters::sodium::SodiumPiiCipher& pii, const config::Settings& settings, const Logger& log) {
  log.info("PII keys loaded", {{"source", pii_source(settings)}, {"currentKey", pii.current_key_id()},
                               {"keys", pii.key_ids().size()}});
  if (const auto ids = pii.key_ids();
      std::find(ids.begin(), ids.end(), pii.current_key_id()) == ids.end() || !pii.has_index_key())
    log.warn("a PII key is missing: phone accounts cannot be created", {{"source", pii_source(settings)}});
}

// `registrar keys status`: the keys, and how many phones each one seals. Never prints key material.
int run_keys_status(const config::Settings& settings, const Logger& log) {
  Storage storage(settings, log);
  auto pii = make_pii_cipher(settings, false);
  const auto counts = storage.users().phone_key_counts();
  const std::string current = pii->current_key_id();
  std::cout << "keys: " << pii_source(settings) << "\n";
  std::cout << "blind-index key: " << (pii->has_index_key() ? "present" : "MISSING") << "\n";
  std::map<std::string, std::size_t> by_key(counts.begin(), counts.end());
  for (const auto& id : pii->key_ids()) by_key.try_emplace(id, 0);
  const auto known = pii->key_ids();
  std::size_t missing = 0;
  for (const auto& [id, n] : by_key) {
    const bool available = std::find(known.begin(), known.end(), id) != known.end();
    if (!available) missing += n;
    std::cout << "  " << id << "\t" << n << " phone" << (n == 1 ? "" : "s") << (id == current ? "\tcurrent" : "")
              << (available ? "" : "\tKEY MISSING") << "\n";
  }
  if (!current.empty() && std::find(known.begin(), known.end(), current) == known.end())
    std::cout << "  " << current << "\t(current, KEY MISSING: new phones cannot be encrypted)\n";
  if (missing > 0) std::cout << missing << " phone(s) are sealed under keys not available here\n";
  return 0;
}

// `registrar keys rotate`: picks the target key, then re-seals every phone not under it
// (app::RotatePhoneKeys). The target, in order:
//  - --pii-key-id: that key (created in the keys dir if it does not exist yet);
//  - with REGISTRAR_PII_KEYS: the current key (add the new key to the variable first);
//  - an unfinished rotation (phones under an older key this keyring holds): the newest key, so
//    running the command again finishes the job instead of starting another one;
//  - otherwise a new key, generated into the keys dir, which becomes the newest.
int run_keys_rotate(const config::Settings& settings, const Logger& log) {
  Storage storage(settings, log);
  auto keyring = make_pii_cipher(settings, true);
  std::string target;
  if (!settings.pii.key_id.empty()) {
    target = settings.pii.key_id;
    const auto ids = keyring->key_ids();
    if (std::find(ids.begin(), ids.end(), target) == ids.end()) {
      if (!settings.pii.inline_keys.empty())
        throw UsageError("--pii-key-id " + target + " is not among REGISTRAR_PII_KEYS");
      adapters::sodium::create_pii_key_file(settings.pii.keys_dir, target);
      std::cout << "created key " << target << " in " << settings.pii.keys_dir.string() << "\n";
    }
  } else if (!settings.pii.inline_keys.empty()) {
    target = keyring->current_key_id();
  } else {
    const std::string newest = keyring->current_key_id();
    const auto ids = keyring->key_ids();
    bool unfinished = false;
    for (const auto& [id, n] : storage.users().phone_key_counts())
      unfinished = unfinished || (id != newest && n > 0 && std::find(ids.begin(), ids.end(), id) != ids.end());
    if (unfinished) {
      target = newest;
      std::cout << "finishing the rotation to key " << target << "\n";
    } else {
      target = adapters::sodium::create_pii_key_file(settings.pii.keys_dir);
      std::cout << "created key " << target << " in " << settings.pii.keys_dir.string() << "\n";
    }
  }

  config::Settings pinned = settings;
  pinned.pii.key_id = target;
  auto pii = make_pii_cipher(pinned, false);
  std::size_t total = 0;
  for (const auto& [id, n] : storage.users().phone_key_counts())
    if (id != target) total += n;
  std::cout << "re-encrypting " << total << " phone(s) under key " << target << ", " << settings.pii.rotate_batch
            << " per transaction\n"
            << std::flush;
  const app::RotatePhoneKeys rotate{.users = storage.users(), .pii = *pii, .batch_size = settings.pii.rotate_batch};
  app::RotationProgress done;
  // Rows changed by a running service while a pass read them lose their compare-and-set; a new
  // pass picks them up (a service seals new phones under its current key, which is this one once
  // it has seen the new key file).
  for (int pass = 0; pass < 5; ++pass) {
    const std::size_t before = done.resealed;
    auto result = rotate([&](const app::RotationProgress& p) {
      std::cout << "  " << before + p.resealed << " / " << total << " re-encrypted\n" << std::flush;
    });
    done.scanned += result.scanned;
    done.resealed += result.resealed;
    done.unreadable = result.unreadable;  // the same rows each pass: not summed
    done.changed = result.changed;
    if (result.changed == 0) break;
  }
  std::cout << "done: " << done.resealed << " re-encrypted under " << target;
  if (done.unreadable > 0) std::cout << "; " << done.unreadable << " could not be decrypted (key missing or data damaged; see `registrar keys status`)";
  if (done.changed > 0) std::cout << "; " << done.changed << " changed meanwhile (run it again)";
  std::cout << "\n";
  log.info("pii key rotation", {{"key", target}, {"resealed", done.resealed}, {"unreadable", done.unreadable},
                                {"changed", done.changed}});
  return done.unreadable > 0 || done.changed > 0 ? 1 : 0;
}

// The token service of `serve` (and of the Create_User worker): access tokens, and verification
// tokens living as long as a code, with the drop-in for a foreign issuer's verification tokens.
adapters::jwt::Hs256Options token_options(const config::Settings& s) {
  return {.secret = s.jwt.secret,
          .issuer = s.jwt.issuer,
          .audience = s.jwt.audience,
          .access_ttl = s.jwt.access_ttl,
          .verification_ttl = s.codes.ttl,
          .leeway = s.jwt.leeway,
          .foreign = {.accept = s.jwt.accept_foreign_tokens,
                      .issuer = s.jwt.foreign_issuer,
                      .audience = s.jwt.foreign_audience}};
}

ports::CodeRules code_rules(const config::Settings& s) {
  ports::CodeRules rules;
  rules.ttl = s.codes.ttl;
  rules.max_wrong_tries = static_cast<int>(s.codes.max_wrong_tries);
  rules.resend_cooldown = s.codes.resend_cooldown;
  rules.hourly_cap = static_cast<int>(s.codes.hourly_cap);
  return rules;
}

// Verification codes: where they are kept (in process, or Redis when --redis-url is set) and how
// their text messages go out (the SMS webhook, or the data dir's development files).
class CodePath {
 public:
  CodePath(const config::Settings& s, ports::PiiCipher* keys) {
    if (s.redis_url.empty()) {
      store_ = std::make_unique<adapters::inproc::InProcessCodeStore>();
      description_ = "in-process";
    } else {
      adapters::redis::Url url;
      try {
        url = adapters::redis::Url::parse(s.redis_url);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--redis-url: ") + e.what());
      }
      redis_ = std::make_unique<adapters::redis::Client>(url);
      if (s.codes.layout == config::Codes::Layout::node) {
        store_ = std::make_unique<adapters::redis::RedisNodeCodeStore>(
            *redis_, [keys](std::string_view session, std::string_view code) { return app::code_hash(*keys, session, code); },
            s.redis_key_prefix, s.codes.ttl);
        issues_codes_ = false;
        description_ = "redis (node layout) " + url.redacted();
      } else {
        store_ = std::make_unique<adapters::redis::RedisCodeStore>(*redis_, s.redis_key_prefix);
        description_ = "redis " + url.redacted();
      }
    }
    if (!s.sms.webhook_url.empty()) {
      try {
        sender_ = std::make_unique<adapters::mail::SmsWebhookSender>(adapters::mail::SmsWebhookOptions{
            .url = s.sms.webhook_url,
            .bearer_secret = s.sms.webhook_secret,
            .ca_file = s.sms.webhook_ca_file,
            .timeout = s.sms.webhook_timeout});
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--sms-webhook-url: ") + e.what());
      }
      sms_description_ = "webhook";
    } else {
      sender_ = std::make_unique<adapters::mail::FileMailSender>(s.data_dir, file_mail_options(s));
      sms_description_ = "messages.jsonl";
    }
  }

  ports::VerificationCodeStore& store() { return *store_; }
  ports::MailSender& sender() { return *sender_; }
  // Whether registrar issues codes itself (not in the Node drop-in layout, where another service does).
  bool issues_codes() const { return issues_codes_; }
  const std::string& description() const { return description_; }
  const std::string& sms_description() const { return sms_description_; }

 private:
  std::unique_ptr<adapters::redis::Client> redis_;  // before the store that uses it
  std::unique_ptr<ports::VerificationCodeStore> store_;
  std::unique_ptr<ports::MailSender> sender_;
  bool issues_codes_ = true;
  std::string description_, sms_description_;
};

// Abuse limits (README "Abuse limits"): the buckets in process, or in Redis with --redis-url
// (shared by every process, with the --rate-limit-redis-down policy while Redis is unreachable).
class AbuseLimitPath {
 public:
  AbuseLimitPath(const config::Settings& s, ports::Clock& clock, ports::PiiCipher& keys, const Logger& log)
      : local_(clock, s.abuse.max_keys) {
    const auto& a = s.abuse;
    app::AbuseLimitSettings limits{.register_user = {a.register_ip, a.register_id},
                                   .login = {a.login_ip, a.login_id},
                                   .codes = {a.codes_ip, {}},
                                   .jobs = {a.jobs_ip, a.jobs_id},
                                   .lockout = {a.lockout_failures, a.lockout_max}};
    ports::RateLimiter* buckets = &local_;
    description_ = "in-process";
    if (!s.redis_url.empty()) {
      const auto url = adapters::redis::Url::parse(s.redis_url);
      redis_ = std::make_unique<adapters::redis::Client>(url);
      shared_ = std::make_unique<adapters::redis::RedisRateLimiter>(*redis_, clock, s.redis_key_prefix);
      using D = config::AbuseLimits::RedisDown;
      const auto policy = a.redis_down == D::open     ? app::StoreDownPolicy::open
                          : a.redis_down == D::closed ? app::StoreDownPolicy::closed
                                                      : app::StoreDownPolicy::local;
      const char* policy_name = a.redis_down == D::open ? "open" : a.redis_down == D::closed ? "closed" : "local";
      failover_ = std::make_unique<app::FailoverRateLimiter>(
          *shared_, local_, policy, [&log, policy_name](bool down, std::string_view error) {
            if (down)
              log.warn("rate limits: Redis unreachable", {{"policy", policy_name}, {"error", std::string(error)}});
            else
              log.info("rate limits: Redis reachable again; shared buckets in use");
          });
      buckets = failover_.get();
      // The script waits on Redis: off the I/O threads.
      runner_ = std::make_unique<adapters::threads::BlockingRunner>(4, s.argon2.queue_limit);
      description_ = std::string("redis (when down: ") + policy_name + ")";
    }
    limits_ = std::make_unique<app::AbuseLimits>(*buckets, keys, limits);
  }

  app::AbuseLimits& limits() { return *limits_; }
  adapters::threads::BlockingRunner* runner() { return runner_.get(); }
  const std::string& description() const { return description_; }
  void stop() {
    if (runner_) runner_->stop();
  }

 private:
  adapters::inproc::InProcessRateLimiter local_;
  std::unique_ptr<adapters::redis::Client> redis_;
  std::unique_ptr<adapters::redis::RedisRateLimiter> shared_;
  std::unique_ptr<app::FailoverRateLimiter> failover_;
  std::unique_ptr<adapters::threads::BlockingRunner> runner_;
  std::unique_ptr<app::AbuseLimits> limits_;
  std::string description_;
};

// argon2id as the settings say, `concurrency` hashes at once, in worker processes unless told not to.
// No queue limit of its own: the callers bound admission (the HTTP runner, the job worker's threads).
adapters::sodium::Argon2Options hasher_options(const config::Settings& settings, const Logger& log, unsigned concurrency) {
  return {.memory_kib = settings.argon2.memory_kib,
          .iterations = settings.argon2.iterations,
          .concurrency = concurrency,
          .queue_limit = 0,
          .on_slot_held = {},
          .worker_executable = settings.argon2.processes ? "/proc/self/exe" : "",
          .log = &log};
}

// The Create_User pipeline of `serve` and of `registrar worker`.
app::CreateUserFromJob create_user_pipeline(const config::Settings& settings, ports::TokenService& tokens,
                                            ports::VerificationCodeStore& codes, ports::PiiCipher& keys,
                                            ports::UserStore& users, const app::CreateAccount& create_account) {
  return {.tokens = tokens,
          .codes = codes,
          .keys = keys,
          .users = users,
          .create_account = create_account,
          .max_wrong_tries = static_cast<int>(settings.codes.max_wrong_tries),
          .accept_foreign_tokens = settings.jwt.accept_foreign_tokens};
}

// Client mode (--notify-url): the Create_User outcomes also go, as `notify` {id, success, message},
// to an existing Socket.IO notification server (the Node service's PORT_MESSAGES_USERS), as the
// Node worker sends them. Started here, so that it connects while the rest starts; none without
// the setting.
std::unique_ptr<adapters::socketio_client::SioClientNotifier> start_notify_client(const config::Settings& s,
                                                                                  const Logger& log) {
  if (s.notify.url.empty()) return nullptr;
  adapters::socketio_client::SioClientOptions o;
  try {
    o.url = adapters::socketio_client::parse_notify_url(s.notify.url);
  } catch (const std::invalid_argument& e) {
    throw UsageError(std::string("--notify-url: ") + e.what());
  }
  o.path = s.notify.path;
  o.ca_file = s.notify.ca_file;
  if (!s.notify.token.empty()) o.auth = boost::json::object{{"token", s.notify.token}};
  o.queue_limit = s.notify.queue_limit;
  std::unique_ptr<adapters::socketio_client::SioClientNotifier> client;
  try {
    client = std::make_unique<adapters::socketio_client::SioClientNotifier>(std::move(o), log);
  } catch (const std::invalid_argument& e) {  // the TLS context: the CA file, or the system's CAs
    throw UsageError(std::string(s.notify.ca_file.empty() ? "--notify-url: " : "--notify-ca-file: ") + e.what());
  }
  client->start();
  return client;
}

// Each outcome to every notifier of the process: serve's own hub and the notification server's client.
class FanOutNotifier final : public ports::Notifier {
 public:
  explicit FanOutNotifier(std::vector<ports::Notifier*> to) : to_(std::move(to)) {}
  void notify(const ports::Notification& n) override {
    for (auto* notifier : to_) notifier->notify(n);
  }

 private:
  std::vector<ports::Notifier*> to_;
};

int run_migrate(const config::Settings& settings, const Logger& log) {
  Storage storage(settings, log);
  log.info("schema is current", {{"version", storage.schema_version()}, {"database", storage.kind()}});
  return 0;
}

// Blocks until SIGINT or SIGTERM.
void wait_for_signal(const Logger& log) {
  asio::io_context ioc(1);
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (!ec) log.info("shutting down", {{"signal", signo}});
  });
  ioc.run();
}

int run_serve(const config::Settings& settings, const Logger& log) {
  adapters::sodium::ensure_sodium();
  auto tls = server_tls(settings, log);  // first: a certificate that cannot be used stops the start at once
  FailureEpisodes episodes(log, episode_options(settings));  // first: it outlives whatever reports to it
  Storage storage(settings, log);

  adapters::system::SystemClock clock;
  adapters::sodium::UuidV7Generator ids(clock);
  const unsigned hash_threads = or_cores(settings.argon2.concurrency);
  adapters::sodium::Argon2Hasher hasher(hasher_options(settings, log, hash_threads));
  adapters::jwt::Hs256TokenService tokens(token_options(settings), clock);

  // Stored phones: sealed under the PII keyring (generated into the keys dir on first run).
  auto pii = make_pii_cipher(settings, true);
  log_pii_keys(*pii, settings, log);
  // Codes are kept as keyed hashes (blind_index) under the same keyring.
  CodePath codes(settings, pii.get());
  adapters::sodium::SodiumRandom random;
  // Email verification codes: the same store and rules, mailed by the consumers' mail sender (the
  // email-verification consumer after a sign-up, POST /auth/email-verification/resend on request).
  auto mail = make_mail_sender(settings, clock);
  const app::SendEmailVerificationCode send_email_code{.codes = codes.store(),
                                                       .keys = *pii,
                                                       .mail = *mail,
                                                       .ids = ids,
                                                       .random = random,
                                                       .rules = code_rules(settings),
                                                       .product_name = settings.mail.product_name};
  // Socket.IO at /socket.io/: the main namespace admits a socket whose CONNECT carries `auth:
  // {token}` (adapters/socketio/token_auth.hpp) into the room of the token's subject, or `admins`;
  // Create_User outcomes go to the room of their session as `notification`, and the socketio
  // consumer pushes `user.registered` to the account's room and `admins`.
  adapters::socketio::SioServer socket_io(log);
  adapters::socketio::SioNamespace& main_nsp = socket_io.of("/");
  main_nsp.set_authorize(adapters::socketio::token_authorize(tokens, settings.admin_token));
  // With --redis-url, the main namespace's rooms span processes in @socket.io/redis-adapter's
  // format: other `serve`s, a `registrar worker`'s emitter, Node servers and emitters (README).
  std::unique_ptr<adapters::socketio_redis::RedisAdapterLink> socket_io_redis;
  if (!settings.redis_url.empty())
    socket_io_redis = std::make_unique<adapters::socketio_redis::RedisAdapterLink>(
        adapters::redis::Url::parse(settings.redis_url), main_nsp, log);
  adapters::socketio::RoomBroadcast live(main_nsp);
  // Events: outbox → (in-process bus | RabbitMQ) → built-in consumers, at least once, each
  // idempotent on the event id.
  EventPath events(settings, storage, clock, log, episodes, settings.consumers,
                   {mail.get(), codes.issues_codes() ? &send_email_code : nullptr, &live});
  // Sent events, processed-event records and the development mail spool, kept within the
  // retention settings.
  RetentionLoop retention(settings, storage, clock, log, dynamic_cast<adapters::mail::FileMailSender*>(mail.get()));
  const app::CreateAccount create_account{.users = storage.users(),
                                          .hasher = hasher,
                                          .pii = *pii,
                                          .clock = clock,
                                          .ids = ids,
                                          .outbox_signal = events};
  app::KeysInFlight idempotency_keys_in_flight;
  const app::RegisterUser register_user{.create_account = create_account,
                                        .tokens = tokens,
                                        .in_flight = &idempotency_keys_in_flight,
                                        .idempotency_ttl = settings.idempotency_key_ttl};
  const app::Login login{.users = storage.users(), .hasher = hasher, .tokens = tokens, .pii = *pii};
  const app::CurrentUser current_user{.tokens = tokens, .users = storage.users(), .pii = *pii};
  const app::VerifyEmail verify_email{.tokens = tokens,
                                      .users = storage.users(),
                                      .codes = codes.store(),
                                      .keys = *pii,
                                      .clock = clock,
                                      .ids = ids,
                                      .outbox_signal = events,
                                      .max_wrong_tries = static_cast<int>(settings.codes.max_wrong_tries)};
  const app::ResendEmailVerification resend_email_code{.tokens = tokens, .users = storage.users(), .send = send_email_code};
  const app::IssueVerificationCode issue_code{.codes = codes.store(),
                                              .keys = *pii,
                                              .tokens = tokens,
                                              .sender = codes.sender(),
                                              .ids = ids,
                                              .random = random,
                                              .rules = code_rules(settings),
                                              .product_name = settings.mail.product_name};
  // Twice as many runner threads as hashes at once: the hasher's own semaphore keeps argon2 at
  // hash_threads (CPU and memory bound), while the spare threads overlap a use case's database
  // commit (an fsync) with the next hash instead of leaving a core idle.
  adapters::threads::BlockingRunner cpu(hash_threads * 2, settings.argon2.queue_limit);
  adapters::threads::BlockingRunner store_runner(storage.store_threads(), settings.argon2.queue_limit);
  // Verification codes wait on Redis and on the SMS gateway (up to its timeout): threads of their own.
  adapters::threads::BlockingRunner code_runner(4, settings.argon2.queue_limit);

  // Create_User jobs: the Bull queue on Redis (or in process), the pipeline, and the worker unless
  // it runs apart (`registrar worker`).
  const app::CreateUserFromJob create_user =
      create_user_pipeline(settings, tokens, codes.store(), *pii, storage.users(), create_account);
  adapters::socketio::RoomNotifier hub(main_nsp);
  // With --notify-url, an existing notification server gets them too (README, "Client mode"): the
  // own hub stays, so clients of either server are told.
  auto notify_client = start_notify_client(settings, log);
  FanOutNotifier hub_and_client(notify_client ? std::vector<ports::Notifier*>{&hub, notify_client.get()}
                                              : std::vector<ports::Notifier*>{&hub});

  CreateUserJobs jobs(settings, create_user, log, &hub_and_client);
  const app::GetCreateUserJob get_job{.queue = jobs.queue(), .tokens = tokens,
                                      .accept_foreign_tokens = settings.jwt.accept_foreign_tokens};
  if (settings.jobs.worker_in_serve) jobs.start_worker();

  asio::io_context ioc(static_cast<int>(or_cores(settings.http.threads)));
  adapters::http::Router router;
  adapters::http::add_auth_routes(router, {register_user, login, current_user, cpu, store_runner,
                                           [&storage] { storage.users().ping(); }});
  if (codes.issues_codes()) {
    adapters::http::add_verification_routes(router, {issue_code, code_runner});
    adapters::http::add_email_verification_routes(router, {verify_email, resend_email_code, code_runner});
  }
  adapters::http::add_jobs_routes(router, {jobs.submit(), get_job, code_runner});
  // Engine.IO's defaults (pingInterval 25 s, pingTimeout 20 s, maxPayload 1 MB); CORS for the
  // configured origins only (none: browsers from the API's own origin).
  adapters::socketio::EngineOptions engine_options{.cors = {.origins = settings.socketio.cors_origins}};
  // A polling POST is an HTTP body: never more than the server reads.
  engine_options.max_payload = std::min(engine_options.max_payload, settings.http.body_limit);
  adapters::socketio::EngineServer socket_io_engine(
      ioc.get_executor(), log, engine_options, [&socket_io, &ioc](std::shared_ptr<adapters::socketio::EngineSocket> socket) {
        adapters::socketio::serve_socketio(socket_io, socket, ioc.get_executor());
      });
  socket_io_engine.add_routes(router, settings.socketio.path);
  adapters::http::Pipeline pipeline(router);
  adapters::http::middleware::use_standard(pipeline, log,
                                           {.trusted_proxies = settings.http.trusted_proxies,
                                            .access_log = settings.access_log,
                                            // Failed requests as episodes per problem type: with the database down under
                                            // load, a few error lines instead of one per 503.
                                            .on_failure = adapters::http::middleware::report_episodes(episodes)});
  // Abuse limits, inside map_exceptions (a limiter that cannot decide answers 503).
  std::optional<AbuseLimitPath> abuse;
  if (settings.abuse.enabled) {
    abuse.emplace(settings, clock, *pii, log);
    pipeline.use(adapters::http::middleware::abuse_limits({.limits = abuse->limits(),
                                                           .trusted_proxies = settings.http.trusted_proxies,
                                                           .admin_token = settings.admin_token,
                                                           .runner = abuse->runner()}));
  }
  adapters::http::HttpServer server(ioc, pipeline, log, server_options(settings, settings.http.body_limit), tls.get());
  auto endpoint = server.listen(resolve_listen(ioc, settings.listen));
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::signal_set hup(asio::make_strand(ioc));
  if (tls) {
    hup.add(SIGHUP);
    reload_on_sighup(hup, *tls, log);
  }
  asio::steady_timer grace(ioc);
  shutdown_on_signal(ioc, signals, grace, server, log, settings.http.shutdown_grace, [&] {
    stop_reloading(hup);
    socket_io_engine.close_all();
  });

  log.info("listening", {{"address", endpoint_text(endpoint)},
                         {"port", endpoint.port()},
                         {"scheme", tls ? "https" : "http"},
                         {"database", std::string(storage.kind())},
                         {"events", events.description()},
                         {"codes", codes.description()},
                         {"sms", codes.sms_description()},
                         {"hashConcurrency", hash_threads},
                         {"jobs", jobs.description()},
                         {"hashIn", std::string(hasher.workers() != nullptr ? "processes" : "threads")},
                         {"socketio", settings.socketio.path},
                         {"rateLimits", abuse ? abuse->description() : std::string("off")},
                         {"socketioAdapter", socket_io_redis ? "redis" : "in-process"},
                         {"notify", notify_client ? notify_client->where() : std::string("log, /socket.io/")}});
  run_io(ioc, or_cores(settings.http.threads));

  jobs.stop();  // running jobs finish; the rest wait in the queue
  if (notify_client) notify_client->stop();  // their notifications go out (a short grace)
  cpu.stop();
  code_runner.stop();
  // Deliver what the last requests committed; anything left is delivered at the next start.
  events.stop();
  episodes.close();  // an episode still open ends with its count before the last line
  log.info("stopped", {{"pendingEvents", storage.outbox().pending_count()}});
  return 0;
}


// `registrar worker`: Create_User jobs only, from the Bull queue on Redis, next to any number of
// `serve` processes (and Node producers). The accounts it writes go through the outbox; the relay
// of a `serve` (its periodic pass) or a `registrar relay` delivers their events.
int run_worker(const config::Settings& settings, const Logger& log) {
  if (settings.redis_url.empty())
    throw UsageError("worker: needs --redis-url (the Bull queue); without it, `serve` runs the in-process queue itself");
  adapters::sodium::ensure_sodium();
  Storage storage(settings, log);
  adapters::system::SystemClock clock;
  adapters::sodium::UuidV7Generator ids(clock);
  adapters::sodium::Argon2Hasher hasher(hasher_options(settings, log, or_cores(settings.argon2.concurrency)));
  adapters::jwt::Hs256TokenService tokens(token_options(settings), clock);
  auto pii = make_pii_cipher(settings, true);
  log_pii_keys(*pii, settings, log);
  CodePath codes(settings, pii.get());
  struct NoSignal final : ports::OutboxSignal {
    void notify() override {}  // no relay in this process
  } no_signal;
  const app::CreateAccount create_account{.users = storage.users(),
                                          .hasher = hasher,
                                          .pii = *pii,
                                          .clock = clock,
                                          .ids = ids,
                                          .outbox_signal = no_signal};
  const app::CreateUserFromJob create_user =
      create_user_pipeline(settings, tokens, codes.store(), *pii, storage.users(), create_account);
  // Outcomes reach the Socket.IO clients of every `serve` through Redis (@socket.io/redis-emitter's
  // format), and with --notify-url an existing notification server too.
  adapters::socketio_redis::RedisEmitterNotifier emitter(adapters::redis::Url::parse(settings.redis_url), log);
  auto notify_client = start_notify_client(settings, log);  // outlives the jobs that notify it
  FanOutNotifier emitter_and_client(notify_client ? std::vector<ports::Notifier*>{&emitter, notify_client.get()}
                                                  : std::vector<ports::Notifier*>{&emitter});
  CreateUserJobs jobs(settings, create_user, log, &emitter_and_client);
  jobs.start_worker();
  log.info("worker ready", {{"queue", jobs.description()}, {"codes", codes.description()}, {"database", std::string(storage.kind())},
                            {"notify", notify_client ? notify_client->where() : std::string("log")}});
  wait_for_signal(log);
  jobs.stop();
  if (notify_client) notify_client->stop();
  log.info("stopped");
  return 0;
}

// `registrar relay`: outbox → RabbitMQ only. Several relays may run against one database.
int run_relay(const config::Settings& settings, const Logger& log) {
  if (settings.amqp_url.empty())
    throw UsageError("relay: needs --amqp-url (RabbitMQ); without it, `serve` relays the outbox in-process");
  FailureEpisodes episodes(log, episode_options(settings));
  Storage storage(settings, log);
  adapters::system::SystemClock clock;
  EventPath events(settings, storage, clock, log, episodes, {});
  RetentionLoop retention(settings, storage, clock, log, nullptr);
  log.info("relaying", {{"events", events.description()}});
  wait_for_signal(log);
  events.stop();
  episodes.close();
  log.info("stopped", {{"pendingEvents", storage.outbox().pending_count()}});
  return 0;
}

// `registrar consume NAME`: one built-in consumer on its own RabbitMQ queue.
int run_consume(const config::Settings& settings, const Logger& log) {
  if (settings.amqp_url.empty())
    throw UsageError("consume " + settings.consumer_name +
                     ": needs --amqp-url (RabbitMQ); without it, `serve` runs the built-in consumers in-process");
  FailureEpisodes episodes(log, episode_options(settings));
  Storage storage(settings, log);
  adapters::system::SystemClock clock;
  // The email-verification consumer issues codes that the API checks: in their shared Redis store.
  std::unique_ptr<adapters::sodium::SodiumPiiCipher> pii;
  std::unique_ptr<CodePath> codes;
  adapters::sodium::UuidV7Generator ids(clock);
  adapters::sodium::SodiumRandom random;
  std::unique_ptr<ports::MailSender> mail;
  std::optional<app::SendEmailVerificationCode> send_email_code;
  if (settings.consumer_name == adapters::consumers::EmailVerificationConsumer::kName) {
    if (settings.redis_url.empty())
      throw UsageError("consume email-verification: needs --redis-url (the code store the API checks codes in)");
    adapters::sodium::ensure_sodium();
    pii = make_pii_cipher(settings, true);
    codes = std::make_unique<CodePath>(settings, pii.get());
    if (!codes->issues_codes()) throw UsageError("consume email-verification: not with --code-layout node");
    mail = make_mail_sender(settings, clock);
    send_email_code.emplace(app::SendEmailVerificationCode{.codes = codes->store(),
                                                           .keys = *pii,
                                                           .mail = *mail,
                                                           .ids = ids,
                                                           .random = random,
                                                           .rules = code_rules(settings),
                                                           .product_name = settings.mail.product_name});
  }
  Consumers consumers(settings, storage, clock, log, {settings.consumer_name},
                      {mail.get(), send_email_code ? &*send_email_code : nullptr});
  adapters::amqp::AmqpConsumerRunner runner(amqp_options(settings), consumer_options(settings), *consumers.list.front(), log,
                                            episodes);
  runner.start();
  log.info("consuming", {{"consumer", settings.consumer_name}});
  wait_for_signal(log);
  runner.stop();
  episodes.close();
  log.info("stopped", {{"consumer", settings.consumer_name}});
  return 0;
}

// `registrar socketio-echo`: registrar's Engine.IO server (and, next, Socket.IO) on its HTTP
// server with the reference behaviour of the protocols' test suites, for people who write
// clients. Nothing of `serve` (no database, no secrets, no authentication).
int run_socketio_echo(const config::Settings& settings, const Logger& log) {
  const auto& echo = settings.socketio_echo;
  auto tls = server_tls(settings, log);
  asio::io_context ioc(static_cast<int>(or_cores(settings.http.threads)));
  adapters::http::Router router;

  // Engine.IO at /engine.io/: every message goes back as it came, text as text, binary as binary.
  adapters::socketio::EngineOptions engine{.ping_interval = echo.ping_interval,
                                           .ping_timeout = echo.ping_timeout,
                                           .upgrade_timeout = echo.upgrade_timeout,
                                           .max_payload = echo.max_payload,
                                           .cors = {.any_origin = true}};
  adapters::socketio::EngineServer engine_io(ioc.get_executor(), log, engine, [](std::shared_ptr<adapters::socketio::EngineSocket> socket) {
    socket->on_message([weak = std::weak_ptr(socket)](std::string data, bool binary) {
      if (auto s = weak.lock()) binary ? s->send_binary(std::move(data)) : s->send_text(std::move(data));
    });
  });
  engine_io.add_routes(router, "/engine.io/");

  // Socket.IO at /socket.io/, on an Engine.IO server of its own: the Socket.IO suite's reference
  // server (socketio/socket.io-protocol, test-suite/README.md): the main namespace and /custom, no
  // authentication; a socket gets `auth` with its CONNECT payload on connect; `message` is
  // answered with `message-back` and the same arguments, `message-with-ack` acknowledged with them.
  adapters::socketio::SioServer socket_io(log, {.connect_timeout = echo.connect_timeout});
  for (const char* name : {"/", "/custom"}) {
    socket_io.of(name).on_connection([](const std::shared_ptr<adapters::socketio::SioSocket>& socket) {
      adapters::socketio::SioMessage auth;
      auth.args.push_back(socket->auth());
      socket->emit("auth", std::move(auth));
      socket->on("message", [weak = std::weak_ptr(socket)](adapters::socketio::SioMessage m, auto) {
        if (auto s = weak.lock()) s->emit("message-back", std::move(m));
      });
      socket->on("message-with-ack", [](adapters::socketio::SioMessage m, std::optional<adapters::socketio::Ack> ack) {
        if (ack) (*ack)(std::move(m));
      });
    });
  }
  adapters::socketio::EngineServer socket_io_engine(
      ioc.get_executor(), log, engine, [&socket_io, &ioc](std::shared_ptr<adapters::socketio::EngineSocket> socket) {
        adapters::socketio::serve_socketio(socket_io, socket, ioc.get_executor());
      });
  socket_io_engine.add_routes(router, "/socket.io/");

  adapters::http::Pipeline pipeline(router);
  adapters::http::middleware::use_standard(pipeline, log,
                                           {.trusted_proxies = settings.http.trusted_proxies,
                                            .access_log = settings.access_log});
  // A polling POST may carry a whole maxPayload.
  adapters::http::HttpServer server(ioc, pipeline, log, server_options(settings, std::max(echo.max_payload, settings.http.body_limit)),
                                    tls.get());
  auto endpoint = server.listen(resolve_listen(ioc, settings.listen));
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::signal_set hup(asio::make_strand(ioc));
  if (tls) {
    hup.add(SIGHUP);
    reload_on_sighup(hup, *tls, log);
  }
  asio::steady_timer grace(ioc);
  shutdown_on_signal(ioc, signals, grace, server, log, settings.http.shutdown_grace, [&] {
    stop_reloading(hup);
    engine_io.close_all();
    socket_io_engine.close_all();
  });

  log.info("listening", {{"address", endpoint_text(endpoint)},
                         {"port", endpoint.port()},
                         {"scheme", tls ? "https" : "http"},
                         {"engineio", "/engine.io/"},
                         {"socketio", "/socket.io/"},
                         {"connectTimeout", echo.connect_timeout.count()},
                         {"pingInterval", echo.ping_interval.count()},
                         {"pingTimeout", echo.ping_timeout.count()},
                         {"maxPayload", echo.max_payload}});
  run_io(ioc, or_cores(settings.http.threads));
  log.info("stopped");
  return 0;
}

// Reads the secrets the command needs (main/secrets.hpp), logging the warnings; if one is missing
// or bad, prints why and returns the exit code.
std::optional<int> resolve_secrets(config::Settings& settings, const Logger& log) {
  std::vector<std::string> notes;
  if (auto exit = config::resolve_secrets(settings, notes)) {
    if (!exit->out.empty()) std::cout << exit->out;
    if (!exit->err.empty()) std::cerr << exit->err;
    return exit->code;
  }
  for (const auto& note : notes) log.warn(note);
  return std::nullopt;
}

int list_consumers() {
  for (const auto& c : adapters::consumers::builtin_consumers()) std::cout << c.name << "\t" << c.description << "\n";
  return 0;
}

}  // namespace

int run(config::Settings settings, const std::vector<std::string>& notes) {
  Logger log(settings.log_level);
  for (const auto& note : notes) log.warn(note);
  try {
    switch (settings.command) {
      case config::Command::migrate:
        return run_migrate(settings, log);
      case config::Command::serve: {
        if (auto exit = resolve_secrets(settings, log)) return *exit;
        // Where the key came from, never its value.
        log.info(settings.jwt.secret_source.starts_with("generated") ? "generated a new JWT signing key" : "JWT signing key loaded",
                 {{"source", settings.jwt.secret_source}});
        return run_serve(settings, log);
      }
      case config::Command::consume:
        if (settings.list_consumers) return list_consumers();
        if (auto exit = resolve_secrets(settings, log)) return *exit;
        return run_consume(settings, log);
      case config::Command::relay:
        return run_relay(settings, log);
      case config::Command::worker:
        if (auto exit = resolve_secrets(settings, log)) return *exit;
        return run_worker(settings, log);
      case config::Command::keys_rotate:
        return run_keys_rotate(settings, log);
      case config::Command::keys_status:
        return run_keys_status(settings, log);
      case config::Command::socketio_echo:
        return run_socketio_echo(settings, log);
    }
  } catch (const UsageError& e) {
    std::cerr << "registrar: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    log.error("fatal", {{"error", e.what()}});
    return 1;
  }
  return 0;
}

}  // namespace registrar
