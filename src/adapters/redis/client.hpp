#pragma once
// The Redis client every Redis-backed adapter (code store, Bull job queue, rate limits, the
// Socket.IO adapter later) uses. One `Client` is one logical connection to one server: RESP2 over
// Boost.Asio, plain TCP (`redis://`) or TLS (`rediss://`), AUTH (username/password) and SELECT on
// every (re)connect, reconnect with capped exponential back-off.
//
// Thread-safe: any number of threads may call `command` at once; requests are pipelined on the one
// connection and each caller gets its own reply, in order. A blocking command (BRPOPLPUSH, …)
// blocks the connection for everyone: give it a Client of its own.
//
// Failures: the server's `-ERR …` reply comes back as a Reply of type `error` (the caller decides:
// `Reply::throw_if_error()`); a connection that cannot be made or is lost, or a reply that does not
// come within the timeout, throws ports::BackendUnavailable. A command whose connection was lost
// after it was written may or may not have run: callers make their writes idempotent or atomic
// (scripts). A reply overdue also resets the connection (it fails the commands in flight behind
// it, and a reconnect follows). While the server is known down (the last attempt failed), commands
// fail at once; while an attempt is under way (the first one, from construction), they wait for it.
// Commands that would change the shared connection (SELECT, AUTH, SUBSCRIBE, MONITOR, …) and
// transactions (MULTI/EXEC/WATCH: other callers' commands would land inside; use eval) are refused
// with std::invalid_argument.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace registrar::adapters::redis {

// A parsed `redis://[user[:password]@]host[:port][/db]` or `rediss://…` URL (also `?db=N`; for
// rediss:// also `?ca_file=PATH` and `?verify_peer=false`; other parameters are refused).
struct Url {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  bool tls = false;
  std::string username;  // empty: AUTH with the password only (the `default` user)
  std::string password;  // empty: no AUTH
  int db = 0;
  std::string ca_file;   // rediss: CA bundle to verify the server with (empty: the system's)
  bool verify_peer = true;

  // Throws std::invalid_argument with a message fit for the command line.
  static Url parse(std::string_view url);
  // The URL with the password replaced by "***": for logs.
  std::string redacted() const;
};

struct Reply {
  enum class Type { nil, status, error, integer, bulk, array };
  Type type = Type::nil;
  std::string str;            // status, error, bulk
  long long integer = 0;      // integer
  std::vector<Reply> elements;  // array

  bool is_nil() const { return type == Type::nil; }
  bool is_error() const { return type == Type::error; }
  // Throws ServerError if this is an error reply; returns *this otherwise.
  const Reply& throw_if_error() const;

  friend bool operator==(const Reply&, const Reply&) = default;
};

// The server answered with an error (`-ERR …`, `-NOSCRIPT …`, a script's redis.error_reply).
struct ServerError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};  // per reply; blocking commands add their own timeout
  std::chrono::milliseconds reconnect_min{100}, reconnect_max{5000};
  std::string client_name = "registrar";  // CLIENT SETNAME on connect
};

class Client {
 public:
  Client(Url url, ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs one command and waits for its reply. `extra_timeout` lengthens the wait (blocking commands).
  Reply command(const std::vector<std::string>& args,
                std::chrono::milliseconds extra_timeout = std::chrono::milliseconds{0});
  Reply command(std::initializer_list<std::string_view> args);

  // A Lua script by its source: EVALSHA, and EVAL when the server answers NOSCRIPT (after a
  // restart or SCRIPT FLUSH).
  Reply eval(const std::string& script_source, const std::vector<std::string>& keys,
             const std::vector<std::string>& args);
  // The same script several times, pipelined: every call is written at once and the replies come
  // back in the calls' order (one round trip for the batch instead of one per call). Redis runs
  // them one after the other, as separate eval() calls would; a failure of the connection throws
  // BackendUnavailable, after which any of the calls may have run.
  struct ScriptCall {
    std::vector<std::string> keys;
    std::vector<std::string> args;
  };
  std::vector<Reply> eval_all(const std::string& script_source, std::span<const ScriptCall> calls);

  // True while connected (for readiness checks); never blocks.
  bool connected() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// A pub/sub connection: SUBSCRIBE / PSUBSCRIBE, re-subscribed after every reconnect. Callbacks run
// on the subscriber's own thread, one at a time; they must not block for long.
class Subscriber {
 public:
  using Handler = std::function<void(std::string_view channel, std::string_view message)>;
  Subscriber(Url url, ClientOptions options = {});
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // subscribe/psubscribe return once the server confirmed the subscription (or, while the first
  // connection is being made, once it is up with its subscriptions), waiting at most the command
  // timeout; while the server is down they return at once and the subscription is made on
  // reconnect. A subscription the server refuses (ACL) throws ServerError and is dropped.
  void subscribe(const std::string& channel, Handler handler);
  void psubscribe(const std::string& pattern, Handler handler);  // handler gets the real channel
  void unsubscribe(const std::string& channel);  // a channel or a pattern, by its name
  // Called after each (re)connect once the subscriptions are in place: messages published while
  // disconnected are lost (pub/sub has no history), so users re-read state here. Set while
  // connected, it is called once at once (the caller still hears of the current connection).
  void on_connected(std::function<void()> handler);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace registrar::adapters::redis
