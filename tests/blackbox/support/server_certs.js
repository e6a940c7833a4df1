'use strict';
// Certificates for the API's TLS (--tls-cert/--tls-key), made with the `openssl` command line in a
// temporary directory: a CA, and server pairs it signs for 127.0.0.1 and localhost (SAN), each with
// its own serial, so a test can tell which one a connection got.
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function openssl(args, cwd) {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

// A fresh CA in its own directory. `serverPair(name, serial)` signs a server certificate.
function makeCa() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'registrar-certs-'));
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca.key',
    '-out', 'ca.pem', '-days', '2', '-subj', '/CN=registrar test CA'], dir);
  fs.writeFileSync(path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    ca: fs.readFileSync(path.join(dir, 'ca.pem')),
    // { cert, key } file paths, the certificate's serial (upper-case hex) and SHA-256 fingerprint
    // (as node's peer certificate `fingerprint256` writes it).
    serverPair(name, serial) {
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`,
        '-out', `${name}.csr`, '-subj', `/CN=localhost/O=${name}`], dir);
      openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', `0x${serial}`,
        '-days', '2', '-extfile', 'server.ext', '-out', `${name}.pem`], dir);
      const cert = path.join(dir, `${name}.pem`);
      const x509 = new crypto.X509Certificate(fs.readFileSync(cert));
      return { cert, key: path.join(dir, `${name}.key`), serial: x509.serialNumber.toUpperCase(), fingerprint256: x509.fingerprint256 };
    },
    dispose() { fs.rmSync(dir, { recursive: true, force: true }); },
  };
}

module.exports = { makeCa };
