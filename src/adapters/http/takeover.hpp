#pragma once
// A connection taken over by a handler after its request passed every check and middleware: the
// HTTP session stops reading requests and hands the stream (and any bytes already read past the
// request) to the handler, which then owns the connection's timeouts (e.g. Beast's WebSocket
// timeouts) and its end. The connection stays in the server's registry until the handler
// returns, so the shutdown drain still reaches it: the handler registers what "drain" means for
// it (e.g. a WebSocket close frame) with `connection.on_drain`, and the grace period's hard stop
// closes the socket whatever the handler does.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <functional>
#include "adapters/http/stream.hpp"
#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

struct Takeover {
  HttpStream& stream;                 // on the connection's strand (TLS or not); its expiry is the handler's to set
  boost::beast::flat_buffer& buffer;  // bytes received after the request (pass them on, e.g. to WebSocket)
  const Request& request;
  RequestContext& context;
  ConnectionControl& connection;
};

// For a handler that decides per request (after its own checks) to take the connection over: sets
// `ctx`'s take-over and returns the 101 placeholder the session recognises. The placeholder is
// never written: the stream handler writes its own handshake answer.
Response take_over(const Request& req, RequestContext& ctx, StreamHandler handler);

}  // namespace registrar::adapters::http
