#include "adapters/http/framing.hpp"

#include <boost/beast/core/string.hpp>
#include <string_view>
#include <vector>

namespace registrar::adapters::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ProblemSpec bad_framing(std::string detail) {
  return {beast_http::status::bad_request, "bad_request", "Bad request", std::move(detail)};
}

}  // namespace

std::optional<ProblemSpec> framing_problem(const Request& head) {
  const auto te_fields = head.count(beast_http::field::transfer_encoding);
  if (te_fields == 0) return std::nullopt;  // Content-Length (checked by Beast) or no body
  if (head.count(beast_http::field::content_length) != 0)
    return bad_framing("Transfer-Encoding and Content-Length together");
  if (head.version() < 11) return bad_framing("Transfer-Encoding in an HTTP/1.0 request");
  if (te_fields > 1) return bad_framing("Transfer-Encoding in several header fields");

  std::vector<std::string_view> codings;
  std::string_view list = head[beast_http::field::transfer_encoding];
  for (;;) {
    const auto comma = list.find(',');
    codings.push_back(trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  const auto is_chunked = [](std::string_view c) { return boost::beast::iequals(c, "chunked"); };
  if (!is_chunked(codings.back())) return bad_framing("the final transfer coding is not chunked");
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (codings[i].empty()) return bad_framing("an empty transfer coding");
    if (is_chunked(codings[i])) return bad_framing("chunked applied more than once");
  }
  if (codings.size() > 1)
    return ProblemSpec{beast_http::status::not_implemented, "unsupported_transfer_coding",
                       "Transfer coding not implemented", "Only the chunked transfer coding is supported"};
  return std::nullopt;
}

}  // namespace registrar::adapters::http
