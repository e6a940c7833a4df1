#include "main/composition.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <csignal>
#include <iostream>
#include <thread>

#include "adapters/audit/audit_consumer.hpp"
#include "adapters/http/auth_api.hpp"
#include "adapters/http/offload.hpp"
#include "adapters/http/router.hpp"
#include "adapters/http/server.hpp"
#include "adapters/inproc/event_bus.hpp"
#include "adapters/inproc/outbox_dispatcher.hpp"
#include "adapters/jwt/hs256_token_service.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/sodium/argon2_hasher.hpp"
#include "adapters/sodium/random_ids.hpp"
#include "adapters/sodium/sodium.hpp"
#include "adapters/sodium/system_clock.hpp"
#include "adapters/sqlite/database.hpp"
#include "adapters/sqlite/migrations.hpp"
#include "adapters/sqlite/outbox_store.hpp"
#include "adapters/sqlite/processed_events.hpp"
#include "adapters/sqlite/user_store.hpp"
#include "app/use_cases.hpp"
#include "main/config_loader.hpp"
#include "main/secrets.hpp"

namespace registrar {

namespace asio = boost::asio;
using adapters::logging::Logger;

namespace {

// The built-in consumers this build ships, for `consume --list` and `--consumers`.
struct ConsumerInfo {
  std::string_view name, description;
};
constexpr ConsumerInfo kConsumers[] = {
    {"audit", "appends one JSON line per event to <data-dir>/audit.jsonl"},
};

unsigned or_cores(unsigned n) { return n ? n : std::max(1u, std::thread::hardware_concurrency()); }

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

// The embedded database, migrated to the schema this binary knows.
struct Storage {
  adapters::sqlite::SqliteDatabase db;
  adapters::sqlite::SqliteUserStore users{db};
  adapters::sqlite::SqliteOutboxStore outbox{db};
  adapters::sqlite::SqliteProcessedEvents processed{db};

  Storage(const config::Settings& s, const Logger& log) : db(open(s)) {
    for (const auto& m : adapters::sqlite::apply_migrations(db))
      log.info("migration applied", {{"version", m.version}, {"name", m.name}});
  }
  static std::filesystem::path open(const config::Settings& s) {
    if (s.database.kind != config::Database::Kind::sqlite)
      throw UsageError("--database-url: only sqlite:// is supported by this build (MySQL arrives with its adapter)");
    return s.database.sqlite_path;
  }
};

int run_migrate(const config::Settings& settings, const Logger& log) {
  Storage storage(settings, log);
  log.info("schema is current", {{"version", adapters::sqlite::schema_version(storage.db)}});
  return 0;
}

int run_serve(const config::Settings& settings, const Logger& log) {
  adapters::sodium::ensure_sodium();
  Storage storage(settings, log);

  adapters::sodium::SystemClock clock;
  adapters::sodium::UuidV7Generator ids(clock);
  const unsigned hash_threads = or_cores(settings.argon2.concurrency);
  adapters::sodium::Argon2Hasher hasher({.memory_kib = settings.argon2.memory_kib,
                                          .iterations = settings.argon2.iterations,
                                          .concurrency = hash_threads,
                                          .queue_limit = 0,  // admission is bounded by the cpu runner below
                                          .on_slot_held = {}});
  adapters::jwt::Hs256TokenService tokens({.secret = settings.jwt.secret,
                                           .issuer = settings.jwt.issuer,
                                           .audience = settings.jwt.audience,
                                           .access_ttl = settings.jwt.access_ttl,
                                           .session_ttl = settings.jwt.access_ttl,
                                           .leeway = settings.jwt.leeway},
                                          clock);

  // Events: outbox → in-process bus → built-in consumers, at least once, each idempotent.
  std::vector<std::unique_ptr<ports::EventConsumer>> consumers;
  for (const auto& name : settings.consumers) {
    if (name == "audit")
      consumers.push_back(std::make_unique<adapters::audit::AuditConsumer>(settings.data_dir / "audit.jsonl", storage.processed, clock));
    else
      throw UsageError("--consumers: unknown consumer \"" + name + "\" (see `registrar consume --list`)");
  }
  std::vector<std::reference_wrapper<ports::EventConsumer>> consumer_refs;
  for (auto& c : consumers) consumer_refs.emplace_back(*c);
  adapters::inproc::InProcessEventBus bus(consumer_refs, [&log](const std::string& consumer, const domain::EventEnvelope& e, const std::string&) {
    log.warn("consumer failed an event; it will be retried", {{"consumer", consumer}, {"eventId", e.id}, {"type", e.type}});
  });
  adapters::inproc::OutboxDispatcher dispatcher(storage.outbox, bus);

  app::Dependencies deps{storage.users, hasher, tokens, clock, ids, dispatcher};
  adapters::http::BlockingRunner cpu(hash_threads, settings.argon2.queue_limit);
  adapters::http::BlockingRunner store_runner(0, 0);  // embedded SQLite: reads by key run inline

  asio::io_context ioc(static_cast<int>(or_cores(settings.http.threads)));
  adapters::http::Router router(log);
  adapters::http::add_auth_routes(router, {deps, cpu, store_runner, [&storage] { storage.users.ping(); }});
  adapters::http::HttpServer server(ioc, router, log,
                                    {.body_limit = settings.http.body_limit,
                                     .header_limit = settings.http.header_limit,
                                     .header_timeout = settings.http.header_timeout,
                                     .body_timeout = settings.http.body_timeout,
                                     .idle_timeout = settings.http.idle_timeout,
                                     .write_timeout = std::chrono::seconds(30),
                                     .access_log = settings.access_log});
  auto endpoint = server.listen(resolve_listen(ioc, settings.listen));
  dispatcher.start();

  // Graceful shutdown: SIGTERM/SIGINT stop accepting, close idle connections, and let in-flight
  // requests finish (up to the grace period); then the I/O threads run out of work and return.
  asio::signal_set signals(ioc, SIGINT, SIGTERM);
  asio::steady_timer grace(ioc);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log.info("shutting down", {{"signal", signo}, {"connections", server.connection_count()}});
    server.drain();
    asio::co_spawn(ioc, [&]() -> asio::awaitable<void> {
      auto deadline = std::chrono::steady_clock::now() + settings.http.shutdown_grace;
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

  std::string address = endpoint.address().is_v6() ? "[" + endpoint.address().to_string() + "]" : endpoint.address().to_string();
  log.info("listening", {{"address", address + ":" + std::to_string(endpoint.port())},
                         {"port", endpoint.port()},
                         {"database", "sqlite"},
                         {"events", "in-process"},
                         {"hashConcurrency", hash_threads}});

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < or_cores(settings.http.threads); ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();

  cpu.stop();
  // Deliver what the last requests committed; anything left is delivered at the next start.
  dispatcher.notify();
  dispatcher.wait_idle(std::chrono::seconds(5));
  dispatcher.stop();
  log.info("stopped", {{"pendingEvents", storage.outbox.pending_count()}});
  return 0;
}

int list_consumers() {
  for (const auto& c : kConsumers) std::cout << c.name << "\t" << c.description << "\n";
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
        std::vector<std::string> secret_notes;
        if (auto exit = config::resolve_secrets(settings, secret_notes)) {
          if (!exit->out.empty()) std::cout << exit->out;
          if (!exit->err.empty()) std::cerr << exit->err << "\n";
          return exit->code;
        }
        for (const auto& note : secret_notes) log.warn(note);
        // Where the key came from, never its value.
        log.info(settings.jwt.secret_source.starts_with("generated") ? "generated a new JWT signing key" : "JWT signing key loaded",
                 {{"source", settings.jwt.secret_source}});
        return run_serve(settings, log);
      }
      case config::Command::consume:
        if (settings.list_consumers) return list_consumers();
        throw UsageError("consume " + settings.consumer_name +
                         ": a consumer of its own needs --amqp-url (RabbitMQ); without it, `serve` runs the built-in consumers in-process");
      case config::Command::relay:
        throw UsageError("relay: needs --amqp-url (RabbitMQ); without it, `serve` relays the outbox in-process");
      case config::Command::worker:
        throw UsageError("worker: needs --redis-url (the Create_User queue on Redis)");
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
