#pragma once
// Settings of the MySQL/MariaDB adapter. The composition root fills them from the parsed
// --database-url (config::Database); the adapter never parses URLs itself.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace registrar::adapters::mysql {

// TLS to the server, named after MySQL's --ssl-mode. Every mode but `disabled` refuses a server
// that does not offer TLS: never a silent fallback to plaintext.
enum class SslMode {
  disabled,         // plain TCP (or the Unix socket)
  required,         // TLS, the certificate not checked (protects from passive eavesdroppers only)
  verify_ca,        // TLS, the certificate chain checked against ca_file (else the system's CAs)
  verify_identity,  // verify_ca, and the certificate names the host (or IP address) connected to
};

struct MysqlOptions {
  std::string host = "127.0.0.1";  // "localhost" means the Unix socket (libmariadb's rule)
  std::uint16_t port = 3306;
  std::string unix_socket;  // empty → the client library's default (only used with host "localhost")
  std::string user;
  std::string password;
  std::string database;

  SslMode ssl_mode = SslMode::disabled;  // the composition root picks the safe default (config.hpp)
  std::string ca_file;                   // verify_ca / verify_identity: PEM CA bundle; empty: the system's

  // Connections opened at most (lazily, on demand). A caller that finds them all busy waits up to
  // `acquire_timeout`, then gets ports::BackendUnavailable.
  std::size_t pool_size = 8;
  std::chrono::milliseconds acquire_timeout{5000};

  // Client-side network timeouts (whole seconds, the driver's granularity; rounded up, at least 1).
  std::chrono::seconds connect_timeout{3};
  std::chrono::seconds read_timeout{10};
  std::chrono::seconds write_timeout{10};

  // innodb_lock_wait_timeout of every session: how long one statement waits for a row lock held by
  // another transaction before failing (then the transaction is retried, see MysqlPool::transact).
  // Keep it below read_timeout so a lock wait never looks like a dead server.
  std::chrono::seconds lock_wait_timeout{3};

  // How long a migrating process waits for another one that holds the migration lock.
  std::chrono::seconds migration_lock_timeout{60};
};

}  // namespace registrar::adapters::mysql
