#include "adapters/http/framing.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/url/parse.hpp>
#include <string_view>
#include <vector>

namespace registrar::adapters::http {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

ProblemSpec bad_request(std::string detail) { return {problems::bad_request, std::move(detail)}; }

}  // namespace

std::optional<ProblemSpec> framing_problem(const Request& head) {
  const auto te_fields = head.count(beast_http::field::transfer_encoding);
  if (te_fields == 0) return std::nullopt;  // Content-Length (checked by Beast) or no body
  if (head.count(beast_http::field::content_length) != 0)
    return bad_request("Transfer-Encoding and Content-Length together");
  if (head.version() < 11) return bad_request("Transfer-Encoding in an HTTP/1.0 request");
  if (te_fields > 1) return bad_request("Transfer-Encoding in several header fields");

  std::vector<std::string_view> codings;
  std::string_view list = head[beast_http::field::transfer_encoding];
  for (;;) {
    const auto comma = list.find(',');
    codings.push_back(trim(list.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  const auto is_chunked = [](std::string_view c) { return boost::beast::iequals(c, "chunked"); };
  if (!is_chunked(codings.back())) return bad_request("the final transfer coding is not chunked");
  for (std::size_t i = 0; i + 1 < codings.size(); ++i) {
    if (codings[i].empty()) return bad_request("an empty transfer coding");
    if (is_chunked(codings[i])) return bad_request("chunked applied more than once");
  }
  if (codings.size() > 1)
    return ProblemSpec{problems::unsupported_transfer_coding, "Only the chunked transfer coding is supported"};
  return std::nullopt;
}

std::optional<ProblemSpec> host_problem(const Request& head) {
  const auto hosts = head.count(beast_http::field::host);
  if (hosts > 1) return bad_request("more than one Host header field");
  if (hosts == 0) {
    if (head.version() >= 11) return bad_request("an HTTP/1.1 request without a Host header field");
    return std::nullopt;
  }
  const std::string_view host = head[beast_http::field::host];
  if (host.empty()) return std::nullopt;
  // Boost.URL's authority grammar is RFC 3986's: Host is that without userinfo.
  auto authority = boost::urls::parse_authority(host);
  if (!authority || authority->has_userinfo()) return bad_request("an invalid Host header field");
  return std::nullopt;
}

}  // namespace registrar::adapters::http
