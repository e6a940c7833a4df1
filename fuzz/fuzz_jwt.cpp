// JWT parsing and verification with the real Hs256TokenService (the Bearer token of GET /users/me and,
// later, the Socket.IO handshake and Create_User jobs).
//
// Input: byte 0 picks a mode, the rest feeds it:
//   0  a raw token string → verify() as an access token;
//   1  header JSON and claims JSON (arbitrary bytes, split by FuzzedDataProvider) that the harness
//      base64url-encodes and signs with the service's key, so the checks after the signature
//      (algorithm allowlist, crit, typ, iss, aud, exp/iat/nbf, sub) are reached; also verified with
//      a service holding another key, which must refuse it;
//   2  a subject: issue() then verify() (round trip), plus a one-byte change that must be refused.
//
// Invariants (FUZZ_CHECK): verify() never accepts a token over 8 KiB, without exactly three
// segments, or with a header whose alg is not "HS256"; whatever it accepts has a non-empty subject,
// the requested type and a validity window containing now (± leeway), all read back from the claims
// independently; a token the service issued verifies, and stops verifying once expired or changed in
// any byte.
#include <fuzzer/FuzzedDataProvider.h>
#include <sodium.h>

#include <boost/json.hpp>
#include <stdexcept>

#include "adapters/jwt/hs256_token_service.hpp"
#include "domain/credentials.hpp"
#include "support/check.hpp"
#include "support/fakes.hpp"


using namespace registrar;
using adapters::jwt::Hs256Options;
using adapters::jwt::Hs256TokenService;
using ports::TokenError;
using ports::TokenType;
namespace json = boost::json;

namespace {

constexpr std::string_view kSecret = "fuzz-secret-fuzz-secret-fuzz-sec";  // 32 bytes
constexpr std::int64_t kLeeway = 30;

Hs256Options options(std::string_view secret = kSecret) {
  Hs256Options o;
  o.secret = std::string(secret);
  o.access_ttl = std::chrono::seconds{900};
  o.leeway = std::chrono::seconds{kLeeway};
  return o;
}

// Harness-side encoding and signing (libsodium, as tests/unit/jwt_test.cpp does), to build tokens
// with claims of the fuzzer's choosing.
std::string b64url(std::string_view s) {
  std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data() ? s.data() : ""), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

std::string sign(std::string_view header_json, std::string_view claims_json, std::string_view key) {
  std::string input = b64url(header_json) + "." + b64url(claims_json);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  crypto_auth_hmacsha256_final(&st, mac);
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

std::optional<json::object> decode_segment(std::string_view seg) {
  std::string bin(seg.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(bin.data()), bin.size(), seg.data(), seg.size(), nullptr, &len,
                        nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return std::nullopt;
  bin.resize(len);
  boost::system::error_code ec;
  json::value v = json::parse(bin, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

std::int64_t now_seconds(testing::FixedClock& clock) {
  return std::chrono::floor<std::chrono::seconds>(clock.now()).time_since_epoch().count();
}

// Whatever verify() accepted must really be acceptable: re-read header and claims on our own.
void check_accepted(std::string_view token, TokenType type, const ports::VerifiedToken& v, std::int64_t now) {
  FUZZ_CHECK(token.size() <= Hs256TokenService::kMaxTokenBytes, "accepted a token over the size cap");
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  FUZZ_CHECK(dot1 != token.npos && dot2 != token.npos && token.find('.', dot2 + 1) == token.npos,
             "accepted a token without exactly three segments");
  const auto header = decode_segment(token.substr(0, dot1));
  const auto claims = decode_segment(token.substr(dot1 + 1, dot2 - dot1 - 1));
  FUZZ_CHECK(header && claims, "accepted a token whose header or claims are not a JSON object");
  const json::value* alg = header->if_contains("alg");
  FUZZ_CHECK(alg && alg->is_string() && alg->get_string() == "HS256", "accepted an algorithm other than HS256");
  FUZZ_CHECK(!header->contains("crit"), "accepted a token with crit");
  const json::value* typ = claims->if_contains("typ");
  FUZZ_CHECK(typ && typ->is_string() && typ->get_string() == "access", "accepted a token of another type");
  FUZZ_CHECK(v.type == type, "verified type differs from the one asked for");
  const json::value* sub = claims->if_contains("sub");
  FUZZ_CHECK(sub && sub->is_string() && !v.subject.empty() && sub->get_string() == v.subject,
             "verified subject empty or not the sub claim");
  const json::value* iss = claims->if_contains("iss");
  FUZZ_CHECK(iss && iss->is_string() && iss->get_string() == "registrar", "accepted another issuer");
  const json::value* aud = claims->if_contains("aud");
  bool for_us = aud && aud->is_string() && aud->get_string() == "registrar";
  if (aud && aud->is_array())
    for (const auto& a : aud->get_array()) for_us = for_us || (a.is_string() && a.get_string() == "registrar");
  FUZZ_CHECK(for_us, "accepted a token for another audience");
  const json::value* exp = claims->if_contains("exp");
  const json::value* iat = claims->if_contains("iat");
  FUZZ_CHECK(exp && exp->is_int64() && iat && iat->is_int64(), "accepted without integer exp and iat");
  FUZZ_CHECK(now - kLeeway < exp->get_int64() && iat->get_int64() <= now + kLeeway, "accepted outside exp/iat");
  FUZZ_CHECK(v.expires_at.time_since_epoch().count() == exp->get_int64() &&
                 v.issued_at.time_since_epoch().count() == iat->get_int64(),
             "verified times differ from the claims");
  if (const json::value* nbf = claims->if_contains("nbf"))
    FUZZ_CHECK(nbf->is_int64() && nbf->get_int64() <= now + kLeeway, "accepted before nbf");
}

void verify_access(Hs256TokenService& service, std::string_view token, std::int64_t now) {
  const auto r = service.verify(token, TokenType::access);
  if (r) check_accepted(token, TokenType::access, *r, now);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  testing::FixedClock clock;  // 2025-10-19T16:37:15.123Z
  Hs256TokenService service(options(), clock);
  const std::int64_t now = now_seconds(clock);
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);

  switch (data[0] % 3) {
    case 0:
      verify_access(service, rest, now);
      break;

    case 1: {
      FuzzedDataProvider in(data + 1, size - 1);
      const std::string header = in.ConsumeRandomLengthString(512);
      const std::string claims = in.ConsumeRemainingBytesAsString();
      const std::string token = sign(header, claims, kSecret);
      verify_access(service, token, now);
      testing::FixedClock other_clock;
      Hs256TokenService other(options("another-secret-another-secret-32"), other_clock);
      FUZZ_CHECK(!other.verify(token, TokenType::access), "a token signed with another key verified");
      break;
    }

    case 2: {
      FuzzedDataProvider in(data + 1, size - 1);
      const std::size_t flip_at = in.ConsumeIntegral<std::uint16_t>();
      const std::uint8_t flip_bits = in.ConsumeIntegralInRange<std::uint8_t>(1, 255);
      const std::string subject = in.ConsumeRemainingBytesAsString();
      if (subject.empty()) {
        bool refused = false;
        try {
          service.issue(subject, TokenType::access);
        } catch (const std::invalid_argument&) {
          refused = true;
        }
        FUZZ_CHECK(refused, "issue() accepted an empty subject");
        break;
      }
      ports::IssuedToken issued;
      try {
        issued = service.issue(subject, TokenType::access);
      } catch (const std::invalid_argument&) {
        // Only a subject that cannot be carried in a JSON string (not UTF-8), or one that would
        // make the token exceed 8 KiB, may be refused: up to 900 bytes fit even if every byte is
        // escaped as \u00XX.
        FUZZ_CHECK(!domain::utf8_length(subject) || subject.size() > 900, "issue() refused a plain subject");
        break;
      }
      const auto ok = service.verify(issued.token, TokenType::access);
      FUZZ_CHECK(ok && ok->subject == subject, "a token issue() made does not verify to its subject");
      check_accepted(issued.token, TokenType::access, *ok, now);
      std::string changed = issued.token;
      changed[flip_at % changed.size()] = static_cast<char>(changed[flip_at % changed.size()] ^ flip_bits);
      FUZZ_CHECK(!service.verify(changed, TokenType::access), "a token changed in one byte still verified");
      clock.advance(std::chrono::seconds{900 + kLeeway});
      FUZZ_CHECK(!service.verify(issued.token, TokenType::access) &&
                     service.verify(issued.token, TokenType::access).error() == TokenError::expired,
                 "a token past exp + leeway did not fail as expired");
      break;
    }
  }
  return 0;
}
