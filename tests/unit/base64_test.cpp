// sodium::base64_decode: libsodium's decoder, strict about each variant's alphabet.
#include <gtest/gtest.h>
#include <sodium.h>

#include <string>

#include "adapters/sodium/base64.hpp"

namespace {

using registrar::adapters::sodium::base64_decode;

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
