#pragma once
#include <string_view>

#include <boost/beast/core/string.hpp>

#include "adapters/http/types.hpp"

namespace registrar::adapters::http {

// "Authorization: Bearer <token>" → the token (empty if absent or another scheme; the scheme's
// case does not matter, RFC 9110 §11.1). A view into the request.
inline std::string_view bearer_token(const Request& req) {
  std::string_view h = req[beast_http::field::authorization];
  constexpr std::string_view scheme = "bearer ";
  if (h.size() <= scheme.size() || !boost::beast::iequals(h.substr(0, scheme.size()), scheme)) return {};
  h.remove_prefix(scheme.size());
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  return h;
}

}  // namespace registrar::adapters::http
