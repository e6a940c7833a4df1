#pragma once
// The name a TLS client expects its server to prove, for every connection registrar opens with
// OpenSSL (HTTP posts, SMTP, Redis, RabbitMQ, the Socket.IO client). Header-only: each of those
// adapters links OpenSSL already.
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/system/error_code.hpp>

#include <string>

namespace registrar::adapters::tls {

// True if `host` is an IPv4 or IPv6 address literal, not a name.
inline bool is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  return !ec;
}

// Makes OpenSSL's own chain verification (the parameters of an SSL or SSL_CTX) also check that the
// certificate names `host`: its address for an IP literal, else its name with no partial
// wildcards. A mismatch then fails the handshake with its own verify result ("hostname mismatch",
// "IP address mismatch"), which the clients put in their error messages. False if OpenSSL refused
// the name.
inline bool verify_peer_name(X509_VERIFY_PARAM* param, const std::string& host) {
  if (is_ip_literal(host)) return X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1;
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  return X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
}

// Server Name Indication for a host name; nothing for an address (RFC 6066 §3). False if OpenSSL
// refused the name.
inline bool send_sni(SSL* ssl, const std::string& host) {
  return is_ip_literal(host) || SSL_set_tlsext_host_name(ssl, host.c_str()) == 1;
}

}  // namespace registrar::adapters::tls
