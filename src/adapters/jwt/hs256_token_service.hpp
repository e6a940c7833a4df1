#pragma once
#include <array>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "ports/system.hpp"
#include "ports/token_service.hpp"

namespace registrar::adapters::jwt {

// Drop-in for an existing deployment: verification tokens signed by another issuer with the same
// HS256 secret (e.g. a Node service's `jwt.sign({sub: sessionId}, SECRET, {expiresIn: '10m'})`),
// which carry no `typ`. Only when `accept` is set, and only where a verification token is expected:
// a token without `typ` is then taken as a verification token if its `iss` / `aud` match these
// (an empty value: the claim is not checked, as that issuer may write none). Such a token is never
// an access token, and a token with a `typ` is judged by its `typ` as usual. `exp` stays required
// (a token without one would never expire); `iat` is optional (jsonwebtoken's noTimestamp) but
// may not be in the future.
struct ForeignVerificationTokens {
  bool accept = false;
  std::string issuer;    // required `iss`, or empty: not checked
  std::string audience;  // required `aud` (string or array), or empty: not checked
};

struct Hs256Options {
  std::string secret;  // HMAC key: the raw bytes as given (as Node's jsonwebtoken uses a string
                       // secret), at least 32 bytes (256 bits)
  std::string issuer = "registrar";
  std::string audience = "registrar";
  std::chrono::seconds access_ttl{900};
  std::chrono::seconds verification_ttl{600};  // the verification code's TTL
  std::chrono::seconds leeway{30};  // clock skew tolerated on exp / iat / nbf
  ForeignVerificationTokens foreign{};
};

// Compact JWS (RFC 7515) / JWT (RFC 7519) tokens signed with HMAC-SHA256, interoperable with
// Node's `jsonwebtoken` (HS256, string `aud`, integer NumericDates).
//
// Issued claims: iss, aud, sub, iat, exp, jti (random) and `typ` ("access" or "verification",
// each with its own lifetime).
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
