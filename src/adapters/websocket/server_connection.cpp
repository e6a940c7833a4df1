#include "adapters/websocket/server_connection.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace registrar::adapters::websocket {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t kTlsReadSize = 4096;
constexpr int kReadsPerWake = 8;  // then the strand serves others before this connection reads on

tcp::socket plain_socket(http::HttpStream& stream) {
  if (stream.tls()) return tcp::socket(stream.get_executor());
  return stream.tcp().release_socket();
}

}  // namespace

ServerConnection::ServerConnection(http::HttpStream stream, ConnectionOptions options)
    : close_timeout_(options.close_timeout),
      socket_(plain_socket(stream)),
      tls_(stream.tls() ? std::make_unique<http::HttpStream>(std::move(stream)) : nullptr),
      reader_(options.max_message) {
  if (tls_) {
    tls_->expires_never();  // the close handshake sets its own bound
  } else {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);  // read_some() after a readiness wait must never block the thread
  }
}

ServerConnection::~ServerConnection() = default;

void ServerConnection::start(http::ConnectionRegistry& registry, std::string_view pending,
                             std::weak_ptr<ConnectionHandler> handler) {
  handler_ = std::move(handler);
  registration_ = registry.add(shared_from_this());
  if (!pending.empty()) on_bytes(pending);
  if (!reader_.finished()) read_next();
}

bool ServerConnection::send(std::string_view payload, bool binary) {
  std::string frame = encode_frame(binary ? Opcode::binary : Opcode::text, payload);
  std::lock_guard lock(mutex_);
  if (ending_) return false;
  queue_locked(std::move(frame));
  return true;
}

std::size_t ServerConnection::queued() const {
  std::lock_guard lock(mutex_);
  return out_.size() + in_flight_;
}

void ServerConnection::end(std::uint16_t code) {
  {
    std::lock_guard lock(mutex_);
    if (ending_) return;
    ending_ = true;
    close_queued_ = true;
    queue_locked(encode_close(code));
  }
  // Bounded from now, not from when the close frame is out: a client that reads nothing (the
  // reason it may be dropped) would keep the write, and the connection, pending for good.
  asio::post(executor(), [self = shared_from_this()] {
    if (self->torn_down_ || self->close_timer_) return;
    self->close_timer_ = std::make_unique<asio::steady_timer>(self->executor(), self->close_timeout_);
    self->close_timer_->async_wait([self](boost::system::error_code ec) {
      if (ec) return;
      self->finish();
    });
  });
}

void ServerConnection::queue_locked(std::string frame) {
  out_.push_back(std::move(frame));
  if (writing_) return;  // the write under way takes it next
  writing_ = true;
  asio::post(executor(), [self = shared_from_this()] { self->write_next(); });
}

void ServerConnection::drain() {
  asio::post(executor(), [self = shared_from_this()] {
    if (auto handler = self->handler_.lock()) handler->on_ws_drain(*self);
    self->end();
  });
}

void ServerConnection::close() {
  asio::post(executor(), [self = shared_from_this()] { self->hard_close(); });
}

// --- reading ----------------------------------------------------------------------------------

void ServerConnection::read_next() {
  if (torn_down_) return;
  if (tls_) {
    if (!tls_buffer_) tls_buffer_ = std::make_unique<char[]>(kTlsReadSize);
    tls_->async_read_some(asio::buffer(tls_buffer_.get(), kTlsReadSize),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
                            if (ec) {
                              self->finish();
                              return;
                            }
                            self->on_bytes(std::string_view(self->tls_buffer_.get(), n));
                            if (!self->reader_.finished()) self->read_next();
                          });
    return;
  }
  socket_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](boost::system::error_code ec) {
    if (ec) {
      self->finish();
      return;
    }
    self->on_readable();
  });
}

void ServerConnection::on_readable() {
  // One buffer per thread, used only inside this call: idle connections hold none.
  thread_local char buffer[64 * 1024];
  for (int i = 0; i < kReadsPerWake && !torn_down_; ++i) {
    boost::system::error_code ec;
    const std::size_t n = socket_.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) break;
    if (ec) {  // the client's FIN or a reset
      finish();
      return;
    }
    on_bytes(std::string_view(buffer, n));
    if (reader_.finished()) return;
  }
  read_next();
}

void ServerConnection::on_bytes(std::string_view bytes) {
  std::vector<Event> events;
  reader_.feed(bytes, events);
  for (auto& e : events) {
    switch (e.kind) {
      case Event::Kind::text:
      case Event::Kind::binary:
        if (close_sent_) break;  // we are closing: what still comes is not read (RFC 6455 §1.4)
        if (auto handler = handler_.lock()) handler->on_ws_message(*this, std::move(e.data), e.kind == Event::Kind::binary);
        break;
      case Event::Kind::ping: {
        std::lock_guard lock(mutex_);
        if (!ending_) queue_locked(encode_frame(Opcode::pong, e.data));
        break;
      }
      case Event::Kind::pong: break;
      // Our close frame is queued before the handler hears of the end (its own end() is then a
      // no-op), so that it carries the code meant here.
      case Event::Kind::close:
        close_received_ = true;
        if (close_sent_) {
          finish();
          break;
        }
        end(e.code == close_code::none ? close_code::normal : e.code);  // echoed; then the TCP close
        notify_end();
        break;
      case Event::Kind::error:
        // Fail the connection (RFC 6455 §7.1.7): our close frame with the reason's code, then the TCP close.
        close_received_ = true;
        end(e.code);
        notify_end();
        break;
    }
  }
}

// --- writing ----------------------------------------------------------------------------------

void ServerConnection::write_next() {
  bool sends_close = false;
  {
    std::lock_guard lock(mutex_);
    if (out_.empty() || torn_down_) {
      writing_ = false;
      return;
    }
    batch_.swap(out_);
    in_flight_ = batch_.size();
    sends_close = close_queued_;  // the close frame is always the last one queued
    close_queued_ = false;
  }
  std::vector<asio::const_buffer> buffers;
  buffers.reserve(batch_.size());
  for (const auto& frame : batch_) buffers.emplace_back(asio::buffer(frame));
  auto done = [self = shared_from_this(), sends_close](boost::system::error_code ec, std::size_t) {
    self->written(ec, sends_close);
  };
  if (tls_) asio::async_write(*tls_, buffers, std::move(done));
  else asio::async_write(socket_, buffers, std::move(done));
}

void ServerConnection::written(boost::system::error_code ec, bool sent_close) {
  std::vector<std::string>().swap(batch_);  // an idle connection keeps no write memory
  {
    std::lock_guard lock(mutex_);
    in_flight_ = 0;
  }
  if (ec) {
    finish();
    return;
  }
  if (sent_close) {
    close_sent_ = true;
    if (close_received_) {
      teardown();
      return;
    }
    // Now waiting for the client's close frame (end() bounded the wait).
  }
  write_next();
}

// --- the end --------------------------------------------------------------------------------

void ServerConnection::notify_end() {
  if (end_notified_) return;
  end_notified_ = true;
  if (auto handler = handler_.lock()) handler->on_ws_end(*this);
}

void ServerConnection::finish() {
  notify_end();
  teardown();
}

void ServerConnection::stop_sending() {
  torn_down_ = true;
  {
    std::lock_guard lock(mutex_);
    ending_ = true;
    out_.clear();
  }
  if (close_timer_) close_timer_->cancel();
}

void ServerConnection::teardown() {
  if (torn_down_) return;
  stop_sending();
  boost::system::error_code ec;
  if (tls_) {
    // close_notify, so the client can tell the end from a truncation; a client that does not
    // answer it is cut off after a moment.
    tls_->expires_after(std::chrono::seconds(2));
    tls_->tls()->async_shutdown([self = shared_from_this()](boost::system::error_code) {
      boost::system::error_code ignored;
      self->tls_->socket().close(ignored);
      self->registration_.reset();
    });
    return;
  }
  socket_.shutdown(tcp::socket::shutdown_send, ec);
  socket_.close(ec);
  registration_.reset();
}

void ServerConnection::hard_close() {
  notify_end();
  stop_sending();
  boost::system::error_code ec;
  if (tls_) tls_->socket().close(ec);
  else socket_.close(ec);
  registration_.reset();
}

}  // namespace registrar::adapters::websocket
