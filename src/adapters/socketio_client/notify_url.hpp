#pragma once
// The URL of a Socket.IO notification server, read as socket.io-client reads `io(url)`: http:// and
// ws:// are the same server in plain text, https:// and wss:// over TLS; the URL's path names the
// namespace ("" and "/" the main one), its query goes along with the handshake. The Engine.IO
// path (/socket.io/) is separate, as in socket.io-client's `path` option.
#include <string>
#include <string_view>

namespace registrar::adapters::socketio_client {

struct NotifyUrl {
  bool tls = false;
  std::string host;         // a name or an IP address (IPv6 without brackets)
  std::string port;         // explicit, or 80 / 443
  std::string host_header;  // host[:port] as the URL spells it
  std::string nsp = "/";    // the Socket.IO namespace
  std::string query;        // percent-encoded, without '?'; appended to the handshake's
  std::string display;      // scheme://host[:port][/nsp], for messages (never the query: it may hold a key)
};

// Throws std::invalid_argument with a message that never quotes the query.
NotifyUrl parse_notify_url(std::string_view text);

// The Engine.IO path as given (--notify-path): "/socket.io/" style, starting with '/'. Throws
// std::invalid_argument.
std::string normalize_engine_path(std::string_view path);

}  // namespace registrar::adapters::socketio_client
