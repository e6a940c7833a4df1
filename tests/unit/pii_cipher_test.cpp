// The libsodium PII cipher and its keyring (adapters/sodium/pii_cipher.hpp), with real keys in a
// temporary directory or inline.
#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/pii_cipher.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

namespace fs = std::filesystem;
using adapters::sodium::PiiKeyringOptions;
using adapters::sodium::SodiumPiiCipher;
using ports::KeyUnavailable;
using testing::TempDir;

constexpr std::string_view kPhone = "+33612345678";
constexpr std::string_view kContext = "users.phone:user-1";

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

std::string random_key_base64() {
  unsigned char key[32];
  randombytes_buf(key, sizeof key);
  return adapters::sodium::base64_encode(std::span<const unsigned char>(key, sizeof key), sodium_base64_VARIANT_ORIGINAL);
}

struct DirKeyring : ::testing::Test {
  TempDir dir;
  fs::path keys() const { return dir.path() / "keys"; }
  SodiumPiiCipher make(std::string pinned = "", bool create = true) {
    return SodiumPiiCipher(PiiKeyringOptions{.dir = keys(), .pinned_key_id = std::move(pinned), .create_missing = create});
  }
};

TEST_F(DirKeyring, FirstRunGeneratesPrivateKeyFilesAndSealsAndOpens) {
  auto pii = make();
  ASSERT_EQ(pii.key_ids().size(), 1u);
  const std::string id = pii.current_key_id();
  EXPECT_EQ(id, pii.key_ids().front());
  EXPECT_EQ(mode_of(keys()), 0700u);
  EXPECT_EQ(mode_of(keys() / ("pii-" + id + ".key")), 0600u);
  EXPECT_EQ(fs::file_size(keys() / ("pii-" + id + ".key")), 32u);
  EXPECT_EQ(mode_of(keys() / "blind-index.key"), 0600u);
  EXPECT_TRUE(pii.has_index_key());

  auto sealed = pii.seal(kPhone, kContext);
  EXPECT_EQ(sealed.key_id, id);
  EXPECT_EQ(sealed.ciphertext.size(), 24 + kPhone.size() + 16);  // nonce ‖ ciphertext ‖ tag
  EXPECT_EQ(sealed.ciphertext.find(kPhone), std::string::npos);
  EXPECT_EQ(pii.open(sealed, kContext), kPhone);
  // A fresh nonce per seal: the same number never gives the same bytes twice.
  EXPECT_NE(pii.seal(kPhone, kContext).ciphertext, sealed.ciphertext);

  // A second process on the same directory uses the same keys (nothing new is generated).
  auto again = make();
  EXPECT_EQ(again.key_ids(), pii.key_ids());
  EXPECT_EQ(again.open(sealed, kContext), kPhone);
  EXPECT_EQ(again.blind_index(kPhone, "phone"), pii.blind_index(kPhone, "phone"));
}

TEST_F(DirKeyring, TamperedCiphertextOrAnotherContextIsRefused) {
  auto pii = make();
  const auto sealed = pii.seal(kPhone, kContext);
  for (std::size_t i : {std::size_t{0}, std::size_t{23}, std::size_t{24}, sealed.ciphertext.size() - 1}) {
    auto bad = sealed;
    bad.ciphertext[i] = static_cast<char>(bad.ciphertext[i] ^ 0x01);
    EXPECT_THROW(pii.open(bad, kContext), std::runtime_error) << "byte " << i;
  }
  EXPECT_THROW(pii.open(sealed, "users.phone:user-2"), std::runtime_error);  // moved to another row
  auto truncated = sealed;
  truncated.ciphertext.resize(30);
  EXPECT_THROW(pii.open(truncated, kContext), std::runtime_error);
  EXPECT_THROW(pii.open({sealed.key_id, ""}, kContext), std::runtime_error);
}

TEST_F(DirKeyring, AnUnknownKeyIdIsKeyUnavailable) {
  auto pii = make();
  auto sealed = pii.seal(kPhone, kContext);
  sealed.key_id = "no-such-key";
  EXPECT_THROW(pii.open(sealed, kContext), KeyUnavailable);
  // A pinned current key that does not exist: nothing can be sealed (the job's "Error encrypting
  // your credentials"), what exists still opens.
  auto pinned = make("missing-key");
  EXPECT_EQ(pinned.current_key_id(), "missing-key");
  EXPECT_THROW(pinned.seal(kPhone, kContext), KeyUnavailable);
  EXPECT_EQ(pinned.open(pii.seal(kPhone, kContext), kContext), kPhone);
}

TEST_F(DirKeyring, NoKeysAndNoCreationMeansKeyUnavailable) {
  auto pii = make("", false);
  EXPECT_TRUE(pii.key_ids().empty());
  EXPECT_EQ(pii.current_key_id(), "");
  EXPECT_FALSE(pii.has_index_key());
  EXPECT_THROW(pii.seal(kPhone, kContext), KeyUnavailable);
  EXPECT_THROW(pii.blind_index(kPhone, "phone"), KeyUnavailable);
}

TEST_F(DirKeyring, BlindIndexIsDeterministicPerKeyAndPurpose) {
  auto pii = make();
  const auto a = pii.blind_index(kPhone, "phone");
  EXPECT_EQ(a.size(), 64u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_EQ(pii.blind_index(kPhone, "phone"), a);
  EXPECT_NE(pii.blind_index("+33612345679", "phone"), a);
  EXPECT_NE(pii.blind_index(kPhone, "code"), a);  // purposes are separate
  // The encoding is unambiguous: moving bytes between purpose and value changes the index.
  EXPECT_NE(pii.blind_index("b", "a"), pii.blind_index("", "ab"));
  EXPECT_EQ(a.find(kPhone.substr(1)), std::string::npos);
  // Another index key, another index.
  TempDir other;
  SodiumPiiCipher elsewhere(PiiKeyringOptions{.dir = other.path()});
  EXPECT_NE(elsewhere.blind_index(kPhone, "phone"), a);
}

TEST_F(DirKeyring, ANewKeyBecomesCurrentWhileOldOnesStillOpenAndTheIndexStays) {
  auto pii = make();
  const std::string first = pii.current_key_id();
  const auto sealed = pii.seal(kPhone, kContext);
  const auto index = pii.blind_index(kPhone, "phone");

  // `keys rotate` in another process writes a new key file: a greater (newer) id.
  const std::string second = adapters::sodium::create_pii_key_file(keys());
  EXPECT_GT(second, first);
  EXPECT_EQ(mode_of(keys() / ("pii-" + second + ".key")), 0600u);
  EXPECT_THROW(adapters::sodium::create_pii_key_file(keys(), second), std::invalid_argument);  // never overwritten
  EXPECT_THROW(adapters::sodium::create_pii_key_file(keys(), "../evil"), std::invalid_argument);

  // The running keyring seals under it from its next seal on, and still opens the old one.
  auto resealed = pii.seal(kPhone, kContext);
  EXPECT_EQ(resealed.key_id, second);
  EXPECT_EQ(pii.current_key_id(), second);
  EXPECT_EQ(pii.open(sealed, kContext), kPhone);
  EXPECT_EQ(pii.blind_index(kPhone, "phone"), index);  // the index key does not rotate

  // Pinning an older key keeps it current.
  auto pinned = make(first);
  EXPECT_EQ(pinned.seal(kPhone, kContext).key_id, first);
  EXPECT_EQ(pinned.open(resealed, kContext), kPhone);
}

TEST(InlineKeyring, KeysFromTheEnvironmentWriteNoFiles) {
  TempDir dir;
  const std::string index_key = random_key_base64();
  PiiKeyringOptions o{.dir = dir.path() / "keys",
                      .inline_keys = "old:" + random_key_base64() + ", new:" + random_key_base64(),
                      .inline_index_key = index_key};
  SodiumPiiCipher pii(o);
  EXPECT_EQ(pii.key_ids(), (std::vector<std::string>{"new", "old"}));
  EXPECT_EQ(pii.current_key_id(), "old");  // the greatest id: "old" > "new"
  auto sealed = pii.seal(kPhone, kContext);
  EXPECT_EQ(pii.open(sealed, kContext), kPhone);
  EXPECT_FALSE(fs::exists(dir.path() / "keys"));
  // Another process given the same variables reads the same data.
  SodiumPiiCipher same(o);
  EXPECT_EQ(same.open(sealed, kContext), kPhone);
  EXPECT_EQ(same.blind_index(kPhone, "phone"), pii.blind_index(kPhone, "phone"));
  o.pinned_key_id = "new";
  EXPECT_EQ(SodiumPiiCipher(o).seal(kPhone, kContext).key_id, "new");
}

TEST(InlineKeyring, MalformedKeysAreRefusedWithoutQuotingThem) {
  const std::string good = random_key_base64();
  const std::string short_key = adapters::sodium::base64_encode(std::string_view("0123456789"), sodium_base64_VARIANT_ORIGINAL);
  for (const auto& [keys, index] : std::vector<std::pair<std::string, std::string>>{
           {"k1:" + good, ""},                // no index key
           {"k1:" + short_key, good},         // 10 bytes
           {"k1:not base64!", good},
           {good, good},                      // no id
           {"../k:" + good, good},            // an id that is not a file name part
           {"k1:" + good, "c2hvcnQ="}}) {
    try {
      SodiumPiiCipher pii(PiiKeyringOptions{.inline_keys = keys, .inline_index_key = index});
      ADD_FAILURE() << "accepted " << keys;
    } catch (const std::invalid_argument& e) {
      EXPECT_EQ(std::string(e.what()).find(good), std::string::npos) << e.what();
    }
  }
}

TEST(KeyIds, GeneratedIdsAreValidAndOrderedByTime) {
  const auto id = adapters::sodium::new_pii_key_id();
  EXPECT_TRUE(adapters::sodium::valid_pii_key_id(id)) << id;
  EXPECT_EQ(id.size(), std::string("20261206-120000.123-abcd").size());
  for (std::string_view bad : std::vector<std::string_view>{"", ".hidden", "a/b", "a b", std::string_view("x\0y", 3)})
    EXPECT_FALSE(adapters::sodium::valid_pii_key_id(bad)) << bad;
}

}  // namespace
}  // namespace registrar
