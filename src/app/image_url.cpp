#include "app/image_url.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace registrar::app {

namespace {

bool iequals_ascii(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

}  // namespace

domain::Expected<std::optional<std::string>, domain::FieldError> parse_image_url(std::string_view raw) {
  using Result = domain::Expected<std::optional<std::string>, domain::FieldError>;
  if (raw.empty()) return std::optional<std::string>{};
  if (raw.size() > kMaxImageUrlBytes)
    return domain::make_error<std::optional<std::string>>(
        domain::FieldError{"image", "too_long", "Image URL must be at most 2048 bytes"});
  const auto invalid = [] {
    return domain::make_error<std::optional<std::string>>(domain::FieldError{
        "image", "invalid_format", "Image must be an absolute http:// or https:// URL with a host, e.g. https://example.com/me.png"});
  };
  // absolute-URI (RFC 3986 §4.3): a scheme, no fragment; anything outside the grammar (spaces,
  // control characters, raw non-ASCII) is refused by the parser.
  auto parsed = boost::urls::parse_absolute_uri(raw);
  if (!parsed) return invalid();
  const boost::urls::url_view& url = *parsed;
  if (!iequals_ascii(url.scheme(), "http") && !iequals_ascii(url.scheme(), "https")) return invalid();
  if (!url.has_authority() || url.encoded_host().empty() || url.has_userinfo()) return invalid();
  return Result(std::optional<std::string>(std::string(raw)));
}

}  // namespace registrar::app
