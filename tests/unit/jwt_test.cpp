#include "adapters/jwt/hs256_token_service.hpp"

#include <gtest/gtest.h>
#include <sodium.h>

#include <boost/json.hpp>
#include <chrono>
#include <stdexcept>
#include <string>

namespace {

using registrar::adapters::jwt::Hs256Options;
using registrar::adapters::jwt::Hs256TokenService;
using registrar::ports::TokenError;
using registrar::ports::TokenType;
using namespace std::chrono_literals;

constexpr std::int64_t kNow = 1'760'000'000;  // 2025-10-09, seconds
const std::string kSecret = "0123456789abcdef0123456789abcdef";  // exactly 32 bytes

class FakeClock final : public registrar::ports::Clock {
 public:
  registrar::domain::Timestamp now() override { return t; }
  void set_seconds(std::int64_t s) { t = registrar::domain::Timestamp{std::chrono::seconds{s}}; }
  registrar::domain::Timestamp t{std::chrono::seconds{kNow}};
};

Hs256Options options(std::string secret = kSecret) {
  Hs256Options o;
  o.secret = std::move(secret);
  o.issuer = "registrar";
  o.audience = "registrar";
  o.access_ttl = 900s;
  o.leeway = 30s;
  return o;
}

// Test-side encoding and signing, written independently of the adapter: base64url by hand-picked
// libsodium variant, and the one-shot HMAC API (which takes exactly a 32-byte key).
std::string b64url(std::string_view s) {
  std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

std::string sign_raw(std::string_view header_seg, std::string_view payload_seg) {
  const std::string input = std::string(header_seg) + "." + std::string(payload_seg);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256(mac, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                         reinterpret_cast<const unsigned char*>(kSecret.data()));
  return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), sizeof mac));
}

std::string make_token(std::string_view header_json, std::string_view payload_json) {
  return sign_raw(b64url(header_json), b64url(payload_json));
}

constexpr std::string_view kHeader = R"({"alg":"HS256","typ":"JWT"})";

// A payload that passes every check for an access token at kNow, with `extra` spliced in last
// (Boost.JSON and JSON.parse both keep the last of duplicate keys, so `extra` overrides).
std::string payload(std::string_view extra = "") {
  std::string p = R"({"sub":"user-1","typ":"access","iss":"registrar","aud":"registrar","iat":)" +
                  std::to_string(kNow) + R"(,"exp":)" + std::to_string(kNow + 900);
  if (!extra.empty()) p += std::string(",") + std::string(extra);
  return p + "}";
}

struct JwtTest : ::testing::Test {
  FakeClock clock;
  Hs256TokenService service{options(), clock};

  TokenError error_of(std::string_view token, TokenType expected = TokenType::access) {
    auto r = service.verify(token, expected);
    EXPECT_FALSE(r.has_value()) << "token unexpectedly accepted: " << token;
    return r.has_value() ? TokenError::malformed : r.error();
  }
};

TEST_F(JwtTest, RoundTripAccessToken) {
  const auto issued = service.issue("user-123", TokenType::access);
  EXPECT_EQ(issued.expires_in, 900s);
  auto r = service.verify(issued.token, TokenType::access);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subject, "user-123");
  EXPECT_EQ(r->type, TokenType::access);
  EXPECT_EQ(r->issued_at.time_since_epoch(), std::chrono::seconds{kNow});
  EXPECT_EQ(r->expires_at.time_since_epoch(), std::chrono::seconds{kNow + 900});
}

TEST_F(JwtTest, IssuedTokenHasStandardHeaderAndClaims) {
  const auto token = service.issue("user-123", TokenType::access).token;
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  EXPECT_EQ(token.substr(0, dot1), b64url(kHeader));
  std::string json(token.size(), '\0');
  std::size_t len = 0;
  const auto seg = token.substr(dot1 + 1, dot2 - dot1 - 1);
  ASSERT_EQ(sodium_base642bin(reinterpret_cast<unsigned char*>(json.data()), json.size(), seg.data(), seg.size(),
                              nullptr, &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
            0);
  json.resize(len);
  const auto claims = boost::json::parse(json).as_object();
  EXPECT_EQ(claims.at("iss").as_string(), "registrar");
  EXPECT_EQ(claims.at("aud").as_string(), "registrar");
  EXPECT_EQ(claims.at("sub").as_string(), "user-123");
  EXPECT_EQ(claims.at("typ").as_string(), "access");
  EXPECT_EQ(claims.at("iat").as_int64(), kNow);
  EXPECT_EQ(claims.at("exp").as_int64(), kNow + 900);
  EXPECT_GE(claims.at("jti").as_string().size(), 16u);
  EXPECT_EQ(token.substr(dot2 + 1).size(), 43u);  // 32 bytes, unpadded
}

TEST_F(JwtTest, JtiIsFreshPerToken) {
  EXPECT_NE(service.issue("u", TokenType::access).token, service.issue("u", TokenType::access).token);
}

TEST(JwtConstruction, RejectsShortSecretAndBadLifetimes) {
  FakeClock clock;
  EXPECT_THROW((Hs256TokenService{options(std::string(31, 'k')), clock}), std::invalid_argument);
  EXPECT_THROW((Hs256TokenService{options(""), clock}), std::invalid_argument);
  auto o = options();
  o.access_ttl = 0s;
  EXPECT_THROW((Hs256TokenService{o, clock}), std::invalid_argument);
  o = options();
  o.leeway = -1s;
  EXPECT_THROW((Hs256TokenService{o, clock}), std::invalid_argument);
  EXPECT_NO_THROW((Hs256TokenService{options(std::string(32, 'k')), clock}));
}

TEST_F(JwtTest, IssueRefusesEmptySubject) {
  EXPECT_THROW(service.issue("", TokenType::access), std::invalid_argument);
}

// Found by fuzz/fuzz_jwt: a subject that is not UTF-8 went into the claims as it was, and verify()
// then refused the token issue() had just made (malformed JSON). Refused at issue() now.
TEST_F(JwtTest, IssueRefusesSubjectThatIsNotUtf8) {
  EXPECT_THROW(service.issue("user-\xff", TokenType::access), std::invalid_argument);
  EXPECT_THROW(service.issue("\xed\xa0\x80", TokenType::access), std::invalid_argument);  // a surrogate
  const auto issued = service.issue("us\xc3\xa9r \x01\"\\", TokenType::access);  // UTF-8 with escapes
  const auto r = service.verify(issued.token, TokenType::access);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subject, "us\xc3\xa9r \x01\"\\");
}

// Found by fuzz/fuzz_jwt: a long subject of control characters (each escaped to 6 bytes) gave a
// token over the 8 KiB cap, which verify() refuses unparsed. issue() refuses to make it now.
TEST_F(JwtTest, IssueRefusesASubjectWhoseTokenWouldExceedTheCap) {
  EXPECT_THROW(service.issue(std::string(1400, '\0'), TokenType::access), std::invalid_argument);
  EXPECT_THROW(service.issue(std::string(7000, 'u'), TokenType::access), std::invalid_argument);
  const std::string longest_plain(900, '\x01');
  const auto issued = service.issue(longest_plain, TokenType::access);
  EXPECT_LE(issued.token.size(), Hs256TokenService::kMaxTokenBytes);
  ASSERT_TRUE(service.verify(issued.token, TokenType::access).has_value());
}

TEST_F(JwtTest, HandBuiltTokenVerifies) {
  auto r = service.verify(make_token(kHeader, payload()), TokenType::access);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subject, "user-1");
}

// Made with Node's own crypto module (independent of libsodium and of this adapter):
//   h = b64url('{"alg":"HS256","typ":"JWT"}'), p = b64url(JSON.stringify({sub:"user-42",
//   typ:"access", iat:1760000000, exp:1760000900, aud:"registrar", iss:"registrar"})),
//   createHmac("sha256", secret).update(h + "." + p).digest("base64url")
// in the same claim order jsonwebtoken uses. The 70-byte secret exercises the HMAC path for
// keys longer than SHA-256's 64-byte block (the key is hashed first).
TEST(JwtVector, NodeMadeTokenWithLongSecretVerifies) {
  FakeClock clock;
  Hs256TokenService service(
      options("a-seventy-byte-secret-for-the-long-key-hmac-path-0123456789-abcdefghij"), clock);
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
      "eyJzdWIiOiJ1c2VyLTQyIiwidHlwIjoiYWNjZXNzIiwiaWF0IjoxNzYwMDAwMDAwLCJleHAiOjE3NjAwMDA5MDAsImF1ZCI6InJl"
      "Z2lzdHJhciIsImlzcyI6InJlZ2lzdHJhciJ9."
      "MlQYFvmzh3NgUTPWOG1K4nxUGRZq6dT7OhFI_MjuAjE";
  auto r = service.verify(token, TokenType::access);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subject, "user-42");
  // Same token, one secret byte different: refused.
  Hs256TokenService other(
      options("a-seventy-byte-secret-for-the-long-key-hmac-path-0123456789-abcdefghiJ"), clock);
  auto r2 = other.verify(token, TokenType::access);
  ASSERT_FALSE(r2.has_value());
  EXPECT_EQ(r2.error(), TokenError::bad_signature);
}

// --- algorithm allowlist ---

TEST_F(JwtTest, AlgNoneIsRefused) {
  const auto unsigned_token = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(payload()) + ".";
  EXPECT_EQ(error_of(unsigned_token), TokenError::bad_algorithm);
  // Even with a valid HMAC attached, "none" is not HS256.
  EXPECT_EQ(error_of(make_token(R"({"alg":"none","typ":"JWT"})", payload())), TokenError::bad_algorithm);
}

TEST_F(JwtTest, OtherAlgorithmsAreRefused) {
  for (const char* alg : {"HS384", "HS512", "RS256", "ES256", "PS256", "hs256", "HS256 ", ""}) {
    const std::string header = std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})";
    EXPECT_EQ(error_of(make_token(header, payload())), TokenError::bad_algorithm) << alg;
  }
}

TEST_F(JwtTest, HeaderWithoutStringAlgIsMalformed) {
  EXPECT_EQ(error_of(make_token(R"({"typ":"JWT"})", payload())), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(R"({"alg":256,"typ":"JWT"})", payload())), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(R"(["HS256"])", payload())), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(R"({"alg":"HS256")", payload())), TokenError::malformed);
}

TEST_F(JwtTest, UnknownCriticalHeaderOrForeignTypIsRefused) {
  EXPECT_EQ(error_of(make_token(R"({"alg":"HS256","crit":["exp"],"exp":1})", payload())), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(R"({"alg":"HS256","typ":"at+jwt"})", payload())), TokenError::malformed);
  // typ is optional (RFC 7519 §5.1) and case-insensitive.
  EXPECT_TRUE(service.verify(make_token(R"({"alg":"HS256"})", payload()), TokenType::access).has_value());
  EXPECT_TRUE(service.verify(make_token(R"({"alg":"HS256","typ":"jwt"})", payload()), TokenType::access).has_value());
}

// --- integrity ---

TEST_F(JwtTest, TamperedPayloadIsRefused) {
  const auto token = service.issue("user-1", TokenType::access).token;
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  const auto forged = token.substr(0, dot1 + 1) + b64url(payload(R"("sub":"admin")")) + token.substr(dot2);
  EXPECT_EQ(error_of(forged), TokenError::bad_signature);
}

TEST_F(JwtTest, TamperedSignatureIsRefused) {
  auto token = service.issue("user-1", TokenType::access).token;
  const auto sig = token.rfind('.') + 1;
  token[sig] = token[sig] == 'A' ? 'B' : 'A';
  EXPECT_EQ(error_of(token), TokenError::bad_signature);
}

TEST_F(JwtTest, SignatureOfWrongLengthIsRefused) {
  auto token = make_token(kHeader, payload());
  token.erase(token.rfind('.') + 1);
  EXPECT_EQ(error_of(token + b64url(std::string(31, 'x'))), TokenError::bad_signature);
  EXPECT_EQ(error_of(token + b64url(std::string(48, 'x'))), TokenError::bad_signature);
}

TEST_F(JwtTest, TokenSignedWithAnotherSecretIsRefused) {
  Hs256TokenService other(options("ffffffffffffffffffffffffffffffff"), clock);
  EXPECT_EQ(error_of(other.issue("user-1", TokenType::access).token), TokenError::bad_signature);
}

// --- claims ---

TEST_F(JwtTest, ExpiryHonoursLeeway) {
  const auto token = service.issue("user-1", TokenType::access).token;
  clock.set_seconds(kNow + 900 + 29);  // past exp, within the 30 s leeway
  EXPECT_TRUE(service.verify(token, TokenType::access).has_value());
  clock.set_seconds(kNow + 900 + 30);
  EXPECT_EQ(error_of(token), TokenError::expired);
  clock.set_seconds(kNow + 86400);
  EXPECT_EQ(error_of(token), TokenError::expired);
}

TEST_F(JwtTest, FutureIatOrNbfIsNotYetValid) {
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("iat":)" + std::to_string(kNow + 3600)))),
            TokenError::not_yet_valid);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("nbf":)" + std::to_string(kNow + 60)))),
            TokenError::not_yet_valid);
  // Within the leeway both are fine.
  EXPECT_TRUE(service.verify(make_token(kHeader, payload(R"("iat":)" + std::to_string(kNow + 20))),
                             TokenType::access).has_value());
  EXPECT_TRUE(service.verify(make_token(kHeader, payload(R"("nbf":)" + std::to_string(kNow + 20))),
                             TokenType::access).has_value());
}

TEST_F(JwtTest, WrongAudienceIsRefused) {
  auto o = options();
  o.audience = "someone-else";
  Hs256TokenService other(o, clock);
  EXPECT_EQ(error_of(other.issue("user-1", TokenType::access).token), TokenError::wrong_audience);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("aud":["a","b"])"))), TokenError::wrong_audience);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("aud":null)"))), TokenError::wrong_audience);
  // An array that contains our audience is accepted (RFC 7519 §4.1.3).
  EXPECT_TRUE(service.verify(make_token(kHeader, payload(R"("aud":["x","registrar"])")), TokenType::access)
                  .has_value());
}

TEST_F(JwtTest, MissingAudienceIsRefused) {
  const std::string p = R"({"sub":"user-1","typ":"access","iss":"registrar","iat":)" + std::to_string(kNow) +
                        R"(,"exp":)" + std::to_string(kNow + 900) + "}";
  EXPECT_EQ(error_of(make_token(kHeader, p)), TokenError::wrong_audience);
}

TEST_F(JwtTest, WrongIssuerIsRefused) {
  auto o = options();
  o.issuer = "evil";
  Hs256TokenService other(o, clock);
  EXPECT_EQ(error_of(other.issue("user-1", TokenType::access).token), TokenError::wrong_issuer);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("iss":7)"))), TokenError::wrong_issuer);
}

TEST_F(JwtTest, WrongTypeIsRefused) {
  // A token of another kind signed with our key (typ "session", say) is not an access token; nor is
  // one whose typ differs only in case.
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("typ":"session")"))), TokenError::wrong_type);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("typ":"Access")"))), TokenError::wrong_type);
  // A token without our typ claim (e.g. a plain jwt.sign({sub})) is not one of ours.
  const std::string p = R"({"sub":"user-1","iss":"registrar","aud":"registrar","iat":)" + std::to_string(kNow) +
                        R"(,"exp":)" + std::to_string(kNow + 900) + "}";
  EXPECT_EQ(error_of(make_token(kHeader, p)), TokenError::wrong_type);
}

TEST_F(JwtTest, RequiredClaimsMustBePresentAndWellTyped) {
  const std::string base = R"({"typ":"access","iss":"registrar","aud":"registrar")";
  const std::string iat = R"(,"iat":)" + std::to_string(kNow);
  const std::string exp = R"(,"exp":)" + std::to_string(kNow + 900);
  EXPECT_EQ(error_of(make_token(kHeader, base + R"(,"sub":"u")" + iat + "}")), TokenError::malformed);  // no exp
  EXPECT_EQ(error_of(make_token(kHeader, base + R"(,"sub":"u")" + exp + "}")), TokenError::malformed);  // no iat
  EXPECT_EQ(error_of(make_token(kHeader, base + iat + exp + "}")), TokenError::malformed);              // no sub
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("sub":"")"))), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("sub":42)"))), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("exp":")" + std::to_string(kNow + 900) + "\""))),
            TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("exp":)" + std::to_string(kNow + 900) + ".5"))),
            TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("exp":99999999999999999999)"))), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("iat":true)"))), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("nbf":"soon")"))), TokenError::malformed);
}

TEST_F(JwtTest, ExtremeIntegersDoNotOverflow) {
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("exp":-9223372036854775808)"))), TokenError::expired);
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("iat":9223372036854775807)"))), TokenError::not_yet_valid);
  EXPECT_TRUE(service.verify(make_token(kHeader, payload(R"("exp":9223372036854775807,"iat":-9223372036854775808)")),
                             TokenType::access).has_value());
}

TEST_F(JwtTest, PayloadMustBeAJsonObject) {
  EXPECT_EQ(error_of(make_token(kHeader, "[1,2,3]")), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, "not json")), TokenError::malformed);
  EXPECT_EQ(error_of(make_token(kHeader, payload() + "x")), TokenError::malformed);
}

// --- encoding ---

TEST_F(JwtTest, WrongSegmentCountIsMalformed) {
  const auto token = service.issue("user-1", TokenType::access).token;
  EXPECT_EQ(error_of(""), TokenError::malformed);
  EXPECT_EQ(error_of("abc"), TokenError::malformed);
  EXPECT_EQ(error_of(".."), TokenError::malformed);
  EXPECT_EQ(error_of("..."), TokenError::malformed);
  EXPECT_EQ(error_of(token.substr(0, token.rfind('.'))), TokenError::malformed);  // two segments
  EXPECT_EQ(error_of(token + ".x"), TokenError::malformed);                     // four segments
  EXPECT_EQ(error_of(token + "."), TokenError::malformed);
  EXPECT_EQ(error_of(b64url(kHeader) + ".." + token.substr(token.rfind('.') + 1)), TokenError::malformed);
}

TEST_F(JwtTest, PaddingIsRefused) {
  // A payload whose length is not a multiple of 3 would be padded by standard base64.
  auto p = payload(R"("pad":"x")");
  if (p.size() % 3 == 0) p.insert(1, " ");
  ASSERT_NE(p.size() % 3, 0u);
  const auto seg = b64url(p);
  const std::string padded = seg + std::string(p.size() % 3 == 1 ? 2 : 1, '=');
  EXPECT_TRUE(service.verify(sign_raw(b64url(kHeader), seg), TokenType::access).has_value());
  EXPECT_EQ(error_of(sign_raw(b64url(kHeader), padded)), TokenError::malformed);
  // A padded signature (32 bytes → 43 characters + '=').
  EXPECT_EQ(error_of(make_token(kHeader, payload()) + "="), TokenError::malformed);
}

TEST_F(JwtTest, GarbageBase64IsRefused) {
  EXPECT_EQ(error_of(sign_raw(b64url(kHeader), "!!!!")), TokenError::malformed);
  EXPECT_EQ(error_of(sign_raw(b64url(kHeader), b64url(payload()) + " ")), TokenError::malformed);
  EXPECT_EQ(error_of(sign_raw("eyJhbGciOiJIUzI1NiJ9+/", b64url(payload()))), TokenError::malformed);
  EXPECT_EQ(error_of(sign_raw(b64url(kHeader), "a")), TokenError::malformed);  // impossible length
  auto token = make_token(kHeader, payload());
  token.back() = '*';
  EXPECT_EQ(error_of(token), TokenError::malformed);
}

// Found by fuzz/fuzz_jwt: libsodium 1.0.18 decodes any byte 0x80-0xFF as '_' (63), so a token
// whose signature had each '_' re-spelled as such a byte still verified.
TEST_F(JwtTest, BytesOutsideTheAlphabetAreRefusedEvenWhereLibsodiumWouldDecodeThem) {
  const auto underscore_in_signature = [](const std::string& t) { return t.find('_', t.rfind('.')); };
  std::string token;
  for (int i = 0; token.empty() || underscore_in_signature(token) == std::string::npos; ++i)
    token = service.issue("user-" + std::to_string(i), TokenType::access).token;
  ASSERT_TRUE(service.verify(token, TokenType::access).has_value());
  std::string respelled = token;
  respelled[underscore_in_signature(token)] = '\xdf';
  EXPECT_EQ(error_of(respelled), TokenError::malformed);
  std::string header_high = token;
  header_high[0] = '\x80';
  EXPECT_EQ(error_of(header_high), TokenError::malformed);
}

TEST_F(JwtTest, NonCanonicalTrailingBitsAreRefused) {
  // 32 bytes take 43 characters (258 bits): the last one carries 4 data bits and 2 zero bits.
  // Setting a zero bit decodes to the same MAC, so only a strict decoder notices.
  static constexpr std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  auto token = make_token(kHeader, payload());
  const auto index = alphabet.find(token.back());
  ASSERT_EQ(index & 0x03, 0u);
  token.back() = alphabet[index | 1];
  EXPECT_EQ(error_of(token), TokenError::malformed);
}

TEST_F(JwtTest, HugeTokenIsRefusedBeforeParsing) {
  const auto big = make_token(kHeader, payload(R"("pad":")" + std::string(9000, 'x') + "\""));
  ASSERT_GT(big.size(), Hs256TokenService::kMaxTokenBytes);
  EXPECT_EQ(error_of(big), TokenError::malformed);
  EXPECT_EQ(error_of(std::string(1 << 20, 'a')), TokenError::malformed);
  // Just under the limit is still fine.
  std::string pad(5000, 'x');
  const auto ok = make_token(kHeader, payload(R"("pad":")" + pad + "\""));
  ASSERT_LE(ok.size(), Hs256TokenService::kMaxTokenBytes);
  EXPECT_TRUE(service.verify(ok, TokenType::access).has_value());
}

TEST_F(JwtTest, DeeplyNestedJsonIsRefused) {
  const std::string deep = std::string(200, '[') + std::string(200, ']');
  EXPECT_EQ(error_of(make_token(kHeader, payload(R"("x":)" + deep))), TokenError::malformed);
}

// --- verification tokens (issue 12) ---

namespace verification {

using registrar::adapters::jwt::ForeignVerificationTokens;

std::string claims_segment(const std::string& token) {
  const auto dot1 = token.find('.');
  const auto dot2 = token.find('.', dot1 + 1);
  const auto seg = token.substr(dot1 + 1, dot2 - dot1 - 1);
  std::string json(seg.size(), '\0');
  std::size_t len = 0;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(json.data()), json.size(), seg.data(), seg.size(), nullptr,
                        &len, nullptr, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
    return {};
  json.resize(len);
  return json;
}

TEST_F(JwtTest, VerificationTokensHaveTheirOwnTypAndLifetime) {
  auto o = options();
  o.verification_ttl = 600s;
  Hs256TokenService svc(o, clock);
  const auto issued = svc.issue("session-1", TokenType::verification);
  EXPECT_EQ(issued.expires_in, 600s);
  const auto claims = boost::json::parse(claims_segment(issued.token)).as_object();
  EXPECT_EQ(claims.at("typ").as_string(), "verification");
  EXPECT_EQ(claims.at("sub").as_string(), "session-1");
  EXPECT_EQ(claims.at("exp").as_int64() - claims.at("iat").as_int64(), 600);
  auto r = svc.verify(issued.token, TokenType::verification);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subject, "session-1");
  EXPECT_EQ(r->type, TokenType::verification);
  // Access tokens keep their own lifetime.
  EXPECT_EQ(svc.issue("user-1", TokenType::access).expires_in, 900s);
}

TEST_F(JwtTest, AVerificationTokenIsNotAnAccessTokenAndViceVersa) {
  const auto verification_token = service.issue("session-1", TokenType::verification).token;
  const auto access_token = service.issue("user-1", TokenType::access).token;
  EXPECT_EQ(error_of(verification_token, TokenType::access), TokenError::wrong_type);
  EXPECT_EQ(error_of(access_token, TokenType::verification), TokenError::wrong_type);
  EXPECT_TRUE(service.verify(verification_token, TokenType::verification).has_value());
  EXPECT_TRUE(service.verify(access_token, TokenType::access).has_value());
}

TEST(JwtConstruction, RefusesANonPositiveVerificationLifetime) {
  FakeClock clock;
  auto o = options();
  o.verification_ttl = 0s;
  EXPECT_THROW((Hs256TokenService{o, clock}), std::invalid_argument);
}

// Made by Node's jsonwebtoken 9 as the Node Create_User producer does (node-seed produce.js):
//   jwt.sign({sub: 's-abc-1', iat: 1760000000}, 'peer-secret-peer-secret-peer-secret-32',
//            {algorithm: 'HS256', expiresIn: 600})
// i.e. {"sub","iat","exp"}: no typ, no iss, no aud.
const std::string kNodeSecret = "peer-secret-peer-secret-peer-secret-32";
const std::string kNodeToken =
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJzLWFiYy0xIiwiaWF0IjoxNzYwMDAwMDAwLCJleHAiOjE3NjAwMDA2MDB9."
    "amlUe4YVfHFvGroVPjpTD1ImmO4WDXbeQ3tBhGQwVZU";

Hs256Options node_options(ForeignVerificationTokens foreign) {
  auto o = options(kNodeSecret);
  o.foreign = std::move(foreign);
  return o;
}

TEST(JwtForeignTokens, ANodeTokenIsRefusedUnlessTheDropInIsOn) {
  FakeClock clock;
  Hs256TokenService off(node_options({}), clock);
  auto r = off.verify(kNodeToken, TokenType::verification);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::wrong_type);

  Hs256TokenService on(node_options({.accept = true, .issuer = "", .audience = ""}), clock);
  r = on.verify(kNodeToken, TokenType::verification);
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->subject, "s-abc-1");
  EXPECT_EQ(r->type, TokenType::verification);
  EXPECT_EQ(r->expires_at.time_since_epoch(), std::chrono::seconds{kNow + 600});
  // Never as an access token, drop-in or not.
  auto as_access = on.verify(kNodeToken, TokenType::access);
  ASSERT_FALSE(as_access.has_value());
  EXPECT_EQ(as_access.error(), TokenError::wrong_type);
  // It still expires.
  clock.set_seconds(kNow + 600 + 31);
  r = on.verify(kNodeToken, TokenType::verification);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::expired);
}

TEST_F(JwtTest, ForeignTokensMeetTheIssuerAndAudienceSet) {
  auto o = options();
  o.foreign = {.accept = true, .issuer = "create-user", .audience = "registrar-peers"};
  Hs256TokenService svc(o, clock);
  const std::string times = R"("iat":)" + std::to_string(kNow) + R"(,"exp":)" + std::to_string(kNow + 600);
  const auto verify = [&](const std::string& claims) { return svc.verify(make_token(kHeader, claims), TokenType::verification); };

  auto ok = verify(R"({"sub":"s1","iss":"create-user","aud":["x","registrar-peers"],)" + times + "}");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->subject, "s1");
  auto r = verify(R"({"sub":"s1","aud":"registrar-peers",)" + times + "}");  // no iss
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::wrong_issuer);
  r = verify(R"({"sub":"s1","iss":"create-user","aud":"elsewhere",)" + times + "}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::wrong_audience);
  // A token with a typ is judged by it: an access token or another kind is not a foreign token.
  r = verify(R"({"sub":"s1","typ":"access","iss":"create-user","aud":"registrar-peers",)" + times + "}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::wrong_type);
  // exp stays required; iat may be absent but not malformed or in the future.
  r = verify(R"({"sub":"s1","iss":"create-user","aud":"registrar-peers","iat":)" + std::to_string(kNow) + "}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::malformed);
  EXPECT_TRUE(verify(R"({"sub":"s1","iss":"create-user","aud":"registrar-peers","exp":)" + std::to_string(kNow + 60) + "}")
                  .has_value());
  r = verify(R"({"sub":"s1","iss":"create-user","aud":"registrar-peers","iat":"now","exp":)" + std::to_string(kNow + 60) + "}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::malformed);
  r = verify(R"({"sub":"s1","iss":"create-user","aud":"registrar-peers","iat":)" + std::to_string(kNow + 3600) +
             R"(,"exp":)" + std::to_string(kNow + 7200) + "}");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error(), TokenError::not_yet_valid);
  // Our own verification tokens still verify beside them.
  EXPECT_TRUE(svc.verify(svc.issue("s2", TokenType::verification).token, TokenType::verification).has_value());
}

}  // namespace verification

}  // namespace
