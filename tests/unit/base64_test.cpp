// sodium::base64_encode / base64_decode (libsodium's, the decoder strict about each variant's
// alphabet) and sodium::hex_encode.
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/hex.hpp"

namespace {

using registrar::adapters::sodium::base64_decode;
using registrar::adapters::sodium::base64_encode;
using registrar::adapters::sodium::hex_encode;

TEST(Base64Encode, EncodesEachVariantAndDecodesBack) {
  const std::string bytes("\xfb\xff", 2);
  EXPECT_EQ(base64_encode(bytes, sodium_base64_VARIANT_ORIGINAL), "+/8=");
  EXPECT_EQ(base64_encode(bytes, sodium_base64_VARIANT_ORIGINAL_NO_PADDING), "+/8");
  EXPECT_EQ(base64_encode(bytes, sodium_base64_VARIANT_URLSAFE), "-_8=");
  EXPECT_EQ(base64_encode(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING), "-_8");
  EXPECT_EQ(base64_encode("", sodium_base64_VARIANT_ORIGINAL), "");
  const unsigned char raw[] = {0, 1, 2, 0xfe};
  EXPECT_EQ(base64_encode(raw, sodium_base64_VARIANT_ORIGINAL), "AAEC/g==");
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"), std::string(1000, '\x80')})
    EXPECT_EQ(base64_decode(base64_encode(s, sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                            sodium_base64_VARIANT_URLSAFE_NO_PADDING),
              s);
}

TEST(HexEncode, LowerCaseTwoDigitsPerByte) {
  const unsigned char raw[] = {0x00, 0x0f, 0xa5, 0xff};
  EXPECT_EQ(hex_encode(raw), "000fa5ff");
  EXPECT_EQ(hex_encode(std::string_view("\x01\xAB", 2)), "01ab");
  EXPECT_EQ(hex_encode(std::string_view()), "");
}

TEST(Base64Decode, DecodesEachVariant) {
  EXPECT_EQ(base64_decode("+/8=", sodium_base64_VARIANT_ORIGINAL), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64_decode("+/8", sodium_base64_VARIANT_ORIGINAL_NO_PADDING), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64_decode("-_8=", sodium_base64_VARIANT_URLSAFE), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64_decode("-_8", sodium_base64_VARIANT_URLSAFE_NO_PADDING), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64_decode("", sodium_base64_VARIANT_URLSAFE_NO_PADDING), std::string());
}

TEST(Base64Decode, RefusesCharactersOfTheOtherAlphabetAndPaddingWhereThereIsNone) {
  EXPECT_EQ(base64_decode("-_8=", sodium_base64_VARIANT_ORIGINAL), std::nullopt);
  EXPECT_EQ(base64_decode("+/8", sodium_base64_VARIANT_URLSAFE_NO_PADDING), std::nullopt);
  EXPECT_EQ(base64_decode("-_8=", sodium_base64_VARIANT_URLSAFE_NO_PADDING), std::nullopt);
  EXPECT_EQ(base64_decode("+/ 8", sodium_base64_VARIANT_ORIGINAL_NO_PADDING), std::nullopt);  // nothing skipped
}

// libsodium 1.0.18 alone decodes 0x80–0xFF as the alphabet's last character ('/' or '_').
TEST(Base64Decode, RefusesBytesLibsodiumWouldReadAsTheLastCharacter) {
  EXPECT_EQ(base64_decode("-\xdf" "8", sodium_base64_VARIANT_URLSAFE_NO_PADDING), std::nullopt);
  EXPECT_EQ(base64_decode("+\xaf" "8=", sodium_base64_VARIANT_ORIGINAL), std::nullopt);
}

TEST(Base64Decode, RefusesWhatLibsodiumRefuses) {
  EXPECT_EQ(base64_decode("-_9", sodium_base64_VARIANT_URLSAFE_NO_PADDING), std::nullopt);  // non-zero trailing bits
  EXPECT_EQ(base64_decode("+/8", sodium_base64_VARIANT_ORIGINAL), std::nullopt);            // padding missing
}

}  // namespace
