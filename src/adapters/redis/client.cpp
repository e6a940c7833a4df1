// The Redis client, written on Boost.Asio rather than on a Redis library, because none fits here:
//  - Debian bookworm's hiredis is 0.14: no TLS (rediss:// is required), no Asio integration (it
//    would need its own event loop or a thread blocked per connection), and no RESP limits of our
//    choosing against a broken or hostile server;
//  - Boost 1.81, the Boost of this tree, has no Boost.Redis (it arrived in 1.84), and a newer Boost
//    beside Debian's is not worth it for one adapter;
//  - RESP2 is small and fully specified (resp.hpp is ~200 lines with its limits), and the rest —
//    TCP/TLS, timers, reconnect — is what Asio and OpenSSL already do for the HTTP side.
//
// Shape: each Client (and Subscriber) owns one io_context and the one thread that runs it; every
// socket operation, timer and hook runs there, so the connection state needs no locks. Callers on
// any thread encode their command, queue it under a mutex and wait on a future of their own; the
// io thread writes everything queued in one write (pipelining) and hands replies to the waiting
// promises in FIFO order. A thread per connection (not one shared io_context) keeps the clients
// independent — a blocking command or a slow subscriber callback delays nobody else — and a
// registrar process holds only a handful of them (commands, blocking pops, pub/sub).
//
// Timeouts: a reply that does not come within command_timeout (+ extra_timeout) fails its caller,
// and the connection is then treated as lost (closed, everything in flight failed, reconnected):
// the replies of a pipeline come in order, so nothing behind the overdue one can arrive either,
// and a server that does not answer at all (a half-open connection) is found this way.
#include "adapters/redis/client.hpp"

#include <openssl/evp.h>
#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/url/parse.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <span>
#include <thread>
#include <utility>

#include "adapters/redis/link.hpp"
#include "adapters/redis/resp.hpp"
#include "adapters/sodium/hex.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::redis {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::optional<long long> parse_number(std::string_view s) {
  long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

int parse_db(std::string_view text) {
  const auto n = parse_number(text);
  if (!n || *n < 0 || *n > 1'000'000 || text.front() == '+')
    throw std::invalid_argument("redis URL: the database must be a number from 0 (got \"" + std::string(text) + "\")");
  return static_cast<int>(*n);
}

[[noreturn]] void throw_unavailable(const std::string& where, const std::string& why) {
  throw ports::BackendUnavailable("redis " + where + ": " + why);
}

std::string sha1_hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha1(), nullptr) != 1)
    throw std::runtime_error("redis: SHA-1 of a script failed (OpenSSL)");
  return sodium::hex_encode(std::span<const unsigned char>(digest, size));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Url

Url Url::parse(std::string_view text) {
  static const std::string form = "expected redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB][?db=DB]";
  auto parsed = boost::urls::parse_uri(text);
  if (!parsed) throw std::invalid_argument("redis URL: not a valid URL; " + form);
  const auto& u = *parsed;
  Url url;
  if (iequals(u.scheme(), "rediss"))
    url.tls = true;
  else if (!iequals(u.scheme(), "redis"))
    throw std::invalid_argument("redis URL: the scheme must be redis:// or rediss:// (TLS); " + form);
  if (!u.has_authority()) throw std::invalid_argument("redis URL: no host; " + form);
  if (u.has_fragment()) throw std::invalid_argument("redis URL: unexpected #fragment");
  if (!u.host_address().empty()) url.host = u.host_address();  // decoded; IPv6 without brackets
  if (u.has_port()) {
    const auto port = parse_number(u.port());
    if (!port || *port < 1 || *port > 65535) throw std::invalid_argument("redis URL: the port must be from 1 to 65535");
    url.port = static_cast<std::uint16_t>(*port);
  }
  if (u.has_userinfo()) {
    url.username = u.user();
    url.password = u.has_password() ? std::string(u.password()) : std::string();
    if (url.password.empty() && !url.username.empty())
      throw std::invalid_argument(
          "redis URL: a user without a password; write redis://:PASSWORD@HOST for a password alone, "
          "redis://USER:PASSWORD@HOST for an ACL user");
  }
  std::optional<int> path_db;
  std::string_view path = u.encoded_path();
  if (!path.empty() && path != "/") {
    if (!path.starts_with("/") || path.find('/', 1) != std::string_view::npos)
      throw std::invalid_argument("redis URL: the path can only be /DB (a database number)");
    path_db = parse_db(path.substr(1));
  }
  std::optional<int> query_db;
  bool tls_option = false;
  for (const auto& p : u.params()) {
    if (p.key == "db") {
      query_db = parse_db(p.value);
    } else if (p.key == "ca_file") {
      if (p.value.empty()) throw std::invalid_argument("redis URL: ca_file needs a path");
      url.ca_file = p.value;
      tls_option = true;
    } else if (p.key == "verify_peer") {
      if (p.value != "true" && p.value != "false")
        throw std::invalid_argument("redis URL: verify_peer must be true or false");
      url.verify_peer = p.value == "true";
      tls_option = true;
    } else {
      throw std::invalid_argument("redis URL: unknown parameter \"" + std::string(p.key) +
                                  "\" (known: db, and for rediss:// ca_file, verify_peer)");
    }
  }
  if (tls_option && !url.tls) throw std::invalid_argument("redis URL: ca_file and verify_peer need rediss://");
  if (path_db && query_db && *path_db != *query_db)
    throw std::invalid_argument("redis URL: two different databases (/" + std::to_string(*path_db) +
                                " and ?db=" + std::to_string(*query_db) + ")");
  url.db = path_db.value_or(query_db.value_or(0));
  return url;
}

std::string Url::redacted() const {
  std::string out = tls ? "rediss://" : "redis://";
  if (!password.empty()) out += username + ":***@";
  out += host.find(':') != std::string::npos ? "[" + host + "]" : host;
  out += ":" + std::to_string(port) + "/" + std::to_string(db);
  if (tls && !verify_peer) out += "?verify_peer=false";
  return out;
}

const Reply& Reply::throw_if_error() const {
  if (is_error()) throw ServerError(str);
  return *this;
}

// ---------------------------------------------------------------------------------------------
// Client

namespace {

// A reply, or why there is none. The caller throws: an exception object made on the io thread
// and rethrown on the caller's would be shared by both threads, its reference count kept where
// ThreadSanitizer cannot see it (libstdc++), and reported as a race.
struct Outcome {
  Reply reply;
  std::string failure;  // non-empty: BackendUnavailable with this message
};

struct Pending {
  std::string wire;  // the encoded command, until written
  Clock::time_point deadline;
  std::promise<Outcome> promise;

  void fail(std::string message) { promise.set_value(Outcome{{}, std::move(message)}); }
};

}  // namespace

struct Client::Impl {
  enum class State { connecting, connected, down };

  Impl(Url u, ClientOptions o)
      : url(std::move(u)),
        options(std::move(o)),
        where(url.redacted()),
        work(asio::make_work_guard(ioc)),
        link(ioc, url, options,
             {.connecting = [this] { on_connecting(); },
              .up = [this] { on_up(); },
              .reply = [this](Reply&& r) { on_reply(std::move(r)); },
              .down = [this](const std::string& why) { on_down(why); }}),
        watchdog(ioc) {
    asio::post(ioc, [this] { link.start(); });
    thread = std::thread([this] { ioc.run(); });
    ::pthread_setname_np(thread.native_handle(), "redis-client");
  }

  ~Impl() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    asio::post(ioc, [this] {
      link.stop();
      watchdog.cancel();
      fail_all("the client was closed");
    });
    work.reset();
    thread.join();
  }

  Reply submit(std::string wire, std::chrono::milliseconds timeout) {
    std::vector<std::string> one;
    one.push_back(std::move(wire));
    return std::move(submit_all(std::move(one), timeout).front());
  }

  // Writes the commands together (one flush, in this order) and waits for all their replies.
  std::vector<Reply> submit_all(std::vector<std::string> wires, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    std::vector<std::future<Outcome>> futures;
    futures.reserve(wires.size());
    {
      std::lock_guard lock(mutex);
      if (stopping) throw_unavailable(where, "the client is closed");
      if (state == State::down)
        throw_unavailable(where, "not connected" + (last_error.empty() ? std::string() : " (" + last_error + ")"));
      for (auto& wire : wires) {
        auto pending = std::make_shared<Pending>();
        pending->wire = std::move(wire);
        pending->deadline = deadline;
        futures.push_back(pending->promise.get_future());
        submitted.push_back(std::move(pending));
      }
      if (!flush_posted) {
        flush_posted = true;
        asio::post(ioc, [this] { flush(); });
      }
    }
    std::vector<Reply> replies;
    replies.reserve(futures.size());
    std::string failure;
    for (auto& future : futures) {
      // The io thread fails the command at its deadline; this wait is only a backstop.
      if (future.wait_until(deadline + std::chrono::milliseconds(250)) != std::future_status::ready)
        throw_unavailable(where, "no reply within " + std::to_string(timeout.count()) + " ms");
      Outcome outcome = future.get();
      if (!outcome.failure.empty() && failure.empty()) failure = std::move(outcome.failure);
      replies.push_back(std::move(outcome.reply));
    }
    if (!failure.empty()) throw ports::BackendUnavailable(failure);
    return replies;
  }

  // ---- io thread ----

  void on_connecting() {
    std::lock_guard lock(mutex);
    if (!stopping) state = State::connecting;
  }

  void on_up() {
    {
      std::lock_guard lock(mutex);
      state = State::connected;
      last_error.clear();
    }
    connected.store(true);
    flush();
  }

  void on_down(const std::string& why) {
    std::deque<std::shared_ptr<Pending>> queued;
    {
      std::lock_guard lock(mutex);
      state = State::down;
      last_error = why;
      queued.swap(submitted);
    }
    connected.store(false);
    const std::string message = "redis " + where + ": " + why;
    for (auto* list : {&in_flight, &waiting, &queued}) {
      for (auto& p : *list) p->fail(message);
      list->clear();
    }
  }

  void on_reply(Reply&& reply) {
    if (in_flight.empty()) {
      link.drop("a reply to no command (protocol out of step)");
      return;
    }
    auto pending = std::move(in_flight.front());
    in_flight.pop_front();
    pending->promise.set_value(Outcome{std::move(reply), {}});
    update_watchdog();
  }

  void flush() {
    std::deque<std::shared_ptr<Pending>> batch;
    State now;
    std::string error;
    {
      std::lock_guard lock(mutex);
      flush_posted = false;
      batch.swap(submitted);
      now = state;
      error = last_error;
    }
    if (!link.up()) {
      for (auto& p : batch) {
        if (now == State::down)
          p->fail("redis " + where + ": not connected (" + error + ")");
        else
          waiting.push_back(std::move(p));  // written once connected
      }
      return;
    }
    std::string out;
    const auto now_time = Clock::now();
    for (auto* list : {&waiting, &batch}) {
      for (auto& p : *list) {
        if (p->deadline <= now_time) {
          // Its caller has given up (it waited for the connection): not sent, or the watchdog
          // would take the fresh connection for a hung one.
          p->fail("redis " + where + ": no connection within the command timeout");
          continue;
        }
        out += p->wire;
        std::string().swap(p->wire);
        in_flight.push_back(std::move(p));
      }
      list->clear();
    }
    if (!out.empty()) link.write(out);
    update_watchdog();
  }

  // Keeps the timer on the deadline of the oldest command in flight (the only one that can be
  // overdue first: replies come in order).
  void update_watchdog() {
    if (in_flight.empty()) return;
    const auto deadline = in_flight.front()->deadline;
    if (watchdog_armed && watchdog.expiry() <= deadline) return;
    watchdog_armed = true;
    watchdog.expires_at(deadline);  // cancels the wait for a later deadline
    watchdog.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      watchdog_armed = false;
      if (in_flight.empty()) return;
      if (in_flight.front()->deadline <= Clock::now()) {
        link.drop("no reply within the command timeout");
        return;
      }
      update_watchdog();
    });
  }

  void fail_all(const std::string& why) { on_down(why); }

  const Url url;
  const ClientOptions options;
  const std::string where;
  asio::io_context ioc;  // before everything that uses it: destroyed last
  asio::executor_work_guard<asio::io_context::executor_type> work;
  detail::Link link;
  asio::steady_timer watchdog;
  bool watchdog_armed = false;

  // Shared with the callers, under `mutex`.
  std::mutex mutex;
  State state = State::connecting;
  std::string last_error;
  std::deque<std::shared_ptr<Pending>> submitted;
  bool flush_posted = false;
  bool stopping = false;
  std::atomic<bool> connected{false};

  // io thread only.
  std::deque<std::shared_ptr<Pending>> waiting;    // queued while connecting: written once up
  std::deque<std::shared_ptr<Pending>> in_flight;  // written, their replies due in this order

  std::thread thread;  // last: started once everything above exists
};

Client::Client(Url url, ClientOptions options) : impl_(std::make_unique<Impl>(std::move(url), std::move(options))) {}
Client::~Client() = default;

namespace {

// Commands that turn the connection into something else than request/reply.
void refuse_non_command(std::string_view name) {
  for (std::string_view bad : {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "MONITOR", "SYNC", "PSYNC"})
    if (iequals(name, bad))
      throw std::invalid_argument("redis: " + std::string(bad) + " cannot run on a Client (use a Subscriber for pub/sub)");
  // A transaction on a connection shared by several threads would take in their commands too.
  for (std::string_view bad : {"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"})
    if (iequals(name, bad))
      throw std::invalid_argument("redis: " + std::string(bad) +
                                  " cannot run on a shared Client (use eval: a Lua script runs atomically)");
  // They change the connection for every caller sharing it, and would not survive a reconnect.
  for (std::string_view bad : {"SELECT", "AUTH", "HELLO", "RESET", "QUIT"})
    if (iequals(name, bad))
      throw std::invalid_argument("redis: " + std::string(bad) + " cannot run on a Client (the URL sets the database and credentials)");
}

}  // namespace

Reply Client::command(const std::vector<std::string>& args, std::chrono::milliseconds extra_timeout) {
  if (args.empty()) throw std::invalid_argument("redis: an empty command");
  refuse_non_command(args.front());
  std::string wire;
  resp::append_command(wire, std::span<const std::string>(args));
  return impl_->submit(std::move(wire), impl_->options.command_timeout + extra_timeout);
}

Reply Client::command(std::initializer_list<std::string_view> args) {
  if (args.size() == 0) throw std::invalid_argument("redis: an empty command");
  refuse_non_command(*args.begin());
  std::string wire;
  resp::append_command(wire, std::span<const std::string_view>(args.begin(), args.size()));
  return impl_->submit(std::move(wire), impl_->options.command_timeout);
}

Reply Client::eval(const std::string& script_source, const std::vector<std::string>& keys,
                   const std::vector<std::string>& args) {
  return std::move(eval_all(script_source, std::vector<ScriptCall>{{keys, args}}).front());
}

std::vector<Reply> Client::eval_all(const std::string& script_source, std::span<const ScriptCall> calls) {
  if (calls.empty()) return {};
  const std::string sha = sha1_hex(script_source);
  auto wire_of = [&](const ScriptCall& call, bool by_sha) {
    std::vector<std::string_view> command;
    command.reserve(3 + call.keys.size() + call.args.size());
    const std::string key_count = std::to_string(call.keys.size());
    command.push_back(by_sha ? "EVALSHA" : "EVAL");
    command.push_back(by_sha ? std::string_view(sha) : std::string_view(script_source));
    command.push_back(key_count);
    command.insert(command.end(), call.keys.begin(), call.keys.end());
    command.insert(command.end(), call.args.begin(), call.args.end());
    std::string wire;
    resp::append_command(wire, std::span<const std::string_view>(command));
    return wire;
  };
  std::vector<std::string> wires;
  wires.reserve(calls.size());
  for (const auto& call : calls) wires.push_back(wire_of(call, true));
  std::vector<Reply> replies = impl_->submit_all(std::move(wires), impl_->options.command_timeout);
  // Not in the server's script cache (a restart, SCRIPT FLUSH, another server): EVAL loads it. A
  // call refused so did not run, so running it again is no repeat.
  std::vector<std::size_t> again;
  std::vector<std::string> again_wires;
  for (std::size_t i = 0; i < replies.size(); ++i)
    if (replies[i].is_error() && replies[i].str.starts_with("NOSCRIPT")) {
      again.push_back(i);
      again_wires.push_back(wire_of(calls[i], false));
    }
  if (!again.empty()) {
    auto second = impl_->submit_all(std::move(again_wires), impl_->options.command_timeout);
    for (std::size_t k = 0; k < again.size(); ++k) replies[again[k]] = std::move(second[k]);
  }
  return replies;
}

bool Client::connected() const { return impl_->connected.load(); }

// ---------------------------------------------------------------------------------------------
// Subscriber

namespace {

// One SUBSCRIBE or PSUBSCRIBE written and not yet confirmed (the server confirms each channel in
// the order they were asked for, or answers the command with an error).
struct Awaited {
  bool pattern = false;
  std::string name;
  std::shared_ptr<std::promise<std::string>> done;  // a subscribe() call waiting; null after a reconnect
  bool resubscribe = false;                  // part of the batch that on_connected waits for
};

constexpr auto kPingInterval = std::chrono::seconds(5);

}  // namespace

struct Subscriber::Impl {
  Impl(Url u, ClientOptions o)
      : url(std::move(u)),
        options(std::move(o)),
        work(asio::make_work_guard(ioc)),
        link(ioc, url, options,
             {.connecting = [this] { connecting = true; },
              .up = [this] { on_up(); },
              .reply = [this](Reply&& r) { on_reply(std::move(r)); },
              .down = [this](const std::string&) { on_down(); }}),
        ping_timer(ioc) {
    asio::post(ioc, [this] {
      link.start();
      schedule_ping();
    });
    thread = std::thread([this] { ioc.run(); });
    ::pthread_setname_np(thread.native_handle(), "redis-subscribe");
  }

  ~Impl() {
    asio::post(ioc, [this] {
      stopped = true;
      link.stop();
      ping_timer.cancel();
      on_down();
    });
    work.reset();
    thread.join();
  }

  // Registers the handler on the subscriber's thread and subscribes if connected. Waits (up to the
  // command timeout, unless called from a handler) until the server confirmed it, or until the
  // connection being made is up with every subscription; not while the server is known down.
  void add(bool pattern, std::string name, Handler handler) {
    auto done = std::make_shared<std::promise<std::string>>();
    auto future = done->get_future();
    asio::post(ioc, [this, pattern, name, handler = std::move(handler), done]() mutable {
      auto& table = pattern ? patterns : channels;
      const bool is_new = !table.contains(name);
      table[name] = std::move(handler);
      if (link.up() && is_new) {
        send_subscribe(pattern, name, done, false);
      } else if (!link.up() && connecting) {
        until_ready.push_back(done);  // made with the others once connected
      } else {
        done->set_value(std::string());  // already subscribed, or known down: made on the next reconnect
      }
    });
    if (std::this_thread::get_id() == thread.get_id()) return;
    if (future.wait_for(options.command_timeout) != std::future_status::ready) return;
    if (std::string refusal = future.get(); !refusal.empty()) throw ServerError(refusal);
  }

  void remove(std::string name) {
    asio::post(ioc, [this, name = std::move(name)] {
      for (bool pattern : {false, true}) {
        auto& table = pattern ? patterns : channels;
        if (table.erase(name) == 0 || !link.up()) continue;
        std::string wire;
        const std::string_view args[] = {pattern ? "PUNSUBSCRIBE" : "UNSUBSCRIBE", name};
        resp::append_command(wire, args);
        link.write(wire);
      }
    });
  }

  void set_on_connected(std::function<void()> handler) {
    asio::post(ioc, [this, handler = std::move(handler)] {
      on_connected = handler;
      if (ready && on_connected) call_on_connected();  // already connected: the caller still hears of it
    });
  }

  // ---- io thread ----

  void send_subscribe(bool pattern, const std::string& name, std::shared_ptr<std::promise<std::string>> done, bool resub) {
    std::string wire;
    const std::string_view args[] = {pattern ? "PSUBSCRIBE" : "SUBSCRIBE", name};
    resp::append_command(wire, args);
    link.write(wire);
    awaited.push_back({pattern, name, std::move(done), resub});
    if (resub) ++resubscribing;
  }

  void on_up() {
    connecting = false;
    up.store(true);
    ready = false;
    for (const auto& [name, handler] : channels) send_subscribe(false, name, nullptr, true);
    for (const auto& [name, handler] : patterns) send_subscribe(true, name, nullptr, true);
    if (resubscribing == 0) become_ready();
  }

  void on_down() {
    connecting = false;
    up.store(false);
    ready = false;
    resubscribing = 0;
    ping_due.reset();
    for (auto& a : awaited)
      if (a.done) a.done->set_value(std::string());  // the subscription stays registered: made on reconnect
    awaited.clear();
    release_until_ready();
  }

  void become_ready() {
    ready = true;
    release_until_ready();
    if (on_connected) call_on_connected();
  }

  void release_until_ready() {
    for (auto& done : until_ready) done->set_value(std::string());
    until_ready.clear();
  }

  void call_on_connected() {
    try {
      on_connected();
    } catch (...) {
      // A callback's failure is its own; the subscriber goes on.
    }
  }

  void confirmed(const std::string* error) {
    if (awaited.empty()) return;
    Awaited a = std::move(awaited.front());
    awaited.pop_front();
    if (error != nullptr) {
      (a.pattern ? patterns : channels).erase(a.name);
      if (a.done) a.done->set_value(*error);
    } else if (a.done) {
      a.done->set_value(std::string());
    }
    if (a.resubscribe && --resubscribing == 0) become_ready();
  }

  void dispatch(const Handler& handler, std::string_view channel, std::string_view message) {
    try {
      handler(channel, message);
    } catch (...) {
      // A handler's failure is its own; the next message still arrives.
    }
  }

  void on_reply(Reply&& reply) {
    if (reply.is_error()) {
      confirmed(&reply.str);
      return;
    }
    if (reply.type == Reply::Type::status) {  // +PONG, when subscribed to nothing
      ping_due.reset();
      return;
    }
    if (reply.type != Reply::Type::array || reply.elements.empty() ||
        reply.elements[0].type != Reply::Type::bulk) {
      link.drop("an unexpected reply on a pub/sub connection");
      return;
    }
    const auto& e = reply.elements;
    const std::string& kind = e[0].str;
    if (kind == "message" && e.size() == 3) {
      if (auto it = channels.find(e[1].str); it != channels.end()) dispatch(it->second, e[1].str, e[2].str);
    } else if (kind == "pmessage" && e.size() == 4) {
      if (auto it = patterns.find(e[1].str); it != patterns.end()) dispatch(it->second, e[2].str, e[3].str);
    } else if (kind == "subscribe" || kind == "psubscribe") {
      confirmed(nullptr);
    } else if (kind == "pong") {
      ping_due.reset();
    }
    // unsubscribe / punsubscribe confirmations: nothing to do.
  }

  // Every kPingInterval while connected: PING, and a connection whose previous PING got no answer
  // within the command timeout is dropped (pub/sub is otherwise silent: a dead link would go unseen).
  void schedule_ping() {
    if (stopped) return;
    ping_timer.expires_after(kPingInterval);
    ping_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped) return;
      if (link.up()) {
        if (ping_due && *ping_due <= Clock::now()) {
          link.drop("no answer to PING within the command timeout");
        } else if (!ping_due) {
          std::string wire;
          const std::string_view args[] = {"PING"};
          resp::append_command(wire, args);
          link.write(wire);
          ping_due = Clock::now() + options.command_timeout;
        }
      }
      schedule_ping();
    });
  }

  const Url url;
  const ClientOptions options;
  asio::io_context ioc;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  detail::Link link;
  asio::steady_timer ping_timer;
  std::atomic<bool> up{false};

  // io thread only.
  std::map<std::string, Handler> channels, patterns;
  std::function<void()> on_connected;
  std::deque<Awaited> awaited;
  std::vector<std::shared_ptr<std::promise<std::string>>> until_ready;  // subscribe() calls made while connecting
  bool connecting = true;  // an attempt under way (the first one from the start)
  std::size_t resubscribing = 0;
  bool ready = false;  // connected and every subscription confirmed
  bool stopped = false;
  std::optional<Clock::time_point> ping_due;

  std::thread thread;
};

Subscriber::Subscriber(Url url, ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(url), std::move(options))) {}
Subscriber::~Subscriber() = default;

void Subscriber::subscribe(const std::string& channel, Handler handler) {
  impl_->add(false, channel, std::move(handler));
}
void Subscriber::psubscribe(const std::string& pattern, Handler handler) {
  impl_->add(true, pattern, std::move(handler));
}
void Subscriber::unsubscribe(const std::string& channel) { impl_->remove(channel); }
void Subscriber::on_connected(std::function<void()> handler) { impl_->set_on_connected(std::move(handler)); }

}  // namespace registrar::adapters::redis
