#pragma once
// A `.env` file: KEY=value lines that feed settings below the real environment (flag > environment >
// .env > default).
//
// Hand-written rather than a library because Debian packages no C++ dotenv library, and the format
// we accept is small enough to specify here and test completely:
//   - blank lines and lines starting with `#` are ignored; an optional `export ` prefix is allowed;
//   - KEY is [A-Za-z_][A-Za-z0-9_]*; spaces around `=` are allowed;
//   - 'single quotes' keep their content literally;
//   - "double quotes" understand \n, \", \\ (any other backslash is kept as written, so Windows paths
//     survive); text after the closing quote may only be a ` # comment`;
//   - unquoted values are trimmed, and a `#` preceded by whitespace starts a comment (as in a shell:
//     KEY= #c is empty, KEY=#c and KEY=a#b keep their '#');
//   - no ${VAR} expansion and no multi-line values: what you see is the value;
//   - a key given twice takes its last value.
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>

namespace registrar::dotenv {

using Map = std::map<std::string, std::string, std::less<>>;

struct ParseResult {
  Map values;
  std::string error;  // empty on success, else "<origin>:<line>: <reason>"
  bool ok() const { return error.empty(); }
};

// Parses `text`; `origin` names the file in error messages.
ParseResult parse(std::string_view text, std::string_view origin = ".env");

// Reads and parses a file. A missing file is not an error (empty map): .env is optional.
ParseResult load_file(const std::filesystem::path& path);

}  // namespace registrar::dotenv
