#include "main/config_loader.hpp"

#include <CLI/CLI.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>

#include "adapters/socketio_client/notify_url.hpp"
#include "adapters/sodium/hex.hpp"

namespace registrar::config {
namespace {

// ---------------------------------------------------------------------------------------------
// Small parsing helpers. Every validator returns the reason a value is wrong, or nullopt.

using Reason = std::optional<std::string>;

std::optional<std::uint64_t> parse_uint(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);  // no sign, no spaces
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size()) return std::nullopt;
  return v;
}

template <class T>
Reason set_uint(std::string_view text, std::uint64_t lo, std::uint64_t hi, T& out) {
  auto v = parse_uint(text);
  if (!v || *v < lo || *v > hi)
    return "expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi);
  out = static_cast<T>(*v);
  return std::nullopt;
}

bool has_control_chars(std::string_view s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

// A value echoed in a message: quoted, on one line, control characters escaped.
std::string quote_value(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\x" + adapters::sodium::hex_encode(std::span(&c, 1));
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// HOST:PORT, with IPv6 hosts in brackets ([::1]:8080); the brackets are not kept in Listen::host.
Reason set_listen(std::string_view text, Listen& out) {
  static const std::string expected = "expected HOST:PORT (IPv6 as [::1]:8080)";
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return expected;
  std::string_view host = text.substr(0, colon), port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  } else if (host.find_first_of("[]:") != std::string_view::npos) {
    return expected;  // an unbracketed IPv6 address is ambiguous
  }
  if (host.empty() || has_control_chars(host) || host.find(' ') != std::string_view::npos) return expected;
  auto p = parse_uint(port);
  if (!p || *p > 65535) return "expected HOST:PORT with PORT from 0 to 65535";
  out.host = host;
  out.port = static_cast<std::uint16_t>(*p);
  return std::nullopt;
}

// The checks shared by the network URLs (mysql, amqp, smtp): a known scheme, a host, a valid port.
// `expected` describes the accepted form, for the message.
Reason check_network_url(std::string_view text, std::initializer_list<std::string_view> schemes,
                         const std::string& expected, boost::urls::url_view& out) {
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) return expected;
  out = *parsed;
  bool known = false;
  for (auto s : schemes) known = known || boost::beast::iequals(out.scheme(), s);
  if (!known) return expected;
  if (out.encoded_host().empty()) return "missing host; " + expected;
  if (out.has_port()) {
    auto p = parse_uint(out.port());
    if (!p || *p == 0 || *p > 65535) return "port must be from 1 to 65535";
  }
  if (out.has_fragment()) return "unexpected #fragment";
  return std::nullopt;
}

Reason set_optional_url(std::string_view text, std::initializer_list<std::string_view> schemes,
                        const std::string& expected, std::string& out) {
  if (!text.empty()) {  // empty means "none": fall back to the in-process adapter
    boost::urls::url_view url;
    if (auto reason = check_network_url(text, schemes, expected, url)) return reason;
  }
  out = text;
  return std::nullopt;
}

bool valid_consumer_name(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  return true;
}

bool is_http_url(std::string_view s) { return s.starts_with("http://") || s.starts_with("https://"); }

// A browser origin as the Origin header carries it: http(s)://host[:port], no path, lower case.
bool is_origin(std::string_view s) {
  boost::system::result<boost::urls::url_view> url = boost::urls::parse_absolute_uri(s);
  if (!url || (url->scheme() != "http" && url->scheme() != "https") || url->host().empty() || url->has_userinfo() ||
      !url->encoded_path().empty() || url->has_query() || url->has_fragment())
    return false;
  return std::none_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

// A URL path for Socket.IO: "/" then printable characters without '?', '#', '%' or spaces; "/" alone
// would take every route of the API.
bool is_socketio_path(std::string_view s) {
  return s.size() > 1 && s.size() <= 128 && s.front() == '/' && std::all_of(s.begin(), s.end(), [](char c) {
    return c > 0x20 && c < 0x7f && c != '?' && c != '#' && c != '%';
  });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The settings table: one row per setting, shared by the help text, the lookup and validation.

constexpr std::uint32_t kArgon2MemoryFloorKib = 19 * 1024;  // OWASP: m=19 MiB, t=2, p=1
constexpr std::uint32_t kArgon2IterationsFloor = 2;
constexpr std::string_view kAllowWeakArgon2 = "REGISTRAR_ALLOW_WEAK_ARGON2";

struct Context {
  bool allow_weak_argon2 = false;
};

// Retentions: up to ten years.
constexpr std::int64_t kMaxRetentionSeconds = 10 * 366 * 86400;
// The records that make a redelivered event harmless (processed events, the mail spool) must
// outlive every redelivery. Over RabbitMQ a redelivery can come as late as a message can wait in
// its queue (a consumer down, a publish confirmed whose mark-sent was lost): a day at least,
// refused below. In-process, the relay delivers an event again only while its outbox row is
// unsent, which the sweep checks; what is left is a relay whose lease ran out mid-delivery, so
// below the relay's lease (a minute, with margin) only a warning.
constexpr std::int64_t kRedeliveryFloorAmqp = 86400;
constexpr std::int64_t kRedeliveryFloorInProcess = 60;

// An argon2 cost: below the OWASP floor only when REGISTRAR_ALLOW_WEAK_ARGON2=1 (the hint says so).
Reason set_argon2(std::string_view text, std::uint32_t lo, std::uint32_t hi, const Context& c,
                  std::uint32_t& out) {
  auto reason = set_uint(text, lo, hi, out);
  auto v = parse_uint(text);
  if (reason && !c.allow_weak_argon2 && v && *v < lo) *reason += " (lower only with REGISTRAR_ALLOW_WEAK_ARGON2=1)";
  return reason;
}

Reason set_seconds(std::string_view v, std::int64_t lo, std::int64_t hi, std::chrono::seconds& out) {
  std::int64_t seconds = 0;
  auto reason = set_uint(v, lo, hi, seconds);
  if (!reason) out = std::chrono::seconds(seconds);
  return reason;
}

// Seconds with up to three decimals ("900", "0.5") as milliseconds, within [lo_ms, hi_ms].
std::optional<std::int64_t> parse_decimal_ms(std::string_view v) {
  auto dot = v.find('.');
  auto whole = parse_uint(v.substr(0, dot));
  if (!whole || *whole > 10'000'000) return std::nullopt;
  std::int64_t ms = static_cast<std::int64_t>(*whole) * 1000;
  if (dot != std::string_view::npos) {
    auto frac = v.substr(dot + 1);
    if (frac.empty() || frac.size() > 3) return std::nullopt;
    auto f = parse_uint(frac);
    if (!f) return std::nullopt;
    for (auto n = frac.size(); n < 3; ++n) *f *= 10;
    ms += static_cast<std::int64_t>(*f);
  }
  return ms;
}

Reason set_decimal_ms(std::string_view v, std::int64_t lo_ms, std::int64_t hi_ms, std::chrono::milliseconds& out) {
  auto ms = parse_decimal_ms(v);
  if (!ms || *ms < lo_ms || *ms > hi_ms)
    return "expected seconds (up to 3 decimals) from " + std::to_string(lo_ms) + " ms to " + std::to_string(hi_ms / 1000) + " s";
  out = std::chrono::milliseconds{*ms};
  return std::nullopt;
}

// An abuse-limit rate: "N/SECONDS" (a bucket of N requests, one back every SECONDS/N) or "0" (off).
Reason set_rate(std::string_view v, ports::RateLimit& out) {
  constexpr const char* expected = "expected N/SECONDS (e.g. 20/3600: 20 at once, one back every 180 s; SECONDS may have "
                                   "3 decimals) or 0 to turn the limit off";
  if (v == "0") {
    out = {};
    return std::nullopt;
  }
  auto slash = v.find('/');
  if (slash == std::string_view::npos) return expected;
  auto n = parse_uint(v.substr(0, slash));
  auto period = parse_decimal_ms(v.substr(slash + 1));
  if (!n || *n < 1 || *n > 1'000'000 || !period || *period < 1 || *period > 7 * 86'400'000LL) return expected;
  const auto refill = *period / static_cast<std::int64_t>(*n);
  if (refill < 1) return "expected N/SECONDS with at most one request per millisecond";
  out = {static_cast<unsigned>(*n), std::chrono::milliseconds{refill}};
  return std::nullopt;
}

// A queue/exchange/routing-key name: AMQP short strings, printable, ≤ 255 bytes.
Reason set_name(std::string_view v, std::string& out) {
  if (v.empty() || v.size() > 255 || has_control_chars(v)) return "expected a name of 1 to 255 printable bytes";
  out = std::string(v);
  return std::nullopt;
}

Reason set_bool(std::string_view v, bool& out) {
  if (v == "true" || v == "1") out = true;
  else if (v == "false" || v == "0") out = false;
  else return "expected true or false";
  return std::nullopt;
}

// Free text (an issuer, a product name): non-empty, printable.
Reason set_text(std::string_view v, std::string& out) {
  if (v.empty() || has_control_chars(v)) return "expected non-empty text";
  out = std::string(v);
  return std::nullopt;
}

// A file or directory name: anything but empty. `expected` says which, for the message.
Reason set_path(std::string_view v, const char* expected, std::filesystem::path& out) {
  if (v.empty()) return expected;
  out = v;
  return std::nullopt;
}

// A PEM file setting (CA bundle, certificate, key): a file name, read when the connection is set up.
Reason set_file(std::string_view v, std::string& out) {
  if (v.empty()) return "expected a file name";
  out = std::string(v);
  return std::nullopt;
}

// A host whose traffic never leaves the machine: 127.0.0.0/8, ::1, or localhost (for MySQL, the
// Unix socket). The TLS defaults of MySQL and SMTP spare such a host (a local server or relay).
bool is_loopback_host(std::string_view host) {
  if (boost::beast::iequals(host, "localhost")) return true;
  boost::system::error_code ec;
  const auto address = boost::asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

// A comma-separated list: items trimmed, empty items skipped, each one `valid` (else the reason is
// `expected`).
Reason set_list(std::string_view v, bool (*valid)(std::string_view), const char* expected,
                std::vector<std::string>& out) {
  std::vector<std::string> items;
  std::string_view rest = v;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    if (!valid(item)) return expected;
    items.emplace_back(item);
  }
  out = std::move(items);
  return std::nullopt;
}

struct Spec {
  std::string_view name;          // the flag without "--"; the environment variable derives from it
  std::string_view type;          // shown in help: --listen HOST:PORT
  std::string_view help;
  std::string_view default_text;  // shown in help; keep in step with config.hpp
  bool is_url;                    // redact userinfo when echoing the value in an error
  Reason (*apply)(const std::string& text, Settings&, const Context&);
};

// Order matters once: data-dir comes before database-url, whose default derives from it.
const Spec kSpecs[] = {
    {"listen", "HOST:PORT", "address to listen on; port 0 picks a free one (the log names it)",
     "127.0.0.1:8080", false,
     [](const std::string& v, Settings& s, const Context&) { return set_listen(v, s.listen); }},
    {"data-dir", "DIR", "SQLite file, generated secrets, spools", "./data", false,
     [](const std::string& v, Settings& s, const Context&) { return set_path(v, "expected a directory", s.data_dir); }},
    {"database-url", "URL", "sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/DB",
     "sqlite://<data-dir>/registrar.db", true,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       auto parsed = parse_database_url(v);
       if (auto* reason = std::get_if<std::string>(&parsed)) return *reason;
       s.database = std::get<Database>(std::move(parsed));
       return std::nullopt;
     }},
    {"database-ssl-mode", "MODE",
     "TLS to MySQL: disabled, required (not verified), verify-ca (the chain) or verify-identity (the chain and "
     "the host name or IP address); never a fallback to plaintext",
     "verify-identity; disabled for a loopback host (127.0.0.0/8, ::1, localhost)", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       using Mode = Database::SslMode;
       std::string mode = v;
       for (char& c : mode) c = c == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
       if (mode == "disabled") s.database.ssl_mode = Mode::disabled;
       else if (mode == "required") s.database.ssl_mode = Mode::required;
       else if (mode == "verify-ca") s.database.ssl_mode = Mode::verify_ca;
       else if (mode == "verify-identity") s.database.ssl_mode = Mode::verify_identity;
       else return "expected disabled, required, verify-ca or verify-identity";
       return std::nullopt;
     }},
    {"database-ca-file", "FILE", "PEM CA bundle to verify the MySQL server with (verify-ca, verify-identity)",
     "the system's CAs", false,
     [](const std::string& v, Settings& s, const Context&) { return set_file(v, s.database.ca_file); }},
    {"amqp-url", "URL", "amqp:// or amqps:// (RabbitMQ event bus)", "none: in-process event dispatch", true,
     [](const std::string& v, Settings& s, const Context&) {
       return set_optional_url(v, {"amqp", "amqps"}, "expected amqp[s]://[USER:PASS@]HOST[:PORT][/VHOST]",
                               s.amqp_url);
     }},
    {"amqp-ca-file", "FILE", "PEM CA bundle to verify an amqps:// broker with", "the system's CAs", false,
     [](const std::string& v, Settings& s, const Context&) { return set_file(v, s.amqp.ca_file); }},
    {"amqp-cert-file", "FILE", "PEM client certificate for an amqps:// broker that asks for one (with --amqp-key-file)",
     "none", false,
     [](const std::string& v, Settings& s, const Context&) { return set_file(v, s.amqp.cert_file); }},
    {"amqp-key-file", "FILE", "PEM private key of --amqp-cert-file (unencrypted; keep it 0600)", "none", false,
     [](const std::string& v, Settings& s, const Context&) { return set_file(v, s.amqp.key_file); }},
    {"redis-url", "URL",
     "redis[s]://[[USER]:PASS@]HOST[:PORT][/DB]: verification codes (and jobs) in Redis, shared by processes",
     "none: in-process code store", true,
     [](const std::string& v, Settings& s, const Context&) {
       return set_optional_url(v, {"redis", "rediss"}, "expected redis[s]://[[USER]:PASS@]HOST[:PORT][/DB]",
                               s.redis_url);
     }},
    {"redis-key-prefix", "PREFIX", "prefix of registrar's own Redis keys (codes: PREFIXcode:<session id>)",
     "registrar:", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v.size() > 64 || has_control_chars(v) || v.find(' ') != std::string_view::npos)
         return "expected at most 64 printable bytes without spaces";
       s.redis_key_prefix = v;
       return std::nullopt;
     }},
    {"code-ttl", "SECONDS", "lifetime of a verification code and its token (10 to 86400)", "600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_seconds(v, 10, 86400, s.codes.ttl); }},
    {"code-max-tries", "N", "wrong tries that burn a verification code (1 to 100)", "5", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 100, s.codes.max_wrong_tries); }},
    {"code-cooldown", "SECONDS", "wait between two codes to one phone (0 to 3600)", "60", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_seconds(v, 0, 3600, s.codes.resend_cooldown);
     }},
    {"code-hourly-cap", "N", "codes per phone per rolling hour (1 to 1000)", "5", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 1000, s.codes.hourly_cap); }},
    {"code-layout", "LAYOUT",
     "registrar (hashed codes) or node (drop-in: codes written in clear by an existing Node service as "
     "SET <session id> <code>; needs --redis-url; registrar then checks them but issues none)",
     "registrar", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v == "registrar") s.codes.layout = Codes::Layout::registrar;
       else if (v == "node") s.codes.layout = Codes::Layout::node;
       else return "expected registrar or node";
       return std::nullopt;
     }},
    {"accept-foreign-tokens", "BOOL",
     "drop-in: accept, as verification tokens only, HS256 tokens without registrar's typ from an existing "
     "issuer sharing the JWT secret",
     "false", false,
     [](const std::string& v, Settings& s, const Context&) { return set_bool(v, s.jwt.accept_foreign_tokens); }},
    {"foreign-token-issuer", "TEXT", "iss required of foreign verification tokens (empty: not checked)", "none",
     false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (has_control_chars(v)) return "expected printable text";
       s.jwt.foreign_issuer = v;
       return std::nullopt;
     }},
    {"foreign-token-audience", "TEXT", "aud required of foreign verification tokens (empty: not checked)", "none",
     false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (has_control_chars(v)) return "expected printable text";
       s.jwt.foreign_audience = v;
       return std::nullopt;
     }},
    {"sms-webhook-url", "URL",
     "http(s):// SMS gateway that verification codes are POSTed to, with the real number; see "
     "REGISTRAR_SMS_WEBHOOK_SECRET",
     "none: <data-dir>/messages.jsonl, number masked", true,
     [](const std::string& v, Settings& s, const Context&) {
       return set_optional_url(v, {"http", "https"}, "expected http[s]://HOST[:PORT][/PATH]", s.sms.webhook_url);
     }},
    {"sms-webhook-secret-file", "FILE", "file holding the SMS webhook's bearer secret; see REGISTRAR_SMS_WEBHOOK_SECRET",
     "none", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_path(v, "expected a file name", s.sms.webhook_secret_file);
     }},
    {"socketio-path", "PATH", "where serve speaks Socket.IO (the clients' `path` option)", "/socket.io/", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (!is_socketio_path(v)) return "expected a path such as /socket.io/ (no '?', '#', '%' or spaces)";
       s.socketio.path = v.back() == '/' ? v : v + "/";
       return std::nullopt;
     }},
    {"socketio-cors-origins", "LIST",
     "origins (http[s]://host[:port]) whose browsers may use Socket.IO from another origin", "none: same origin only",
     false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_list(v, is_origin, "expected comma-separated origins like https://app.example.com", s.socketio.cors_origins);
     }},
    {"admin-token-file", "FILE", "file holding the admin token; see REGISTRAR_ADMIN_TOKEN", "none: admin surfaces off",
     false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_path(v, "expected a file name", s.admin_token_file);
     }},
    {"sms-webhook-ca-file", "FILE", "PEM CA bundle to verify an https SMS webhook with", "the system's CAs", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       std::filesystem::path p;
       if (auto reason = set_path(v, "expected a file name", p)) return reason;
       s.sms.webhook_ca_file = p.string();
       return std::nullopt;
     }},
    {"sms-webhook-timeout", "SECONDS", "time allowed for one SMS webhook call (1 to 120)", "10", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_seconds(v, 1, 120, s.sms.webhook_timeout);
     }},
    {"notify-url", "URL",
     "drop-in for an existing Socket.IO notification server (the Node service's PORT_MESSAGES_USERS): serve's "
     "and worker's Create_User outcomes are emitted to it as `notify` {id, success, message}, as a Socket.IO "
     "client; http(s):// or ws(s)://HOST[:PORT][/NAMESPACE]; see REGISTRAR_NOTIFY_TOKEN",
     "none: the log (and serve's own /socket.io/) only", true,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (!v.empty()) {
         try {
           adapters::socketio_client::parse_notify_url(v);
         } catch (const std::invalid_argument& e) {
           return std::string(e.what());
         }
       }
       s.notify.url = v;
       return std::nullopt;
     }},
    {"notify-path", "PATH", "the notification server's Engine.IO path (socket.io-client's `path`)", "/socket.io/",
     false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       try {
         s.notify.path = adapters::socketio_client::normalize_engine_path(v);
       } catch (const std::invalid_argument& e) {
         return std::string(e.what());
       }
       return std::nullopt;
     }},
    {"notify-ca-file", "FILE", "PEM CA bundle to verify an https/wss notification server with", "the system's CAs",
     false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       std::filesystem::path p;
       if (auto reason = set_path(v, "expected a file name", p)) return reason;
       s.notify.ca_file = p.string();
       return std::nullopt;
     }},
    {"notify-queue-limit", "N",
     "notifications kept while the notification server is unreachable; beyond, the oldest are dropped (1 to "
     "1000000)",
     "1000", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_uint(v, 1, 1'000'000, s.notify.queue_limit);
     }},
    {"jwt-secret-file", "FILE", "file holding the JWT signing key (≥ 32 bytes); see REGISTRAR_JWT_SECRET",
     "<data-dir>/jwt-secret, generated on first run", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_path(v, "expected a file name", s.jwt.secret_file);
     }},
    {"log-level", "LEVEL", "trace, debug, info, warn or error", "info", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       for (auto level : {"trace", "debug", "info", "warn", "error"})
         if (v == level) {
           s.log_level = v;
           return std::nullopt;
         }
       return "expected trace, debug, info, warn or error";
     }},
    {"access-log", "BOOL", "one log line per HTTP request (true or false)", "true", false,
     [](const std::string& v, Settings& s, const Context&) { return set_bool(v, s.access_log); }},
    {"log-failure-interval", "SECONDS",
     "repeated failures of one kind (a 503 per request while the database is down) are logged as one episode: a "
     "line when it starts, a summary at most this often, a line when it ends (1 to 3600)",
     "5", false,
     [](const std::string& v, Settings& s, const Context&) { return set_seconds(v, 1, 3600, s.log_failure_interval); }},
    {"argon2-memory-kib", "KIB", "argon2id memory per hash, KiB (≥ 19456 = OWASP floor)", "19456", false,
     [](const std::string& v, Settings& s, const Context& c) -> Reason {
       // 8 KiB: libsodium's own minimum, for tests and benchmarks only.
       return set_argon2(v, c.allow_weak_argon2 ? 8 : kArgon2MemoryFloorKib, 4 * 1024 * 1024, c,
                         s.argon2.memory_kib);
     }},
    {"argon2-iterations", "N", "argon2id passes per hash (≥ 2 = OWASP floor)", "2", false,
     [](const std::string& v, Settings& s, const Context& c) -> Reason {
       return set_argon2(v, c.allow_weak_argon2 ? 1 : kArgon2IterationsFloor, 64, c, s.argon2.iterations);
     }},
    {"hash-concurrency", "N", "password hashes computed at once; 0 = number of cores", "0", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 0, 1024, s.argon2.concurrency); }},
    {"hash-processes", "BOOL", "hash in worker processes (faster: no address-space contention) or in threads",
     "true", false,
     [](const std::string& v, Settings& s, const Context&) { return set_bool(v, s.argon2.processes); }},
    {"hash-queue-limit", "N", "sign-ups/logins waiting for a hash beyond this get 503", "256", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_uint(v, 0, 1'000'000, s.argon2.queue_limit);
     }},
    {"http-threads", "N", "HTTP I/O threads; 0 = number of cores", "0", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 0, 1024, s.http.threads); }},
    {"body-limit", "BYTES", "largest request body (1024 to 1048576); larger gets 413", "16384", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_uint(v, 1024, 1024 * 1024, s.http.body_limit);
     }},
    {"jwt-issuer", "TEXT", "the tokens' iss", "registrar", false,
     [](const std::string& v, Settings& s, const Context&) { return set_text(v, s.jwt.issuer); }},
    {"jwt-audience", "TEXT", "the tokens' aud", "registrar", false,
     [](const std::string& v, Settings& s, const Context&) { return set_text(v, s.jwt.audience); }},
    {"access-token-ttl", "SECONDS", "access token lifetime (60 to 86400)", "900", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       return set_seconds(v, 60, 86400, s.jwt.access_ttl);
     }},
    {"idempotency-key-ttl", "SECONDS",
     "how long a sign-up's Idempotency-Key is remembered, so that a retry gets the first request's account (1 to "
     "2592000)",
     "86400", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_seconds(v, 1, 2592000, s.idempotency_key_ttl);
     }},
    {"header-timeout", "SECONDS", "time to receive a whole request head (1 to 300); slower clients are disconnected", "10",
     false,
     [](const std::string& v, Settings& s, const Context&) { return set_seconds(v, 1, 300, s.http.header_timeout); }},
    {"body-timeout", "SECONDS", "time to receive a whole request body (1 to 300); slower clients are disconnected", "30",
     false,
     [](const std::string& v, Settings& s, const Context&) { return set_seconds(v, 1, 300, s.http.body_timeout); }},
    {"idle-timeout", "SECONDS", "keep-alive connection idle time before it is closed (1 to 3600)", "60", false,
     [](const std::string& v, Settings& s, const Context&) { return set_seconds(v, 1, 3600, s.http.idle_timeout); }},
    {"tls-cert", "FILE", "PEM certificate chain to serve the API over TLS with (with --tls-key; reloaded on SIGHUP)",
     "none: plain HTTP", false,
     [](const std::string& v, Settings& s, const Context&) { return set_path(v, "expected a file name", s.http.tls_cert); }},
    {"tls-key", "FILE", "PEM private key of --tls-cert (unencrypted; reloaded on SIGHUP)", "none", false,
     [](const std::string& v, Settings& s, const Context&) { return set_path(v, "expected a file name", s.http.tls_key); }},
    {"bull-prefix", "TEXT", "key prefix of the Bull queue on Redis (bull's `prefix` option)", "bull", false,
     [](const std::string& v, Settings& s, const Context&) { return set_text(v, s.jobs.bull_prefix); }},
    {"bull-queue", "NAME", "name of the Create_User job queue", "Create_User", false,
     [](const std::string& v, Settings& s, const Context&) { return set_text(v, s.jobs.bull_queue); }},
    {"job-concurrency", "N", "Create_User jobs run at once by this process; 0 = 8 × cores, at most 64", "0", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 0, 256, s.jobs.concurrency); }},
    {"worker-in-serve", "BOOL", "serve also runs the Create_User worker (false: only `registrar worker` processes do)",
     "true", false,
     [](const std::string& v, Settings& s, const Context&) { return set_bool(v, s.jobs.worker_in_serve); }},
    {"job-stalled-interval", "SECONDS",
     "how often the worker looks for jobs whose worker died (Bull's stalledInterval; 1 to 3600)", "30", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       std::chrono::seconds secs{};
       if (auto r = set_seconds(v, 1, 3600, secs)) return r;
       s.jobs.stalled_interval = secs;
       return std::nullopt;
     }},
    {"job-lock-duration", "SECONDS",
     "a running job's lock (Bull's lockDuration, renewed every half of it): a job whose worker died runs again "
     "this long after (2 to 3600)",
     "30", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       std::chrono::seconds secs{};
       if (auto r = set_seconds(v, 2, 3600, secs)) return r;
       s.jobs.lock_duration = secs;
       return std::nullopt;
     }},
    {"job-attempts", "N", "runs of a job queued by POST /users before it ends with an error (1 to 20)", "3", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       unsigned n = 0;
       if (auto r = set_uint(v, 1, 20, n)) return r;
       s.jobs.attempts = static_cast<int>(n);
       return std::nullopt;
     }},
    {"rate-limits", "BOOL", "abuse limits on register, login, verification codes and POST /users (false: none at all)",
     "true", false, [](const std::string& v, Settings& s, const Context&) { return set_bool(v, s.abuse.enabled); }},
    {"rate-limit-register-ip", "N/SECONDS", "sign-ups per client IP (0: off)", "20/3600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.register_ip); }},
    {"rate-limit-register-id", "N/SECONDS", "sign-ups per email and per username (0: off)", "5/3600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.register_id); }},
    {"rate-limit-login-ip", "N/SECONDS", "logins per client IP (0: off)", "60/600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.login_ip); }},
    {"rate-limit-login-id", "N/SECONDS", "logins per identifier (email, username or phone), every try (0: off)", "30/3600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.login_id); }},
    {"rate-limit-codes-ip", "N/SECONDS", "verification-code requests (sending and checking) per client IP (0: off)", "20/3600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.codes_ip); }},
    {"rate-limit-jobs-ip", "N/SECONDS", "POST /users per client IP (0: off)", "20/3600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.jobs_ip); }},
    {"rate-limit-jobs-id", "N/SECONDS", "POST /users per phone (0: off)", "10/3600", false,
     [](const std::string& v, Settings& s, const Context&) { return set_rate(v, s.abuse.jobs_id); }},
    {"login-lockout-failures", "N", "failed logins of one identifier before the soft lockout (0: no lockout)", "10", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 0, 1000, s.abuse.lockout_failures); }},
    {"login-lockout-max", "SECONDS",
     "then one more try per this long: the longest the lockout keeps an account's owner waiting (0.001 to 86400)",
     "900", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_decimal_ms(v, 1, 86'400'000, s.abuse.lockout_max);
     }},
    {"rate-limit-max-keys", "N", "in-process buckets kept at most; the least recently used go first (100 to 10000000)",
     "100000", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 100, 10'000'000, s.abuse.max_keys); }},
    {"rate-limit-redis-down", "POLICY",
     "with --redis-url, while Redis is unreachable: local (each process its own buckets), open (no limits) or "
     "closed (503 on the limited routes)",
     "local", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       using D = AbuseLimits::RedisDown;
       if (v == "local") s.abuse.redis_down = D::local;
       else if (v == "open") s.abuse.redis_down = D::open;
       else if (v == "closed") s.abuse.redis_down = D::closed;
       else return "expected local, open or closed";
       return std::nullopt;
     }},
    {"trusted-proxies", "CIDRS",
     "comma-separated networks (10.0.0.0/8, ::1) whose X-Forwarded-For names the client; from any other peer "
     "the header is ignored",
     "none", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       auto parsed = adapters::http::TrustedProxies::parse(v);
       if (!parsed) return "expected a comma-separated list of IP networks in CIDR notation (10.0.0.0/8, ::1/128)";
       s.http.trusted_proxies = std::move(*parsed);
       return std::nullopt;
     }},
    {"amqp-exchange", "NAME", "RabbitMQ exchange (topic, durable)", "topic_validateJSON", false,
     [](const std::string& v, Settings& s, const Context&) { return set_name(v, s.amqp.exchange); }},
    {"amqp-routing-key", "KEY", "routing key of published events", "topic_validateJSON", false,
     [](const std::string& v, Settings& s, const Context&) { return set_name(v, s.amqp.routing_key); }},
    {"amqp-route-by-event", "BOOL", "route by event name (user.registered) instead of the fixed key", "false",
     false, [](const std::string& v, Settings& s, const Context&) { return set_bool(v, s.amqp.route_by_event); }},
    {"amqp-queue", "NAME",
     "queue of the NestJS sign-up service registrar replaces, declared and bound to the exchange so that "
     "its consumers still get the events (empty: none)",
     "topic_validateJSON", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v.empty()) {
         s.amqp.queue.clear();
         return std::nullopt;
       }
       return set_name(v, s.amqp.queue);
     }},
    {"amqp-prefetch", "N", "unacknowledged deliveries per consumer, also its largest batch (1 to 10000)", "256", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 10000, s.amqp.prefetch); }},
    {"relay-batch", "N", "outbox events one relay pass claims and publishes to RabbitMQ before it waits for their confirms (1 to 10000)", "4000", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 10000, s.amqp.relay_batch); }},
    {"relay-connections", "N", "relay loops, each on its own RabbitMQ connection: one publishes while another waits for confirms (1 to 16)", "2", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 16, s.amqp.relay_connections); }},
    {"consumer-max-attempts", "N", "deliveries of a failing event before its dead-letter queue (1 to 100)", "5",
     false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 100, s.amqp.max_attempts); }},
    {"smtp-url", "URL",
     "smtp://[USER[:PASS]@]HOST[:PORT] (STARTTLS: see --smtp-starttls) or smtps://… (TLS from the start, port "
     "465) for mail",
     "none: <data-dir>/messages.jsonl", true,
     [](const std::string& v, Settings& s, const Context&) {
       return set_optional_url(v, {"smtp", "smtps"}, "expected smtp[s]://[USER[:PASS]@]HOST[:PORT]", s.mail.smtp_url);
     }},
    {"smtp-starttls", "BOOL",
     "smtp:// only: require STARTTLS before anything but EHLO (a server that does not offer it gets no mail)",
     "true; false for a loopback relay (127.0.0.0/8, ::1, localhost)", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       bool on = false;
       if (auto reason = set_bool(v, on)) return reason;
       s.mail.starttls = on;
       return std::nullopt;
     }},
    {"smtp-ca-file", "FILE", "PEM CA bundle to verify the SMTP server with (smtps:// or STARTTLS)", "the system's CAs",
     false, [](const std::string& v, Settings& s, const Context&) { return set_file(v, s.mail.ca_file); }},
    {"mail-from", "ADDRESS", "sender address of mail (required with --smtp-url)", "none", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v.find('@') == std::string::npos || has_control_chars(v)) return "expected an email address";
       s.mail.from = v;
       return std::nullopt;
     }},
    {"product-name", "TEXT", "product name used in the welcome message", "registrar", false,
     [](const std::string& v, Settings& s, const Context&) { return set_text(v, s.mail.product_name); }},
    {"webhook-urls", "LIST", "comma-separated http(s):// URLs the webhook consumer POSTs events to", "none", true,
     [](const std::string& v, Settings& s, const Context&) {
       return set_list(v, is_http_url, "expected comma-separated http:// or https:// URLs", s.webhook.urls);
     }},
    {"webhook-secret-file", "FILE", "file holding the webhook signing secret (whsec_…); see REGISTRAR_WEBHOOK_SECRET",
     "none", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_path(v, "expected a file name", s.webhook.secret_file);
     }},
    {"webhook-ca-file", "FILE", "PEM CA bundle to verify https:// webhook receivers with", "the system's CAs", false,
     [](const std::string& v, Settings& s, const Context&) { return set_file(v, s.webhook.ca_file); }},
    {"pii-keys-dir", "DIR",
     "directory of the keys that encrypt stored phone numbers (pii-<ID>.key, blind-index.key; generated on first "
     "run); see REGISTRAR_PII_KEYS",
     "<data-dir>/keys", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_path(v, "expected a directory", s.pii.keys_dir);
     }},
    {"pii-key-id", "ID",
     "the key that encrypts new phone numbers (and the target of `keys rotate`); the others only decrypt",
     "the newest (greatest id)", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v.empty() || v.size() > 64 || v.front() == '.' ||
           !std::all_of(v.begin(), v.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'; }))
         return "expected 1 to 64 of [A-Za-z0-9_.-], not starting with '.'";
       s.pii.key_id = v;
       return std::nullopt;
     }},
    {"retain-sent-events", "SECONDS",
     "sent outbox rows are deleted this long after they were sent (0: kept forever; pending rows never are)",
     "604800 (7 days)", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_seconds(v, 0, kMaxRetentionSeconds, s.retention.sent_events);
     }},
    {"retain-sent-events-count", "N", "at most this many sent outbox rows are kept, the newest (0: no limit)", "0",
     false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_uint(v, 0, 1'000'000'000, s.retention.sent_events_count);
     }},
    {"retain-processed-events", "SECONDS",
     "consumers' processed-event records (what makes a redelivered event harmless) are deleted this long after "
     "they were written, never while the event is unsent in the outbox (0: kept forever; with --amqp-url at "
     "least 86400)",
     "604800 (7 days)", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_seconds(v, 0, kMaxRetentionSeconds, s.retention.processed_events);
     }},
    {"retain-messages", "SECONDS",
     "files of the development mail spool (<data-dir>/spool/mail, the sent marks of messages) are deleted this "
     "long after they were written (0: kept forever; same floor as --retain-processed-events)",
     "604800 (7 days)", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_seconds(v, 0, kMaxRetentionSeconds, s.retention.messages);
     }},
    {"retention-interval", "SECONDS", "time between two retention sweeps (1 to 86400)", "60", false,
     [](const std::string& v, Settings& s, const Context&) { return set_seconds(v, 1, 86400, s.retention.interval); }},
    {"retention-batch", "N", "rows (or files) a retention sweep deletes per write transaction (1 to 10000)", "500",
     false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 10'000, s.retention.batch); }},
    {"audit-log-max-bytes", "BYTES", "audit.jsonl is rotated before it would grow past this (0: never; else ≥ 4096)",
     "67108864 (64 MiB)", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v == "0") {
         s.retention.audit_max_bytes = 0;
         return std::nullopt;
       }
       return set_uint(v, 4096, std::uint64_t{1} << 50, s.retention.audit_max_bytes);
     }},
    {"audit-log-keep", "N", "rotated audit files kept (audit.jsonl.1 … .N; 1 to 1000)", "5", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 1000, s.retention.audit_keep); }},
    {"messages-max-bytes", "BYTES",
     "<data-dir>/messages.jsonl is rotated before it would grow past this (0: never; else ≥ 4096)",
     "67108864 (64 MiB)", false,
     [](const std::string& v, Settings& s, const Context&) -> Reason {
       if (v == "0") {
         s.retention.messages_max_bytes = 0;
         return std::nullopt;
       }
       return set_uint(v, 4096, std::uint64_t{1} << 50, s.retention.messages_max_bytes);
     }},
    {"messages-keep", "N", "rotated messages files kept (messages.jsonl.1 … .N; 1 to 1000)", "5", false,
     [](const std::string& v, Settings& s, const Context&) { return set_uint(v, 1, 1000, s.retention.messages_keep); }},
    {"consumers", "LIST", "built-in consumers run inside serve, comma-separated (empty: none)", "audit,socketio", false,
     [](const std::string& v, Settings& s, const Context&) {
       return set_list(v, valid_consumer_name, "expected comma-separated names of [a-z0-9_-]", s.consumers);
     }},
};

std::string env_name(std::string_view flag) {
  std::string out = "REGISTRAR_";
  for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Where a value comes from: the highest layer that has it.

enum class Origin { flag, environment, dotenv };  // highest layer first: a smaller value wins

struct Value {
  std::string text;
  Origin origin;
};

struct Layers {
  const std::map<std::string, std::string>& flags;  // flag name (without --) → last value given
  const Environment& env;
  const DotEnv& dotenv;

  std::optional<Value> env_or_dotenv(std::string_view var) const {
    if (auto it = env.find(var); it != env.end()) return Value{it->second, Origin::environment};
    if (auto it = dotenv.find(var); it != dotenv.end()) return Value{it->second, Origin::dotenv};
    return std::nullopt;
  }
  std::optional<Value> find(std::string_view flag, std::string_view var) const {
    if (auto it = flags.find(std::string(flag)); it != flags.end()) return Value{it->second, Origin::flag};
    return env_or_dotenv(var);
  }
};

std::string origin_name(Origin origin) {
  switch (origin) {
    case Origin::flag: return "the command line";
    case Origin::environment: return "the environment";
    case Origin::dotenv: return ".env";
  }
  return "";
}

// Appended to "(REGISTRAR_X": a value from a flag needs no note, one from env or .env says so.
std::string origin_suffix(Origin origin) {
  return origin == Origin::flag ? "" : ", from " + origin_name(origin);
}

Exit usage_error(const std::string& message) { return Exit{2, "", "registrar: " + message + "\n"}; }

// An inline secret (REGISTRAR_X) or a secret file (--x-file / REGISTRAR_X_FILE), whichever sits in the
// higher layer: the general precedence holds for secrets too, so a --jwt-secret-file flag beats a
// stale REGISTRAR_JWT_SECRET in .env. Both in one layer is ambiguous, hence an error.
std::optional<Exit> choose_secret(const Layers& layers, std::string_view flag, std::string_view var,
                                  std::string& value, std::string& source, std::filesystem::path& file) {
  std::string file_var = std::string(var) + "_FILE";
  auto inline_value = layers.env_or_dotenv(var);
  auto file_value = layers.find(flag, file_var);
  if (inline_value && file_value && inline_value->origin == file_value->origin)
    return usage_error("both " + std::string(var) + " and " + file_var + " are set" +
                       " in " + origin_name(inline_value->origin) + "; set only one");
  if (inline_value && (!file_value || inline_value->origin < file_value->origin)) {
    value = inline_value->text;  // validated (length) by secrets.cpp, with the other sources
    source = inline_value->origin == Origin::environment ? "env" : ".env";
    file.clear();
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The command line.

// `only`: the settings to offer (empty: all of them).
void add_settings(CLI::App& app, std::map<std::string, std::string>& flags,
                  std::initializer_list<std::string_view> only = {}) {
  for (const auto& spec : kSpecs) {
    if (only.size() && std::find(only.begin(), only.end(), spec.name) == only.end()) continue;
    std::string name(spec.name);
    std::string description = std::string(spec.help) + "\n[env " + env_name(spec.name) + "] [default " +
                              std::string(spec.default_text) + "]";
    app.add_option_function<std::string>(
           "--" + name, [&flags, name](const std::string& v) { flags[name] = v; }, description)
        ->type_name(std::string(spec.type))
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeLast)  // wrappers may append overrides
        ->group("Settings (flag > environment > .env > default)");
  }
}

constexpr const char* kFooter = R"(Secrets never have flags (a command line is visible to other local users):
  REGISTRAR_JWT_SECRET          JWT signing key, ≥ 32 bytes; or --jwt-secret-file; else generated
                                into <data-dir>/jwt-secret on first run
  REGISTRAR_WEBHOOK_SECRET      webhook signing secret (whsec_…); or --webhook-secret-file
  REGISTRAR_PII_KEYS            keys that encrypt phone numbers, ID:BASE64[,ID:BASE64…] (32 bytes each);
                                instead of key files in --pii-keys-dir
  REGISTRAR_PII_INDEX_KEY       the blind-index key (BASE64, 32 bytes; never rotates); required with
                                REGISTRAR_PII_KEYS, else <pii-keys-dir>/blind-index.key
  REGISTRAR_SMS_WEBHOOK_SECRET  bearer secret sent to the SMS webhook; or --sms-webhook-secret-file
  REGISTRAR_ADMIN_TOKEN         admin token, ≥ 32 bytes (Socket.IO auth {token} → the `admins` room);
                                or --admin-token-file; none: admin surfaces off
  REGISTRAR_NOTIFY_TOKEN        sent as auth {token} when connecting to the --notify-url server
  REGISTRAR_ALLOW_WEAK_ARGON2=1 allow argon2 below the OWASP floor (tests and benchmarks only)
Each setting is read from its flag, else its environment variable, else ./.env, else the default.)";

// RFC 3986 scheme: a letter, then letters, digits, '+', '-' or '.'.
bool is_scheme(std::string_view s) {
  const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); };
  return !s.empty() && alpha(s[0]) && std::all_of(s.begin() + 1, s.end(), [&](char c) {
    return alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
  });
}

}  // namespace

// ---------------------------------------------------------------------------------------------

Environment capture_environment(const char* const* envp) {
  Environment env;
  for (; envp && *envp; ++envp) {
    std::string_view entry = *envp;
    auto eq = entry.find('=');
    if (eq == std::string_view::npos || eq == 0) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::string redact_url(std::string_view url) {
  auto at = url.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  // The userinfo starts after SCHEME:// when the text opens with a valid scheme; otherwise (a
  // mistyped URL such as mysql:/u:pw@h/db, which is exactly what an error message shows) everything
  // before the last '@' may hold the password, so all of it counts (found by fuzz/fuzz_dotenv_config).
  std::size_t start = 0;
  if (auto scheme_end = url.find("://"); scheme_end != std::string_view::npos &&
                                          scheme_end + 3 <= at && is_scheme(url.substr(0, scheme_end)))
    start = scheme_end + 3;
  std::string_view userinfo = url.substr(start, at - start);
  // USER:PASS keeps USER (useful when debugging); a lone token may itself be a password (some
  // Redis clients read redis://PASS@host that way), so it goes entirely.
  auto colon = userinfo.find(':');
  std::string kept = colon == std::string_view::npos ? "***" : std::string(userinfo.substr(0, colon)) + ":***";
  return std::string(url.substr(0, start)) + kept + std::string(url.substr(at));
}

std::variant<Database, std::string> parse_database_url(std::string_view url) {
  static const std::string expected = "expected sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/DB";
  Database db;
  // sqlite://PATH takes PATH verbatim (sqlite://./data/x.db, sqlite:///var/lib/x.db): a file path is
  // not a URL authority, so it is not parsed as one.
  if (boost::beast::iequals(url.substr(0, 9), "sqlite://")) {
    if (url.size() == 9) return "missing PATH; " + expected;
    db.kind = Database::Kind::sqlite;
    db.sqlite_path = std::string(url.substr(9));
    return db;
  }
  boost::urls::url_view u;
  if (auto reason = check_network_url(url, {"mysql"}, expected, u)) return *reason;
  auto segments = u.segments();
  if (segments.size() != 1 || (*segments.begin()).empty()) return "missing /DB name; " + expected;
  if (u.has_query()) return "query parameters are not supported";
  db.kind = Database::Kind::mysql;
  db.host = u.host_address();  // percent-decoded; IPv6 without its brackets
  if (u.has_port()) db.port = static_cast<std::uint16_t>(*parse_uint(u.port()));
  db.user = u.user();
  db.password = u.password();
  db.name = *segments.begin();
  return db;
}

// The TLS settings that depend on others: the defaults of --database-ssl-mode and --smtp-starttls
// (by host), and the combinations that could not do what they say.
static Reason resolve_tls_defaults(Settings& s) {
  using Mode = Database::SslMode;
  auto& db = s.database;
  if (db.kind != Database::Kind::mysql) {
    if (db.ssl_mode || !db.ca_file.empty()) return std::string("--database-ssl-mode and --database-ca-file are for mysql:// URLs");
  } else {
    if (!db.ssl_mode) db.ssl_mode = !db.ca_file.empty() || !is_loopback_host(db.host) ? Mode::verify_identity : Mode::disabled;
    if (!db.ca_file.empty() && *db.ssl_mode != Mode::verify_ca && *db.ssl_mode != Mode::verify_identity)
      return std::string("--database-ca-file needs --database-ssl-mode verify-ca or verify-identity (the CA file verifies the server)");
  }
  if ((!s.amqp.ca_file.empty() || !s.amqp.cert_file.empty() || !s.amqp.key_file.empty()) &&
      !boost::beast::iequals(std::string_view(s.amqp_url).substr(0, 8), "amqps://"))
    return std::string("--amqp-ca-file, --amqp-cert-file and --amqp-key-file need an amqps:// --amqp-url");
  if (s.amqp.cert_file.empty() != s.amqp.key_file.empty())
    return std::string("--amqp-cert-file and --amqp-key-file go together");
  if (!s.webhook.ca_file.empty() &&
      std::none_of(s.webhook.urls.begin(), s.webhook.urls.end(), [](const std::string& u) { return u.starts_with("https://"); }))
    return std::string("--webhook-ca-file needs an https:// URL in --webhook-urls");
  auto& mail = s.mail;
  if (mail.smtp_url.empty()) {
    if (mail.starttls || !mail.ca_file.empty()) return std::string("--smtp-starttls and --smtp-ca-file need --smtp-url");
    return std::nullopt;
  }
  auto url = boost::urls::parse_uri(mail.smtp_url);  // checked by --smtp-url
  if (boost::beast::iequals(url->scheme(), "smtps")) {
    if (mail.starttls) return std::string("--smtp-starttls is for smtp:// (smtps:// is TLS from the start)");
    return std::nullopt;
  }
  if (!mail.starttls) mail.starttls = !mail.ca_file.empty() || !is_loopback_host(url->host_address());
  if (!*mail.starttls && !mail.ca_file.empty())
    return std::string("--smtp-ca-file needs TLS: smtps://, or smtp:// with --smtp-starttls true");
  return std::nullopt;
}

LoadResult load_settings(int argc, const char* const* argv, const Environment& env, const DotEnv& dotenv) {
  std::map<std::string, std::string> flags;
  CLI::App app{"registrar: user registration service (HTTP API, user.registered events)", "registrar"};
  app.set_version_flag("--version", "registrar " + std::string(kVersion));
  app.require_subcommand(0, 1);
  app.footer(kFooter);
  add_settings(app, flags);

  struct Sub {
    Command command;
    const char* name;
    const char* help;
  };
  const Sub subs[] = {
      {Command::serve, "serve", "API (+ the outbox relay and the built-in consumers)"},
      {Command::relay, "relay", "outbox → RabbitMQ only"},
      {Command::consume, "consume", "one built-in consumer: consume NAME (consume --list names them)"},
      {Command::migrate, "migrate", "apply schema migrations"},
      {Command::worker, "worker", "Create_User jobs only (Bull queue on Redis: needs --redis-url)"},
  };
  std::string consumer_name;
  bool list_consumers = false;
  std::size_t rotate_batch = 200;
  std::map<CLI::App*, Command> commands;
  // `keys rotate` and `keys status`: the PII keys (adapters/sodium/pii_cipher.hpp).
  CLI::App* keys = app.add_subcommand("keys", "keys that encrypt stored phone numbers: keys rotate | keys status");
  keys->require_subcommand(1);
  keys->footer(kFooter);
  {
    CLI::App* rotate = keys->add_subcommand(
        "rotate",
        "make a new current key (or use --pii-key-id) and re-encrypt every phone under it, in batches, while the "
        "service runs; run it again to finish an interrupted rotation");
    add_settings(*rotate, flags);
    rotate->add_option("--batch-size", rotate_batch, "rows re-encrypted per transaction (1 to 10000)")
        ->check(CLI::Range(1, 10000))
        ->default_val(200);
    rotate->footer(kFooter);
    commands[rotate] = Command::keys_rotate;
    CLI::App* status = keys->add_subcommand("status", "the keys, and how many phones each one encrypts");
    add_settings(*status, flags);
    status->footer(kFooter);
    commands[status] = Command::keys_status;
  }
  // `socketio-echo`: registrar's Engine.IO server with the behaviour the protocol suites expect.
  config::SocketIoEcho echo;
  {
    CLI::App* cmd = app.add_subcommand(
        "socketio-echo", "a tool for people who write Engine.IO/Socket.IO clients: an echo server (socketio-echo --help)");
    add_settings(*cmd, flags, {"listen", "log-level", "access-log", "http-threads", "tls-cert", "tls-key"});
    cmd->footer(
        "A tool for people who write Engine.IO/Socket.IO clients: registrar's own Engine.IO server with the\n"
        "reference behaviour of the protocols' test suites. At /engine.io/ every message is echoed back as it\n"
        "came (text as text, binary as binary). At /socket.io/ the namespaces / and /custom accept anyone, emit\n"
        "`auth` with the CONNECT payload, answer `message` with `message-back` (same arguments) and acknowledge\n"
        "`message-with-ack` with its arguments. CORS for any origin. Not part of the service: `serve` never\n"
        "exposes any of it. No secrets, no data directory; --listen defaults to 127.0.0.1:3000 here. Each\n"
        "setting above is read from its flag, else its environment variable, else ./.env, else the default.");
    auto ms = [](CLI::App* c, const char* name, std::chrono::milliseconds& out, const char* help) {
      c->add_option_function<std::uint32_t>(
           name, [&out](std::uint32_t v) { out = std::chrono::milliseconds(v); }, help)
          ->check(CLI::Range(1u, 3'600'000u))
          ->type_name("MS")
          ->default_str(std::to_string(out.count()));
    };
    ms(cmd, "--ping-interval", echo.ping_interval, "the server pings every this many milliseconds");
    ms(cmd, "--ping-timeout", echo.ping_timeout, "a session without a pong this long after a ping is closed (ms)");
    ms(cmd, "--upgrade-timeout", echo.upgrade_timeout, "a WebSocket upgrade probe must complete within this (ms)");
    ms(cmd, "--connect-timeout", echo.connect_timeout,
       "a Socket.IO connection that joins no namespace within this is closed (ms)");
    cmd->add_option("--max-payload", echo.max_payload,
                    "bytes of a polling POST body or of a WebSocket message (1024 to 100000000)")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{100'000'000}))
        ->type_name("BYTES")
        ->default_str(std::to_string(echo.max_payload));
    commands[cmd] = Command::socketio_echo;
  }
  for (const auto& sub : subs) {
    CLI::App* cmd = app.add_subcommand(sub.name, sub.help);
    cmd->footer(kFooter);
    add_settings(*cmd, flags);
    commands[cmd] = sub.command;
    if (sub.command == Command::consume) {
      cmd->add_option("NAME", consumer_name, "the consumer to run");
      cmd->add_flag("--list", list_consumers, "print the built-in consumers and exit");
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version: CLI11 renders them
      std::ostringstream out, err;
      app.exit(e, out, err);
      return Exit{0, out.str(), err.str()};
    }
    return Exit{2, "", "registrar: " + std::string(e.what()) + "\nRun 'registrar --help' for usage.\n"};
  }

  auto selected = app.get_subcommands();
  if (selected.empty())
    return usage_error("a command is required: serve, worker, relay, consume NAME, migrate, keys or socketio-echo (see --help)");
  if (selected.front() == keys) selected = keys->get_subcommands();  // require_subcommand(1): one

  Loaded loaded;
  Settings& s = loaded.settings;
  s.command = commands.at(selected.front());
  s.pii.rotate_batch = rotate_batch;
  s.socketio_echo = echo;
  if (s.command == Command::consume) {
    if (list_consumers == !consumer_name.empty())
      return usage_error("consume needs exactly one of NAME or --list");
    if (!list_consumers && !valid_consumer_name(consumer_name))
      return usage_error("invalid consumer name " + quote_value(consumer_name) + ": expected [a-z0-9_-]");
    s.consumer_name = consumer_name;
    s.list_consumers = list_consumers;
  }

  Layers layers{flags, env, dotenv};
  Context context;
  if (auto weak = layers.env_or_dotenv(kAllowWeakArgon2)) {
    if (weak->text != "0" && weak->text != "1" && !weak->text.empty())
      return usage_error("invalid " + std::string(kAllowWeakArgon2) + " " + quote_value(weak->text) + " (from " +
                         origin_name(weak->origin) + "): expected 1 or 0");
    context.allow_weak_argon2 = weak->text == "1";
  }

  bool database_given = false;
  for (const auto& spec : kSpecs) {
    std::string var = env_name(spec.name);
    auto value = layers.find(spec.name, var);
    if (!value) continue;
    if (spec.name == "database-url") database_given = true;
    if (auto reason = spec.apply(value->text, s, context)) {
      auto shown = spec.is_url ? redact_url(value->text) : value->text;
      return usage_error("invalid --" + std::string(spec.name) + " " + quote_value(shown) + " (" + var +
                         origin_suffix(value->origin) + "): " + *reason);
    }
  }
  // The Node Create_User service's variables, for a deployment that replaces it in place.
  //  - PORT: the port to listen on, unless --listen / REGISTRAR_LISTEN says otherwise. The host stays
  //    the default (loopback): listening on every interface is a choice to make with --listen.
  //  - PORT_MESSAGES_USERS: the port of its Socket.IO notification server on the same host, which
  //    its worker notifies: the same here (client mode, --notify-url http://127.0.0.1:PORT), unless
  //    --notify-url / REGISTRAR_NOTIFY_URL names the server.
  //  - PORT_ENCRYPT: that service's separate encryption service. Nothing to connect to here: a note
  //    says so (passwords are hashed, phones sealed, in process).
  if (auto port = layers.env_or_dotenv("PORT_MESSAGES_USERS");
      port && !layers.find("notify-url", env_name("notify-url")) &&
      (s.command == Command::serve || s.command == Command::worker)) {
    std::uint16_t p = 0;
    if (set_uint(port->text, 1, 65535, p))
      return usage_error("invalid PORT_MESSAGES_USERS " + quote_value(port->text) + " (from " + origin_name(port->origin) +
                         "): expected a port number 1 to 65535");
    s.notify.url = "http://127.0.0.1:" + std::to_string(p);
    loaded.notes.push_back("Create_User outcomes are also emitted to the notification server at " + s.notify.url +
                           " from PORT_MESSAGES_USERS (the Node service's variable; set --notify-url to name another)");
  }
  if (!layers.find("listen", env_name("listen"))) {
    if (auto port = layers.env_or_dotenv("PORT")) {
      std::uint16_t p = 0;
      if (set_uint(port->text, 1, 65535, p))
        return usage_error("invalid PORT " + quote_value(port->text) + " (from " + origin_name(port->origin) +
                           "): expected a port number 1 to 65535");
      s.listen.port = p;
      loaded.notes.push_back("listening on port " + port->text + " from PORT (the Node service's variable); host " +
                             s.listen.host + " (set --listen HOST:PORT to choose the interface)");
    }
  }
  // socketio-echo listens where the protocol suites look for their server unless told otherwise.
  if (s.command == Command::socketio_echo && !layers.find("listen", env_name("listen")) && !layers.env_or_dotenv("PORT"))
    s.listen.port = 3000;
  if (layers.env_or_dotenv("PORT_ENCRYPT")) {
    loaded.notes.push_back(
        "PORT_ENCRYPT is set (the Node service's encryption service): registrar needs none — passwords are hashed "
        "with argon2id and phone numbers sealed with XChaCha20-Poly1305 inside registrar; the variable is ignored");
  }

  if (!database_given) {
    s.database.kind = Database::Kind::sqlite;
    s.database.sqlite_path = s.data_dir / "registrar.db";
  }

  if (auto exit = choose_secret(layers, "jwt-secret-file", "REGISTRAR_JWT_SECRET", s.jwt.secret,
                                s.jwt.secret_source, s.jwt.secret_file))
    return *exit;
  std::string webhook_source;
  if (auto exit = choose_secret(layers, "webhook-secret-file", "REGISTRAR_WEBHOOK_SECRET", s.webhook.secret,
                                webhook_source, s.webhook.secret_file))
    return *exit;
  if (auto v = layers.env_or_dotenv("REGISTRAR_PII_KEYS")) s.pii.inline_keys = v->text;  // checked by the keyring
  if (auto v = layers.env_or_dotenv("REGISTRAR_PII_INDEX_KEY")) s.pii.inline_index_key = v->text;
  if (s.pii.keys_dir.empty()) s.pii.keys_dir = s.data_dir / "keys";
  std::string sms_secret_source;
  if (auto exit = choose_secret(layers, "sms-webhook-secret-file", "REGISTRAR_SMS_WEBHOOK_SECRET", s.sms.webhook_secret,
                                sms_secret_source, s.sms.webhook_secret_file))
    return *exit;
  std::string admin_source;
  if (auto exit = choose_secret(layers, "admin-token-file", "REGISTRAR_ADMIN_TOKEN", s.admin_token, admin_source,
                                s.admin_token_file))
    return *exit;
  if (auto v = layers.env_or_dotenv("REGISTRAR_NOTIFY_TOKEN")) {
    if (v->text.empty() || has_control_chars(v->text))
      return usage_error("invalid REGISTRAR_NOTIFY_TOKEN (from " + origin_name(v->origin) + "): expected printable text");
    s.notify.token = v->text;
  }
  if (s.codes.layout == Codes::Layout::node && s.redis_url.empty())
    return usage_error("--code-layout node needs --redis-url (REGISTRAR_REDIS_URL): the codes are in that Redis");
  if (s.http.tls_cert.empty() != s.http.tls_key.empty())
    return usage_error(s.http.tls_cert.empty() ? "--tls-key needs --tls-cert (REGISTRAR_TLS_CERT): the certificate it belongs to"
                                               : "--tls-cert needs --tls-key (REGISTRAR_TLS_KEY): the certificate's private key");
  if (!s.mail.smtp_url.empty() && s.mail.from.empty())
    return usage_error("--smtp-url needs --mail-from (REGISTRAR_MAIL_FROM)");
  for (auto [name, value] : {std::pair{"--retain-processed-events", s.retention.processed_events},
                             std::pair{"--retain-messages", s.retention.messages}}) {
    if (value.count() == 0) continue;
    if (!s.amqp_url.empty() && value.count() < kRedeliveryFloorAmqp)
      return usage_error(std::string(name) + " must be 0 or at least " + std::to_string(kRedeliveryFloorAmqp) +
                         " with --amqp-url: RabbitMQ can redeliver an event as long as it can wait in a queue, and "
                         "the record is what makes the redelivery harmless");
    if (value.count() < kRedeliveryFloorInProcess)
      loaded.notes.push_back(std::string(name) + " below " + std::to_string(kRedeliveryFloorInProcess) +
                             " s: a relay whose lease ran out while it delivered could deliver an event again "
                             "after its record is gone (for tests only)");
  }
  if (auto reason = resolve_tls_defaults(s)) return usage_error(*reason);

  if (s.argon2.memory_kib < kArgon2MemoryFloorKib || s.argon2.iterations < kArgon2IterationsFloor)
    loaded.notes.push_back("argon2 below the OWASP floor (m=" + std::to_string(s.argon2.memory_kib) +
                           " KiB, t=" + std::to_string(s.argon2.iterations) + ") because " +
                           std::string(kAllowWeakArgon2) + "=1: for tests and benchmarks only");
  return loaded;
}

}  // namespace registrar::config
