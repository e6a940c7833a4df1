#pragma once
// Request smuggling defence: message framing that two HTTP implementations could read
// differently is refused before the body is read (RFC 9112 §6.1, §6.3).
#include <optional>
#include "adapters/http/problem.hpp"
#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

// The problem with how the request head `head` frames its body, or nothing when the framing is
// unambiguous: no Transfer-Encoding (Content-Length or no body), or exactly one Transfer-Encoding
// field whose only coding is `chunked`, without Content-Length, on HTTP/1.1. Otherwise:
//  - 400 when the length cannot be determined reliably: Transfer-Encoding together with
//    Content-Length, on HTTP/1.0, in several fields, `chunked` applied twice or not last;
//  - 501 when it is well framed but uses a transfer coding we do not implement (gzip, chunked).
// Beast itself already refuses several of these (conflicting or malformed Content-Length,
// `chunked` with Content-Length); the rest it would accept or read as having no body, leaving
// the bytes that follow to be parsed as a second request. The caller answers and closes.
std::optional<ProblemSpec> framing_problem(const Request& head);

}  // namespace registrar::adapters::http
