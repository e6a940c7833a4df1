#include "adapters/mail/smtp_mail_sender.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sodium.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <exception>
#include <optional>
#include <stdexcept>
#include <vector>

#include "adapters/sodium/base64.hpp"
#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"
#include "ports/errors.hpp"
#include "adapters/tls/peer_name.hpp"

namespace registrar::adapters::mail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kMaxReplyBytes = 64 * 1024;  // one reply, all its lines
constexpr std::size_t kMaxLineOctets = 998;         // RFC 5322 2.1.1, without the CRLF

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// For the EHLO keywords, which SMTP compares without case (RFC 5321 §2.4).
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An address we can write between <> in SMTP and in a header without any quoting: ASCII (no
// SMTPUTF8), local@domain, no spaces, controls or characters that would end the address.
bool valid_address(std::string_view a) {
  if (a.empty() || a.size() > 254) return false;
  const auto at = a.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size()) return false;
  for (char ch : a) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return false;
    if (std::string_view("<>()[]\\,;:\"").find(ch) != std::string_view::npos) return false;
  }
  return true;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\r' && text[i] != '\n') continue;
    lines.push_back(text.substr(start, i - start));
    if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
    start = i + 1;
  }
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// The subject as a header value: controls become spaces; non-ASCII (or very long) text becomes
// RFC 2047 encoded words "=?UTF-8?B?…?=" of at most 75 characters, folded onto continuation lines.
std::string encode_subject(std::string_view subject) {
  std::string clean(subject);
  for (char& c : clean)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (is_ascii(clean) && clean.size() <= 900) return clean;
  std::string out;
  std::size_t pos = 0;
  while (pos < clean.size()) {
    std::size_t end = std::min(pos + 45, clean.size());  // 45 bytes → 60 base64 chars → 72 in all
    // Do not split a UTF-8 sequence: back up to the start of a character.
    while (end < clean.size() && end > pos && (static_cast<unsigned char>(clean[end]) & 0xC0) == 0x80) --end;
    if (end == pos) end = std::min(pos + 45, clean.size());  // not UTF-8 after all: split anywhere
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + sodium::base64_encode(std::string_view(clean).substr(pos, end - pos), sodium_base64_VARIANT_ORIGINAL) + "?=";
    pos = end;
  }
  return out;
}

// The left part of the Message-ID: the idempotency key when it is a plain dot-atom, else a digest.
std::string message_id_local(const std::string& key) {
  unsigned char bytes[16];
  if (key.empty()) {
    randombytes_buf(bytes, sizeof bytes);
  } else {
    const bool plain = key.size() <= 128 && key.front() != '.' && key.back() != '.' &&
                       key.find("..") == std::string::npos &&
                       std::all_of(key.begin(), key.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
                       });
    if (plain) return key;
    unsigned char digest[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(key.data()), key.size());
    std::copy_n(digest, sizeof bytes, bytes);
  }
  return (key.empty() ? "r-" : "k-") + sodium::hex_encode(bytes);
}

bool is_loopback_host(const std::string& host) {
  if (beast::iequals(host, "localhost")) return true;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

struct Reply {
  int code = 0;
  std::vector<std::string> lines;  // text after "NNN-" / "NNN "
  std::string text() const {
    std::string t = std::to_string(code);
    for (const auto& l : lines) (t += ' ') += l;
    if (t.size() > 200) t.resize(200);
    for (char& c : t)
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return t;
  }
};

// The message as it goes after DATA: headers and body, dot-stuffed, ending with CRLF "." CRLF.
struct Prepared {
  std::string data;
  bool needs_8bitmime = false;
};

Prepared prepare(const ports::MailMessage& m, const std::string& from, std::chrono::sys_seconds now,
                 bool server_has_8bitmime) {
  std::string body;
  const auto lines = split_lines(m.body);
  bool long_line = false;
  for (const auto& l : lines) {
    body.append(l.data(), l.size()).append("\r\n");
    long_line = long_line || l.size() > kMaxLineOctets;
  }
  const bool has_nul = m.body.find('\0') != std::string::npos;
  std::string encoding = "7bit";
  Prepared p;
  if (long_line || has_nul || (!is_ascii(body) && !server_has_8bitmime)) {
    encoding = "base64";
    const std::string b64 = sodium::base64_encode(body, sodium_base64_VARIANT_ORIGINAL);
    body.clear();
    for (std::size_t i = 0; i < b64.size(); i += 76) body.append(b64, i, 76).append("\r\n");
  } else if (!is_ascii(body)) {
    encoding = "8bit";
    p.needs_8bitmime = true;
  }
  const std::string domain = from.substr(from.rfind('@') + 1);
  std::string text;
  text += "From: " + from + "\r\n";
  text += "To: " + m.to + "\r\n";
  text += "Subject: " + encode_subject(m.subject) + "\r\n";
  text += "Date: " + rfc5322_date(now) + "\r\n";
  text += "Message-ID: <" + message_id_local(m.idempotency_key) + "@" + domain + ">\r\n";
  text += "MIME-Version: 1.0\r\n";
  text += "Content-Type: text/plain; charset=utf-8\r\n";
  text += "Content-Transfer-Encoding: " + encoding + "\r\n";
  text += "\r\n";
  text += body;
  p.data = dot_stuff(text);
  return p;
}

// A failed reply: 4xx is transient; 5xx is the message's fault (MailRejected) at the steps where
// the relay judges the message, a configuration problem elsewhere.
[[noreturn]] void reply_failure(const std::string& server, std::string_view step, const Reply& r, bool message_step) {
  const std::string what = "smtp " + server + ": " + std::string(step) + " refused: " + r.text();
  if (r.code >= 400 && r.code < 500) throw ports::BackendUnavailable(what);
  if (r.code >= 500 && message_step) throw ports::MailRejected(what);
  throw std::runtime_error(what);
}

// One SMTP conversation over one connection: plain TCP, upgraded to TLS by STARTTLS, or TLS from
// the start.
class Session {
 public:
  Session(asio::io_context& ioc, const SmtpOptions& options, ssl::context* tls_context)
      : plain_(ioc), o_(options), tls_context_(tls_context) {
    server_ = o_.host + ":" + std::to_string(o_.port);
  }

  const std::string& step() const { return step_; }
  const std::string& server() const { return server_; }
  // Why the last TLS handshake failed, when the certificate was the reason ("" otherwise).
  const std::string& tls_refusal() const { return tls_refusal_; }

  asio::awaitable<void> run(const ports::MailMessage& m, std::chrono::sys_seconds now) {
    step_ = "connect";
    tcp::resolver resolver(co_await asio::this_coro::executor);
    // The resolver is bounded by the system resolver's own timeouts, the rest by o_.timeout.
    auto endpoints = co_await resolver.async_resolve(o_.host, std::to_string(o_.port), asio::use_awaitable);
    plain_.expires_after(o_.timeout);
    co_await plain_.async_connect(endpoints, asio::use_awaitable);
    if (o_.tls == SmtpTls::implicit) co_await start_tls();

    step_ = "greeting";
    Reply r = co_await read_reply();
    if (r.code != 220) reply_failure(server_, step_, r, false);

    Extensions ext = co_await hello();
    if (o_.tls == SmtpTls::starttls) {
      // RFC 3207: nothing but EHLO before TLS; a server that does not offer it gets nothing more.
      step_ = "STARTTLS";
      if (!ext.starttls)
        throw std::runtime_error("smtp " + server_ + ": the server does not offer STARTTLS, which is required; "
                                 "nothing was sent");
      r = co_await command("STARTTLS");
      if (r.code != 220) reply_failure(server_, step_, r, false);
      // Bytes after the 220 came before TLS and cannot be trusted (CVE-2011-0411's command
      // injection): refuse rather than read them as the TLS server's answers.
      if (!buffer_.empty())
        throw ports::BackendUnavailable("smtp " + server_ + ": STARTTLS: the server sent data before the TLS handshake");
      co_await start_tls();
      ext = co_await hello();  // RFC 3207 §4.2: forget what was said in clear
    }

    if (o_.username) {
      step_ = "AUTH";
      if (!ext.auth_plain) throw std::runtime_error("smtp " + server_ + ": the server does not offer AUTH PLAIN");
      std::string credentials;
      credentials.push_back('\0');
      credentials += *o_.username;
      credentials.push_back('\0');
      credentials += o_.password.value_or("");
      std::string line = "AUTH PLAIN " + sodium::base64_encode(credentials, sodium_base64_VARIANT_ORIGINAL);
      sodium_memzero(credentials.data(), credentials.size());
      r = co_await command(std::move(line));
      if (r.code != 235) reply_failure(server_, step_, r, false);
    }

    const Prepared p = prepare(m, o_.from, now, ext.eight_bit_mime);
    step_ = "MAIL FROM";
    r = co_await command("MAIL FROM:<" + o_.from + ">" + (p.needs_8bitmime ? " BODY=8BITMIME" : ""));
    if (r.code != 250) reply_failure(server_, step_, r, false);
    step_ = "RCPT TO";
    r = co_await command("RCPT TO:<" + m.to + ">");
    if (r.code != 250 && r.code != 251) reply_failure(server_, step_, r, true);
    step_ = "DATA";
    r = co_await command("DATA");
    if (r.code != 354) reply_failure(server_, step_, r, false);
    step_ = "message";
    co_await write(p.data);
    r = co_await read_reply();
    if (r.code != 250) reply_failure(server_, step_, r, true);

    // Accepted: from here on nothing may fail the send (a retry would send a second copy).
    step_ = "QUIT";
    try {
      co_await command("QUIT");
    } catch (const std::exception&) {
    }
  }

 private:
  struct Extensions {
    bool eight_bit_mime = false;
    bool auth_plain = false;
    bool starttls = false;
  };

  // EHLO, or HELO for a server without ESMTP (which offers no extension, so neither STARTTLS).
  asio::awaitable<Extensions> hello() {
    step_ = "EHLO";
    Reply r = co_await command("EHLO " + o_.helo_name);
    Extensions ext;
    if (r.code == 250) {
      for (std::size_t i = 1; i < r.lines.size(); ++i) {
        const std::string line = lower(r.lines[i]);
        if (line == "8bitmime") ext.eight_bit_mime = true;
        if (line == "starttls") ext.starttls = true;
        if (line.starts_with("auth ") && (' ' + line + ' ').find(" plain ") != std::string::npos) ext.auth_plain = true;
      }
    } else if (r.code >= 500) {  // an old server without ESMTP
      step_ = "HELO";
      r = co_await command("HELO " + o_.helo_name);
      if (r.code != 250) reply_failure(server_, step_, r, false);
    } else {
      reply_failure(server_, step_, r, false);
    }
    co_return ext;
  }

  // The TLS handshake on the connection, verifying the server as the webhook client does.
  asio::awaitable<void> start_tls() {
    step_ = "TLS handshake";
    tls_.emplace(std::move(plain_), *tls_context_);
    SSL* handle = tls_->native_handle();
    // SNI, and the name checked by OpenSSL's own verification, so that a mismatch has its reason
    // in the verify result ("IP address mismatch", "hostname mismatch").
    if (!tls::send_sni(handle, o_.host) || !tls::verify_peer_name(SSL_get0_param(handle), o_.host))
      throw boost::system::system_error(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
    tls_->set_verify_mode(ssl::verify_peer);
    tls_->next_layer().expires_after(o_.timeout);
    auto [handshake_ec] = co_await tls_->async_handshake(ssl::stream_base::client, asio::as_tuple(asio::use_awaitable));
    if (handshake_ec) {
      const long verify = SSL_get_verify_result(handle);
      if (verify != X509_V_OK) tls_refusal_ = X509_verify_cert_error_string(verify);
      throw boost::system::system_error(handshake_ec);
    }
  }

  asio::awaitable<void> write(const std::string& data) {
    if (tls_) {
      tls_->next_layer().expires_after(o_.timeout);
      co_await asio::async_write(*tls_, asio::buffer(data), asio::use_awaitable);
    } else {
      plain_.expires_after(o_.timeout);
      co_await asio::async_write(plain_, asio::buffer(data), asio::use_awaitable);
    }
  }

  asio::awaitable<std::size_t> read_line() {
    auto buffer = asio::dynamic_buffer(buffer_, kMaxReplyBytes);
    if (tls_) {
      tls_->next_layer().expires_after(o_.timeout);
      co_return co_await asio::async_read_until(*tls_, buffer, "\r\n", asio::use_awaitable);
    }
    plain_.expires_after(o_.timeout);
    co_return co_await asio::async_read_until(plain_, buffer, "\r\n", asio::use_awaitable);
  }

  asio::awaitable<Reply> command(std::string line) {
    line += "\r\n";
    co_await write(line);
    sodium_memzero(line.data(), line.size());  // may hold credentials
    co_return co_await read_reply();
  }

  // Reads one reply: lines "NNN-text" ending with "NNN text" (or "NNN"), all with the same code.
  asio::awaitable<Reply> read_reply() {
    Reply r;
    std::size_t total = 0;
    for (;;) {
      const std::size_t n = co_await read_line();
      std::string line = buffer_.substr(0, n - 2);
      buffer_.erase(0, n);
      total += n;
      const bool shape = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                         std::isdigit(static_cast<unsigned char>(line[1])) &&
                         std::isdigit(static_cast<unsigned char>(line[2])) &&
                         (line.size() == 3 || line[3] == ' ' || line[3] == '-');
      if (!shape || total > kMaxReplyBytes)
        throw ports::BackendUnavailable("smtp " + server_ + ": " + step_ + ": the server's reply is not SMTP");
      const int code = std::stoi(line.substr(0, 3));
      if (r.lines.empty()) r.code = code;
      else if (code != r.code)
        throw ports::BackendUnavailable("smtp " + server_ + ": " + step_ + ": inconsistent reply codes");
      r.lines.push_back(line.size() > 4 ? line.substr(4) : std::string());
      if (line.size() == 3 || line[3] == ' ') co_return r;
    }
  }

  beast::tcp_stream plain_;  // moved into tls_ by start_tls()
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
  const SmtpOptions& o_;
  ssl::context* tls_context_;
  std::string server_;
  std::string step_;
  std::string buffer_;
  std::string tls_refusal_;
};

}  // namespace

std::string rfc5322_date(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const weekday wd{day};
  const hh_mm_ss<seconds> tod{t - day};
  auto two = [](long v) { return (v < 10 ? "0" : "") + std::to_string(v); };
  std::string out;
  out += kDays[wd.c_encoding()];
  out += ", " + std::to_string(static_cast<unsigned>(ymd.day())) + " ";
  out += kMonths[static_cast<unsigned>(ymd.month()) - 1];
  out += " " + std::to_string(static_cast<int>(ymd.year())) + " ";
  out += two(tod.hours().count()) + ":" + two(tod.minutes().count()) + ":" + two(tod.seconds().count());
  out += " +0000";
  return out;
}

std::string dot_stuff(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (const auto& line : split_lines(text)) {
    if (!line.empty() && line.front() == '.') out.push_back('.');
    out.append(line.data(), line.size()).append("\r\n");
  }
  out += ".\r\n";
  return out;
}

SmtpOptions parse_smtp_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("smtp url: not a valid URL");
  const auto& u = *parsed;
  const std::string_view scheme = u.scheme();
  const bool implicit_tls = beast::iequals(scheme, "smtps");
  if (!implicit_tls && !beast::iequals(scheme, "smtp"))
    throw std::invalid_argument("smtp url: expected smtp[s]://[user[:password]@]host[:port]");
  SmtpOptions o;
  if (implicit_tls) {
    o.tls = SmtpTls::implicit;
    o.port = 465;  // RFC 8314's submissions port
  }
  o.host = u.host_address();
  if (o.host.empty()) throw std::invalid_argument("smtp url: a host is required");
  if (u.has_port()) {
    if (u.port().empty() || u.port_number() == 0) throw std::invalid_argument("smtp url: invalid port");
    o.port = u.port_number();
  }
  if (!u.encoded_path().empty() && u.encoded_path() != "/")
    throw std::invalid_argument("smtp url: a path is not allowed");
  if (u.has_query() || u.has_fragment()) throw std::invalid_argument("smtp url: a query or fragment is not allowed");
  if (u.has_userinfo()) {
    o.username = u.user();
    if (o.username->empty()) throw std::invalid_argument("smtp url: empty user name");
    if (u.has_password()) o.password = u.password();
  }
  return o;
}

struct SmtpMailSender::Tls {
  ssl::context context{ssl::context::tls_client};
};

SmtpMailSender::~SmtpMailSender() = default;

SmtpMailSender::SmtpMailSender(SmtpOptions options, ports::Clock* clock) : options_(std::move(options)), clock_(clock) {
  sodium::ensure_sodium();
  if (!valid_address(options_.from))
    throw std::invalid_argument("smtp: the sender address (from) is missing or not a plain ASCII address");
  if (options_.host.empty()) throw std::invalid_argument("smtp: a host is required");
  if (options_.helo_name.empty() ||
      !std::all_of(options_.helo_name.begin(), options_.helo_name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '[' || c == ']' || c == ':';
      }))
    throw std::invalid_argument("smtp: invalid HELO name");
  if (options_.username && options_.tls == SmtpTls::none && !options_.allow_plaintext_auth &&
      !is_loopback_host(options_.host))
    throw std::invalid_argument("smtp: refusing to send credentials in clear text to " + options_.host +
                                "; use smtps://, STARTTLS or a local relay");
  if (options_.timeout <= std::chrono::milliseconds::zero()) throw std::invalid_argument("smtp: timeout must be positive");
  if (options_.tls == SmtpTls::none) {
    if (!options_.ca_file.empty()) throw std::invalid_argument("smtp: a CA file without TLS (smtps:// or STARTTLS)");
    return;
  }
  // TLS 1.2 or later; the server's certificate checked against the CA file, else the system's
  // trusted roots, and (in the session) against the host name or IP address of the URL.
  tls_ = std::make_unique<Tls>();
  auto& ctx = tls_->context;
  SSL_CTX_set_min_proto_version(ctx.native_handle(), TLS1_2_VERSION);
  ctx.set_verify_mode(ssl::verify_peer);
  boost::system::error_code ec;
  if (options_.ca_file.empty()) ctx.set_default_verify_paths(ec);
  else ctx.load_verify_file(options_.ca_file, ec);
  if (ec)
    throw std::invalid_argument("smtp: cannot load " +
                                (options_.ca_file.empty() ? std::string("the system's trusted CAs")
                                                          : "the CA file " + options_.ca_file) +
                                ": " + ec.message());
}

void SmtpMailSender::send(const ports::MailMessage& message) {
  if (!valid_address(message.to))
    throw ports::MailRejected("smtp: the recipient address cannot be sent over SMTP (empty, non-ASCII or malformed)");
  const auto now = clock_ ? std::chrono::time_point_cast<std::chrono::seconds>(clock_->now())
                          : std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());

  asio::io_context ioc;
  Session session(ioc, options_, tls_ ? &tls_->context : nullptr);
  std::exception_ptr error;
  bool done = false;
  asio::co_spawn(ioc, session.run(message, now), [&](std::exception_ptr e) {
    error = e;
    done = true;
  });
  ioc.run();
  if (!done) throw ports::BackendUnavailable("smtp " + session.server() + ": conversation did not complete");
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const boost::system::system_error& e) {
    const auto& ec = e.code();
    std::string why = ec == beast::error::timeout ? "timed out" : ec.message();
    if (!session.tls_refusal().empty()) why = "certificate verify failed: " + session.tls_refusal();
    else if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof)
      why = "the server closed the connection" + std::string(session.step() == "TLS handshake" ? " (not a TLS port?)" : "");
    throw ports::BackendUnavailable("smtp " + session.server() + ": " + session.step() + ": " + why);
  }
}

}  // namespace registrar::adapters::mail
