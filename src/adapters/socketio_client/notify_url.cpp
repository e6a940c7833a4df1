#include "adapters/socketio_client/notify_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <stdexcept>

namespace registrar::adapters::socketio_client {

namespace {

std::invalid_argument bad(std::string_view message) { return std::invalid_argument(std::string(message)); }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

NotifyUrl parse_notify_url(std::string_view text) {
  static constexpr std::string_view expected = "expected http[s]://HOST[:PORT][/NAMESPACE] or ws[s]://…";
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw bad(expected);
  const boost::urls::url_view u = *parsed;
  NotifyUrl out;
  const std::string_view scheme = u.scheme();
  if (iequals(scheme, "https") || iequals(scheme, "wss")) {
    out.tls = true;
  } else if (!iequals(scheme, "http") && !iequals(scheme, "ws")) {
    throw bad(expected);
  }
  if (u.has_userinfo()) throw bad("user:password@ is not supported (a token goes in REGISTRAR_NOTIFY_TOKEN)");
  if (u.has_fragment()) throw bad("unexpected #fragment");
  out.host = u.host_address();  // percent-decoded; IPv6 without brackets
  if (out.host.empty()) throw bad(std::string("missing host; ") + std::string(expected));
  if (u.has_port()) {
    const std::string_view p = u.port();
    unsigned value = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
    if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || value == 0 || value > 65535)
      throw bad("port must be from 1 to 65535");
    out.port = std::string(p);
  } else {
    out.port = out.tls ? "443" : "80";
  }
  out.host_header = std::string(u.encoded_host_and_port());
  const std::string path = u.path();
  if (!path.empty() && path != "/") {
    out.nsp = path;
    if (out.nsp.size() > 1 && out.nsp.back() == '/') out.nsp.pop_back();  // /admin/ is /admin
  }
  if (u.has_query()) out.query = std::string(u.encoded_query());
  out.display = std::string(out.tls ? (iequals(scheme, "wss") ? "wss" : "https") : (iequals(scheme, "ws") ? "ws" : "http")) +
                "://" + out.host_header + (out.nsp == "/" ? "" : out.nsp);
  return out;
}

std::string normalize_engine_path(std::string_view path) {
  if (path.empty() || path.front() != '/') throw bad("expected a path starting with / (e.g. /socket.io/)");
  for (unsigned char c : path)
    if (c <= 0x20 || c == 0x7f || c == '?' || c == '#') throw bad("expected a path without spaces, ? or #");
  std::string out(path);
  if (out.back() != '/') out += '/';  // socket.io-client's addTrailingSlash default
  return out;
}

}  // namespace registrar::adapters::socketio_client
