#pragma once
// Turns the command line, the environment and a .env file into validated Settings, once, at start.
// Precedence: flag > environment variable > .env > default. Each setting has a flag --NAME and an
// environment variable REGISTRAR_NAME (upper case, '-' → '_'); secrets have no flags at all, since a
// command line is visible to every local user (ps, /proc/*/cmdline).
//
// Pure: no getenv/setenv, no files read or written (secrets.hpp does that), so tests inject everything.
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "main/config.hpp"
#include "main/dotenv.hpp"

namespace registrar::config {

inline constexpr std::string_view kVersion = "0.1.0";  // keep in step with project(VERSION) in CMakeLists.txt

// The process environment, captured once in main (see capture_environment) and passed down.
using Environment = std::map<std::string, std::string, std::less<>>;
using DotEnv = dotenv::Map;

// Copies a NAME=VALUE array (main's `environ`) into an Environment.
Environment capture_environment(const char* const* envp);

// Start the command with these settings. `notes` are warnings for the log (e.g. weak argon2 allowed).
struct Loaded {
  Settings settings;
  std::vector<std::string> notes;
};

// Do not start: print `out` to stdout and `err` to stderr, then exit with `code`
// (0 for --help/--version, 2 for usage and invalid settings, 1 for runtime failures).
struct Exit {
  int code = 0;
  std::string out;
  std::string err;
};

using LoadResult = std::variant<Loaded, Exit>;

LoadResult load_settings(int argc, const char* const* argv, const Environment& env, const DotEnv& dotenv);

// Parses a --database-url: sqlite://PATH or mysql://USER:PASS@HOST[:PORT]/NAME. On failure returns
// the reason (never containing the URL's password).
std::variant<Database, std::string> parse_database_url(std::string_view url);

// The URL with its password hidden (user:***@host; a userinfo without ':' becomes ***@host), safe for
// logs and errors. Works on malformed URLs too: all before the last '@' after "://" counts as userinfo.
std::string redact_url(std::string_view url);

}  // namespace registrar::config
