#pragma once
// The rule for an account's `image` (a profile picture URL). It lives in the app layer rather
// than next to Email/Username in the domain because it parses with Boost.URL (RFC 3986): a URL
// grammar is exactly what not to hand-write, and the domain stays free of library headers.
#include <optional>
#include <string>
#include <string_view>

#include "domain/errors.hpp"
#include "domain/expected.hpp"

namespace registrar::app {

inline constexpr std::size_t kMaxImageUrlBytes = 2048;

// "" means no image (nullopt). Otherwise an absolute http:// or https:// URL (scheme compared
// case-insensitively) with a non-empty host, no user:password@ part (the URL is shown to whoever
// sees the profile: credentials in it would leak) and no #fragment, at most 2048 bytes, kept as
// given. Error codes (field "image"): too_long, invalid_format.
domain::Expected<std::optional<std::string>, domain::FieldError> parse_image_url(std::string_view raw);

}  // namespace registrar::app
