#include "adapters/jwt/hs256_token_service.hpp"

#include <sodium.h>

#include <array>
#include <boost/beast/core/string.hpp>
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <stdexcept>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/sodium.hpp"
#include "domain/credentials.hpp"  // utf8_length

namespace registrar::adapters::jwt {

namespace json = boost::json;
using ports::TokenError;
using ports::TokenType;
using Result = domain::Expected<ports::VerifiedToken, TokenError>;

namespace {

constexpr int kB64Variant = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
constexpr std::string_view kHeaderJson = R"({"alg":"HS256","typ":"JWT"})";

Result fail(TokenError e) { return domain::make_error<ports::VerifiedToken, TokenError>(e); }

const unsigned char* bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data() != nullptr ? s.data() : "");
}

// Strict base64url: only the URL-safe alphabet, no padding, no whitespace, zero trailing bits, the
// whole input consumed (sodium::base64_decode), non-empty.
std::optional<std::string> b64url_decode(std::string_view in) {
  if (in.empty()) return std::nullopt;
  return sodium::base64_decode(in, kB64Variant);
}

// A decoded segment parsed as a JSON object, or nothing. Depth is capped: claims are flat.
std::optional<json::object> parse_object(std::string_view segment) {
  const auto text = b64url_decode(segment);
  if (!text) return std::nullopt;
  json::parse_options opts;
  opts.max_depth = 16;
  boost::system::error_code ec;
  json::value v = json::parse(*text, ec, {}, opts);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// NumericDate claims must be JSON integers (jsonwebtoken emits whole seconds). Boost.JSON keeps
// every integer that fits in int64 as int64, so anything else (fractions, huge values, strings)
// is refused.
std::optional<std::int64_t> int_claim(const json::object& claims, std::string_view name) {
  const json::value* v = claims.if_contains(name);
  if (v == nullptr || !v->is_int64()) return std::nullopt;
  return v->get_int64();
}

bool string_claim_is(const json::object& claims, std::string_view name, std::string_view expected) {
  const json::value* v = claims.if_contains(name);
  return v != nullptr && v->is_string() && v->get_string() == expected;
}

bool audience_matches(const json::object& claims, std::string_view audience) {
  const json::value* v = claims.if_contains("aud");
  if (v == nullptr) return false;
  if (v->is_string()) return v->get_string() == audience;
  if (!v->is_array()) return false;
  for (const auto& item : v->get_array())
    if (item.is_string() && item.get_string() == audience) return true;
  return false;
}

std::string_view type_name(TokenType t) {
  switch (t) {
    case TokenType::access: return "access";
    case TokenType::verification: return "verification";
  }
  return "";
}

}  // namespace

Hs256TokenService::Hs256TokenService(Hs256Options options, ports::Clock& clock)
    : options_(std::move(options)), clock_(clock) {
  sodium::ensure_sodium();
  if (options_.secret.size() < kMinSecretBytes)
    throw std::invalid_argument("JWT secret must be at least 32 bytes");
  if (options_.access_ttl.count() <= 0 || options_.verification_ttl.count() <= 0)
    throw std::invalid_argument("the JWT lifetime must be positive");
  if (options_.leeway < std::chrono::seconds{0} || options_.leeway > std::chrono::hours{24})
    throw std::invalid_argument("JWT leeway must be between 0 and 24 hours");
  header_b64_ = sodium::base64_encode(kHeaderJson, kB64Variant);
}

Hs256TokenService::~Hs256TokenService() {
  sodium_memzero(options_.secret.data(), options_.secret.size());
}

std::array<unsigned char, crypto_auth_hmacsha256_BYTES> Hs256TokenService::mac(
    std::string_view signing_input) const {
  std::array<unsigned char, crypto_auth_hmacsha256_BYTES> out{};
  // The streaming API takes a key of any length (the one-shot API wants exactly 32 bytes).
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, bytes(options_.secret), options_.secret.size());
  crypto_auth_hmacsha256_update(&state, bytes(signing_input), signing_input.size());
  crypto_auth_hmacsha256_final(&state, out.data());
  sodium_memzero(&state, sizeof state);
  return out;
}

ports::IssuedToken Hs256TokenService::issue(std::string_view subject, TokenType type) {
  if (subject.empty()) throw std::invalid_argument("token subject must not be empty");
  // Claims are JSON text: a subject that is not UTF-8 would make a token verify() refuses.
  if (!domain::utf8_length(subject)) throw std::invalid_argument("token subject must be UTF-8 text");
  const auto ttl = type == TokenType::verification ? options_.verification_ttl : options_.access_ttl;
  const auto iat = std::chrono::floor<std::chrono::seconds>(clock_.now()).time_since_epoch().count();

  std::array<unsigned char, 16> jti{};
  randombytes_buf(jti.data(), jti.size());

  json::object claims;
  claims["iss"] = options_.issuer;
  claims["aud"] = options_.audience;
  claims["sub"] = subject;
  claims["typ"] = type_name(type);
  claims["iat"] = iat;
  claims["exp"] = iat + ttl.count();
  claims["jti"] = sodium::base64_encode(jti, kB64Variant);

  std::string token = header_b64_ + '.' + sodium::base64_encode(json::serialize(claims), kB64Variant);
  const auto signature = mac(token);
  token += '.' + sodium::base64_encode(signature, kB64Variant);
  // A subject long enough (or escaped enough: JSON writes a control byte as 6) to push the token
  // past the cap verify() enforces would make a token that never verifies (found by fuzz/fuzz_jwt).
  if (token.size() > kMaxTokenBytes) throw std::invalid_argument("token subject too long: the token would exceed 8 KiB");
  return {std::move(token), ttl};
}

Result Hs256TokenService::verify(std::string_view token, TokenType expected) {
  // Size first: nothing below (base64, JSON, HMAC) runs on oversized input.
  if (token.size() > kMaxTokenBytes) return fail(TokenError::malformed);

  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return fail(TokenError::malformed);  // not exactly three segments
  const auto header_seg = token.substr(0, dot1);
  const auto payload_seg = token.substr(dot1 + 1, dot2 - dot1 - 1);
  const auto signature_seg = token.substr(dot2 + 1);

  // The algorithm comes from an allowlist of one, decided before any key is touched: "none",
  // HS384, RS256 (the classic public-key-as-HMAC-secret confusion) etc. are all refused here.
  const auto header = parse_object(header_seg);
  if (!header) return fail(TokenError::malformed);
  const json::value* alg = header->if_contains("alg");
  if (alg == nullptr || !alg->is_string()) return fail(TokenError::malformed);
  if (alg->get_string() != "HS256") return fail(TokenError::bad_algorithm);
  // RFC 7515 §4.1.11: extensions listed in "crit" must be understood; we understand none.
  if (header->contains("crit")) return fail(TokenError::malformed);
  if (const json::value* typ = header->if_contains("typ");
      typ != nullptr && !(typ->is_string() && boost::beast::iequals(typ->get_string(), "JWT")))
    return fail(TokenError::malformed);

  // (Empty payload or signature segments fail to decode: b64url_decode refuses empty input.)
  const auto signature = b64url_decode(signature_seg);
  if (!signature || payload_seg.empty()) return fail(TokenError::malformed);
  const auto expected_mac = mac(token.substr(0, dot2));
  if (signature->size() != expected_mac.size() || crypto_verify_32(expected_mac.data(), bytes(*signature)) != 0)
    return fail(TokenError::bad_signature);  // compared in constant time

  // Authentic from here on; now check that it is the right token, for us, at this time.
  const auto claims = parse_object(payload_seg);
  if (!claims) return fail(TokenError::malformed);
  // A foreign verification token (the drop-in, see ForeignVerificationTokens): no `typ` at all,
  // where a verification token is expected, with the drop-in on. Anything else must be ours.
  const bool foreign = options_.foreign.accept && expected == TokenType::verification && !claims->contains("typ");
  if (foreign) {
    if (!options_.foreign.issuer.empty() && !string_claim_is(*claims, "iss", options_.foreign.issuer))
      return fail(TokenError::wrong_issuer);
    if (!options_.foreign.audience.empty() && !audience_matches(*claims, options_.foreign.audience))
      return fail(TokenError::wrong_audience);
  } else {
    if (!string_claim_is(*claims, "typ", type_name(expected))) return fail(TokenError::wrong_type);
    if (!string_claim_is(*claims, "iss", options_.issuer)) return fail(TokenError::wrong_issuer);
    if (!audience_matches(*claims, options_.audience)) return fail(TokenError::wrong_audience);
  }

  const auto exp = int_claim(*claims, "exp");
  const json::value* iat_value = claims->if_contains("iat");
  const auto iat = int_claim(*claims, "iat");
  // iat is required of ours; a foreign token may go without (but not with a malformed one).
  if (!exp || (!iat && !(foreign && iat_value == nullptr))) return fail(TokenError::malformed);
  const json::value* nbf_value = claims->if_contains("nbf");
  const auto nbf = int_claim(*claims, "nbf");
  if (nbf_value != nullptr && !nbf) return fail(TokenError::malformed);

  // Arithmetic only on our own values (now, leeway), so no integer from the token can overflow.
  // The boundaries follow jsonwebtoken: expired once now >= exp + leeway; not yet valid while
  // nbf (or iat) > now + leeway.
  const std::int64_t now = std::chrono::floor<std::chrono::seconds>(clock_.now()).time_since_epoch().count();
  const std::int64_t leeway = options_.leeway.count();
  if (now - leeway >= *exp) return fail(TokenError::expired);
  if (iat && *iat > now + leeway) return fail(TokenError::not_yet_valid);
  if (nbf && *nbf > now + leeway) return fail(TokenError::not_yet_valid);

  const json::value* sub = claims->if_contains("sub");
  if (sub == nullptr || !sub->is_string() || sub->get_string().empty()) return fail(TokenError::malformed);

  return ports::VerifiedToken{
      std::string(sub->get_string()), expected,
      std::chrono::sys_seconds{std::chrono::seconds{iat.value_or(now)}},  // no iat (foreign): seen now
      std::chrono::sys_seconds{std::chrono::seconds{*exp}}};
}

}  // namespace registrar::adapters::jwt
