#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include "domain/expected.hpp"

namespace registrar::ports {

// Kinds of token the service issues, named in each token (the JWT `typ` claim). verify() refuses a
// token of another kind (TokenError::wrong_type), so kinds added later (or other services' tokens
// signed with the same key) cannot stand in for one another.
//  - access:       a user's credential (subject = the user id);
//  - verification: a phone verification session (subject = the session id, lifetime = the code's
//                  TTL), proof that its holder asked for the code sent under that session; never a
//                  credential. An adapter may be set to also accept, as verification tokens only,
//                  tokens of an existing issuer that shares the key and writes no `typ`
//                  (adapters/jwt/hs256_token_service.hpp, "foreign verification tokens").
enum class TokenType { access, verification };

struct IssuedToken {
  std::string token;
  std::chrono::seconds expires_in;
};

struct VerifiedToken {
  std::string subject;
  TokenType type;
  std::chrono::sys_seconds issued_at, expires_at;
};

enum class TokenError { malformed, bad_algorithm, bad_signature, expired, not_yet_valid, wrong_issuer, wrong_audience, wrong_type };

class TokenService {
 public:
  virtual ~TokenService() = default;
  virtual IssuedToken issue(std::string_view subject, TokenType type) = 0;
  virtual domain::Expected<VerifiedToken, TokenError> verify(std::string_view token, TokenType expected) = 0;
};

}  // namespace registrar::ports
