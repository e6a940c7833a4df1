#pragma once
// A private RabbitMQ node for tests, started from Debian's rabbitmq-server package and torn down
// with the object; plus a small synchronous AMQP client for test assertions.
//
//   RabbitMqServer broker;                // fresh directory, free ports, started
//   broker.url()                          // amqp://guest:guest@127.0.0.1:<port>/
//   broker.stop(); broker.start();        // outage tests: graceful stop, restart on the same data
//   broker.kill();                        // crash: SIGKILL to the whole node
//   RabbitMqServer tls(RabbitMqTls{...});  // also a TLS listener (tls.tls_url(), amqps://):
//                                          // its certificate, the CA it verifies clients with
//
// Everything the node writes is under one temp directory: Mnesia (queues, persistent messages),
// logs, its config (rabbitmq.conf: loopback_users = none, the AMQP listener on 127.0.0.1 only),
// an empty enabled-plugins file, and HOME (so its own Erlang cookie, created on first boot). Its
// node name (registrar-test-<pid>-<n>@localhost), AMQP port and distribution port are its own,
// so several test processes run side by side. epmd is the machine's shared one on its default
// port (Erlang starts it on demand, bound to 127.0.0.1 via ERL_EPMD_ADDRESS when we are the first);
// a per-run ERL_EPMD_PORT would leave one epmd daemon behind per test process.
//
// As root, the node runs as the `rabbitmq` user (the directory is chowned to it), as the
// packaged server does. It runs in a session of its own (setsid), so kill() reaches the Erlang VM
// behind the wrapper script; if the thread that started it exits (a crashed test), the wrapper
// gets SIGTERM (PR_SET_PDEATHSIG) and stops the VM: start it from a long-lived thread.
//
// Readiness is an event: start() polls an AMQP login (every 50 ms) until it succeeds, the node
// exits, or 90 s pass. A cold start takes ~3-7 s on a small machine (Erlang boot + RabbitMQ's
// prelaunch dominate; the broker itself is up in ~0.3 s), a restart on existing data about the
// same, a graceful stop ~1-3 s: so tests share one node per process (shared_rabbitmq()) and only
// outage tests stop/start it. The shell twin is scripts/rabbitmq-private.sh.
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace registrar::testing {

// A TLS listener beside the plain one (which readiness polls): the server's certificate and key,
// and the CA that client certificates must chain to (PEM files; copied into the node's directory).
struct RabbitMqTls {
  std::string ca_file, cert_file, key_file;
  bool require_client_cert = true;  // ssl_options.fail_if_no_peer_cert
};

class RabbitMqServer {
 public:
  // The broker's start script (REGISTRAR_RABBITMQ_SERVER overrides), or empty if not installed.
  static std::string server_script() {
    if (const char* s = std::getenv("REGISTRAR_RABBITMQ_SERVER"); s != nullptr && *s) return s;
    const char* p = "/usr/lib/rabbitmq/bin/rabbitmq-server";
    return ::access(p, X_OK) == 0 ? p : std::string();
  }
  static bool available() { return !server_script().empty(); }

  explicit RabbitMqServer(bool start_now = true) : RabbitMqServer(std::nullopt, start_now) {}
  explicit RabbitMqServer(std::optional<RabbitMqTls> tls, bool start_now = true) : tls_(std::move(tls)) {
    script_ = server_script();
    if (script_.empty()) throw std::runtime_error("rabbitmq: rabbitmq-server not found (apt-get install rabbitmq-server)");
    static std::atomic<int> counter{0};
    node_ = "registrar-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter) + "@localhost";
    dir_ = make_temp_dir();
    try {
      port_ = free_port();
      dist_port_ = free_port();
      if (tls_) tls_port_ = free_port();
      write_config();
      if (start_now) start();
    } catch (...) {
      teardown();
      throw;
    }
  }
  ~RabbitMqServer() { teardown(); }
  RabbitMqServer(const RabbitMqServer&) = delete;
  RabbitMqServer& operator=(const RabbitMqServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string host() const { return "127.0.0.1"; }
  std::string url() const { return "amqp://guest:guest@127.0.0.1:" + std::to_string(port_) + "/"; }
  // The TLS listener (RabbitMqTls given): its port and an amqps:// URL to it.
  std::uint16_t tls_port() const { return tls_port_; }
  std::string tls_url(const std::string& host = "127.0.0.1") const {
    return "amqps://guest:guest@" + host + ":" + std::to_string(tls_port_) + "/";
  }
  const std::filesystem::path& dir() const { return dir_; }
  const std::string& node_name() const { return node_; }
  bool running() const { return pid_ > 0; }
  // How long the last start() took until an AMQP login succeeded.
  std::chrono::milliseconds last_start_duration() const { return last_start_; }

  // Starts the node on this directory (fresh, or left by stop()/kill()) and waits until an AMQP
  // login succeeds.
  void start() {
    if (pid_ > 0) return;
    const auto t0 = std::chrono::steady_clock::now();
    pid_ = spawn();
    wait_ready(t0 + std::chrono::seconds(90));
    last_start_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  }

  // Graceful stop: SIGTERM to the wrapper, which stops the VM (connections get connection.close
  // 320 CONNECTION_FORCED); waits for every process of the node to be gone (SIGKILL after `grace`).
  void stop(std::chrono::seconds grace = std::chrono::seconds(30)) {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (!wait_gone(std::chrono::steady_clock::now() + grace)) {
      ::killpg(pid_, SIGKILL);
      wait_gone(std::chrono::steady_clock::time_point::max());
    }
    pid_ = -1;
  }

  // Crash: SIGKILL to every process of the node (clients see their sockets reset).
  void kill() {
    if (pid_ <= 0) return;
    ::killpg(pid_, SIGKILL);
    wait_gone(std::chrono::steady_clock::time_point::max());
    pid_ = -1;
  }

  // The end of the node's log files, for failure messages.
  std::string log_tail(std::size_t max_bytes = 6000) const {
    std::string text;
    std::error_code ec;
    for (const auto& f : std::filesystem::directory_iterator(dir_ / "log", ec)) {
      std::ifstream in(f.path());
      std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!content.empty()) text += "--- " + f.path().filename().string() + "\n" + content;
    }
    return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
  }

 private:
  static std::filesystem::path make_temp_dir() {
    std::filesystem::path base = std::filesystem::temp_directory_path();
    std::string tmpl = (base / "registrar-rabbitmq-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("rabbitmq: mkdtemp failed");
    std::filesystem::path dir = tmpl;
    for (const char* sub : {"mnesia", "log", "home"}) std::filesystem::create_directories(dir / sub);
    return dir;
  }

  static std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("rabbitmq: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("rabbitmq: cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  void write_config() {
    {
      std::ofstream conf(dir_ / "rabbitmq.conf");
      conf << "loopback_users = none\n"
           << "listeners.tcp.default = 127.0.0.1:" << port_ << "\n"
           << "log.console = false\n"
           << "log.file.level = info\n"
           << "disk_free_limit.absolute = 10MB\n";
      if (tls_) {
        std::filesystem::create_directories(dir_ / "tls");
        const auto copy = [&](const std::string& from, const char* name) {
          std::filesystem::copy_file(from, dir_ / "tls" / name, std::filesystem::copy_options::overwrite_existing);
          return (dir_ / "tls" / name).string();
        };
        conf << "listeners.ssl.default = 127.0.0.1:" << tls_port_ << "\n"
             << "ssl_options.cacertfile = " << copy(tls_->ca_file, "ca.crt") << "\n"
             << "ssl_options.certfile = " << copy(tls_->cert_file, "server.crt") << "\n"
             << "ssl_options.keyfile = " << copy(tls_->key_file, "server.key") << "\n"
             << "ssl_options.verify = verify_peer\n"
             << "ssl_options.fail_if_no_peer_cert = " << (tls_->require_client_cert ? "true" : "false") << "\n";
      }
    }
    std::ofstream(dir_ / "enabled_plugins").close();  // empty: no plugins (faster boot)
    if (::geteuid() == 0) {
      passwd* pw = ::getpwnam("rabbitmq");
      if (pw == nullptr) throw std::runtime_error("rabbitmq: running as root but there is no `rabbitmq` user");
      uid_ = pw->pw_uid;
      gid_ = pw->pw_gid;
      auto chown_one = [&](const std::filesystem::path& p) {
        if (::chown(p.c_str(), uid_, gid_) != 0) throw std::runtime_error("rabbitmq: chown failed on " + p.string());
      };
      chown_one(dir_);
      for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_)) chown_one(entry.path());
    }
  }

  std::vector<std::string> environment() const {
    const std::string d = dir_.string();
    return {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME=" + d + "/home",
        "LANG=C.UTF-8",
        "RABBITMQ_NODENAME=" + node_,
        "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
        "RABBITMQ_NODE_PORT=" + std::to_string(port_),
        "RABBITMQ_DIST_PORT=" + std::to_string(dist_port_),
        "RABBITMQ_MNESIA_BASE=" + d + "/mnesia",
        "RABBITMQ_LOG_BASE=" + d + "/log",
        "RABBITMQ_CONFIG_FILE=" + d + "/rabbitmq.conf",
        "RABBITMQ_ADVANCED_CONFIG_FILE=" + d + "/advanced.config",
        "RABBITMQ_CONF_ENV_FILE=" + d + "/rabbitmq-env.conf",
        "RABBITMQ_ENABLED_PLUGINS_FILE=" + d + "/enabled_plugins",
        "RABBITMQ_PID_FILE=" + d + "/beam.pid",
        "ERL_EPMD_ADDRESS=127.0.0.1",
    };
  }

  pid_t spawn() {
    // Everything the child needs is prepared before fork(): after it, only async-signal-safe calls.
    std::vector<std::string> env = environment();
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string arg0 = script_;
    char* argv[] = {arg0.data(), nullptr};
    const std::string out = (dir_ / "log" / "console.out").string();
    const std::string cwd = dir_.string();
    const bool drop = ::geteuid() == 0;
    const uid_t uid = uid_;
    const gid_t gid = gid_;
    const pid_t parent = ::getpid();

    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("rabbitmq: fork failed");
    if (pid == 0) {
      ::setsid();  // its own session and process group: killpg() reaches the VM too
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      if (::chdir(cwd.c_str()) != 0) ::_exit(126);
      if (drop) {
        if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
      }
      // After setuid (which clears it): if the test process dies, the wrapper script gets SIGTERM
      // and stops the VM cleanly.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(127);
      ::execve(argv[0], argv, envp.data());
      ::_exit(127);
    }
    return pid;
  }

  void wait_ready(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ::killpg(pid_, SIGKILL);
        pid_ = -1;
        throw std::runtime_error("rabbitmq: the node exited during startup:\n" + log_tail());
      }
      if (can_login()) return;
      if (std::chrono::steady_clock::now() > deadline) {
        kill();
        throw std::runtime_error("rabbitmq: no AMQP login within the deadline:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  bool can_login() const {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(conn);
    timeval tv{1, 0};
    bool ok = false;
    if (socket != nullptr && amqp_socket_open_noblock(socket, "127.0.0.1", port_, &tv) == AMQP_STATUS_OK) {
      amqp_set_handshake_timeout(conn, &tv);
      amqp_set_rpc_timeout(conn, &tv);
      ok = amqp_login(conn, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type ==
           AMQP_RESPONSE_NORMAL;
      if (ok) amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn);
    return ok;
  }

  // Reaps the wrapper and waits until no process of the node's group is left (the VM is the
  // wrapper's child, so it can outlive it briefly). True if all are gone by `deadline`.
  bool wait_gone(std::chrono::steady_clock::time_point deadline) {
    bool reaped = false;
    for (;;) {
      if (!reaped) {
        int status = 0;
        pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno == ECHILD)) reaped = true;
      }
      if (reaped && !group_alive(pid_)) return true;
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // True while a process of group `pgid` is alive. Zombies do not count: the VM is reparented
  // when the wrapper dies first, and not every init reaps promptly.
  static bool group_alive(pid_t pgid) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::ifstream in(entry.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      // pid (comm) state ppid pgrp …; comm may contain spaces and parentheses: parse after the last ')'.
      auto close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream fields(stat.substr(close + 1));
      char state = 0;
      long ppid = 0, pgrp = 0;
      if (!(fields >> state >> ppid >> pgrp)) continue;
      if (pgrp == pgid && state != 'Z' && state != 'X') return true;
    }
    return false;
  }

  void teardown() noexcept {
    try {
      kill();  // throwaway data: no need for a clean shutdown
    } catch (...) {
    }
    if (!dir_.empty() && std::getenv("REGISTRAR_KEEP_RABBITMQ") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string script_;
  std::string node_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0, dist_port_ = 0;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  std::optional<RabbitMqTls> tls_;
  std::uint16_t tls_port_ = 0;
  pid_t pid_ = -1;
  std::chrono::milliseconds last_start_{0};
};

// One node per test process, started on first use (test processes that never touch RabbitMQ do
// not pay for it; gtest's --gtest_list_tests does not start it), torn down at exit or by
// shutdown_shared_rabbitmq(). nullptr if rabbitmq-server is not installed.
inline std::unique_ptr<RabbitMqServer>& shared_rabbitmq_slot() {
  static std::unique_ptr<RabbitMqServer> server;
  return server;
}
inline RabbitMqServer* shared_rabbitmq() {
  static std::mutex m;
  std::lock_guard lock(m);
  auto& slot = shared_rabbitmq_slot();
  if (!slot) {
    if (!RabbitMqServer::available()) return nullptr;
    slot = std::make_unique<RabbitMqServer>();
  }
  return slot.get();
}
inline void shutdown_shared_rabbitmq() { shared_rabbitmq_slot().reset(); }

// A name (exchange, queue, consumer) of its own on each call, "<prefix>-<pid>-<n>": tests sharing
// a node never see each other's messages.
inline std::string unique_name(std::string_view prefix) {
  static std::atomic<int> n{0};
  return std::string(prefix) + "-" + std::to_string(::getpid()) + "-" + std::to_string(++n);
}

// ---------------------------------------------------------------------------------------------
// A blocking AMQP client for assertions: fetch messages with their properties, count, purge,
// delete, publish raw bytes. One connection, channel 1; throws std::runtime_error on any failure.

struct ReceivedMessage {
  std::string body;
  std::string exchange, routing_key;
  std::optional<std::string> message_id, content_type, type, expiration;
  std::optional<std::uint8_t> delivery_mode;
  std::optional<std::uint64_t> timestamp;
  std::vector<std::pair<std::string, std::string>> headers;  // integer and string values as text
  std::optional<std::string> header(std::string_view key) const {
    for (const auto& [k, v] : headers)
      if (k == key) return v;
    return std::nullopt;
  }
};

class AmqpTestClient {
 public:
  explicit AmqpTestClient(std::uint16_t port) : port_(port) {
    conn_ = amqp_new_connection();
    amqp_socket_t* socket = amqp_tcp_socket_new(conn_);
    timeval tv{5, 0};
    if (socket == nullptr || amqp_socket_open_noblock(socket, "127.0.0.1", port, &tv) != AMQP_STATUS_OK) {
      amqp_destroy_connection(conn_);
      throw std::runtime_error("amqp test client: cannot connect");
    }
    amqp_set_rpc_timeout(conn_, &tv);
    if (amqp_login(conn_, "/", 0, AMQP_DEFAULT_FRAME_SIZE, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
        AMQP_RESPONSE_NORMAL) {
      amqp_destroy_connection(conn_);
      throw std::runtime_error("amqp test client: login failed");
    }
    amqp_channel_open(conn_, 1);
    check("channel.open");
  }
  ~AmqpTestClient() {
    if (ok_) {
      amqp_channel_close(conn_, 1, AMQP_REPLY_SUCCESS);
      amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
    }
    amqp_destroy_connection(conn_);
  }
  AmqpTestClient(const AmqpTestClient&) = delete;
  AmqpTestClient& operator=(const AmqpTestClient&) = delete;

  // basic.get with auto-ack: the next message of `queue`, or nullopt if it is empty.
  std::optional<ReceivedMessage> get(const std::string& queue) {
    amqp_maybe_release_buffers(conn_);
    amqp_rpc_reply_t reply = amqp_basic_get(conn_, 1, bytes(queue), /*no_ack=*/1);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) fail("basic.get " + queue);
    if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::nullopt;
    auto* ok = static_cast<amqp_basic_get_ok_t*>(reply.reply.decoded);
    ReceivedMessage m;
    m.exchange = str(ok->exchange);
    m.routing_key = str(ok->routing_key);
    amqp_message_t message;
    if (amqp_read_message(conn_, 1, &message, 0).reply_type != AMQP_RESPONSE_NORMAL) fail("read message");
    const auto& p = message.properties;
    m.body = str(message.body);
    if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) m.message_id = str(p.message_id);
    if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) m.content_type = str(p.content_type);
    if (p._flags & AMQP_BASIC_TYPE_FLAG) m.type = str(p.type);
    if (p._flags & AMQP_BASIC_EXPIRATION_FLAG) m.expiration = str(p.expiration);
    if (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) m.delivery_mode = p.delivery_mode;
    if (p._flags & AMQP_BASIC_TIMESTAMP_FLAG) m.timestamp = p.timestamp;
    if (p._flags & AMQP_BASIC_HEADERS_FLAG)
      for (int i = 0; i < p.headers.num_entries; ++i) {
        const auto& e = p.headers.entries[i];
        std::string value;
        switch (e.value.kind) {
          case AMQP_FIELD_KIND_I32: value = std::to_string(e.value.value.i32); break;
          case AMQP_FIELD_KIND_I64: value = std::to_string(e.value.value.i64); break;
          case AMQP_FIELD_KIND_UTF8:
          case AMQP_FIELD_KIND_BYTES: value = str(e.value.value.bytes); break;
          default: value = "?"; break;
        }
        m.headers.emplace_back(str(e.key), value);
      }
    amqp_destroy_message(&message);
    return m;
  }

  // Messages ready in `queue` (passive declare; throws if it does not exist).
  std::uint32_t count(const std::string& queue) {
    auto* ok = amqp_queue_declare(conn_, 1, bytes(queue), /*passive=*/1, 0, 0, 0, amqp_empty_table);
    check("declare (passive) " + queue);
    return ok->message_count;
  }
  bool exists(const std::string& queue) {
    AmqpTestClient probe(port_);
    amqp_queue_declare(probe.conn_, 1, bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    bool found = amqp_get_rpc_reply(probe.conn_).reply_type == AMQP_RESPONSE_NORMAL;
    if (!found) probe.ok_ = false;  // the broker closed its channel
    return found;
  }
  void purge(const std::string& queue) {
    amqp_queue_purge(conn_, 1, bytes(queue));
    check("purge " + queue);
  }
  void delete_queue(const std::string& queue) {
    amqp_queue_delete(conn_, 1, bytes(queue), 0, 0);
    check("delete " + queue);
  }
  void declare_queue(const std::string& queue) {
    amqp_queue_declare(conn_, 1, bytes(queue), 0, /*durable=*/1, 0, 0, amqp_empty_table);
    check("declare " + queue);
  }
  void bind(const std::string& queue, const std::string& exchange, const std::string& key) {
    amqp_queue_bind(conn_, 1, bytes(queue), bytes(exchange), bytes(key), amqp_empty_table);
    check("bind " + queue);
  }
  // Publishes raw bytes (no confirm; a later RPC on the channel orders after it).
  void publish(const std::string& exchange, const std::string& key, const std::string& body,
               std::optional<std::string> message_id = std::nullopt, std::optional<std::string> type = std::nullopt) {
    amqp_basic_properties_t p{};
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 2;
    if (message_id) {
      p._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
      p.message_id = bytes(*message_id);
    }
    if (type) {
      p._flags |= AMQP_BASIC_TYPE_FLAG;
      p.type = bytes(*type);
    }
    if (amqp_basic_publish(conn_, 1, bytes(exchange), bytes(key), 0, 0, &p, bytes(body)) != AMQP_STATUS_OK)
      fail("publish");
  }

 private:
  static amqp_bytes_t bytes(const std::string& s) {
    amqp_bytes_t b;
    b.len = s.size();
    b.bytes = const_cast<char*>(s.data());
    return b;
  }
  static std::string str(amqp_bytes_t b) {
    return b.bytes == nullptr ? std::string() : std::string(static_cast<const char*>(b.bytes), b.len);
  }
  void check(const std::string& what) {
    if (amqp_get_rpc_reply(conn_).reply_type != AMQP_RESPONSE_NORMAL) fail(what);
  }
  [[noreturn]] void fail(const std::string& what) {
    ok_ = false;
    throw std::runtime_error("amqp test client: " + what + " failed");
  }

  std::uint16_t port_;
  amqp_connection_state_t conn_ = nullptr;
  bool ok_ = true;
};

}  // namespace registrar::testing
