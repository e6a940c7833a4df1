#include "adapters/redis/resp.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

namespace registrar::adapters::redis::resp {

namespace {

template <class Strings>
void append_command_of(std::string& out, const Strings& args) {
  std::size_t size = 16;
  for (const auto& a : args) size += a.size() + 16;
  out.reserve(out.size() + size);
  out += '*';
  out += std::to_string(args.size());
  out += "\r\n";
  for (const auto& a : args) {
    out += '$';
    out += std::to_string(a.size());
    out += "\r\n";
    out.append(a.data(), a.size());
    out += "\r\n";
  }
}

// A RESP integer as Redis writes it: "0", or an optional '-' and digits without a leading zero,
// within long long. Anything else (a '+', leading zeros, "-0", spaces, overflow) is refused.
std::optional<long long> parse_integer(std::string_view s) {
  const bool negative = !s.empty() && s.front() == '-';
  std::string_view digits = negative ? s.substr(1) : s;
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  if (digits.front() == '0' && (digits.size() > 1 || negative)) return std::nullopt;
  unsigned long long value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');  // 19 digits fit in 64 unsigned bits
  }
  constexpr auto max = static_cast<unsigned long long>(std::numeric_limits<long long>::max());
  if (negative) {
    if (value > max + 1) return std::nullopt;
    return value == max + 1 ? std::numeric_limits<long long>::min() : -static_cast<long long>(value);
  }
  if (value > max) return std::nullopt;
  return static_cast<long long>(value);
}

}  // namespace

void append_command(std::string& out, std::span<const std::string_view> args) { append_command_of(out, args); }
void append_command(std::string& out, std::span<const std::string> args) { append_command_of(out, args); }

void append_reply(std::string& out, const Reply& r) {
  switch (r.type) {
    case Reply::Type::nil: out += "$-1\r\n"; return;
    case Reply::Type::status: out += '+'; out += r.str; out += "\r\n"; return;
    case Reply::Type::error: out += '-'; out += r.str; out += "\r\n"; return;
    case Reply::Type::integer: out += ':'; out += std::to_string(r.integer); out += "\r\n"; return;
    case Reply::Type::bulk:
      out += '$';
      out += std::to_string(r.str.size());
      out += "\r\n";
      out += r.str;
      out += "\r\n";
      return;
    case Reply::Type::array:
      out += '*';
      out += std::to_string(r.elements.size());
      out += "\r\n";
      for (const auto& e : r.elements) append_reply(out, e);
      return;
  }
}

std::string encode_reply(const Reply& reply) {
  std::string out;
  append_reply(out, reply);
  return out;
}

Parser::Parser(Limits limits) : limits_(limits) {}

void Parser::feed(std::string_view bytes) {
  // Drop what was consumed first: one move per read, not one per reply.
  if (pos_ > 0) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  buf_.append(bytes);
}

void Parser::fail(const std::string& why) {
  failed_ = "RESP: " + why;
  stack_.clear();
  throw ProtocolError(failed_);
}

std::optional<std::string_view> Parser::line_at(std::size_t from) {
  std::size_t start = std::max(scan_, from);
  const std::size_t limit = from + limits_.max_line;  // where the CR of the longest allowed line sits
  for (std::size_t i = start; i + 1 < buf_.size(); ++i) {
    if (buf_[i] == '\r' && buf_[i + 1] == '\n') return std::string_view(buf_).substr(from, i - from);
    if (i >= limit) fail("a line longer than " + std::to_string(limits_.max_line) + " bytes");
  }
  if (buf_.size() > limit + 1) fail("a line longer than " + std::to_string(limits_.max_line) + " bytes");
  // Resume at the last byte next time: it may be the CR of a CR LF split across reads.
  scan_ = buf_.size() > from ? buf_.size() - 1 : from;
  return std::nullopt;
}

std::optional<Reply> Parser::next() {
  if (!failed_.empty()) throw ProtocolError(failed_);
  for (;;) {
    if (pos_ >= buf_.size()) return std::nullopt;
    const char type = buf_[pos_];
    if (type != '+' && type != '-' && type != ':' && type != '$' && type != '*')
      fail("unknown reply type byte " + std::to_string(static_cast<unsigned char>(type)));
    const auto line = line_at(pos_ + 1);
    if (!line) return std::nullopt;
    const std::size_t after_line = pos_ + 1 + line->size() + 2;

    Reply value;
    std::size_t next_pos = after_line;
    switch (type) {
      case '+':
      case '-':
        value.type = type == '+' ? Reply::Type::status : Reply::Type::error;
        value.str.assign(*line);
        break;
      case ':': {
        const auto n = parse_integer(*line);
        if (!n) fail("an integer reply that is not a canonical 64-bit integer");
        value.type = Reply::Type::integer;
        value.integer = *n;
        break;
      }
      case '$': {
        const auto n = parse_integer(*line);
        if (!n || *n < -1) fail("an invalid bulk string length");
        if (*n == -1) break;  // nil
        const auto len = static_cast<unsigned long long>(*n);
        if (len > limits_.max_bulk)
          fail("a bulk string of " + std::to_string(len) + " bytes (limit " + std::to_string(limits_.max_bulk) + ")");
        // Nothing is consumed until the whole payload is here: the header is read again then.
        if (buf_.size() - after_line < len + 2) return std::nullopt;
        if (buf_[after_line + len] != '\r' || buf_[after_line + len + 1] != '\n')
          fail("a bulk string not followed by CR LF");
        value.type = Reply::Type::bulk;
        value.str.assign(buf_, after_line, len);
        next_pos = after_line + len + 2;
        break;
      }
      case '*': {
        const auto n = parse_integer(*line);
        if (!n || *n < -1) fail("an invalid array length");
        if (*n == -1) break;  // nil
        const auto count = static_cast<unsigned long long>(*n);
        if (count > limits_.max_array)
          fail("an array of " + std::to_string(count) + " elements (limit " + std::to_string(limits_.max_array) + ")");
        value.type = Reply::Type::array;
        // An empty array counts as a level too (found by fuzz/fuzz_resp: the limit said so).
        if (stack_.size() >= limits_.max_depth)
          fail("arrays nested deeper than " + std::to_string(limits_.max_depth));
        if (count == 0) break;
        if (++elements_ > limits_.max_elements)
          fail("a reply of more than " + std::to_string(limits_.max_elements) + " values");
        // Room for what the server says, up to a bound: the elements still have to arrive.
        value.elements.reserve(static_cast<std::size_t>(std::min<unsigned long long>(count, 1024)));
        stack_.push_back(Frame{std::move(value), static_cast<std::size_t>(count)});
        pos_ = scan_ = after_line;
        continue;
      }
    }
    if (++elements_ > limits_.max_elements)
      fail("a reply of more than " + std::to_string(limits_.max_elements) + " values");
    pos_ = scan_ = next_pos;

    // Into the array being read, closing every array this value completes.
    for (;;) {
      if (stack_.empty()) {
        elements_ = 0;
        return value;
      }
      Frame& top = stack_.back();
      top.array.elements.push_back(std::move(value));
      if (top.array.elements.size() < top.expected) break;
      value = std::move(top.array);
      stack_.pop_back();
    }
  }
}

}  // namespace registrar::adapters::redis::resp
