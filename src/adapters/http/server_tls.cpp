#include "adapters/http/server_tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/buffer.hpp>
#include <boost/system/system_error.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace registrar::adapters::http {

namespace ssl = boost::asio::ssl;

namespace {

// The PEM text of `file`, or a TlsSetupError naming the setting and the file.
std::string read_pem(const std::filesystem::path& file, const char* setting) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw TlsSetupError(std::string("cannot read ") + setting + " " + file.string() + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

CertificateInfo describe(SSL_CTX* ctx) {
  CertificateInfo info;
  X509* cert = SSL_CTX_get0_certificate(ctx);
  if (cert == nullptr) return info;
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
  if (bio && X509_NAME_print_ex(bio.get(), X509_get_subject_name(cert), 0, XN_FLAG_RFC2253) >= 0)
    info.subject = bio_text(bio.get());
  std::unique_ptr<BIO, decltype(&BIO_free)> time(BIO_new(BIO_s_mem()), &BIO_free);
  if (time && ASN1_TIME_print(time.get(), X509_get0_notAfter(cert)) == 1) info.not_after = bio_text(time.get());
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) == 1) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (unsigned i = 0; i < len; ++i) {
      if (i != 0) info.sha256_fingerprint += ':';
      info.sha256_fingerprint += hex[md[i] >> 4];
      info.sha256_fingerprint += hex[md[i] & 0xF];
    }
  }
  return info;
}

// No pass phrase: an encrypted key fails to load (OpenSSL's default would prompt on the terminal).
int no_pass_phrase(char*, int, int, void*) { return 0; }

}  // namespace

std::shared_ptr<ssl::context> make_server_tls_context(const std::filesystem::path& cert_file,
                                                      const std::filesystem::path& key_file, CertificateInfo* info) {
  const std::string cert_pem = read_pem(cert_file, "--tls-cert");
  const std::string key_pem = read_pem(key_file, "--tls-key");

  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  SSL_CTX* ctx = context->native_handle();
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_ALL);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx, &no_pass_phrase);

  boost::system::error_code ec;
  context->use_certificate_chain(boost::asio::buffer(cert_pem), ec);
  ERR_clear_error();  // Asio took the first error for `ec`; the rest would linger on this thread
  if (ec)
    throw TlsSetupError("--tls-cert " + cert_file.string() + " holds no usable PEM certificate (" + ec.message() + ")");
  context->use_private_key(boost::asio::buffer(key_pem), ssl::context::pem, ec);
  ERR_clear_error();
  if (ec) {
    // SSL_CTX_use_PrivateKey checks the key against the certificate already loaded.
    const auto code = static_cast<unsigned long>(ec.value());
    const bool mismatch = ERR_GET_LIB(code) == ERR_LIB_X509 && ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH;
    if (mismatch)
      throw TlsSetupError("--tls-key " + key_file.string() + " is not the private key of the certificate in --tls-cert " +
                          cert_file.string());
    throw TlsSetupError("--tls-key " + key_file.string() + " holds no usable unencrypted PEM private key (" +
                        ec.message() + ")");
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    throw TlsSetupError("--tls-key " + key_file.string() + " is not the private key of the certificate in --tls-cert " +
                        cert_file.string());
  }
  if (info) *info = describe(ctx);
  return context;
}

ServerTls::ServerTls(std::filesystem::path cert_file, std::filesystem::path key_file)
    : cert_file_(std::move(cert_file)), key_file_(std::move(key_file)) {
  context_ = make_server_tls_context(cert_file_, key_file_, &info_);
}

CertificateInfo ServerTls::reload() {
  CertificateInfo info;
  auto fresh = make_server_tls_context(cert_file_, key_file_, &info);
  std::lock_guard lock(mutex_);
  context_ = std::move(fresh);
  return info;
}

std::shared_ptr<ssl::context> ServerTls::current() const {
  std::lock_guard lock(mutex_);
  return context_;
}

}  // namespace registrar::adapters::http
