#pragma once
// A fresh directory under the system temp dir ($TMPDIR), removed with everything in it when the
// object goes (the end of the test).
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace registrar::testing {

class TempDir {
 public:
  TempDir() {
    std::string buf = (std::filesystem::temp_directory_path() / "registrar-test-XXXXXX").string();
    if (::mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = buf;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace registrar::testing
