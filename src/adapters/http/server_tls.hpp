#pragma once
// The API's TLS certificate (--tls-cert, --tls-key) for deployments without a TLS-terminating
// proxy: an OpenSSL server context built from PEM files, replaced as a whole on reload (SIGHUP).
// Each connection takes the context current when it is accepted and keeps it (stream.hpp), so a
// reload changes the certificate of new connections only, and one that fails changes nothing.
//
// The context: TLS 1.2 and 1.3 only; OpenSSL's default cipher suites for those at its configured
// security level (openssl.cnf); no TLS compression (CRIME); no renegotiation
// (client-initiated renegotiation is a DoS lever and nothing here needs it); the server's cipher
// preference; OpenSSL's record buffers released while a connection is idle (keep-alive and
// Socket.IO connections are idle most of the time).
#include <boost/asio/ssl/context.hpp>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

namespace registrar::adapters::http {

// What a loaded certificate is, for the log (never the key).
struct CertificateInfo {
  std::string subject;
  std::string not_after;           // as OpenSSL prints it: "Jan  2 03:04:05 2027 GMT"
  std::string sha256_fingerprint;  // upper-case hex pairs joined by ':', as `openssl x509 -fingerprint -sha256`
};

// A certificate/key pair that cannot be used; what() names the file and says why.
struct TlsSetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Builds the server context from a PEM certificate chain and its PEM private key (not encrypted:
// there is nobody to type a pass phrase). Throws TlsSetupError when a file cannot be read, holds
// no certificate or key, or the key is not the certificate's.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const std::filesystem::path& cert_file,
                                                                   const std::filesystem::path& key_file,
                                                                   CertificateInfo* info = nullptr);

class ServerTls {
 public:
  // Loads the pair now: throws TlsSetupError as make_server_tls_context does.
  ServerTls(std::filesystem::path cert_file, std::filesystem::path key_file);

  // Loads the files again. On success new connections get the new pair and it says what was
  // loaded; on failure the current pair stays and the TlsSetupError says why. Any thread.
  CertificateInfo reload();

  // The context for a connection accepted now. Any thread.
  std::shared_ptr<boost::asio::ssl::context> current() const;
  const CertificateInfo& loaded() const { return info_; }  // as loaded at construction

  const std::filesystem::path& cert_file() const { return cert_file_; }
  const std::filesystem::path& key_file() const { return key_file_; }

 private:
  std::filesystem::path cert_file_;
  std::filesystem::path key_file_;
  CertificateInfo info_;
  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> context_;
};

}  // namespace registrar::adapters::http
