#pragma once
// A minimal SMTP client (RFC 5321) that submits one plain-text message per send().
//
// Why hand-written: Debian 12 packages no C++ SMTP client library. libcurl can speak SMTP, but
// this tree installs only its runtime (no libcurl4-openssl-dev) and links nothing from it; adding
// a library and a CMake dependency for ~300 lines of a line-based protocol we already have the
// tools for (Boost.Asio/Beast, the same stack as the HTTP server and the webhook consumer) is not
// worth it. The scope is deliberately small:
//   [TLS] → EHLO (HELO fallback) → [STARTTLS → EHLO] → [AUTH PLAIN] → MAIL FROM → RCPT TO → DATA
//   → QUIT, every reply checked, dot-stuffing and CRLF normalisation, 8BITMIME when offered (else
//   base64 for non-ASCII bodies), RFC 2047 for a non-ASCII subject, one timeout per step.
// TLS (OpenSSL through Asio's ssl stream, as the webhook client): implicit TLS (smtps://, RFC 8314)
// or STARTTLS (RFC 3207), TLS 1.2 or later, the server's certificate verified (chain against
// `ca_file` or the system's CAs, and the host name or IP address of the URL), SNI for host names.
// With STARTTLS required, a server that does not offer it, or whose handshake fails, gets nothing
// but EHLO: no credentials, no message. No fallback to plaintext.
// Out of scope: SMTPUTF8 (non-ASCII addresses), other AUTH mechanisms, pipelining, connection reuse.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "ports/mail_sender.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::mail {

enum class SmtpTls {
  none,      // plain SMTP (a local relay)
  starttls,  // plain connect, then STARTTLS before anything but EHLO; refused if not offered
  implicit,  // TLS from the first byte (smtps://, port 465)
};

struct SmtpOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 25;
  std::string from;  // envelope sender and From: header, e.g. "noreply@example.com" (required)
  std::optional<std::string> username;  // set → AUTH PLAIN
  std::optional<std::string> password;
  std::string helo_name = "localhost";  // our name in EHLO
  std::chrono::milliseconds timeout{30'000};  // each step: resolve+connect, each command's reply
  // Without TLS, AUTH PLAIN sends the password in clear text. It is allowed to a loopback host
  // (a local relay) only, unless this is set.
  bool allow_plaintext_auth = false;
  SmtpTls tls = SmtpTls::none;
  std::string ca_file;  // TLS: PEM CA bundle to verify the server with; empty: the system's CAs
};

// smtp://[user[:password]@]host[:port] (percent-decoded; port defaults to 25; tls none, the
// caller decides on STARTTLS) or smtps://… (implicit TLS, port 465). Leaves `from` empty. Throws
// std::invalid_argument with a message that never contains the password.
SmtpOptions parse_smtp_url(std::string_view url);

// Error semantics of send():
//  * ports::MailRejected — the relay refused this message for good: a 5xx reply to RCPT TO or to
//    the message content, or a recipient address that cannot be written in SMTP.
//  * ports::BackendUnavailable — cannot connect, timeout, connection lost, a 4xx (transient)
//    reply, or a reply that is not SMTP.
//  * std::runtime_error — any other 5xx (bad credentials, sender refused, …): a configuration
//    problem that retrying the same message will not fix but that is not the message's fault.
// A message is sent at most once per send() call; the relay has accepted it when send() returns.
// If the connection drops after the final "." but before the relay's reply, send() throws and a
// retry may deliver a second copy with the same Message-ID (built from the idempotency key), which
// mail systems commonly use to drop duplicates.
class SmtpMailSender final : public ports::MailSender {
 public:
  // `clock` (for the Date header) may be null: the system clock. Throws std::invalid_argument on
  // bad options (no/invalid `from`, credentials in clear text to a non-loopback host without
  // allow_plaintext_auth, a CA file that does not load).
  explicit SmtpMailSender(SmtpOptions options, ports::Clock* clock = nullptr);
  ~SmtpMailSender() override;

  void send(const ports::MailMessage& message) override;

 private:
  SmtpOptions options_;
  ports::Clock* clock_;
  struct Tls;  // the OpenSSL client context, kept out of this header
  std::unique_ptr<Tls> tls_;
};

// Helpers, exposed for tests.
// RFC 5322 date, e.g. "Sun, 19 Oct 2025 16:37:15 +0000".
std::string rfc5322_date(std::chrono::sys_seconds t);
// Lines normalised to CRLF, every line starting with '.' doubled, ending with CRLF "." CRLF.
std::string dot_stuff(std::string_view text);

}  // namespace registrar::adapters::mail
