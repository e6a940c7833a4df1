#pragma once
// A minimal SMTP client (RFC 5321) that submits one plain-text message per send().
//
// Why hand-written: Debian 12 packages no C++ SMTP client library. libcurl can speak SMTP, but
// this tree installs only its runtime (no libcurl4-openssl-dev) and links nothing from it; adding
// a library and a CMake dependency for ~300 lines of a line-based protocol we already have the
// tools for (Boost.Asio/Beast, the same stack as the HTTP server and the webhook consumer) is not
// worth it. The scope is deliberately small:
//   EHLO (HELO fallback) → [AUTH PLAIN] → MAIL FROM → RCPT TO → DATA → QUIT, every reply checked,
//   dot-stuffing and CRLF normalisation, 8BITMIME when offered (else base64 for non-ASCII
//   bodies), RFC 2047 for a non-ASCII subject, one timeout per step.
// Out of scope: TLS (STARTTLS / SMTPS would need OpenSSL via Asio's ssl stream and a CA bundle;
// until then point this at a local relay, e.g. Postfix/msmtp on 127.0.0.1, that does TLS
// onwards), SMTPUTF8 (non-ASCII addresses), other AUTH mechanisms, pipelining, connection reuse.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ports/mail_sender.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::mail {

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
};

// smtp://[user[:password]@]host[:port] (percent-decoded; port defaults to 25). Leaves `from`
// empty. smtps:// and other schemes are refused (no TLS in this build). Throws
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
  // bad options (no/invalid `from`, credentials to a non-loopback host without allow_plaintext_auth).
  explicit SmtpMailSender(SmtpOptions options, ports::Clock* clock = nullptr);

  void send(const ports::MailMessage& message) override;

 private:
  SmtpOptions options_;
  ports::Clock* clock_;
};

// Helpers, exposed for tests.
// RFC 5322 date, e.g. "Sun, 19 Oct 2025 16:37:15 +0000".
std::string rfc5322_date(std::chrono::sys_seconds t);
// Lines normalised to CRLF, every line starting with '.' doubled, ending with CRLF "." CRLF.
std::string dot_stuff(std::string_view text);

}  // namespace registrar::adapters::mail
