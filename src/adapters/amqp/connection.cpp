#include "adapters/amqp/connection.hpp"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/ip/address.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <stdexcept>

#include "ports/errors.hpp"
#include "adapters/tls/peer_name.hpp"

namespace registrar::adapters::amqp {

// ---------------------------------------------------------------------------------------------
// Options

std::string Endpoint::redacted() const {
  std::string host_part = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return std::string(tls ? "amqps://" : "amqp://") + user + "@" + host_part + ":" + std::to_string(port) + "/" + (vhost == "/" ? "" : vhost);
}

Endpoint parse_amqp_url(std::string_view url) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) throw std::invalid_argument("AMQP URL: not a valid URL (expected amqp[s]://user:pass@host:port/vhost)");
  const auto& u = *parsed;
  std::string scheme(u.scheme());
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "amqp" && scheme != "amqps")
    throw std::invalid_argument("AMQP URL: the scheme must be amqp:// or amqps:// (TLS)");
  if (!u.has_authority() || u.host_address().empty()) throw std::invalid_argument("AMQP URL: no host");
  if (u.has_query() || u.has_fragment())
    throw std::invalid_argument("AMQP URL: query parameters and fragments are not supported");
  Endpoint e;
  e.tls = scheme == "amqps";
  if (e.tls) e.port = 5671;  // the IANA port of AMQP over TLS, RabbitMQ's default TLS listener
  e.host = u.host_address();  // decoded; an IPv6 literal without its brackets
  if (u.has_port()) {
    if (u.port_number() == 0) throw std::invalid_argument("AMQP URL: invalid port");
    e.port = u.port_number();
  }
  if (u.has_userinfo()) {
    e.user = u.user();
    e.password = u.has_password() ? std::string(u.password()) : std::string();
  }
  // The path is "/" + the percent-encoded vhost. An empty vhost ("amqp://h" or "amqp://h/") means
  // the default "/": nobody names a vhost "", and many URLs end in a bare slash.
  std::string_view encoded = u.encoded_path();
  if (encoded.starts_with("/")) encoded.remove_prefix(1);
  if (encoded.find('/') != std::string_view::npos)
    throw std::invalid_argument("AMQP URL: the vhost must be one path segment (encode '/' as %2f)");
  std::string path = u.path();  // decoded
  if (path.starts_with("/")) path.erase(0, 1);
  e.vhost = path.empty() ? "/" : path;
  return e;
}

std::chrono::milliseconds ConsumerOptions::retry_delay(int failures) const {
  double ms = static_cast<double>(retry_initial.count()) * std::pow(2.0, std::max(0, failures - 1));
  ms = std::min(ms, static_cast<double>(retry_max.count()));
  return std::chrono::milliseconds(static_cast<long long>(std::max(ms, 1.0)));
}

std::vector<std::chrono::milliseconds> ConsumerOptions::retry_delays() const {
  std::vector<std::chrono::milliseconds> out;
  for (int f = 1; f < max_attempts; ++f) {
    auto d = retry_delay(f);
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// ---------------------------------------------------------------------------------------------
// Helpers

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  if (d.count() < 0) d = std::chrono::milliseconds(0);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

[[noreturn]] void unavailable(const std::string& purpose, std::string_view what, std::string_view why) {
  throw ports::BackendUnavailable("RabbitMQ (" + purpose + "): " + std::string(what) + ": " + std::string(why));
}

// OpenSSL's oldest queued error as text (and the queue emptied); empty if there is none.
std::string take_openssl_error() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return {};
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// A private key with a passphrase cannot be used (nobody types it in); without this callback
// OpenSSL would ask for it on the terminal.
int no_passphrase(char*, int, int, void*) { return 0; }

// The verify callback of the broker's TLS context: records the first reason a certificate was
// refused where Connection can read it after the handshake failed (rabbitmq-c frees the SSL object
// of a failed handshake, and with it SSL_get_verify_result). Refusing here (SSL_VERIFY_PEER) ends
// the handshake with an alert: nothing of AMQP, not even the protocol header, is sent.
int record_verify_failure(int ok, X509_STORE_CTX* store) {
  if (ok) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  auto* reason = ssl ? static_cast<std::string*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl))) : nullptr;
  if (reason != nullptr && reason->empty()) reason->assign(X509_verify_cert_error_string(X509_STORE_CTX_get_error(store)));
  return 0;
}

// Loads the CA file (else the system's CAs) and the client certificate into `ctx`. Throws
// std::invalid_argument naming the file and OpenSSL's reason.
void load_tls_files(SSL_CTX* ctx, const AmqpOptions& options) {
  ERR_clear_error();
  if (!options.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, options.ca_file.c_str(), nullptr) != 1)
      throw std::invalid_argument("cannot load the CA file " + options.ca_file + ": " + take_openssl_error());
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    throw std::invalid_argument("cannot load the system's trusted CAs: " + take_openssl_error());
  }
  if (options.cert_file.empty() != options.key_file.empty())
    throw std::invalid_argument("a client certificate needs both the certificate and the key file");
  if (options.cert_file.empty()) return;
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  if (SSL_CTX_use_certificate_chain_file(ctx, options.cert_file.c_str()) != 1)
    throw std::invalid_argument("cannot load the client certificate " + options.cert_file + ": " + take_openssl_error());
  if (SSL_CTX_use_PrivateKey_file(ctx, options.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
    throw std::invalid_argument("cannot load the client key " + options.key_file +
                                " (PEM, without a passphrase): " + take_openssl_error());
  if (SSL_CTX_check_private_key(ctx) != 1)
    throw std::invalid_argument("the client key " + options.key_file + " does not match the certificate " +
                                options.cert_file);
}

}  // namespace

void check_amqp_options(const AmqpOptions& options) {
  const Endpoint endpoint = parse_amqp_url(options.url);
  const bool any_tls_file = !options.ca_file.empty() || !options.cert_file.empty() || !options.key_file.empty();
  if (!endpoint.tls) {
    if (any_tls_file)
      throw std::invalid_argument("the CA file and client certificate are for amqps:// (TLS); the URL is amqp://");
    return;
  }
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!ctx) throw std::invalid_argument("cannot create a TLS context: " + take_openssl_error());
  load_tls_files(ctx.get(), options);
}

amqp_bytes_t bytes_of(std::string_view s) {
  amqp_bytes_t b;
  b.len = s.size();
  b.bytes = const_cast<char*>(s.data());
  return b;
}

std::string string_of(amqp_bytes_t b) {
  return b.bytes == nullptr ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
}

// A table entry `key` of `kind` whose value `set` fills in (the C union's member for that kind).
template <class Set>
amqp_table_entry_t table_entry(const char* key, std::uint8_t kind, Set set) {
  amqp_table_entry_t e{};
  e.key = amqp_cstring_bytes(key);
  e.value.kind = kind;
  set(e.value.value);
  return e;
}

amqp_table_entry_t table_string(const char* key, const std::string& value) {
  return table_entry(key, AMQP_FIELD_KIND_UTF8, [&](auto& v) { v.bytes = bytes_of(value); });
}

amqp_table_entry_t table_i64(const char* key, std::int64_t value) {
  return table_entry(key, AMQP_FIELD_KIND_I64, [&](auto& v) { v.i64 = value; });
}

amqp_table_entry_t table_i32(const char* key, std::int32_t value) {
  return table_entry(key, AMQP_FIELD_KIND_I32, [&](auto& v) { v.i32 = value; });
}

// ---------------------------------------------------------------------------------------------
// Connection

Connection::Connection(const Endpoint& endpoint, const AmqpOptions& options, std::string purpose)
    : purpose_(std::move(purpose)) {
  state_ = amqp_new_connection();
  if (state_ == nullptr) unavailable(purpose_, "connect", "out of memory");
  try {
    amqp_socket_t* socket = endpoint.tls ? tls_socket(endpoint, options) : amqp_tcp_socket_new(state_);  // owned by state_
    if (socket == nullptr) unavailable(purpose_, "connect", "cannot create a socket");
    const timeval timeout = to_timeval(options.connect_timeout);
    int rc = amqp_socket_open_noblock(socket, endpoint.host.c_str(), endpoint.port, &timeout);
    const std::string where = endpoint.host + ":" + std::to_string(endpoint.port);
    if (endpoint.tls && (rc == AMQP_STATUS_SSL_ERROR || rc == AMQP_STATUS_SSL_CONNECTION_FAILED ||
                         rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)) {
      // The TCP connection was made; TLS failed. Say why: the certificate's fault, or the
      // handshake's (a plain AMQP port answers the ClientHello with its protocol header).
      std::string why = tls_failure_.empty() ? take_openssl_error() : "certificate verify failed: " + tls_failure_;
      ERR_clear_error();
      if (why.empty()) why = amqp_error_string2(rc);
      unavailable(purpose_, "TLS handshake with " + where + " failed", why);
    }
    if (rc != AMQP_STATUS_OK) unavailable(purpose_, "cannot connect to " + where, amqp_error_string2(rc));
    // Bound the handshake and every later RPC (declare, qos, close …): a broker that accepts TCP
    // but does not answer must not hang the caller. An RPC timeout closes the connection.
    amqp_set_handshake_timeout(state_, &timeout);
    amqp_set_rpc_timeout(state_, &timeout);

    const std::string name = options.connection_name + " " + purpose_;
    amqp_table_entry_t props[] = {table_string("connection_name", name)};
    amqp_table_t client_properties{1, props};
    const int heartbeat = static_cast<int>(std::max<long long>(0, options.heartbeat.count()));
    amqp_rpc_reply_t reply =
        amqp_login_with_properties(state_, endpoint.vhost.c_str(), 0, AMQP_DEFAULT_FRAME_SIZE, heartbeat,
                                   &client_properties, AMQP_SASL_METHOD_PLAIN, endpoint.user.c_str(),
                                   endpoint.password.c_str());
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
      broken_ = true;
      std::string why = reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? amqp_error_string2(reply.library_error)
                                                                           : "refused by the broker";
      // TLS 1.3: a broker that wants a client certificate says so after the client's handshake is
      // done, with an alert that arrives here ("tlsv13 alert certificate required").
      if (endpoint.tls && reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        if (std::string tls_error = take_openssl_error(); !tls_error.empty()) why += " (" + tls_error + ")";
      if (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
        why = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
      }
      unavailable(purpose_, "login to vhost \"" + endpoint.vhost + "\" as \"" + endpoint.user + "\" failed", why);
    }
    amqp_channel_open(state_, kChannel);
    check_rpc("channel.open");
  } catch (...) {
    amqp_destroy_connection(state_);
    state_ = nullptr;
    throw;
  }
}

amqp_socket_t* Connection::tls_socket(const Endpoint& endpoint, const AmqpOptions& options) {
  amqp_socket_t* socket = amqp_ssl_socket_new(state_);
  if (socket == nullptr) unavailable(purpose_, "connect", "cannot create a TLS socket");
  // rabbitmq-c makes one SSL_CTX per socket; it is configured here with OpenSSL directly where
  // rabbitmq-c 0.11 falls short: its TLS-version call knows nothing above 1.2, it loads no
  // system CAs when no CA file is given, and its host-name check reads DNS names only (a broker
  // at amqps://127.0.0.1 with an IP address in its certificate would fail). So OpenSSL checks the
  // chain and the host name or address during the handshake, as the Redis and HTTP clients do.
  auto* ctx = static_cast<SSL_CTX*>(amqp_ssl_socket_get_context(socket));
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  try {
    load_tls_files(ctx, options);
  } catch (const std::invalid_argument& e) {
    unavailable(purpose_, "TLS settings", e.what());
  }
  // A host check that did not take would accept any trusted certificate: refused, not ignored.
  if (!tls::verify_peer_name(SSL_CTX_get0_param(ctx), endpoint.host))
    unavailable(purpose_, "TLS settings", "OpenSSL refused the host name " + endpoint.host);
  SSL_CTX_set_app_data(ctx, &tls_failure_);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, record_verify_failure);
  amqp_ssl_socket_set_verify_peer(socket, 1);      // and rabbitmq-c checks the result once more
  amqp_ssl_socket_set_verify_hostname(socket, 0);  // done above, by OpenSSL
  return socket;
}

Connection::~Connection() {
  if (state_ == nullptr) return;
  if (!broken_) {
    // Polite close (the broker logs no "client unexpectedly closed"; it also closes the channel,
    // requeueing unacked deliveries), bounded by the RPC timeout.
    amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
  }
  amqp_destroy_connection(state_);  // closes the socket
}

void Connection::check_rpc(std::string_view what) {
  amqp_rpc_reply_t reply = amqp_get_rpc_reply(state_);
  switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
      return;
    case AMQP_RESPONSE_NONE:
      broken_ = true;
      unavailable(purpose_, what, "no reply");
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
      broken_ = true;
      unavailable(purpose_, what, amqp_error_string2(reply.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION:
      break;
  }
  broken_ = true;
  if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
    auto* close = static_cast<amqp_channel_close_t*>(reply.reply.decoded);
    std::string why = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
    amqp_channel_close_ok_t ok{};
    amqp_send_method(state_, kChannel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    unavailable(purpose_, what, "channel closed by the broker: " + why);
  }
  if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
    auto* close = static_cast<amqp_connection_close_t*>(reply.reply.decoded);
    std::string why = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
    amqp_connection_close_ok_t ok{};
    amqp_send_method(state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    unavailable(purpose_, what, "connection closed by the broker: " + why);
  }
  unavailable(purpose_, what, "unexpected reply from the broker");
}

void Connection::fail(std::string_view what, int status) {
  broken_ = true;
  unavailable(purpose_, what, amqp_error_string2(status));
}

void Connection::confirm_select() {
  amqp_confirm_select(state_, kChannel);
  check_rpc("confirm.select");
}

void Connection::declare_exchange(const std::string& name, const std::string& type) {
  amqp_exchange_declare(state_, kChannel, bytes_of(name), bytes_of(type), /*passive=*/0, /*durable=*/1,
                        /*auto_delete=*/0, /*internal=*/0, amqp_empty_table);
  check_rpc("declare exchange \"" + name + "\"");
}

void Connection::declare_queue(const std::string& name, const std::vector<amqp_table_entry_t>& arguments) {
  amqp_table_t args{static_cast<int>(arguments.size()), const_cast<amqp_table_entry_t*>(arguments.data())};
  amqp_queue_declare(state_, kChannel, bytes_of(name), /*passive=*/0, /*durable=*/1, /*exclusive=*/0,
                     /*auto_delete=*/0, arguments.empty() ? amqp_empty_table : args);
  check_rpc("declare queue \"" + name + "\"");
}

void Connection::bind_queue(const std::string& queue, const std::string& exchange, const std::string& key) {
  amqp_queue_bind(state_, kChannel, bytes_of(queue), bytes_of(exchange), bytes_of(key), amqp_empty_table);
  check_rpc("bind queue \"" + queue + "\"");
}

void Connection::qos(std::uint16_t prefetch) {
  amqp_basic_qos(state_, kChannel, 0, prefetch, /*global=*/0);
  check_rpc("basic.qos");
}

void Connection::consume(const std::string& queue) {
  amqp_basic_consume(state_, kChannel, bytes_of(queue), amqp_empty_bytes, /*no_local=*/0, /*no_ack=*/0,
                     /*exclusive=*/0, amqp_empty_table);
  check_rpc("consume from \"" + queue + "\"");
}

void Connection::handle_unsolicited(const amqp_frame_t& frame) {
  if (frame.frame_type != AMQP_FRAME_METHOD) return;
  switch (frame.payload.method.id) {
    case AMQP_CHANNEL_CLOSE_METHOD: {
      auto* close = static_cast<amqp_channel_close_t*>(frame.payload.method.decoded);
      std::string why = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
      amqp_channel_close_ok_t ok{};
      amqp_send_method(state_, frame.channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
      broken_ = true;
      unavailable(purpose_, "channel closed by the broker", why);
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      auto* close = static_cast<amqp_connection_close_t*>(frame.payload.method.decoded);
      std::string why = std::to_string(close->reply_code) + " " + string_of(close->reply_text);
      amqp_connection_close_ok_t ok{};
      amqp_send_method(state_, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
      broken_ = true;
      unavailable(purpose_, "connection closed by the broker", why);
    }
    default:
      return;
  }
}

bool Connection::still_alive() {
  if (broken_) return false;
  // A zero timeout: rabbitmq-c first sends a heartbeat if one is due, then reads what is there.
  const timeval zero{0, 0};
  for (int i = 0; i < 1024; ++i) {  // bounded: a flood of stray frames is not worth more
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame_noblock(state_, &frame, &zero);
    if (rc == AMQP_STATUS_TIMEOUT) return true;  // nothing (more) to read: alive
    if (rc != AMQP_STATUS_OK) {
      broken_ = true;
      return false;
    }
    try {
      handle_unsolicited(frame);  // late confirms of an abandoned batch etc. are ignored
    } catch (const ports::BackendUnavailable&) {
      return false;
    }
    amqp_maybe_release_buffers(state_);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// ConfirmPublisher

ConfirmPublisher::ConfirmPublisher(Endpoint endpoint, AmqpOptions options, std::string purpose,
                                   std::function<void(Connection&)> on_connect)
    : endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      purpose_(std::move(purpose)),
      on_connect_(std::move(on_connect)) {}

ConfirmPublisher::~ConfirmPublisher() = default;

void ConfirmPublisher::connect() {
  if (connection_ && !connection_->broken()) return;
  connection_.reset();
  auto c = std::make_unique<Connection>(endpoint_, options_, purpose_);
  c->confirm_select();
  if (on_connect_) on_connect_(*c);
  connection_ = std::move(c);
  next_tag_ = 0;  // delivery tags restart at 1 on every channel put in confirm mode
}

void ConfirmPublisher::keepalive() {
  if (connection_ && !connection_->still_alive()) connection_.reset();
}

std::vector<Settled> ConfirmPublisher::publish(std::span<const OutgoingMessage> messages) {
  if (messages.empty()) return {};
  // A connection that died while idle (missed heartbeats, broker restart) is replaced before
  // anything of this batch is sent, so such a death costs nothing.
  if (connection_ && !connection_->still_alive()) connection_.reset();
  connect();
  Connection& c = *connection_;
  const amqp_connection_state_t state = c.state();

  const std::size_t n = messages.size();
  std::vector<Settled> out(n);
  std::vector<bool> returned(n, false);
  std::string failure;

  // 1. Send everything. rabbitmq-c reads (and queues) incoming frames if a write would block, so
  //    a large batch cannot deadlock against a broker that is sending confirms back.
  const std::uint64_t first_tag = next_tag_ + 1;
  std::size_t sent = 0;
  for (const auto& m : messages) {
    int rc = amqp_basic_publish(state, Connection::kChannel, bytes_of(m.exchange), bytes_of(m.routing_key),
                                /*mandatory=*/1, /*immediate=*/0, m.properties, bytes_of(m.body));
    if (rc != AMQP_STATUS_OK) {
      c.mark_broken();
      failure = std::string("publish failed: ") + amqp_error_string2(rc);
      break;
    }
    ++next_tag_;
    ++sent;
  }

  // 2. Collect confirms until every sent message is settled or the deadline passes.
  std::size_t unsettled = sent;
  std::size_t low = 0;  // every index below is settled (for `multiple` acks)
  auto settle_one = [&](std::size_t i, Confirm outcome) {
    if (out[i].outcome != Confirm::unknown) return;
    out[i].outcome = (outcome == Confirm::acked && returned[i]) ? Confirm::returned : outcome;
    --unsettled;
  };
  auto settle = [&](std::uint64_t tag, bool multiple, Confirm outcome) {
    if (multiple) {
      // Every tag up to `tag` (tag 0 with multiple: all outstanding).
      std::size_t end = sent;
      if (tag != 0) {
        if (tag < first_tag) return;  // belongs to an abandoned earlier batch
        end = std::min<std::size_t>(sent, static_cast<std::size_t>(tag - first_tag + 1));
      }
      for (std::size_t i = low; i < end; ++i) settle_one(i, outcome);
    } else {
      if (tag < first_tag || tag - first_tag >= sent) return;
      settle_one(static_cast<std::size_t>(tag - first_tag), outcome);
    }
    while (low < sent && out[low].outcome != Confirm::unknown) ++low;
  };

  const auto deadline = std::chrono::steady_clock::now() + options_.confirm_timeout;
  bool timed_out = false;
  while (unsettled > 0 && failure.empty()) {
    amqp_maybe_release_buffers(state);
    auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (remaining.count() <= 0) {
      timed_out = true;
      break;
    }
    const timeval tv = to_timeval(remaining);
    amqp_frame_t frame;
    int rc = amqp_simple_wait_frame_noblock(state, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT) {
      timed_out = true;
      break;
    }
    if (rc != AMQP_STATUS_OK) {
      c.mark_broken();
      failure = std::string("waiting for confirms: ") + amqp_error_string2(rc);
      break;
    }
    if (frame.frame_type != AMQP_FRAME_METHOD) continue;
    if (frame.channel != Connection::kChannel && frame.payload.method.id != AMQP_CONNECTION_CLOSE_METHOD) continue;
    switch (frame.payload.method.id) {
      case AMQP_BASIC_ACK_METHOD: {
        auto* ack = static_cast<amqp_basic_ack_t*>(frame.payload.method.decoded);
        settle(ack->delivery_tag, ack->multiple != 0, Confirm::acked);
        break;
      }
      case AMQP_BASIC_NACK_METHOD: {
        auto* nack = static_cast<amqp_basic_nack_t*>(frame.payload.method.decoded);
        settle(nack->delivery_tag, nack->multiple != 0, Confirm::nacked);
        break;
      }
      case AMQP_BASIC_RETURN_METHOD: {
        // Sent before the ack of the same message; followed by its header and body frames.
        auto* ret = static_cast<amqp_basic_return_t*>(frame.payload.method.decoded);
        std::string detail = std::to_string(ret->reply_code) + " " + string_of(ret->reply_text);
        amqp_message_t message;
        amqp_rpc_reply_t reply = amqp_read_message(state, Connection::kChannel, &message, 0);
        if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
          c.mark_broken();
          failure = "reading a returned message failed";
          break;
        }
        std::string id;
        if (message.properties._flags & AMQP_BASIC_MESSAGE_ID_FLAG) id = string_of(message.properties.message_id);
        amqp_destroy_message(&message);
        for (std::size_t i = low; i < sent; ++i)
          if (out[i].outcome == Confirm::unknown && !returned[i] && messages[i].message_id == id) {
            returned[i] = true;
            out[i].detail = std::move(detail);
            break;
          }
        break;
      }
      default:
        try {
          c.handle_unsolicited(frame);  // channel.close / connection.close throw
        } catch (const ports::BackendUnavailable& e) {
          failure = e.what();
        }
        break;
    }
  }
  if (connection_ && !connection_->broken()) amqp_maybe_release_buffers(state);

  if (timed_out || !failure.empty()) {
    // A confirm that did not come in time may still come, or not: the channel's bookkeeping is no
    // longer trustworthy, so start over on a fresh connection next time.
    if (timed_out) failure = "no confirm within " + std::to_string(options_.confirm_timeout.count()) + " ms";
    connection_->mark_broken();
    connection_.reset();
    bool any_settled = std::any_of(out.begin(), out.end(), [](const Settled& s) { return s.outcome != Confirm::unknown; });
    if (!any_settled) unavailable(purpose_, "publish", failure);
  }
  return out;
}

}  // namespace registrar::adapters::amqp
