#pragma once
#include <chrono>
#include <string>
#include <string_view>
#include "domain/expected.hpp"

namespace registrar::ports {

// Kinds of token the service issues, named in each token (the JWT `typ` claim). verify() refuses a
// token of another kind (TokenError::wrong_type), so kinds added later (or other services' tokens
// signed with the same key) cannot stand in for one another.
enum class TokenType { access };

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
