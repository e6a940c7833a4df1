#pragma once
// What a request head must satisfy before anything reads its body or routes it: framing that two
// HTTP implementations could read differently is refused (request smuggling defence, RFC 9112
// §6.1, §6.3), and so is a request without exactly one valid Host field (RFC 9112 §3.2).
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

// 400 for an HTTP/1.1 request without a Host field, any request with more than one, or a Host
// value that is not `uri-host [":" port]` (RFC 9112 §3.2: "A server MUST respond with a 400 …").
// An empty value is valid (a target URI without authority). The caller answers and closes.
std::optional<ProblemSpec> host_problem(const Request& head);

}  // namespace registrar::adapters::http
