#pragma once
#include <algorithm>
// Settings, parsed and validated once into typed structs (flag > environment > .env > default).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>
#include "adapters/http/client_address.hpp"
#include "ports/rate_limiter.hpp"

namespace registrar::config {

enum class Command { serve, relay, consume, migrate, worker, keys_rotate, keys_status, socketio_echo };

struct Listen {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
};

struct Argon2 {
  std::uint32_t memory_kib = 19 * 1024;  // OWASP floor: m=19 MiB
  std::uint32_t iterations = 2;          // t=2
  // p=1: libsodium's argon2id is single-lane by construction.
  unsigned concurrency = 0;              // hashes at once; 0 = number of cores
  unsigned queue_limit = 256;            // waiting sign-ups/logins beyond this get 503
  bool processes = true;                 // hash in worker processes (adapters/sodium/hash_workers.hpp)
};

struct Http {
  std::size_t body_limit = 16 * 1024;       // bytes; larger bodies get 413
  std::size_t header_limit = 8 * 1024;      // bytes of request line + headers
  std::chrono::seconds header_timeout{10};  // to receive a complete request head
  std::chrono::seconds body_timeout{30};    // to receive the body
  std::chrono::seconds idle_timeout{60};    // keep-alive between requests
  std::chrono::seconds shutdown_grace{20};  // in-flight requests get this long on SIGTERM
  unsigned threads = 0;                     // I/O threads; 0 = number of cores
  // Peers whose X-Forwarded-For names the client (load balancers, reverse proxies); none by default.
  adapters::http::TrustedProxies trusted_proxies;
  // TLS on the API (both or neither; PEM; loaded at start and on SIGHUP): none = plain HTTP.
  std::filesystem::path tls_cert;
  std::filesystem::path tls_key;
};

struct Jwt {
  std::string secret;  // ≥ 32 bytes, from env/file or generated into the data dir
  // "env", ".env", "file <path>", "data-dir <path>", "generated <path>" (for the log; never the
  // value). The loader sets secret + source for an inline REGISTRAR_JWT_SECRET; resolve_jwt_secret()
  // (main/secrets.hpp) fills them from secret_file or the data dir otherwise.
  std::string secret_source;
  std::filesystem::path secret_file;  // --jwt-secret-file / REGISTRAR_JWT_SECRET_FILE; empty → none
  std::string issuer = "registrar";
  std::string audience = "registrar";
  std::chrono::seconds access_ttl{900};
  std::chrono::seconds leeway{30};
  // Drop-in: verification tokens of an existing issuer sharing the secret, without our `typ`
  // (adapters/jwt/hs256_token_service.hpp, ForeignVerificationTokens). Empty issuer/audience: not checked.
  bool accept_foreign_tokens = false;
  std::string foreign_issuer;
  std::string foreign_audience;
};

// Phone verification codes (POST /auth/verification-codes, Create_User jobs).
struct Codes {
  std::chrono::seconds ttl{600};              // also the verification token's lifetime
  unsigned max_wrong_tries = 5;
  std::chrono::seconds resend_cooldown{60};   // per phone
  unsigned hourly_cap = 5;                    // codes per phone per rolling hour
  // registrar: hashed codes under registrar's keys (or in process). node: the drop-in for an
  // existing deployment whose Node service writes codes in clear with `SET <session id> <code>`
  // (Redis only; registrar then checks and deletes them but does not issue any).
  enum class Layout { registrar, node };
  Layout layout = Layout::registrar;
};

// Text messages (verification codes): an HTTP webhook that is the SMS gateway, else the data dir's
// development files (messages.jsonl, the number masked).
struct Sms {
  std::string webhook_url;                    // http:// or https://
  std::string webhook_secret;                 // bearer secret; env, or read from webhook_secret_file
  std::filesystem::path webhook_secret_file;  // --sms-webhook-secret-file / REGISTRAR_SMS_WEBHOOK_SECRET_FILE
  std::string webhook_ca_file;                // https: CA bundle; empty: the system's
  std::chrono::seconds webhook_timeout{10};
};

// The parsed --database-url.
struct Database {
  enum class Kind { sqlite, mysql };
  Kind kind = Kind::sqlite;
  std::filesystem::path sqlite_path;  // sqlite://PATH (PATH as written; relative to the cwd)
  std::string host;                   // mysql://USER:PASS@HOST[:PORT]/NAME (percent-decoded)
  std::uint16_t port = 3306;
  std::string user;
  std::string password;
  std::string name;
  // TLS to MySQL (--database-ssl-mode, --database-ca-file; adapters/mysql/options.hpp). Unset:
  // verify-identity, or disabled for a loopback host (127.0.0.0/8, ::1, localhost = the Unix
  // socket), whose traffic never leaves the machine; a CA file alone means verify-identity.
  enum class SslMode { disabled, required, verify_ca, verify_identity };
  std::optional<SslMode> ssl_mode;  // resolved by load_settings for mysql://
  std::string ca_file;              // verify-ca / verify-identity: PEM bundle; empty: the system's
};

// RabbitMQ topology and consumer behaviour (used when --amqp-url is set). The defaults are the
// topology of the NestJS sign-up service whose message structure we keep (DESIGN.md "Wire formats").
struct Amqp {
  std::string exchange = "topic_validateJSON";     // topic, durable
  std::string routing_key = "topic_validateJSON";  // that service's routing key
  bool route_by_event = false;                     // true: routing key = event name (user.registered)
  std::string queue = "topic_validateJSON";        // that service's queue, declared and bound; "" = none
  unsigned prefetch = 256;                         // unacked deliveries per consumer (and its largest batch)
  unsigned max_attempts = 5;                       // deliveries before the dead-letter queue
  // Outbox rows one relay pass claims and publishes before waiting for their confirms: on a busy
  // broker, 256 per pass over 2 connections reached 56–69 % of a bare publisher, 4,000 79–89 %
  // (BENCHMARKS.md, session 10). A pass must fit in the relay's 10 s lease.
  unsigned relay_batch = 4000;
  unsigned relay_connections = 2;                  // relay loops, each with its own connection
  // amqps:// only: PEM CA bundle to verify the broker with (empty: the system's), and a client
  // certificate with its key for brokers that ask for one.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Out-of-band messages (welcome mail, codes): SMTP when smtp_url is set, else <data-dir> files.
struct Mail {
  std::string smtp_url;  // smtp[s]://[user[:pass]@]host[:port]; smtps: TLS from the start (465)
  std::string from;      // required with smtp_url
  std::string product_name = "registrar";
  // smtp:// only: STARTTLS required before anything but EHLO. Unset: true, or false for a loopback
  // relay (resolved by load_settings); a CA file alone means true.
  std::optional<bool> starttls;
  std::string ca_file;  // TLS (smtps or STARTTLS): PEM bundle; empty: the system's
};

struct Webhook {
  std::vector<std::string> urls;      // http(s):// endpoints the webhook consumer POSTs to
  std::string secret;                 // whsec_… (Standard Webhooks); env, or read from secret_file by
                                      // resolve_webhook_secret() (main/secrets.hpp)
  std::filesystem::path secret_file;  // --webhook-secret-file / REGISTRAR_WEBHOOK_SECRET_FILE
  std::string ca_file;                // https URLs: PEM bundle to verify receivers with; empty: the system's
};

// The Create_User jobs: Bull's layout on Redis when redis_url is set (Node producers share the
// queue), an in-process queue otherwise (POST /users, GET /jobs/{id}).
struct Jobs {
  std::string bull_prefix = "bull";        // bull's `prefix` option
  std::string bull_queue = "Create_User";  // the queue's name
  unsigned concurrency = 0;                // jobs run at once by this process's worker; 0 = 8 × cores (≤ 64)
  // A job mostly waits on Redis and the database (argon2 is held to the hasher's own concurrency,
  // the cores), so by default several run per core: on 2 cores, 16 ran ~2.5× as many jobs/s as 2
  // without hashing and ~1.3× with it; 32 no more than 16 (BENCHMARKS.md, session 10).
  unsigned effective_concurrency(unsigned cores) const { return concurrency != 0 ? concurrency : std::min(8 * cores, 64u); }
  bool worker_in_serve = true;             // serve runs the worker too (false: only `registrar worker` does)
  std::chrono::milliseconds stalled_interval{30'000};  // Bull's stalledInterval: the stalled-job check
  std::chrono::milliseconds lock_duration{30'000};     // Bull's lockDuration (renewed every half of it)
  // Options of the jobs POST /users queues (a Node producer gives its own).
  int attempts = 3;
  std::string backoff_type = "exponential";
  std::chrono::milliseconds backoff_delay{1000};
};

// Keys of the personal data registrar stores encrypted (the phone): adapters/sodium/pii_cipher.hpp.
struct Pii {
  std::filesystem::path keys_dir;  // --pii-keys-dir; empty → <data-dir>/keys
  std::string key_id;              // --pii-key-id: the current key; empty → the newest
  std::string inline_keys;         // REGISTRAR_PII_KEYS "ID:BASE64[,…]" (secret: no flag); then no key files
  std::string inline_index_key;    // REGISTRAR_PII_INDEX_KEY BASE64 (secret: no flag)
  std::size_t rotate_batch = 200;  // `keys rotate --batch-size`: rows per transaction
};

// Socket.IO in `serve` (Engine.IO 4 / Socket.IO 5; the protocols' own timings: ping every 25 s,
// 20 s to answer).
struct SocketIo {
  std::string path = "/socket.io/";       // ends with '/'; Engine.IO requests go below it
  std::vector<std::string> cors_origins;  // scheme://host[:port] browsers may connect from; none: same origin only
};

// Client mode of the Create_User notifications: registrar's worker as a Socket.IO client of an
// existing notification server (the Node service's PORT_MESSAGES_USERS), emitting `notify`
// {id, success, message} as the Node worker does (adapters/socketio_client/sio_client_notifier.hpp).
struct Notify {
  std::string url;                  // http(s):// or ws(s)://; empty: no client (the log, and serve's own hub)
  std::string path = "/socket.io/";  // the server's Engine.IO path
  std::string ca_file;              // https/wss: CA bundle; empty: the system's
  std::string token;                // REGISTRAR_NOTIFY_TOKEN (secret, no flag): sent as auth {token}
  std::size_t queue_limit = 1000;   // notifications kept while the server is unreachable
};

// `registrar socketio-echo`: the reference server of the Engine.IO/Socket.IO protocol test suites,
// for people who write clients. Its own flags (no environment variables, no .env): the defaults are
// those the suites expect, not those of `serve`.
struct SocketIoEcho {
  std::chrono::milliseconds ping_interval{300};
  std::chrono::milliseconds ping_timeout{200};
  std::chrono::milliseconds upgrade_timeout{10'000};
  std::chrono::milliseconds connect_timeout{1'000};  // Socket.IO: a connection that joins no namespace
  std::size_t max_payload = 1'000'000;
};

// Abuse limits (README "Abuse limits"): token buckets per route and key kind, each `burst`
// requests that come back evenly over a period ("N/SECONDS": burst N, one per SECONDS/N); a
// disabled limit (burst 0, written "0") takes nothing.
struct AbuseLimits {
  bool enabled = true;  // false: no limit at all (benchmarks, tests of other things)
  ports::RateLimit register_ip{20, std::chrono::milliseconds{180'000}};  // 20/3600
  ports::RateLimit register_id{5, std::chrono::milliseconds{720'000}};   // 5/3600, per email and per username
  ports::RateLimit login_ip{60, std::chrono::milliseconds{10'000}};      // 60/600
  ports::RateLimit login_id{30, std::chrono::milliseconds{120'000}};     // 30/3600, per identifier, every try
  ports::RateLimit codes_ip{20, std::chrono::milliseconds{180'000}};     // 20/3600
  ports::RateLimit jobs_ip{20, std::chrono::milliseconds{180'000}};      // 20/3600
  ports::RateLimit jobs_id{10, std::chrono::milliseconds{360'000}};      // 10/3600, per phone
  // Login soft lockout: `lockout_failures` failures free, then one try per `lockout_max` (the
  // longest an owner can be kept waiting); 0 failures: off.
  unsigned lockout_failures = 10;
  std::chrono::milliseconds lockout_max{900'000};
  std::size_t max_keys = 100'000;  // in-process buckets kept at most (the least recently used go)
  enum class RedisDown { local, open, closed };
  RedisDown redis_down = RedisDown::local;
};

// Bounded storage (issue 14; README, Retention). Durations 0 = kept forever.
struct Retention {
  std::chrono::seconds sent_events{7 * 86400};       // sent outbox rows, by sent time
  std::size_t sent_events_count = 0;                 // at most this many sent rows; 0 = no limit
  std::chrono::seconds processed_events{7 * 86400};  // processed-event records (never of an unsent event)
  std::chrono::seconds messages{7 * 86400};          // the development mail spool's files
  std::chrono::seconds interval{60};                 // a sweep this often
  std::size_t batch = 500;                           // rows (files) per write transaction
  std::uint64_t audit_max_bytes = 64 * 1024 * 1024;  // audit.jsonl rotated past this; 0 = never
  unsigned audit_keep = 5;                           // rotated audit files kept
  std::uint64_t messages_max_bytes = 64 * 1024 * 1024;  // messages.jsonl likewise
  unsigned messages_keep = 5;
};

struct Settings {
  Command command = Command::serve;
  std::string consumer_name;  // for `consume NAME`
  bool list_consumers = false;  // `consume --list`
  Listen listen;
  std::filesystem::path data_dir = "./data";
  Database database;     // --database-url; default sqlite://<data-dir>/registrar.db
  std::string amqp_url;  // empty → in-process event dispatch
  std::string redis_url;  // empty → in-process code store (and job queue)
  std::string redis_key_prefix = "registrar:";  // registrar's own Redis keys (codes: <prefix>code:<id>)
  std::string log_level = "info";
  bool access_log = true;  // one line per HTTP request; benchmarks turn it off
  // Repeated failures of one kind are logged as an episode: a summary at most this often, and the
  // end once this long passes without one (adapters/logging/failure_episodes.hpp).
  std::chrono::seconds log_failure_interval{5};
  // How long a sign-up's Idempotency-Key is remembered (app::RegisterUser): a retry within it gets
  // the first request's account; after it, the key is free again.
  std::chrono::seconds idempotency_key_ttl{86400};
  Argon2 argon2;
  Http http;
  Jwt jwt;
  SocketIo socketio;
  std::vector<std::string> consumers = {"audit", "socketio"};
  // The admin token (≥ 32 bytes): a Socket.IO client that connects with auth {token: <it>} joins
  // the `admins` room. Empty: admin surfaces off.
  std::string admin_token;                 // REGISTRAR_ADMIN_TOKEN, or read from admin_token_file
  std::filesystem::path admin_token_file;  // --admin-token-file / REGISTRAR_ADMIN_TOKEN_FILE
  Amqp amqp;
  Mail mail;
  Webhook webhook;  // built-in consumers run inside `serve`
  Jobs jobs;
  Pii pii;
  Codes codes;
  Retention retention;
  Sms sms;
  Notify notify;
  SocketIoEcho socketio_echo;
  AbuseLimits abuse;
};

}  // namespace registrar::config
