#include "adapters/socketio/sio_server.hpp"

#include <algorithm>

#include <boost/json/serialize.hpp>
#include <utility>

#include "adapters/sodium/random_ids.hpp"

namespace registrar::adapters::socketio {

namespace json = boost::json;

namespace {

// A socket id as socket.io makes them (base64id: 15 random bytes, 20 URL-safe characters).
std::string new_socket_id() { return sodium::random_secret_base64url(15); }

SioPacket packet_of(SioType text_type, SioType binary_type, const std::string& nsp, json::array data,
                    std::vector<std::string> buffers, std::optional<std::uint64_t> id) {
  SioPacket p;
  p.type = buffers.empty() ? text_type : binary_type;
  p.nsp = nsp;
  p.id = id;
  p.data = json::value(std::move(data));
  p.attachments = buffers.size();
  p.buffers = std::move(buffers);
  return p;
}

SioPacket event_packet(const std::string& nsp, std::string_view event, SioMessage message,
                       std::optional<std::uint64_t> id = std::nullopt) {
  json::array data;
  data.reserve(message.args.size() + 1);
  data.emplace_back(json::string(event));
  for (auto& a : message.args) data.push_back(std::move(a));
  return packet_of(SioType::event, SioType::binary_event, nsp, std::move(data), std::move(message.buffers), id);
}

SioMessage message_of(SioPacket& packet, std::size_t skip) {
  SioMessage m;
  if (packet.data && packet.data->is_array()) {
    auto& a = packet.data->as_array();
    for (std::size_t i = skip; i < a.size(); ++i) m.args.push_back(std::move(a[i]));
  }
  m.buffers = std::move(packet.buffers);
  return m;
}

}  // namespace

std::optional<std::pair<std::string, SioMessage>> event_of(const SioPacket& packet) {
  if (!packet.data || !packet.data->is_array() || packet.data->as_array().empty()) return std::nullopt;
  const json::value& name = packet.data->as_array().front();
  std::string event;
  if (name.is_string()) event = std::string(name.get_string());
  else if (name.is_number()) event = json::serialize(name);  // socket.io-parser accepts numbers (JS keys are strings)
  else return std::nullopt;
  SioPacket copy = packet;
  return std::make_pair(std::move(event), message_of(copy, 1));
}

// ------------------------------------------------------------------------------------ SioSocket

SioSocket::SioSocket(std::string id, SioNamespace& nsp, std::weak_ptr<SioConnection> connection, json::value auth)
    : id_(std::move(id)), nsp_(nsp), connection_(std::move(connection)), auth_(std::move(auth)) {}

SioSocket::Callbacks& SioSocket::callbacks_locked() {
  if (!callbacks_) callbacks_ = std::make_unique<Callbacks>();
  return *callbacks_;
}

void SioSocket::on(std::string event, EventHandler handler) {
  std::lock_guard lock(mutex_);
  callbacks_locked().handlers[std::move(event)] = std::move(handler);
}

void SioSocket::on_disconnect(std::function<void(std::string_view)> handler) {
  std::lock_guard lock(mutex_);
  callbacks_locked().on_disconnect = std::move(handler);
}

void SioSocket::send_packet(SioPacket packet) {
  if (!connected_.load()) return;
  if (auto c = connection_.lock()) c->send(packet);
}

void SioSocket::emit(std::string_view event, SioMessage message) {
  send_packet(event_packet(nsp_.name(), event, std::move(message)));
}

void SioSocket::emit_with_ack(std::string_view event, SioMessage message, std::function<void(SioMessage)> callback) {
  std::uint64_t id;
  {
    std::lock_guard lock(mutex_);
    auto& c = callbacks_locked();
    id = c.next_ack_id++;
    c.pending_acks[id] = std::move(callback);
  }
  send_packet(event_packet(nsp_.name(), event, std::move(message), id));
}

void SioSocket::join(const std::string& room) { nsp_.join(*this, room); }
void SioSocket::leave(const std::string& room) { nsp_.leave(*this, room); }
std::set<std::string> SioSocket::rooms() const { return nsp_.rooms_of(*this); }

void SioSocket::disconnect(bool close) {
  if (!connected_.load()) return;
  SioPacket p;
  p.type = SioType::disconnect;
  p.nsp = nsp_.name();
  send_packet(std::move(p));
  auto c = connection_.lock();
  if (c) c->drop(*this);
  closed("server namespace disconnect");
  if (close && c) c->close();
}

void SioSocket::on_packet(SioPacket packet) {
  switch (packet.type) {
    case SioType::event:
    case SioType::binary_event: {
      auto ev = event_of(packet);
      if (!ev) return;
      EventHandler handler;
      {
        std::lock_guard lock(mutex_);
        if (callbacks_) {
          auto it = callbacks_->handlers.find(ev->first);
          if (it != callbacks_->handlers.end()) handler = it->second;
        }
      }
      if (!handler) return;  // socket.io: an event nobody listens to is dropped
      std::optional<Ack> ack;
      if (packet.id) {
        auto self = weak_from_this();
        auto sent = std::make_shared<std::atomic<bool>>(false);
        ack = [self, sent, id = *packet.id](SioMessage reply) {
          if (sent->exchange(true)) return;  // one answer per ack id
          auto s = self.lock();
          if (!s) return;
          s->send_packet(packet_of(SioType::ack, SioType::binary_ack, s->nsp_.name(), std::move(reply.args),
                                   std::move(reply.buffers), id));
        };
      }
      handler(std::move(ev->second), std::move(ack));
      return;
    }
    case SioType::ack:
    case SioType::binary_ack: {
      if (!packet.id) return;
      std::function<void(SioMessage)> callback;
      {
        std::lock_guard lock(mutex_);
        if (!callbacks_) return;
        auto it = callbacks_->pending_acks.find(*packet.id);
        if (it == callbacks_->pending_acks.end()) return;  // unknown or answered: ignored, as socket.io does
        callback = std::move(it->second);
        callbacks_->pending_acks.erase(it);
      }
      callback(message_of(packet, 0));
      return;
    }
    case SioType::disconnect:
      if (auto c = connection_.lock()) c->drop(*this);
      closed("client namespace disconnect");
      return;
    default:
      return;  // CONNECT / CONNECT_ERROR never reach a socket (SioConnection::dispatch)
  }
}

void SioSocket::closed(std::string_view reason) {
  if (connected_.exchange(false) == false) return;
  nsp_.remove(*this);
  std::function<void(std::string_view)> handler;
  {
    std::lock_guard lock(mutex_);
    if (callbacks_) handler = std::move(callbacks_->on_disconnect);
    callbacks_.reset();
  }
  if (handler) handler(reason);
}

// --------------------------------------------------------------------------------- SioNamespace

void SioNamespace::add(const std::shared_ptr<SioSocket>& socket) {
  std::lock_guard lock(mutex_);
  sockets_[socket->id()] = socket;
}

void SioNamespace::remove(const SioSocket& socket) {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(socket.id());
  if (it == sockets_.end()) return;
  sockets_.erase(it);
  for (const std::string* room : socket.joined_) {
    auto r = rooms_.find(*room);
    r->second.erase(&socket);
    if (r->second.empty()) rooms_.erase(r);
  }
  socket.joined_.clear();
}

void SioNamespace::join(const SioSocket& socket, const std::string& room) {
  std::lock_guard lock(mutex_);
  if (!sockets_.contains(socket.id())) return;  // gone (or not yet added: SioConnection adds first)
  if (room == socket.id()) return;              // its own room: it is in it already
  auto it = sockets_.find(socket.id());
  auto [r, fresh] = rooms_.try_emplace(room);
  if (!r->second.emplace(&socket, it->second).second) return;  // joined already
  socket.joined_.push_back(&r->first);
}

void SioNamespace::leave(const SioSocket& socket, const std::string& room) {
  std::lock_guard lock(mutex_);
  auto r = rooms_.find(room);
  if (r == rooms_.end() || r->second.erase(&socket) == 0) return;
  std::erase(socket.joined_, &r->first);
  if (r->second.empty()) rooms_.erase(r);
}

std::set<std::string> SioNamespace::rooms_of(const SioSocket& socket) const {
  std::lock_guard lock(mutex_);
  if (!sockets_.contains(socket.id())) return {};
  std::set<std::string> out{socket.id()};
  for (const std::string* room : socket.joined_) out.insert(*room);
  return out;
}

void SioNamespace::members_locked(const std::string& room, Members& out) const {
  if (auto r = rooms_.find(room); r != rooms_.end()) out.insert(r->second.begin(), r->second.end());
  if (auto s = sockets_.find(room); s != sockets_.end())
    if (auto socket = s->second.lock()) out.emplace(socket.get(), s->second);
}

std::size_t SioNamespace::size() const {
  std::lock_guard lock(mutex_);
  return sockets_.size();
}

std::vector<std::shared_ptr<SioSocket>> SioNamespace::sockets(const Broadcast& to) const {
  std::lock_guard lock(mutex_);
  std::vector<std::shared_ptr<SioSocket>> out;
  Members excluded;
  for (const auto& room : to.except) members_locked(room, excluded);
  if (to.rooms.empty()) {
    for (const auto& [id, weak] : sockets_)
      if (auto s = weak.lock(); s && !excluded.contains(s.get())) out.push_back(std::move(s));
    return out;  // in the order of their ids
  }
  Members members;
  for (const auto& room : to.rooms) members_locked(room, members);
  for (const auto& [key, weak] : members)
    if (auto s = weak.lock(); s && !excluded.contains(key)) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a->id() < b->id(); });  // by id, as everywhere
  return out;
}

std::set<std::string> SioNamespace::rooms() const {
  std::lock_guard lock(mutex_);
  std::set<std::string> out;
  for (const auto& [room, members] : rooms_) out.insert(room);
  for (const auto& [id, socket] : sockets_) out.emplace(id);  // own-id rooms
  return out;
}

bool SioNamespace::has_room(const std::string& room) const {
  std::lock_guard lock(mutex_);
  return rooms_.contains(room) || sockets_.contains(room);
}

std::size_t SioNamespace::emit_local(const Broadcast& to, const SioPacket& packet) {
  const auto targets = sockets(to);
  for (const auto& s : targets) s->send_packet(packet);
  return targets.size();
}

std::size_t SioNamespace::emit(const Broadcast& to, std::string_view event, const SioMessage& message) {
  auto* adapter = adapter_.load();
  const auto targets = sockets(to);
  if (targets.empty() && adapter == nullptr) return 0;  // nobody to build the packet for (most sign-ups)
  const SioPacket packet = event_packet(name_, event, message);
  for (const auto& s : targets) s->send_packet(packet);
  if (adapter != nullptr) adapter->broadcast(to, packet);
  return targets.size();
}

// ------------------------------------------------------------------------------------ SioServer

SioServer::SioServer(const logging::Logger& log, SioOptions options) : log_(log), options_(options) {}

SioNamespace& SioServer::of(const std::string& name) {
  std::lock_guard lock(mutex_);
  auto& slot = namespaces_[name];
  if (!slot) slot = std::make_unique<SioNamespace>(name);
  return *slot;
}

SioNamespace* SioServer::find(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto it = namespaces_.find(name);
  return it == namespaces_.end() ? nullptr : it->second.get();
}

std::shared_ptr<SioConnection> SioServer::accept(std::weak_ptr<EngineLink> link, boost::asio::any_io_executor executor) {
  auto c = std::make_shared<SioConnection>(*this, std::move(link));
  c->start(std::move(executor));
  return c;
}

// -------------------------------------------------------------------------------- SioConnection

SioConnection::SioConnection(SioServer& server, std::weak_ptr<EngineLink> link)
    : server_(server), link_(std::move(link)) {}

void SioConnection::start(boost::asio::any_io_executor executor) {
  connect_timer_ = std::make_unique<boost::asio::steady_timer>(std::move(executor), server_.options().connect_timeout);
  connect_timer_->async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self) return;
    bool none;
    {
      std::lock_guard lock(self->mutex_);
      none = self->sockets_.empty() && !self->closed_;
    }
    if (none) {
      self->server_.log().debug("socket.io connection closed: no namespace joined within the connect timeout");
      self->close();
    }
  });
}

void SioConnection::send(const SioPacket& packet) {
  std::vector<EngineMessage> messages;
  messages.reserve(1 + packet.buffers.size());
  messages.push_back({encode_sio(packet), false});
  for (const auto& b : packet.buffers) messages.push_back({b, true});
  if (auto link = link_.lock()) link->send(std::move(messages));
}

void SioConnection::close() {
  if (auto link = link_.lock()) link->close();
}

void SioConnection::invalid(std::string_view why) {
  server_.log().debug("socket.io connection closed", {{"reason", why}});
  close();
}

void SioConnection::on_text(std::string_view text) { assembled(assembler().on_text(text)); }

void SioConnection::on_binary(std::string bytes) { assembled(assembler().on_binary(std::move(bytes))); }

SioAssembler& SioConnection::assembler() {
  if (!assembler_) assembler_ = std::make_unique<SioAssembler>(server_.options().limits);
  return *assembler_;
}

void SioConnection::assembled(SioAssembler::Result r) {
  if (assembler_->idle()) assembler_.reset();
  if (r.step == SioAssembler::Step::error) return invalid(r.error);
  if (r.step == SioAssembler::Step::packet) dispatch(std::move(r.packet));
}

void SioConnection::dispatch(SioPacket packet) {
  std::shared_ptr<SioSocket> socket;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    if (auto it = sockets_.find(packet.nsp); it != sockets_.end()) socket = it->second;
  }
  if (!socket && packet.type == SioType::connect) {
    return connect(packet.nsp, packet.data ? std::move(*packet.data) : json::value(json::object{}));  // socket.io: auth = {}
  }
  if (socket && packet.type != SioType::connect && packet.type != SioType::connect_error) {
    return socket->on_packet(std::move(packet));
  }
  invalid("invalid state: a packet for a namespace not joined, or a second CONNECT");
}

void SioConnection::connect(const std::string& nsp_name, json::value auth) {
  SioNamespace* nsp = server_.find(nsp_name);
  if (nsp == nullptr) {
    SioPacket refused;
    refused.type = SioType::connect_error;
    refused.nsp = nsp_name;
    refused.data = json::object{{"message", "Invalid namespace"}};
    return send(refused);
  }
  auto socket = std::make_shared<SioSocket>(new_socket_id(), *nsp, weak_from_this(), std::move(auth));
  nsp->add(socket);  // before authorize, which may join it to rooms
  std::optional<ConnectRefusal> refusal;
  if (nsp->authorize_) {
    try {
      refusal = nsp->authorize_(*socket);
    } catch (const std::exception& e) {
      server_.log().warn("socket.io connect check failed", {{"nsp", nsp_name}, {"error", e.what()}});
      refusal = ConnectRefusal{"Internal error", nullptr};
    }
  }
  if (refusal) {
    socket->connected_.store(false);
    nsp->remove(*socket);
    SioPacket refused;
    refused.type = SioType::connect_error;
    refused.nsp = nsp_name;
    json::object data{{"message", refusal->message}};
    if (!refusal->data.is_null()) data["data"] = refusal->data;
    refused.data = std::move(data);
    return send(refused);
  }
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      nsp->remove(*socket);
      return;
    }
    sockets_[nsp_name] = socket;
  }
  // On the connection's strand, like start(): gone once a namespace is joined.
  connect_timer_.reset();
  SioPacket ok;
  ok.type = SioType::connect;
  ok.nsp = nsp_name;
  ok.data = json::object{{"sid", socket->id()}};
  send(ok);
  if (nsp->on_connection_) nsp->on_connection_(socket);
  socket->auth_ = nullptr;  // see SioSocket::auth()
}

void SioConnection::drop(const SioSocket& socket) {
  std::lock_guard lock(mutex_);
  auto it = sockets_.find(socket.nsp().name());
  if (it != sockets_.end() && it->second.get() == &socket) sockets_.erase(it);
}

void SioConnection::on_close(std::string_view reason) {
  std::map<std::string, std::shared_ptr<SioSocket>> sockets;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    sockets.swap(sockets_);
  }
  connect_timer_.reset();
  for (auto& [nsp, s] : sockets) s->closed(reason);
}

}  // namespace registrar::adapters::socketio
