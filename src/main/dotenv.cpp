#include "main/dotenv.hpp"

#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

namespace registrar::dotenv {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_key_start(char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
bool is_key_char(char c) { return is_key_start(c) || (c >= '0' && c <= '9'); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// What may follow a closing quote: nothing, or whitespace then a comment.
bool only_comment_left(std::string_view rest) {
  rest = trim(rest);
  return rest.empty() || rest.front() == '#';
}

// Parses the value part of one line (everything after `=`); returns the reason on failure.
std::optional<std::string> parse_value(std::string_view text, std::string& out) {
  std::string_view raw = trim(text);
  if (raw.empty()) return std::nullopt;

  if (raw.front() == '\'') {
    auto close = raw.find('\'', 1);
    if (close == std::string_view::npos) return "unterminated single-quoted value";
    if (!only_comment_left(raw.substr(close + 1))) return "unexpected text after closing quote";
    out = raw.substr(1, close - 1);
    return std::nullopt;
  }

  if (raw.front() == '"') {
    for (std::size_t i = 1; i < raw.size(); ++i) {
      char c = raw[i];
      if (c == '"') {
        if (!only_comment_left(raw.substr(i + 1))) return "unexpected text after closing quote";
        return std::nullopt;
      }
      if (c == '\\' && i + 1 < raw.size()) {
        char next = raw[i + 1];
        if (next == 'n') { out += '\n'; ++i; continue; }
        if (next == '"' || next == '\\') { out += next; ++i; continue; }
      }
      out += c;  // includes an unknown escape's backslash, kept literally
    }
    return "unterminated double-quoted value";
  }

  // Unquoted: as in a shell, a '#' after whitespace starts a comment (KEY= #c is empty), one right
  // after '=' or inside a word does not (KEY=#c, KEY=a#b keep theirs).
  for (std::size_t i = 1; i < text.size(); ++i) {
    if (text[i] == '#' && is_space(text[i - 1])) {
      text = text.substr(0, i);
      break;
    }
  }
  out = trim(text);
  return std::nullopt;
}

}  // namespace

ParseResult parse(std::string_view text, std::string_view origin) {
  ParseResult result;
  std::size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    ++line_no;
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files

    auto fail = [&](std::string_view reason) {
      std::ostringstream msg;
      msg << origin << ':' << line_no << ": " << reason;
      return ParseResult{{}, msg.str()};
    };

    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("export") && line.size() > 6 && is_space(line[6])) line = trim(line.substr(6));

    std::size_t k = 0;
    if (k < line.size() && is_key_start(line[k]))
      while (k < line.size() && is_key_char(line[k])) ++k;
    std::string_view key = line.substr(0, k);
    std::string_view rest = trim(line.substr(k));
    if (key.empty() || rest.empty() || rest.front() != '=') return fail("expected KEY=VALUE");

    std::string value;
    if (auto reason = parse_value(rest.substr(1), value)) return fail(*reason);
    result.values.insert_or_assign(std::string(key), std::move(value));
  }
  return result;
}

ParseResult load_file(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return {};  // .env is optional
  std::ifstream in(path, std::ios::binary);
  if (!in) return {{}, path.string() + ": cannot open for reading"};
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return {{}, path.string() + ": read error"};
  return parse(text, path.string());
}

}  // namespace registrar::dotenv
