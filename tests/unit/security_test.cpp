// Security claims best proven below the HTTP surface (SECURITY.md maps each claim to its test;
// the black-box half is tests/blackbox/security.test.js). Every test name states its claim.
//
// Constant-time comparison is proven behaviourally, not by reading the source: this executable
// defines its own crypto_verify_32, sodium_memcmp and crypto_auth_hmacsha256_init. The linker
// binds the adapters' calls (and libsodium's own, through its PLT) to these definitions, which
// record each call and then forward to libsodium's real functions (dlsym RTLD_NEXT). A test can
// also force the comparison's answer, which shows that no other comparison takes part in the
// decision.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "adapters/http/framing.hpp"
#include "adapters/jwt/hs256_token_service.hpp"
#include "adapters/sodium/argon2_hasher.hpp"
#include "app/use_cases.hpp"
#include "support/fakes.hpp"

// ------------------------------------------------------------------------------------------------
// Probes on libsodium's comparison and keyed-hash entry points.
namespace probe {

enum class Force { pass_through, equal, differ };

std::mutex mutex;
int verify32_calls = 0;
std::array<unsigned char, 32> verify32_x{}, verify32_y{};
std::atomic<Force> force_verify32{Force::pass_through};
std::atomic<int> memcmp_calls{0};
std::atomic<int> hmac_init_calls{0};
std::vector<std::string> verified_hashes;  // the PHC strings given to crypto_pwhash_str_verify

void reset() {
  std::lock_guard lock(mutex);
  verify32_calls = 0;
  verified_hashes.clear();
  force_verify32 = Force::pass_through;
  memcmp_calls = 0;
  hmac_init_calls = 0;
}

int verify32() {
  std::lock_guard lock(mutex);
  return verify32_calls;
}

template <class Fn>
Fn real(const char* name) {
  void* sym = dlsym(RTLD_NEXT, name);
  if (sym == nullptr) std::abort();  // libsodium is linked: this cannot happen
  return reinterpret_cast<Fn>(sym);
}

}  // namespace probe

extern "C" {

int crypto_verify_32(const unsigned char* x, const unsigned char* y) {
  using Fn = int (*)(const unsigned char*, const unsigned char*);
  static const Fn real_fn = probe::real<Fn>("crypto_verify_32");
  {
    std::lock_guard lock(probe::mutex);
    ++probe::verify32_calls;
    std::memcpy(probe::verify32_x.data(), x, 32);
    std::memcpy(probe::verify32_y.data(), y, 32);
  }
  const int answer = real_fn(x, y);
  switch (probe::force_verify32.load()) {
    case probe::Force::equal: return 0;
    case probe::Force::differ: return -1;
    case probe::Force::pass_through: break;
  }
  return answer;
}

int sodium_memcmp(const void* b1, const void* b2, size_t len) {
  using Fn = int (*)(const void*, const void*, size_t);
  static const Fn real_fn = probe::real<Fn>("sodium_memcmp");
  ++probe::memcmp_calls;
  return real_fn(b1, b2, len);
}

int crypto_pwhash_str_verify(const char* str, const char* passwd, unsigned long long passwdlen) {
  using Fn = int (*)(const char*, const char*, unsigned long long);
  static const Fn real_fn = probe::real<Fn>("crypto_pwhash_str_verify");
  {
    std::lock_guard lock(probe::mutex);
    probe::verified_hashes.emplace_back(str);
  }
  return real_fn(str, passwd, passwdlen);
}

int crypto_auth_hmacsha256_init(crypto_auth_hmacsha256_state* state, const unsigned char* key, size_t keylen) {
  using Fn = int (*)(crypto_auth_hmacsha256_state*, const unsigned char*, size_t);
  static const Fn real_fn = probe::real<Fn>("crypto_auth_hmacsha256_init");
  ++probe::hmac_init_calls;
  return real_fn(state, key, keylen);
}

}  // extern "C"

namespace {

namespace app = registrar::app;
namespace domain = registrar::domain;
namespace ports = registrar::ports;
using registrar::adapters::jwt::Hs256Options;
using registrar::adapters::jwt::Hs256TokenService;
using registrar::adapters::sodium::Argon2Hasher;
using registrar::adapters::sodium::Argon2Options;
using ports::TokenError;
using ports::TokenType;
using namespace registrar::testing;
using namespace std::chrono_literals;

// ------------------------------------------------------------------------------------------------
// Token helpers, written independently of the adapter (libsodium one-shot HMAC, own base64url).

constexpr std::int64_t kNow = 1'760'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef";  // 32 bytes
const std::string kAttackerKey = "attacker-chosen-key-of-32-bytes!";

// A public key as an attacker would paste it into an HS256 signer (the HS/RS confusion attack).
const std::string kPublicKeyPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\n"
    "q9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n"
    "-----END PUBLIC KEY-----\n";

std::string b64url(std::string_view s) {
  std::string out(sodium_base64_ENCODED_LEN(s.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(s.data()), s.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);
  return out;
}

std::array<unsigned char, 32> hmac(std::string_view key, std::string_view input) {
  std::array<unsigned char, 32> mac{};
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(input.data()), input.size());
  crypto_auth_hmacsha256_final(&st, mac.data());
  return mac;
}

std::string as_string(const std::array<unsigned char, 32>& a) {
  return std::string(reinterpret_cast<const char*>(a.data()), a.size());
}

std::string token_with(std::string_view header_json, std::string_view payload_json, std::string_view key = kSecret) {
  const std::string input = b64url(header_json) + "." + b64url(payload_json);
  return input + "." + b64url(as_string(hmac(key, input)));
}

std::string claims(std::string_view extra = "") {
  std::string p = R"({"sub":"user-1","typ":"access","iss":"registrar","aud":"registrar","iat":)" +
                  std::to_string(kNow) + R"(,"exp":)" + std::to_string(kNow + 900);
  if (!extra.empty()) p += "," + std::string(extra);
  return p + "}";
}

constexpr std::string_view kHs256 = R"({"alg":"HS256","typ":"JWT"})";

class StoppedClock final : public ports::Clock {
 public:
  domain::Timestamp now() override { return domain::Timestamp{std::chrono::seconds{kNow}}; }
};

Hs256Options token_options() {
  Hs256Options o;
  o.secret = kSecret;
  return o;
}

struct TokenSecurity : ::testing::Test {
  StoppedClock clock;
  Hs256TokenService service{token_options(), clock};
  void SetUp() override { probe::reset(); }
  void TearDown() override { probe::reset(); }

  // The error of a refused token (fails the test if it is accepted).
  TokenError refused(std::string_view token, TokenType expected = TokenType::access) {
    auto r = service.verify(token, expected);
    EXPECT_FALSE(r.has_value()) << "accepted: " << token;
    return r ? TokenError::malformed : r.error();
  }
  bool accepted(std::string_view token, TokenType expected = TokenType::access) {
    return service.verify(token, expected).has_value();
  }
};

// ------------------------------------------------------------------------------------------------
// JWT: algorithm allowlist, key confusion, key hints, duplicates, size

TEST_F(TokenSecurity, AlgNoneInAnySpellingIsRefusedBeforeTheKeyIsTouched) {
  std::vector<std::string> tokens;
  for (const char* alg : {"none", "None", "NONE", "nOnE"}) {
    const std::string header = std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})";
    // Unsigned, and carrying a genuine HMAC under our own key: both refused for the alg alone.
    tokens.push_back(b64url(header) + "." + b64url(claims()) + ".");
    tokens.push_back(token_with(header, claims()));
  }
  probe::reset();  // (making the tokens above used HMAC)
  for (const auto& token : tokens) EXPECT_EQ(refused(token), TokenError::bad_algorithm) << token;
  EXPECT_EQ(probe::hmac_init_calls.load(), 0) << "the key was used for a token with a refused algorithm";
  EXPECT_EQ(probe::verify32(), 0);
}

TEST_F(TokenSecurity, AsymmetricAlgorithmsAreRefusedBeforeTheKeyIsTouched) {
  // The HS/RS confusion needs the verifier to take the algorithm from the token: it does not.
  std::vector<std::string> tokens;
  for (const char* alg : {"RS256", "RS512", "PS256", "ES256", "ES384", "EdDSA"}) {
    const std::string header = std::string(R"({"alg":")") + alg + R"(","typ":"JWT"})";
    tokens.push_back(token_with(header, claims()));
    tokens.push_back(token_with(header, claims(), kPublicKeyPem));
  }
  probe::reset();
  for (const auto& token : tokens) EXPECT_EQ(refused(token), TokenError::bad_algorithm) << token;
  EXPECT_EQ(probe::hmac_init_calls.load(), 0);
  EXPECT_EQ(probe::verify32(), 0);
}

TEST_F(TokenSecurity, Hs256SignedWithAPublicKeyAsTheSecretIsRefused) {
  EXPECT_EQ(refused(token_with(kHs256, claims(), kPublicKeyPem)), TokenError::bad_signature);
  // Also when the header names a key that "should" be used.
  EXPECT_EQ(refused(token_with(R"({"alg":"HS256","kid":"public.pem"})", claims(), kPublicKeyPem)),
            TokenError::bad_signature);
}

TEST_F(TokenSecurity, KeyHintsInTheHeaderNeverChooseTheKey) {
  const std::string jwk = R"({"kty":"oct","k":")" + b64url(kAttackerKey) + R"("})";
  const std::vector<std::string> headers = {
      R"({"alg":"HS256","jwk":)" + jwk + "}",
      R"({"alg":"HS256","jku":"http://127.0.0.1:9/keys.json"})",
      R"({"alg":"HS256","x5u":"http://127.0.0.1:9/cert.pem"})",
      R"({"alg":"HS256","x5c":["MIIBszCCAVmgAwIBAgIU"]})",
      R"({"alg":"HS256","kid":"../../../../../../dev/null"})",
      R"({"alg":"HS256","kid":"x' UNION SELECT 'attacker-chosen-key-of-32-bytes!"})",
  };
  for (const auto& header : headers) {
    // Signed with the key the hint points at: refused.
    EXPECT_EQ(refused(token_with(header, claims(), kAttackerKey)), TokenError::bad_signature) << header;
    EXPECT_EQ(refused(token_with(header, claims(), "")), TokenError::bad_signature) << header;
    // Signed with our key: the hint is ignored, the token verifies as any other.
    EXPECT_TRUE(accepted(token_with(header, claims()))) << header;
  }
}

TEST_F(TokenSecurity, DuplicateHeaderNamesCountOnlyTheLastOneSoNoneCannotHideBehindHs256) {
  // RFC 7515 §4: reject duplicates or keep only the lexically last; like JSON.parse (Node's
  // jsonwebtoken) the adapter keeps the last, so the allowlist judges what verification uses.
  EXPECT_EQ(refused(token_with(R"({"alg":"HS256","alg":"none"})", claims())), TokenError::bad_algorithm);
  EXPECT_EQ(refused(token_with(R"({"alg":"HS256","alg":"RS256"})", claims())), TokenError::bad_algorithm);
  EXPECT_EQ(refused(token_with(R"({"alg":"HS256","typ":"JWT","typ":"at+jwt"})", claims())), TokenError::malformed);
  // A duplicate claim: the last typ decides.
  EXPECT_EQ(refused(token_with(kHs256, claims(R"("typ":"session")"))), TokenError::wrong_type);
}

TEST_F(TokenSecurity, OversizedTokensAreRefusedWithoutAnyHmacWork) {
  const std::string big_header = R"({"alg":"HS256","kid":")" + std::string(7000, 'k') + R"("})";
  const auto token = token_with(big_header, claims());
  ASSERT_GT(token.size(), Hs256TokenService::kMaxTokenBytes);
  probe::reset();
  EXPECT_EQ(refused(token), TokenError::malformed);
  EXPECT_EQ(probe::hmac_init_calls.load(), 0);
  EXPECT_EQ(probe::verify32(), 0);
}

// ------------------------------------------------------------------------------------------------
// Constant-time comparison of the MAC

TEST_F(TokenSecurity, SignatureIsComparedOnceWholeByLibsodiumsConstantTimeCryptoVerify32) {
  const auto token = token_with(kHs256, claims());
  const auto signing_input = token.substr(0, token.rfind('.'));
  const auto expected_mac = hmac(kSecret, signing_input);

  ASSERT_TRUE(accepted(token));
  ASSERT_EQ(probe::verify32(), 1);
  {
    std::lock_guard lock(probe::mutex);
    // Both 32-byte operands: our MAC of the signing input and the token's signature.
    EXPECT_TRUE((probe::verify32_x == expected_mac && probe::verify32_y == expected_mac));
  }

  // A forgery differing in the first or in the last byte takes the same path: one call, over
  // all 32 bytes (no early exit that a timing attacker could measure byte by byte).
  for (std::size_t position : {std::size_t{0}, std::size_t{31}}) {
    auto forged_mac = expected_mac;
    forged_mac[position] ^= 0x01;
    const auto forged = signing_input + "." + b64url(as_string(forged_mac));
    probe::reset();
    EXPECT_EQ(refused(forged), TokenError::bad_signature) << position;
    EXPECT_EQ(probe::verify32(), 1) << position;
    std::lock_guard lock(probe::mutex);
    EXPECT_EQ(probe::verify32_y, forged_mac);
  }
}

TEST_F(TokenSecurity, TheSignatureDecisionIsCryptoVerify32sAnswerAlone) {
  const auto genuine = token_with(kHs256, claims());
  const auto forged = token_with(kHs256, claims(), kAttackerKey);

  probe::force_verify32 = probe::Force::differ;
  EXPECT_EQ(refused(genuine), TokenError::bad_signature) << "something besides crypto_verify_32 accepted the MAC";

  probe::force_verify32 = probe::Force::equal;
  EXPECT_TRUE(accepted(forged)) << "something besides crypto_verify_32 compared the MAC";
}

// ------------------------------------------------------------------------------------------------
// Token kinds through the use case, with the real adapter

TEST(TokenKinds, ASessionTokenIsRefusedWhereAnAccessTokenIsExpected) {
  FakeUserStore store;
  FakeHasher hasher;
  FixedClock clock(domain::Timestamp{std::chrono::seconds{kNow}});
  SequentialIds ids;
  CountingSignal signal;
  Hs256TokenService tokens(token_options(), clock);
  FakePiiCipher pii;
  const app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  const app::RegisterUser register_user{create_account, tokens};
  const app::CurrentUser current_user{tokens, store, pii};

  auto registered = register_user({"kind@example.com", "kind", "correct horse battery"});
  ASSERT_TRUE(registered);
  const auto& id = registered->user.id;

  auto as_access = current_user(tokens.issue(id, TokenType::access).token);
  ASSERT_TRUE(as_access);
  EXPECT_EQ(as_access->user.id, id);

  // The same user's token of another kind (typ "session"), signed with our key.
  const auto session_token = token_with(kHs256, claims(R"("sub":")" + id + R"(","typ":"session")"));
  ASSERT_EQ(tokens.verify(session_token, TokenType::access).error(), TokenError::wrong_type);
  auto as_session = current_user(session_token);
  ASSERT_FALSE(as_session);
  EXPECT_EQ(as_session.error().kind, domain::ErrorKind::unauthenticated);
}

// ------------------------------------------------------------------------------------------------
// No user enumeration

struct Enumeration : ::testing::Test {
  FakeUserStore store;
  FakeHasher hasher;
  FakeTokenService tokens;
  FixedClock clock;
  SequentialIds ids;
  CountingSignal signal;
  FakePiiCipher pii;
  app::CreateAccount create_account{store, hasher, pii, clock, ids, signal};
  app::RegisterUser register_user{create_account, tokens};
  app::Login login{store, hasher, tokens, pii};
};

void expect_same_error(const domain::DomainError& a, const domain::DomainError& b, const std::string& what) {
  EXPECT_EQ(a.kind, b.kind) << what;
  EXPECT_EQ(a.message, b.message) << what;
  EXPECT_EQ(a.fields, b.fields) << what;
}

TEST_F(Enumeration, EveryLoginFailureGivesOneAnswerAndCostsExactlyOneArgon2Verification) {
  ASSERT_TRUE(register_user({"alice@example.com", "alice", "correct horse battery"}));
  struct Case {
    std::string login, password, what;
    bool known;  // the login names an existing user (verify), else the dummy (verify_dummy)
  };
  const std::vector<Case> cases = {
      {"alice@example.com", "wrong password here", "wrong password, by e-mail", true},
      {"ALICE@EXAMPLE.COM", "wrong password here", "wrong password, e-mail in another case", true},
      {"alice", "wrong password here", "wrong password, by username", true},
      {"alice", "", "empty password", true},
      {"nobody@example.com", "correct horse battery", "unknown e-mail", false},
      {"nobody", "correct horse battery", "unknown username", false},
      {"not-an-email@", "correct horse battery", "malformed e-mail", false},
      {"a@b", "correct horse battery", "e-mail without a dotted domain", false},
      {"has space", "correct horse battery", "malformed username", false},
      {"", "correct horse battery", "empty login", false},
      {std::string(300, 'a'), "correct horse battery", "overlong login", false},
      {"' OR 1=1 --", "' OR 1=1 --", "SQL metacharacters", false},
  };
  std::optional<domain::DomainError> first;
  for (const auto& c : cases) {
    const int verify_before = hasher.verify_calls, dummy_before = hasher.verify_dummy_calls;
    const int hash_before = hasher.hash_calls, issued_before = tokens.issue_calls;
    auto r = login({c.login, c.password});
    ASSERT_FALSE(r) << c.what;
    if (!first) first = r.error();
    expect_same_error(r.error(), *first, c.what);
    EXPECT_EQ(r.error().kind, domain::ErrorKind::invalid_credentials) << c.what;
    const int verifies = hasher.verify_calls - verify_before, dummies = hasher.verify_dummy_calls - dummy_before;
    EXPECT_EQ(verifies + dummies, 1) << c.what << ": exactly one argon2 verification";
    EXPECT_EQ(c.known ? verifies : dummies, 1) << c.what;
    EXPECT_EQ(hasher.hash_calls.load(), hash_before) << c.what;
    EXPECT_EQ(tokens.issue_calls.load(), issued_before) << c.what;
  }
  // Success costs the same one verification.
  const int before = hasher.verify_calls + hasher.verify_dummy_calls;
  ASSERT_TRUE(login({"alice", "correct horse battery"}));
  EXPECT_EQ(hasher.verify_calls + hasher.verify_dummy_calls - before, 1);
}

// A store whose pre-check never sees the other sign-up: the unique index decides (the race path).
class RacingStore : public FakeUserStore {
 public:
  bool contact_or_username_taken(std::optional<std::string_view>, std::string_view,
                                 std::optional<std::string_view>) override {
    return false;
  }
};

TEST_F(Enumeration, RegisterConflictIsOneAnswerWhicheverFieldIsTakenOnThePreCheckAndTheRacePath) {
  ASSERT_TRUE(register_user({"taken@example.com", "taken", "correct horse battery"}));
  RacingStore racing;
  const app::CreateAccount racing_create{racing, hasher, pii, clock, ids, signal};
  const app::RegisterUser racing_register{racing_create, tokens};
  ASSERT_TRUE(racing_register({"taken@example.com", "taken", "correct horse battery"}));

  struct Case {
    const app::RegisterUser* register_user;
    app::RegisterCommand cmd;
    std::string what;
  };
  const std::vector<Case> cases = {
      {&register_user, {"taken@example.com", "free1", "correct horse battery"}, "e-mail taken"},
      {&register_user, {"TAKEN@example.com", "free2", "correct horse battery"}, "e-mail taken, other case"},
      {&register_user, {"free3@example.com", "taken", "correct horse battery"}, "username taken"},
      {&register_user, {"taken@example.com", "taken", "correct horse battery"}, "both taken"},
      {&racing_register, {"taken@example.com", "free4", "correct horse battery"}, "e-mail taken (race)"},
      {&racing_register, {"free5@example.com", "TAKEN", "correct horse battery"}, "username taken (race)"},
  };
  std::optional<domain::DomainError> first;
  for (const auto& c : cases) {
    auto r = (*c.register_user)(c.cmd);
    ASSERT_FALSE(r) << c.what;
    EXPECT_EQ(r.error().kind, domain::ErrorKind::conflict) << c.what;
    if (!first) first = r.error();
    expect_same_error(r.error(), *first, c.what);
  }
}

// ------------------------------------------------------------------------------------------------
// The dummy verification costs what a real one costs. Argon2id's work is fixed by its parameters
// (memory m, passes t, lanes p) and the lengths of salt and hash, never by the password or the
// salt's bytes; so a dummy hash with the configured parameters costs exactly what a user's hash
// costs. That is shown here without a stopwatch, by the PHC strings libsodium is asked to verify
// (a timed assertion would fail on a noisy machine now and then; the measured times are in
// bench/dummy_verification.cpp and BENCHMARKS.md).

struct Argon2Shape {
  std::string algorithm_and_parameters;  // "$argon2id$v=19$m=…,t=…,p=…"
  std::size_t salt_chars = 0, hash_chars = 0;
  std::string salt;
  bool operator==(const Argon2Shape& o) const {
    return algorithm_and_parameters == o.algorithm_and_parameters && salt_chars == o.salt_chars &&
           hash_chars == o.hash_chars;
  }
};

Argon2Shape shape_of(const std::string& phc) {
  // "$argon2id" "$v=19" "$m=…,t=…,p=…" "$salt" "$hash"
  const auto hash_at = phc.rfind('$');
  const auto salt_at = phc.rfind('$', hash_at - 1);
  Argon2Shape s;
  s.algorithm_and_parameters = phc.substr(0, salt_at);
  s.salt = phc.substr(salt_at + 1, hash_at - salt_at - 1);
  s.salt_chars = s.salt.size();
  s.hash_chars = phc.size() - hash_at - 1;
  return s;
}

// The PHC strings verified by a real verification (a wrong guess against a user's hash) and by a
// dummy one, in that order.
std::pair<std::string, std::string> hashes_verified(Argon2Hasher& hasher) {
  const auto phc = hasher.hash("the user's real password");
  probe::reset();
  EXPECT_FALSE(hasher.verify(phc, "a wrong password guess"));
  hasher.verify_dummy("a wrong password guess");
  std::lock_guard lock(probe::mutex);
  EXPECT_EQ(probe::verified_hashes.size(), 2U);
  if (probe::verified_hashes.size() != 2) return {};
  EXPECT_EQ(probe::verified_hashes[0], phc);
  return {probe::verified_hashes[0], probe::verified_hashes[1]};
}

Argon2Options measured(std::uint32_t memory_kib, std::uint32_t iterations) {
  Argon2Options o;
  o.memory_kib = memory_kib;
  o.iterations = iterations;
  o.concurrency = 1;
  return o;
}

TEST(DummyVerification, VerifiesAHashOfTheSameAlgorithmParametersAndLengthsAsAUsersHash) {
  Argon2Hasher hasher(measured(4096, 2));
  const auto [real, dummy] = hashes_verified(hasher);
  const auto r = shape_of(real), d = shape_of(dummy);
  EXPECT_EQ(d.algorithm_and_parameters, "$argon2id$v=19$m=4096,t=2,p=1") << dummy;
  EXPECT_EQ(d, r) << "dummy " << dummy << " vs real " << real;
  EXPECT_EQ(d.salt_chars, 22U) << "a 16-byte salt, as libsodium makes for every hash";
  EXPECT_NE(d.salt, r.salt);
}

// Were the dummy hash made with fixed parameters, it would cost many times a real verification at
// light settings (1 MiB, t = 1) and a fraction of one at heavy settings (32 MiB, t = 3).
TEST(DummyVerification, FollowsTheConfiguredArgon2CostAtLightAndHeavySettingsAlike) {
  for (auto [memory_kib, iterations] : {std::pair{1024u, 1u}, std::pair{32768u, 3u}}) {
    Argon2Hasher hasher(measured(memory_kib, iterations));
    const auto [real, dummy] = hashes_verified(hasher);
    const std::string expected =
        "$argon2id$v=19$m=" + std::to_string(memory_kib) + ",t=" + std::to_string(iterations) + ",p=1";
    EXPECT_EQ(shape_of(dummy).algorithm_and_parameters, expected) << dummy;
    EXPECT_EQ(shape_of(dummy), shape_of(real)) << "dummy " << dummy << " vs real " << real;
  }
}

// Each hasher draws its own dummy password: no two services (or restarts) share a dummy hash.
TEST(DummyVerification, EachHasherHasItsOwnRandomDummyHash) {
  Argon2Hasher a(measured(1024, 1)), b(measured(1024, 1));
  const auto [real_a, dummy_a] = hashes_verified(a);
  const auto [real_b, dummy_b] = hashes_verified(b);
  EXPECT_NE(dummy_a, dummy_b);
  probe::reset();
  a.verify_dummy("another guess");
  std::lock_guard lock(probe::mutex);
  ASSERT_EQ(probe::verified_hashes.size(), 1U);
  EXPECT_EQ(probe::verified_hashes[0], dummy_a) << "one dummy hash for the hasher's whole life";
}

TEST(DummyVerification, WaitsForAHashingSlotLikeARealVerification) {
  std::atomic<int> slots{0};
  Argon2Options o;
  o.memory_kib = 8;
  o.iterations = 1;
  o.concurrency = 1;
  o.on_slot_held = [&] { ++slots; };
  Argon2Hasher hasher(o);
  const auto phc = hasher.hash("password");
  slots = 0;
  (void)hasher.verify(phc, "guess");
  hasher.verify_dummy("guess");
  EXPECT_EQ(slots.load(), 2) << "both go through the bounded pool, so they queue alike under load";
}

// The final comparison of argon2id verification is libsodium's own: crypto_pwhash_str_verify
// recomputes the hash and compares it with sodium_memcmp (constant time). The call is made inside
// libsodium; Debian's build routes it through the PLT, so the probe above sees it. (Should a
// libsodium build bind it internally, this test fails rather than passing unobserved.)
TEST(PasswordComparison, Argon2VerificationEndsInLibsodiumsConstantTimeSodiumMemcmp) {
  Argon2Options o;
  o.memory_kib = 8;
  o.iterations = 1;
  Argon2Hasher hasher(o);
  const auto phc = hasher.hash("correct horse battery");
  probe::reset();
  EXPECT_FALSE(hasher.verify(phc, "wrong horse battery"));
  EXPECT_EQ(probe::memcmp_calls.load(), 1) << "the mismatch was not decided by sodium_memcmp";
  probe::reset();
  EXPECT_TRUE(hasher.verify(phc, "correct horse battery"));
  EXPECT_EQ(probe::memcmp_calls.load(), 1);
  probe::reset();
  hasher.verify_dummy("any guess");
  EXPECT_EQ(probe::memcmp_calls.load(), 1) << "the dummy verification ends the same way";
}

// ------------------------------------------------------------------------------------------------
// Request smuggling: only unambiguous framing reaches the body reader

namespace http = registrar::adapters::http;

http::Request head_with(std::vector<std::pair<std::string, std::string>> fields, unsigned version = 11) {
  http::Request r{http::beast_http::verb::post, "/auth/login", version};
  for (const auto& [name, value] : fields) r.insert(name, value);
  return r;
}

int framing_status(const http::Request& head) {
  const auto problem = http::framing_problem(head);
  return problem ? static_cast<int>(problem->type.status) : 0;  // 0: accepted
}

TEST(RequestFraming, OnlyContentLengthOrOneChunkedCodingIsAccepted) {
  EXPECT_EQ(framing_status(head_with({})), 0);
  EXPECT_EQ(framing_status(head_with({{"Content-Length", "10"}})), 0);
  EXPECT_EQ(framing_status(head_with({{"Transfer-Encoding", "chunked"}})), 0);
  EXPECT_EQ(framing_status(head_with({{"Transfer-Encoding", "Chunked"}})), 0);
  EXPECT_EQ(framing_status(head_with({{"Content-Length", "10"}}, 10)), 0);
}

TEST(RequestFraming, AmbiguousFramingIsA400SoNothingCanBeSmuggledBehindIt) {
  const std::vector<std::vector<std::pair<std::string, std::string>>> ambiguous = {
      {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}},
      {{"Transfer-Encoding", "xchunked"}, {"Content-Length", "6"}},
      {{"Transfer-Encoding", "identity"}, {"Content-Length", "2"}},
      {{"Transfer-Encoding", "gzip"}},
      {{"Transfer-Encoding", "chunked, gzip"}},
      {{"Transfer-Encoding", "chunked, chunked"}},
      {{"Transfer-Encoding", "chunked,"}},
      {{"Transfer-Encoding", ""}},
      {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
  };
  for (const auto& fields : ambiguous) {
    std::string what;
    for (const auto& [n, v] : fields) what += n + ": " + v + "; ";
    EXPECT_EQ(framing_status(head_with(fields)), 400) << what;
  }
  EXPECT_EQ(framing_status(head_with({{"Transfer-Encoding", "chunked"}}, 10)), 400) << "HTTP/1.0";
}

TEST(RequestFraming, AWellFramedButUnimplementedTransferCodingIsA501) {
  EXPECT_EQ(framing_status(head_with({{"Transfer-Encoding", "gzip, chunked"}})), 501);
  EXPECT_EQ(framing_status(head_with({{"Transfer-Encoding", "deflate , chunked"}})), 501);
}

}  // namespace
