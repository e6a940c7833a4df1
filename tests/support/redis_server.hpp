#pragma once
// A private Redis server for tests (Debian's redis-server), on a free 127.0.0.1 port with a temp
// directory, torn down with the object.
//
//   RedisServer redis;                       // started; redis.url() is redis://127.0.0.1:<port>
//   RedisServer secured(options);            // RedisServerOptions: password, acl_user/acl_password
//   (options.tls = true)                     // TLS only (--port 0 --tls-port P); certificates made
//                                            // by scripts/make-test-certs.sh: tls.ca_file() is the CA
//   redis.stop(); redis.start();             // outage tests: the same port and directory again
//   redis.cli({"SCRIPT", "FLUSH"});          // redis-cli, authenticated, its output
//
// Nothing persists (save "", appendonly no). The server is killed if the test process dies
// (PR_SET_PDEATHSIG). Readiness is an event: start() connects and sends PING (redis-cli for TLS)
// every 10 ms until the server answers, it exits, or 10 s pass; a start takes ~10-50 ms.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace registrar::testing {

struct RedisServerOptions {
  std::string password;      // requirepass: the `default` user's password (empty: none)
  std::string acl_user;      // an ACL user with every permission (empty: none)
  std::string acl_password;  // its password
  bool tls = false;          // TLS only: the plain port is off
};

// Runs argv (no shell) and returns {exit status, stdout+stderr}; -1 if it could not run.
inline std::pair<int, std::string> run_program(const std::vector<std::string>& args) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(pipe_fds[1], 1);
    ::dup2(pipe_fds[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class RedisServer {
 public:
  static constexpr const char* kServer = "/usr/bin/redis-server";
  static bool available() { return ::access(kServer, X_OK) == 0; }

  explicit RedisServer(RedisServerOptions options = {}, bool start_now = true) : options_(std::move(options)) {
    if (!available()) throw std::runtime_error("redis: redis-server not found (apt-get install redis-server)");
    std::string tmpl = (std::filesystem::temp_directory_path() / "registrar-redis-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("redis: mkdtemp failed");
    dir_ = tmpl;
    try {
      port_ = free_port();
      if (options_.tls) make_certificates();
      write_config();
      if (start_now) start();
    } catch (...) {
      teardown();
      throw;
    }
  }
  ~RedisServer() { teardown(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  const std::filesystem::path& dir() const { return dir_; }
  bool running() const { return pid_ > 0; }
  // TLS: the CA that signed the server's certificate (for 127.0.0.1 and localhost), and another
  // CA that signed nothing of this server's.
  std::string ca_file() const { return (dir_ / "ca.crt").string(); }
  std::string other_ca_file() const { return (dir_ / "other-ca.crt").string(); }

  // The URL of the `default` user (with the password, if any); for TLS with ?ca_file=.
  std::string url(int db = 0) const {
    std::string u = options_.tls ? "rediss://" : "redis://";
    if (!options_.password.empty()) u += ":" + options_.password + "@";
    u += "127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
    if (options_.tls) u += "?ca_file=" + ca_file();
    return u;
  }
  // The URL of the ACL user.
  std::string acl_url(int db = 0) const {
    std::string u = options_.tls ? "rediss://" : "redis://";
    u += options_.acl_user + ":" + options_.acl_password + "@127.0.0.1:" + std::to_string(port_) + "/" +
         std::to_string(db);
    if (options_.tls) u += "?ca_file=" + ca_file();
    return u;
  }

  void start() {
    if (pid_ > 0) return;
    pid_ = spawn();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("redis: the server exited during startup:\n" + log_tail());
      }
      if (answers_ping()) return;
      if (std::chrono::steady_clock::now() > deadline) {
        kill();
        throw std::runtime_error("redis: no answer to PING within 10 s:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // SIGTERM (connections are closed; nothing is saved), and waits until it has exited.
  void stop() { end(SIGTERM); }
  // SIGKILL: a crash.
  void kill() { end(SIGKILL); }

  // redis-cli against this server (authenticated as `default`, over TLS if need be); throws with
  // its output if it exits non-zero. The output of a reply is redis-cli's raw form (--no-raw off).
  std::string cli(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_)};
    if (!options_.password.empty()) {
      argv.insert(argv.end(), {"-a", options_.password, "--no-auth-warning"});
    }
    if (options_.tls) argv.insert(argv.end(), {"--tls", "--cacert", ca_file()});
    argv.insert(argv.end(), args.begin(), args.end());
    auto [status, out] = run_program(argv);
    if (status != 0) throw std::runtime_error("redis-cli failed (" + std::to_string(status) + "): " + out);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
  }

  std::string log_tail(std::size_t max_bytes = 4000) const {
    std::string text;
    for (const char* file : {"console.out", "redis.log"}) {
      std::ifstream in(dir_ / file);
      text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
  }

 private:
  static std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("redis: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("redis: cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  // Two CAs and a server certificate for 127.0.0.1 and localhost signed by the first (ca.crt,
  // other-ca.crt, server.crt/key, and more), made by the script every TLS suite shares.
  void make_certificates() const {
    auto [status, out] = run_program({std::string(REGISTRAR_SOURCE_DIR) + "/scripts/make-test-certs.sh", dir_.string()});
    if (status != 0) throw std::runtime_error("redis: scripts/make-test-certs.sh failed: " + out);
  }

  // A redis.conf argument in double quotes (a password may hold spaces or quotes).
  static std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    return out + "\"";
  }

  void write_config() const {
    std::ofstream conf(dir_ / "redis.conf");
    conf << "bind 127.0.0.1\n"
         << "dir " << dir_.string() << "\n"
         << "logfile " << (dir_ / "redis.log").string() << "\n"
         << "save \"\"\n"
         << "appendonly no\n"
         << "daemonize no\n"
         << "enable-debug-command local\n";
    if (options_.tls) {
      conf << "port 0\n"
           << "tls-port " << port_ << "\n"
           << "tls-cert-file " << (dir_ / "server.crt").string() << "\n"
           << "tls-key-file " << (dir_ / "server.key").string() << "\n"
           << "tls-ca-cert-file " << ca_file() << "\n"
           << "tls-auth-clients no\n";
    } else {
      conf << "port " << port_ << "\n";
    }
    if (!options_.password.empty()) conf << "requirepass " << quoted(options_.password) << "\n";
    if (!options_.acl_user.empty())
      conf << "user " << quoted(options_.acl_user) << " on " << quoted(">" + options_.acl_password) << " ~* &* +@all\n";
  }

  pid_t spawn() {
    std::string server = kServer;
    std::string conf = (dir_ / "redis.conf").string();
    char* argv[] = {server.data(), conf.data(), nullptr};
    const std::string out = (dir_ / "console.out").string();
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("redis: fork failed");
    if (pid == 0) {
      int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::execv(argv[0], argv);
      ::_exit(127);
    }
    return pid;
  }

  // Plain: a PING on a fresh connection answered (+PONG, or -NOAUTH: up, and wants a password).
  // TLS: redis-cli does the handshake.
  bool answers_ping() const {
    if (options_.tls) {
      std::vector<std::string> argv = {"redis-cli", "-h", "127.0.0.1", "-p", std::to_string(port_),
                                       "--tls", "--cacert", ca_file(), "PING"};
      auto [status, out] = run_program(argv);
      return status == 0 && (out.find("PONG") != std::string::npos || out.find("NOAUTH") != std::string::npos);
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
        ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
      char buf[64];
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      std::string_view reply(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
      ok = reply.starts_with("+PONG") || reply.starts_with("-NOAUTH");
    }
    ::close(fd);
    return ok;
  }

  void end(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

  void teardown() noexcept {
    try {
      kill();
    } catch (...) {
    }
    if (!dir_.empty() && std::getenv("REGISTRAR_KEEP_REDIS") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  RedisServerOptions options_;
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// One private server per test process, started on first use (nullptr when redis-server is not
// installed); tests keep apart by key prefix.
inline RedisServer* shared_redis() {
  static std::mutex m;
  static std::unique_ptr<RedisServer> server;
  std::lock_guard lock(m);
  if (!server) {
    if (!RedisServer::available()) return nullptr;
    server = std::make_unique<RedisServer>();
  }
  return server.get();
}

}  // namespace registrar::testing
