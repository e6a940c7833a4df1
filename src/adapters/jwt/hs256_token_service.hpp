#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "ports/system.hpp"
#include "ports/token_service.hpp"

namespace registrar::adapters::jwt {

struct Hs256Options {
  std::string secret;  // HMAC key: the raw bytes as given (as Node's jsonwebtoken uses a string
                       // secret), at least 32 bytes (256 bits)
  std::string issuer = "registrar";
  std::string audience = "registrar";
  std::chrono::seconds access_ttl{900};
  std::chrono::seconds leeway{30};  // clock skew tolerated on exp / iat / nbf
};

// Compact JWS (RFC 7515) / JWT (RFC 7519) tokens signed with HMAC-SHA256, interoperable with
// Node's `jsonwebtoken` (HS256, string `aud`, integer NumericDates).
//
// Issued claims: iss, aud, sub, iat, exp, jti (random) and `typ` ("access").
// verify() accepts only alg HS256 (checked before any signature work), compares the MAC in
// constant time, then requires typ == expected, iss, aud (string or array), integer exp (not
// passed) and iat (not in the future), nbf if present, and a non-empty sub.
class Hs256TokenService final : public ports::TokenService {
 public:
  static constexpr std::size_t kMinSecretBytes = 32;
  static constexpr std::size_t kMaxTokenBytes = 8 * 1024;  // longer tokens are refused unparsed

  // Throws std::invalid_argument for a short secret, a non-positive TTL or a leeway outside
  // [0, 24 h]. `clock` must outlive the service.
  Hs256TokenService(Hs256Options options, ports::Clock& clock);
  ~Hs256TokenService() override;
  Hs256TokenService(const Hs256TokenService&) = delete;
  Hs256TokenService& operator=(const Hs256TokenService&) = delete;

  // Throws std::invalid_argument for an empty subject, one that is not UTF-8 text, or one so long
  // that the token would exceed kMaxTokenBytes: whatever it returns, verify() accepts.
  ports::IssuedToken issue(std::string_view subject, ports::TokenType type) override;
  domain::Expected<ports::VerifiedToken, ports::TokenError> verify(std::string_view token,
                                                                   ports::TokenType expected) override;

 private:
  std::array<unsigned char, 32> mac(std::string_view signing_input) const;  // HMAC-SHA256

  Hs256Options options_;
  ports::Clock& clock_;
  std::string header_b64_;  // our fixed header, encoded once
};

}  // namespace registrar::adapters::jwt
