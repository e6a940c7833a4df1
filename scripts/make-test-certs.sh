#!/usr/bin/env bash
# Makes the certificates the TLS tests use, with the openssl CLI, into DIR (created if needed).
# Usage: scripts/make-test-certs.sh DIR
#
#   ca.crt / ca.key                  the test CA
#   server.crt / server.key          signed by ca, for IP 127.0.0.1 and DNS localhost (serverAuth)
#   client.crt / client.key          signed by ca, CN registrar-test-client (clientAuth)
#   other-ca.crt / other-ca.key      a CA that signed nothing here (the "wrong CA")
#   self-signed.crt / self-signed.key  self-signed, for 127.0.0.1 and localhost
#   wrong-host.crt / wrong-host.key  signed by ca, but for DNS wrong.example only
#
# EC P-256 keys (fast to make: the whole set takes ~0.2 s), unencrypted, valid 2 days; files are
# 0644 so that a server running as another user (rabbitmq, mysql) can read them. Used by the C++
# tests (tests/support/certs.hpp) and the black-box ones, so that every suite makes them one way.
set -euo pipefail
dir=${1:?usage: make-test-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)

for ca in ca other-ca; do
  openssl req -x509 "${ec[@]}" -keyout "$ca.key" -out "$ca.crt" -days 2 -subj "/CN=registrar-test-$ca" 2>/dev/null
done

# leaf NAME SUBJECT EXTENSIONS: a key and a certificate signed by ca.
leaf() {
  openssl req "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  printf '%b' "$3" >"$1-ext.cnf"
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 \
    -extfile "$1-ext.cnf" 2>/dev/null
  rm -f "$1.csr" "$1-ext.cnf"
}
leaf server /CN=localhost 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n'
leaf client /CN=registrar-test-client 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n'
leaf wrong-host /CN=wrong.example 'subjectAltName=DNS:wrong.example\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n'

openssl req -x509 "${ec[@]}" -keyout self-signed.key -out self-signed.crt -days 2 -subj /CN=localhost \
  -addext 'subjectAltName=IP:127.0.0.1,DNS:localhost' 2>/dev/null

chmod 0644 ./*.crt ./*.key
