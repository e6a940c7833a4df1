#pragma once
// The certificates of the TLS tests, made by scripts/make-test-certs.sh (the openssl CLI) into a
// temp directory of their own, removed with the object. One script for every suite (C++ and
// black-box), so each test's CA, server, client, wrong-CA, self-signed and wrong-host certificates
// are made one way:
//
//   TestCertificates certs;
//   certs.ca()                  the CA that signed server and client (the right CA file)
//   certs.server_cert/key()     for IP 127.0.0.1 and DNS localhost, signed by ca
//   certs.client_cert/key()     a client certificate signed by ca
//   certs.other_ca()            a CA that signed nothing here (the wrong CA file)
//   certs.self_signed_cert/key()  self-signed, for 127.0.0.1 and localhost
//   certs.wrong_host_cert/key()   signed by ca, for wrong.example only
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace registrar::testing {

class TestCertificates {
 public:
  TestCertificates() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "registrar-certs-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("certs: mkdtemp failed");
    dir_ = tmpl;
    ::chmod(dir_.c_str(), 0755);  // servers running as another user (rabbitmq) read the files
    const std::string script = std::string(REGISTRAR_SOURCE_DIR) + "/scripts/make-test-certs.sh";
    // The paths are ours (the source tree, a mkdtemp name): no quoting needed beyond the quotes.
    const int status = std::system(("'" + script + "' '" + dir_.string() + "' >/dev/null 2>&1").c_str());
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::filesystem::remove_all(dir_);
      throw std::runtime_error("certs: scripts/make-test-certs.sh failed (is openssl installed?)");
    }
  }
  ~TestCertificates() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  const std::filesystem::path& dir() const { return dir_; }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  std::string ca() const { return file("ca.crt"); }
  std::string other_ca() const { return file("other-ca.crt"); }
  std::string server_cert() const { return file("server.crt"); }
  std::string server_key() const { return file("server.key"); }
  std::string client_cert() const { return file("client.crt"); }
  std::string client_key() const { return file("client.key"); }
  std::string self_signed_cert() const { return file("self-signed.crt"); }
  std::string self_signed_key() const { return file("self-signed.key"); }
  std::string wrong_host_cert() const { return file("wrong-host.crt"); }
  std::string wrong_host_key() const { return file("wrong-host.key"); }

 private:
  std::filesystem::path dir_;
};

}  // namespace registrar::testing
