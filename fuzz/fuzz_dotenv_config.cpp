// The settings path: a .env file (dotenv::parse) and the command line → load_settings() with every
// value's validation (listen address, URLs through Boost.URL, numbers, lists, names, secrets'
// precedence), then the inline JWT key's checks (resolve_jwt_secret for a REGISTRAR_JWT_SECRET given
// in .env or the environment: no file is read or written), and the
// parsers of single values: parse_database_url, redact_url, parse_smtp_url, decode_webhook_secret.
//
// Input: byte 0 = flags (bit 0: canary secrets in the environment; bit 1: command-line arguments
// follow); the rest is the .env text, then (bit 1) a NUL and NUL-separated arguments after
// "registrar".
//
// Invariants (FUZZ_CHECK):
//  - dotenv: an error is "<origin>:<line>: <reason>" with no values; the keys of a success are
//    [A-Za-z_][A-Za-z0-9_]*; written back as KEY="escaped value" lines, the values parse back the
//    same (what the parser accepts is a format we can also produce);
//  - load_settings never throws, and exits only with 0 (--help/--version) or 2 with the message on
//    stderr; our own messages are one line; no secret value (canaries in the environment) appears in
//    any output; a URL setting's password never appears in its error; loaded settings are in their
//    documented ranges;
//  - redact_url is idempotent and hides the userinfo password; parse_database_url gives a mysql
//    host and database name when it accepts a mysql:// URL; parse_smtp_url's errors never contain
//    the password; a webhook secret is accepted only in the base64 alphabet, as ≥ 24 bytes.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <vector>

#include "adapters/consumers/webhook_consumer.hpp"
#include "adapters/mail/smtp_mail_sender.hpp"
#include "main/config_loader.hpp"
#include "main/dotenv.hpp"
#include "main/secrets.hpp"
#include "support/check.hpp"

using namespace registrar;

namespace {

constexpr std::string_view kCanaryJwt = "canary-jwt-secret-5c1d0f7e9a2b4c6d8e0f1a3b5c7d9e1f";
constexpr std::string_view kCanaryWebhook = "whsec_Y2FuYXJ5LXdlYmhvb2stc2VjcmV0LTEyMzQ1Njc4";

bool valid_key(std::string_view k) {
  if (k.empty() || !((k[0] >= 'A' && k[0] <= 'Z') || (k[0] >= 'a' && k[0] <= 'z') || k[0] == '_')) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

// The writer side of the format dotenv.hpp specifies: double quotes, with \\, \" and \n escaped.
std::string write_dotenv(const dotenv::Map& values) {
  std::string out;
  for (const auto& [key, value] : values) {
    out += key + "=\"";
    for (char c : value) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += "\"\n";
  }
  return out;
}

// The password in a URL's userinfo, as written (between the first ':' after "://" and the last '@').
std::string url_password(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == url.npos) return {};
  const auto at = url.rfind('@');
  if (at == url.npos || at < scheme_end + 3) return {};
  const std::string_view userinfo = url.substr(scheme_end + 3, at - scheme_end - 3);
  const auto colon = userinfo.find(':');
  return colon == userinfo.npos ? std::string() : std::string(userinfo.substr(colon + 1));
}

// How many times `needle` occurs in `haystack`, overlaps included.
std::size_t occurrences(std::string_view haystack, std::string_view needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != haystack.npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

// True if `text` (made from the URL `url`) still holds the userinfo's ":PASSWORD@": as many of them
// as `url` has. Not "any of them": the same text may occur elsewhere by chance, e.g. ":" + "//user"
// + "@" in "smtp://user@" (found by this target).
bool shows_password(std::string_view text, std::string_view url, std::string_view password) {
  if (password == "***") return false;  // the mask itself (a value holding an already redacted URL)
  const std::string needle = ":" + std::string(password) + "@";
  return occurrences(text, needle) >= occurrences(url, needle);
}

bool contains(std::string_view haystack, std::string_view needle) {
  return !needle.empty() && haystack.find(needle) != haystack.npos;
}

void check_no_secret(std::string_view text, const std::vector<std::string>& secrets) {
  for (const auto& s : secrets) FUZZ_CHECK(!contains(text, s), "a secret value appears in the output");
}

void check_values(const dotenv::Map& values) {
  for (const auto& [key, value] : values) {
    const std::string redacted = config::redact_url(value);
    FUZZ_CHECK(config::redact_url(redacted) == redacted, "redact_url is not idempotent");
    const std::string password = url_password(value);
    if (!password.empty()) FUZZ_CHECK(!shows_password(redacted, value, password), "redact_url kept the password");

    const auto db = config::parse_database_url(value);
    if (const auto* d = std::get_if<config::Database>(&db)) {
      if (d->kind == config::Database::Kind::mysql)
        FUZZ_CHECK(!d->host.empty() && !d->name.empty(), "a mysql URL accepted without host or database");
      else
        FUZZ_CHECK(!d->sqlite_path.empty(), "a sqlite URL accepted without a path");
    } else if (!password.empty()) {
      FUZZ_CHECK(!shows_password(std::get<std::string>(db), value, password), "a database URL error shows the password");
    }

    try {
      adapters::mail::parse_smtp_url(value);
    } catch (const std::invalid_argument& e) {
      if (!password.empty())
        FUZZ_CHECK(!shows_password(e.what(), value, password), "an smtp URL error shows the password");
    }

    try {
      FUZZ_CHECK(adapters::consumers::decode_webhook_secret(value).size() >= 24, "a webhook key under 24 bytes");
      const std::string_view b64 = std::string_view(value).starts_with("whsec_") ? std::string_view(value).substr(6) : value;
      FUZZ_CHECK(std::all_of(b64.begin(), b64.end(),
                             [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '='; }),
                 "a webhook secret with bytes outside the base64 alphabet was accepted");
    } catch (const std::invalid_argument& e) {
      if (value.size() >= 24) FUZZ_CHECK(!contains(e.what(), value), "a webhook secret error shows the secret");
    }
  }
}

// Which setting an error of ours is about: "(REGISTRAR_X" in the message.
std::string variable_of(std::string_view err) {
  const auto start = err.find("(REGISTRAR_");
  if (start == err.npos) return {};
  auto end = err.find_first_of(",)", start);
  return std::string(err.substr(start + 1, end == err.npos ? err.npos : end - start - 1));
}

void check_settings(const config::Settings& s) {
  FUZZ_CHECK(!s.listen.host.empty(), "an empty listen host");
  if (s.database.kind == config::Database::Kind::sqlite)
    FUZZ_CHECK(!s.database.sqlite_path.empty(), "an sqlite database without a path");
  FUZZ_CHECK(s.http.body_limit >= 1024 && s.http.body_limit <= 1024 * 1024, "body limit out of range");
  FUZZ_CHECK(s.amqp.prefetch >= 1 && s.amqp.max_attempts >= 1, "prefetch or max attempts of 0");
  FUZZ_CHECK(s.jwt.access_ttl.count() >= 60 && s.jwt.access_ttl.count() <= 86400, "access token TTL out of range");
  if (s.database.kind == config::Database::Kind::mysql)
    FUZZ_CHECK(!s.database.host.empty() && !s.database.name.empty(), "a mysql database without host or name");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view text = rest;
  std::vector<std::string> args{"registrar", "serve"};
  if (flags & 2) {
    const auto nul = rest.find('\0');
    text = rest.substr(0, nul);
    args = {"registrar"};
    if (nul != rest.npos) {
      std::string_view tail = rest.substr(nul + 1);
      while (args.size() < 24) {
        const auto end = tail.find('\0');
        args.emplace_back(tail.substr(0, end));
        if (end == tail.npos) break;
        tail.remove_prefix(end + 1);
      }
    }
  }

  // 1. The .env text.
  const dotenv::ParseResult parsed = dotenv::parse(text, ".env");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.values.empty(), "an error with values");
    FUZZ_CHECK(parsed.error.starts_with(".env:"), "an error without its origin");
    const auto colon = parsed.error.find(": ", 5);
    FUZZ_CHECK(colon != std::string::npos && colon > 5 &&
                   std::all_of(parsed.error.begin() + 5, parsed.error.begin() + static_cast<long>(colon),
                               [](char c) { return c >= '0' && c <= '9'; }),
               "an error that is not .env:<line>: <reason>");
    return 0;
  }
  for (const auto& [key, value] : parsed.values) FUZZ_CHECK(valid_key(key), "a key outside [A-Za-z_][A-Za-z0-9_]*");
  const dotenv::ParseResult again = dotenv::parse(write_dotenv(parsed.values), "again");
  FUZZ_CHECK(again.ok() && again.values == parsed.values, "values written back as .env do not parse to the same");
  check_values(parsed.values);

  // 2. The settings, from flags + environment + this .env.
  config::Environment env;
  std::vector<std::string> secrets;
  if (flags & 1) {
    env["REGISTRAR_JWT_SECRET"] = kCanaryJwt;
    env["REGISTRAR_WEBHOOK_SECRET"] = kCanaryWebhook;
    secrets = {std::string(kCanaryJwt), std::string(kCanaryWebhook)};
  }
  // A canary the input itself contains (libFuzzer learns strings from comparisons) may legitimately
  // be echoed as some other setting's value: only the others count.
  std::erase_if(secrets, [&](const std::string& c) { return rest.find(c) != rest.npos; });

  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  config::LoadResult result = config::load_settings(static_cast<int>(args.size()), argv.data(), env, parsed.values);

  if (auto* exit = std::get_if<config::Exit>(&result)) {
    FUZZ_CHECK(exit->code == 0 || exit->code == 2, "load_settings exited with a code other than 0 or 2");
    check_no_secret(exit->out, secrets);
    check_no_secret(exit->err, secrets);
    if (exit->code == 0) return 0;  // --help / --version
    FUZZ_CHECK(exit->out.empty() && exit->err.starts_with("registrar: ") && exit->err.ends_with("\n"),
               "a usage error not on stderr as 'registrar: …\\n'");
    if (exit->err.find("Run 'registrar --help'") == std::string::npos)  // not a CLI11 parse error
      FUZZ_CHECK(std::count(exit->err.begin(), exit->err.end(), '\n') == 1, "a settings error over several lines");
    const std::string var = variable_of(exit->err);
    for (const char* url_var : {"REGISTRAR_DATABASE_URL", "REGISTRAR_AMQP_URL", "REGISTRAR_SMTP_URL"})
      if (var == url_var)
        if (auto it = parsed.values.find(var); it != parsed.values.end())
          if (const std::string pw = url_password(it->second); !pw.empty())
            FUZZ_CHECK(!shows_password(exit->err, it->second, pw), "a URL setting's error shows its password");
    return 0;
  }

  auto& loaded = std::get<config::Loaded>(result);
  check_settings(loaded.settings);
  for (const auto& note : loaded.notes) check_no_secret(note, secrets);

  // 3. The inline JWT key (REGISTRAR_JWT_SECRET from env or .env): its length check reads no file.
  //    Secrets from files or the data dir are left alone here.
  config::Settings& s = loaded.settings;
  if (s.jwt.secret_source == "env" || s.jwt.secret_source == ".env") {
    std::vector<std::string> notes;
    if (auto exit = config::resolve_jwt_secret(s, notes)) {
      FUZZ_CHECK(exit->code == 2, "a bad inline secret did not exit with 2");
      check_no_secret(exit->err, secrets);
      check_no_secret(exit->out, secrets);
    } else {
      FUZZ_CHECK(s.jwt.secret.size() >= config::kMinSecretBytes, "a JWT secret under 32 bytes accepted");
    }
    for (const auto& note : notes) check_no_secret(note, secrets);
  }
  return 0;
}
