// The rules for sign-up values: email, username, password policy, and the UTF-8 helpers.
#include "domain/credentials.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using registrar::domain::Email;
using registrar::domain::FieldError;
using registrar::domain::PasswordPolicy;
using registrar::domain::Username;
using registrar::domain::Phone;
using registrar::domain::common_password_count;
using registrar::domain::is_common_password;
using registrar::domain::utf8_length;

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

// ---------------------------------------------------------------- utf8_length

TEST(Utf8Length, CountsCodePointsNotBytes) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("\xC3\xA9"), 1u);                  // é (2 bytes)
  EXPECT_EQ(utf8_length("\xE2\x82\xAC"), 1u);              // € (3 bytes)
  EXPECT_EQ(utf8_length("\xF0\x9F\x98\x80"), 1u);          // 😀 (4 bytes)
  EXPECT_EQ(utf8_length("e\xCC\x81"), 2u);                 // e + combining acute: no composition
  EXPECT_EQ(utf8_length(std::string_view("a\0b", 3)), 3u);  // NUL is a valid code point
  EXPECT_EQ(utf8_length("\xF4\x8F\xBF\xBF"), 1u);          // U+10FFFF, the last code point
  EXPECT_EQ(utf8_length("\xEF\xBB\xBF"), 1u);              // a BOM is just a code point
}

TEST(Utf8Length, RejectsInvalidUtf8) {
  EXPECT_FALSE(utf8_length("\x80"));                  // lone continuation byte
  EXPECT_FALSE(utf8_length("\xFF"));                  // never valid
  EXPECT_FALSE(utf8_length("\xF8\x88\x80\x80\x80"));  // 5-byte form
  EXPECT_FALSE(utf8_length("\xC3"));                  // truncated at the end
  EXPECT_FALSE(utf8_length("\xE2\x82"));              // truncated at the end
  EXPECT_FALSE(utf8_length("\xE2\x82x"));             // truncated before ASCII
  EXPECT_FALSE(utf8_length("\xC0\xAF"));              // overlong '/'
  EXPECT_FALSE(utf8_length("\xC1\xBF"));              // overlong
  EXPECT_FALSE(utf8_length("\xE0\x80\xAF"));          // overlong 3-byte
  EXPECT_FALSE(utf8_length("\xF0\x80\x80\xAF"));      // overlong 4-byte
  EXPECT_FALSE(utf8_length("\xED\xA0\x80"));          // U+D800, a surrogate
  EXPECT_FALSE(utf8_length("\xED\xBF\xBF"));          // U+DFFF, a surrogate
  EXPECT_FALSE(utf8_length("\xF4\x90\x80\x80"));      // U+110000, beyond Unicode
  EXPECT_FALSE(utf8_length("abc\xC3\x28"));           // bad continuation
  EXPECT_TRUE(utf8_length("\xED\x9F\xBF"));           // U+D7FF, just below the surrogates
  EXPECT_TRUE(utf8_length("\xEE\x80\x80"));           // U+E000, just above
}

// ---------------------------------------------------------------- email

TEST(Email, TrimsAndLowerCasesTheDomainOnly) {
  auto e = Email::parse(" \t John.Doe@Example.COM\r\n ");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value(), "John.Doe@example.com");
  EXPECT_EQ(e->canonical(), "john.doe@example.com");
}

TEST(Email, CanonicalMakesCaseVariantsOneAccount) {
  EXPECT_EQ(Email::parse("JOHN@X.IO")->canonical(), Email::parse("john@x.io")->canonical());
  EXPECT_EQ(Email::parse("John@x.io")->value(), "John@x.io");
}

TEST(Email, AcceptsCommonShapes) {
  for (const char* ok : {"a@b.co", "first.last+tag@sub.example.org", "x_y-z@my-domain.io", "1234@example.com",
                         "user@xn--bcher-kva.de", "user@a1.b2.c0m", "o'brien@example.ie", "a@b-c.d-e.fg"}) {
    EXPECT_TRUE(Email::parse(ok)) << ok;
  }
}

TEST(Email, AcceptsInternationalizedLocalPart) {
  auto e = Email::parse("Jos\xC3\xA9@Example.com");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->value(), "Jos\xC3\xA9@example.com");
  EXPECT_EQ(e->canonical(), "jos\xC3\xA9@example.com");  // ASCII lower-casing leaves é alone
}

TEST(Email, EmptyOrBlankIsRequired) {
  for (const char* blank : {"", "   ", "\t\r\n"}) {
    auto e = Email::parse(blank);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().field, "email");
    EXPECT_EQ(e.error().code, "required");
  }
}

void expect_invalid_format(std::string_view raw) {
  auto e = Email::parse(raw);
  ASSERT_FALSE(e) << raw;
  EXPECT_EQ(e.error().field, "email");
  EXPECT_EQ(e.error().code, "invalid_format") << raw;
  EXPECT_FALSE(e.error().message.empty());
}

TEST(Email, NeedsExactlyOneAt) {
  expect_invalid_format("john.example.com");
  expect_invalid_format("john@@example.com");
  expect_invalid_format("jo@hn@example.com");
  expect_invalid_format("@example.com");
  expect_invalid_format("john@");
  expect_invalid_format("@");
}

TEST(Email, LocalPartHasNoWhitespaceOrControls) {
  expect_invalid_format("jo hn@example.com");
  expect_invalid_format("jo\thn@example.com");
  expect_invalid_format("jo\x01hn@example.com");
  expect_invalid_format("jo\x7Fhn@example.com");
  expect_invalid_format("jo\xC2\xA0hn@example.com");      // no-break space
  expect_invalid_format("jo\xE3\x80\x80hn@example.com");  // ideographic space
  expect_invalid_format("jo\xC2\x85hn@example.com");      // C1 control (NEL)
  expect_invalid_format("jo\xFFhn@example.com");          // not UTF-8
  expect_invalid_format("john @example.com");
}

TEST(Email, DomainIsDottedValidLabels) {
  expect_invalid_format("john@localhost");         // not dotted
  expect_invalid_format("john@example..com");      // empty label
  expect_invalid_format("john@.example.com");
  expect_invalid_format("john@example.com.");
  expect_invalid_format("john@-example.com");      // leading hyphen
  expect_invalid_format("john@example-.com");      // trailing hyphen
  expect_invalid_format("john@example.-com");
  expect_invalid_format("john@exa_mple.com");      // underscore
  expect_invalid_format("john@exa mple.com");
  expect_invalid_format("john@b\xC3\xBC" "cher.de");  // IDN must be given as punycode
  expect_invalid_format("john@[127.0.0.1]");       // address literals are not accepted
  expect_invalid_format("john@127.0.0.1");         // all-numeric TLD
  expect_invalid_format("john@example.123");
  EXPECT_TRUE(Email::parse("john@123.example"));   // numeric labels are fine below the TLD
  EXPECT_TRUE(Email::parse("john@example.c0m"));
}

TEST(Email, LabelLengthLimit) {
  EXPECT_TRUE(Email::parse("a@" + std::string(63, 'x') + ".com"));
  expect_invalid_format("a@" + std::string(64, 'x') + ".com");
  expect_invalid_format("a@example." + std::string(64, 'x'));
}

TEST(Email, LocalPartAtMost64) {
  EXPECT_TRUE(Email::parse(std::string(64, 'a') + "@example.com"));
  auto e = Email::parse(std::string(65, 'a') + "@example.com");
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, "too_long");
}

TEST(Email, TotalAtMost254AfterTrimming) {
  // 64 + 1 + 189 = 254
  const std::string domain = std::string(63, 'a') + "." + std::string(63, 'b') + "." + std::string(61, 'c');
  const std::string max = std::string(64, 'l') + "@" + domain;
  ASSERT_EQ(max.size(), 254u);
  EXPECT_TRUE(Email::parse(max));
  EXPECT_TRUE(Email::parse("   " + max + "   "));  // surrounding whitespace does not count

  const std::string over = std::string(64, 'l') + "@" + domain + "c";
  ASSERT_EQ(over.size(), 255u);
  auto e = Email::parse(over);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().field, "email");
  EXPECT_EQ(e.error().code, "too_long");

  auto huge = Email::parse(std::string(10'000, 'a') + "@example.com");
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, "too_long");
}

// ---------------------------------------------------------------- username

TEST(Username, KeepsCaseAndCanonicalIsLowerCase) {
  auto u = Username::parse("John_Doe.99-x");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->value(), "John_Doe.99-x");
  EXPECT_EQ(u->canonical(), "john_doe.99-x");
  EXPECT_EQ(Username::parse("NEWUSER")->canonical(), Username::parse("newuser")->canonical());
}

TEST(Username, LengthBoundaries) {
  auto two = Username::parse("ab");
  ASSERT_FALSE(two);
  EXPECT_EQ(two.error().field, "username");
  EXPECT_EQ(two.error().code, "too_short");
  EXPECT_TRUE(Username::parse("abc"));
  EXPECT_TRUE(Username::parse(std::string(32, 'z')));
  auto over = Username::parse(std::string(33, 'z'));
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().code, "too_long");
}

TEST(Username, EmptyIsRequired) {
  auto u = Username::parse("");
  ASSERT_FALSE(u);
  EXPECT_EQ(u.error().code, "required");
}

TEST(Username, OnlyAllowedCharacters) {
  for (const char* bad : {"john doe", " john", "john ", "john@doe", "jo+hn", "j\xC3\xB6hn", "john\n", "jo/hn", "jo'hn",
                          "\xD0\xB0\xD0\xB1\xD0\xB2"}) {
    auto u = Username::parse(bad);
    ASSERT_FALSE(u) << bad;
    EXPECT_EQ(u.error().code, "invalid_characters") << bad;
  }
  for (const char* ok : {"___", "...", "---", "a.b", "A-Z_0-9"}) EXPECT_TRUE(Username::parse(ok)) << ok;
}

// ---------------------------------------------------------------- password policy

struct PasswordPolicyTest : ::testing::Test {
  PasswordPolicy policy;

  // Checks the error and that its message does not echo the password.
  void expect_rejected(const std::string& password, std::string_view code) {
    auto err = policy.check(password);
    ASSERT_TRUE(err) << "accepted: " << password;
    EXPECT_EQ(err->field, "password");
    EXPECT_EQ(err->code, code);
    EXPECT_FALSE(err->message.empty());
    if (!password.empty()) {
      EXPECT_EQ(err->message.find(password), std::string::npos) << "message echoes the password";
    }
  }
};

TEST_F(PasswordPolicyTest, AsciiLengthBoundaries) {
  expect_rejected("Xk3vL9qTz2w", "too_short");  // 11
  EXPECT_FALSE(policy.check("Xk3vL9qTz2wR"));    // 12
  EXPECT_FALSE(policy.check(repeat("Zq", 64)));  // 128
  expect_rejected(repeat("Zq", 64) + "x", "too_long");  // 129, rejected, never truncated
}

TEST_F(PasswordPolicyTest, CountsCodePointsOfMultiByteCharacters) {
  const std::string e_acute = "\xC3\xA9", euro = "\xE2\x82\xAC", emoji = "\xF0\x9F\x98\x80";
  // 11 emoji are 44 bytes but 11 characters: too short.
  expect_rejected(repeat(emoji, 11), "too_short");
  EXPECT_FALSE(policy.check(repeat(emoji, 12)));
  expect_rejected(repeat(e_acute, 11), "too_short");
  EXPECT_FALSE(policy.check(repeat(e_acute, 12)));
  // 128 three-byte characters (384 bytes) are fine; 129 are too long.
  EXPECT_FALSE(policy.check(repeat(euro, 128)));
  expect_rejected(repeat(euro, 129), "too_long");
  EXPECT_FALSE(policy.check(repeat(emoji, 128)));
  expect_rejected(repeat(emoji, 129), "too_long");
  // Mixed: 10 ASCII + 2 emoji = 12.
  EXPECT_FALSE(policy.check("abcdefghij" + repeat(emoji, 2)));
  expect_rejected("abcdefghi" + repeat(emoji, 2), "too_short");
}

TEST_F(PasswordPolicyTest, NoCompositionRules) {
  EXPECT_FALSE(policy.check("alllowercaseletters"));
  EXPECT_FALSE(policy.check("correct horse battery staple"));
  EXPECT_FALSE(policy.check("\xD0\xBF\xD0\xB0\xD1\x80\xD0\xBE\xD0\xBB\xD1\x8C\xD0\xBD\xD0\xB0\xD1\x8F"
                            "\xD1\x84\xD1\x80\xD0\xB0\xD0\xB7\xD0\xB0"));  // Cyrillic, 13 letters
  EXPECT_FALSE(policy.check("  spaces around are kept  "));
}

TEST_F(PasswordPolicyTest, InvalidUtf8IsAnEncodingError) {
  expect_rejected("abcdefghijkl\xFF", "invalid_encoding");
  expect_rejected("abcdefghijkl\xC0\xAF", "invalid_encoding");
  expect_rejected("abcdefghijkl\xED\xA0\x80", "invalid_encoding");
  expect_rejected("abcdefghijkl\xE2\x82", "invalid_encoding");
  expect_rejected("\xFF", "invalid_encoding");  // encoding is checked before length
}

TEST_F(PasswordPolicyTest, EmptyIsRequired) { expect_rejected("", "required"); }

TEST_F(PasswordPolicyTest, OnlyWhitespaceIsRejected) {
  expect_rejected(std::string(12, ' '), "whitespace_only");
  expect_rejected(repeat(" \t\n", 6), "whitespace_only");
  expect_rejected(repeat("\xE3\x80\x80", 12), "whitespace_only");  // ideographic spaces
  expect_rejected(repeat("\xC2\xA0", 20), "whitespace_only");      // no-break spaces
  EXPECT_FALSE(policy.check(std::string(11, ' ') + "x"));
}

TEST_F(PasswordPolicyTest, CommonPasswordsAreRejectedCaseInsensitively) {
  // Long entries of the embedded list (checked to be present below).
  for (const char* common : {"password1234", "qwertyuiop123", "123456789012", "1q2w3e4r5t6y", "passwordpassword",
                             "PASSWORD1234", "PassWord1234", "QwertyUiop123", "1Q2W3E4R5T6Y"}) {
    expect_rejected(common, "common_password");
  }
  EXPECT_FALSE(policy.check("password12345-not-in-the-list"));
}

TEST_F(PasswordPolicyTest, LengthIsCheckedBeforeTheList) {
  // "password" is common but the length rule answers first (more useful to the user).
  expect_rejected("password", "too_short");
}

TEST_F(PasswordPolicyTest, CustomBoundsAreHonoured) {
  PasswordPolicy relaxed{8, 10};
  EXPECT_FALSE(relaxed.check("Xk3vL9qT"));
  ASSERT_TRUE(relaxed.check("Xk3vL9qTz2w"));
  EXPECT_EQ(relaxed.check("Xk3vL9qTz2w")->code, "too_long");
  ASSERT_TRUE(relaxed.check("password"));
  EXPECT_EQ(relaxed.check("password")->code, "common_password");
}

// ---------------------------------------------------------------- the embedded list

TEST(CommonPasswords, ListIsEmbedded) {
  EXPECT_GT(common_password_count(), 40'000u);
  EXPECT_LT(common_password_count(), 60'000u);
}

TEST(CommonPasswords, LookupIsExactAfterAsciiLowerCasing) {
  EXPECT_TRUE(is_common_password("password"));
  EXPECT_TRUE(is_common_password("123456"));
  EXPECT_TRUE(is_common_password("PASSWORD"));
  EXPECT_TRUE(is_common_password("qwertyuiop123"));
  EXPECT_FALSE(is_common_password("password "));  // no trimming
  EXPECT_FALSE(is_common_password(" password"));
  EXPECT_FALSE(is_common_password("passwordx9q7z"));
  EXPECT_FALSE(is_common_password(""));
  EXPECT_FALSE(is_common_password("\xF0\x9F\x98\x80\xF0\x9F\x98\x80"));
}

}  // namespace

TEST(Phone, AcceptsE164AndDropsSeparators) {
  auto p = Phone::parse("+33 6 12-34.56 (78)");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->value(), "+33612345678");
  EXPECT_EQ(p->canonical(), "+33612345678");
  EXPECT_EQ(Phone::parse("  +14155550123 ")->value(), "+14155550123");
}

TEST(Phone, DigitCountBoundaries) {
  EXPECT_TRUE(Phone::parse("+12345678").has_value());          // 8 digits
  EXPECT_FALSE(Phone::parse("+1234567").has_value());          // 7
  EXPECT_TRUE(Phone::parse("+123456789012345").has_value());   // 15
  EXPECT_FALSE(Phone::parse("+1234567890123456").has_value()); // 16
}

TEST(Phone, RefusesWhatIsNotE164) {
  for (const char* bad : {"33612345678", "+03612345678", "+33 6x12345678", "++33612345678", "+",
                          "0033612345678", "+33\t612345678", "+٣٣٦١٢٣٤٥٦٧٨"}) {
    auto p = Phone::parse(bad);
    ASSERT_FALSE(p.has_value()) << bad;
    EXPECT_EQ(p.error().field, "phone");
    EXPECT_EQ(p.error().code, "invalid_format") << bad;
  }
  EXPECT_EQ(Phone::parse("   ").error().code, "required");
}
