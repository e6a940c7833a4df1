#include "main/dotenv.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

namespace {

using registrar::dotenv::load_file;
using registrar::dotenv::Map;
using registrar::dotenv::parse;

Map parsed(std::string_view text) {
  auto result = parse(text);
  EXPECT_TRUE(result.ok()) << result.error;
  return result.values;
}

std::string error_of(std::string_view text) {
  auto result = parse(text);
  EXPECT_FALSE(result.ok());
  EXPECT_TRUE(result.values.empty());
  return result.error;
}

TEST(Dotenv, EmptyTextHasNoValues) {
  EXPECT_TRUE(parsed("").empty());
  EXPECT_TRUE(parsed("\n\n   \n").empty());
}

TEST(Dotenv, KeyValueLinesCommentsAndBlankLines) {
  auto values = parsed(
      "# a comment\n"
      "\n"
      "REGISTRAR_LISTEN=0.0.0.0:9000\n"
      "   # indented comment\n"
      "_under_score9=x\n");
  EXPECT_EQ(values, (Map{{"REGISTRAR_LISTEN", "0.0.0.0:9000"}, {"_under_score9", "x"}}));
}

TEST(Dotenv, ExportPrefixAndSpacesAroundEquals) {
  auto values = parsed("export A=1\nexport\tB = 2\n  C  =  3  \nexporter=4\n");
  EXPECT_EQ(values, (Map{{"A", "1"}, {"B", "2"}, {"C", "3"}, {"exporter", "4"}}));
}

TEST(Dotenv, UnquotedValuesAreTrimmedAndLoseInlineComments) {
  auto values = parsed("A=  hello world  \nB=value # note\nC=a#b\nD=\nE= # only a comment\nF=x\t# tab\nG=#x\n");
  EXPECT_EQ(values["A"], "hello world");
  EXPECT_EQ(values["B"], "value");
  EXPECT_EQ(values["C"], "a#b");
  EXPECT_EQ(values["D"], "");
  EXPECT_EQ(values["E"], "");
  EXPECT_EQ(values["F"], "x");
  EXPECT_EQ(values["G"], "#x");
}

TEST(Dotenv, SingleQuotesAreLiteral) {
  auto values = parsed(R"(A='  spaced # not a comment \n $HOME '  # comment
B=''
)");
  EXPECT_EQ(values["A"], R"(  spaced # not a comment \n $HOME )");
  EXPECT_EQ(values["B"], "");
}

TEST(Dotenv, DoubleQuotesUnderstandEscapes) {
  auto values = parsed(R"(A="line1\nline2"
B="say \"hi\""
C="back\\slash"
D="C:\data\x" # unknown escapes stay as written
E="# not a comment"
F="it's"
)");
  EXPECT_EQ(values["A"], "line1\nline2");
  EXPECT_EQ(values["B"], "say \"hi\"");
  EXPECT_EQ(values["C"], "back\\slash");
  EXPECT_EQ(values["D"], "C:\\data\\x");
  EXPECT_EQ(values["E"], "# not a comment");
  EXPECT_EQ(values["F"], "it's");
}

TEST(Dotenv, CrlfLineEndings) {
  EXPECT_EQ(parsed("A=1\r\nB=\"2\"\r\n"), (Map{{"A", "1"}, {"B", "2"}}));
}

TEST(Dotenv, LastValueOfARepeatedKeyWins) { EXPECT_EQ(parsed("A=1\nA=2\n")["A"], "2"); }

TEST(Dotenv, NoVariableExpansion) { EXPECT_EQ(parsed("A=${HOME}/x\n")["A"], "${HOME}/x"); }

TEST(Dotenv, ErrorsNameTheLine) {
  EXPECT_EQ(error_of("A=1\n\n# c\nnot a setting\n"), ".env:4: expected KEY=VALUE");
  EXPECT_EQ(error_of("1ABC=x"), ".env:1: expected KEY=VALUE");
  EXPECT_EQ(error_of("KEY-X=1"), ".env:1: expected KEY=VALUE");
  EXPECT_EQ(error_of("=value"), ".env:1: expected KEY=VALUE");
  EXPECT_EQ(error_of("export\n"), ".env:1: expected KEY=VALUE");
  EXPECT_EQ(error_of("A=1\nB='open\n"), ".env:2: unterminated single-quoted value");
  EXPECT_EQ(error_of("B=\"open\\\"\n"), ".env:1: unterminated double-quoted value");
  EXPECT_EQ(error_of("B=\"x\"y\n"), ".env:1: unexpected text after closing quote");
  EXPECT_EQ(error_of("B='x' y\n"), ".env:1: unexpected text after closing quote");
}

TEST(Dotenv, ErrorsUseTheGivenOrigin) {
  auto result = parse("oops", "config/.env.local");
  EXPECT_EQ(result.error, "config/.env.local:1: expected KEY=VALUE");
}

TEST(Dotenv, LoadFileReadsAFileAndAMissingFileIsEmpty) {
  auto dir = std::filesystem::temp_directory_path() / ("dotenv_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto missing = load_file(dir / "absent.env");
  EXPECT_TRUE(missing.ok());
  EXPECT_TRUE(missing.values.empty());

  auto path = dir / ".env";
  std::ofstream(path) << "REGISTRAR_LOG_LEVEL=debug\nbroken line\n";
  auto broken = load_file(path);
  EXPECT_EQ(broken.error, path.string() + ":2: expected KEY=VALUE");

  std::ofstream(path) << "REGISTRAR_LOG_LEVEL=debug\n";
  auto good = load_file(path);
  EXPECT_TRUE(good.ok()) << good.error;
  EXPECT_EQ(good.values, (Map{{"REGISTRAR_LOG_LEVEL", "debug"}}));

  std::ofstream(path, std::ios::trunc).flush();  // an empty file is fine
  EXPECT_TRUE(load_file(path).ok());
  std::filesystem::remove_all(dir);
}

}  // namespace
