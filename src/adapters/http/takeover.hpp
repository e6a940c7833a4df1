#pragma once
// A connection taken over by a handler after its request passed every check and middleware: the
// HTTP session stops reading requests and hands the stream (and any bytes already read past the
// request) to the handler, which then owns the connection's timeouts and its end. The connection
// stays in the server's registry until the handler returns (or detaches it, below), so the
// shutdown drain still reaches it: the handler registers what "drain" means for
// it (e.g. a WebSocket close frame) with `connection.on_drain`, and the grace period's hard stop
// closes the socket whatever the handler does.
#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <functional>
#include "adapters/http/connection_registry.hpp"
#include "adapters/http/stream.hpp"
#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

// What lets a handler take the connection away from its HTTP session for good (the session).
class StreamOwner {
 public:
  // The stream, moved out: the session ends without closing it and leaves the registry.
  virtual HttpStream release_stream() = 0;
  virtual ConnectionRegistry& registry() = 0;

 protected:
  ~StreamOwner() = default;
};

struct Takeover {
  HttpStream& stream;                 // on the connection's strand (TLS or not); its expiry is the handler's to set
  boost::beast::flat_buffer& buffer;  // bytes received after the request (pass them on, e.g. to WebSocket)
  const Request& request;
  RequestContext& context;
  ConnectionControl& connection;
  StreamOwner& owner;

  // Hands the connection off for good, for a handler that keeps it long (a WebSocket): the HTTP
  // session ends as soon as the handler returns, and with it the request, its buffers and its
  // coroutine, which would otherwise stay behind every idle connection. The new owner registers
  // in `owner.registry()` itself (drain and the hard stop must still reach it) and closes the
  // stream. Read what `buffer` holds before: it goes with the session. `stream` is empty after it.
  HttpStream detach() { return owner.release_stream(); }
};

// For a handler that decides per request (after its own checks) to take the connection over: sets
// `ctx`'s take-over and returns the 101 placeholder the session recognises. The placeholder is
// never written: the stream handler writes its own handshake answer.
Response take_over(const Request& req, RequestContext& ctx, StreamHandler handler);

}  // namespace registrar::adapters::http
