#pragma once
#include <iterator>
// A private MariaDB server for tests: its own data directory, port and socket, started from the
// installed `mariadbd` (Debian package mariadb-server) and torn down with the object.
//
//   MariaDbServer server;                 // install a data dir, start, create a user + database
//   server.host(), port(), user(), password(), database()  → what a client needs
//   server.kill(); server.start();        // fault tests: SIGKILL, then restart on the same data
//   server.pause(); server.resume();      // SIGSTOP / SIGCONT (a hung server)
//
// Readiness is an event, not a delay: after starting, the harness polls a connection over the
// socket at a short interval until it succeeds (or the process exits, or a deadline passes).
// The server runs as a child of the test process and gets SIGKILL if the thread that started it
// exits (PR_SET_PDEATHSIG), so a crashed test does not leave servers behind: start it from a
// long-lived thread (gtest's main thread). Header-only; needs libmariadb and POSIX.
#include <arpa/inet.h>
#include <fcntl.h>
#include <mysql.h>
#include <netinet/in.h>
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
#include <cstdio>
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
#include <vector>

namespace registrar::testing {

// A root session over the server's Unix socket, for test setup and fault injection. SQL text is
// the test's own (no user input), so the text protocol is fine here.
class MariaDbAdminSession {
 public:
  explicit MariaDbAdminSession(const std::string& socket_path, const std::string& database = {}) {
    mysql_ = mysql_init(nullptr);
    unsigned timeout = 5;
    mysql_options(mysql_, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(mysql_, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    if (mysql_real_connect(mysql_, "localhost", "root", "", database.empty() ? nullptr : database.c_str(), 0,
                           socket_path.c_str(), 0) == nullptr) {
      std::string error = mysql_error(mysql_);
      mysql_close(mysql_);
      throw std::runtime_error("mariadb admin: cannot connect: " + error);
    }
  }
  ~MariaDbAdminSession() { mysql_close(mysql_); }
  MariaDbAdminSession(const MariaDbAdminSession&) = delete;
  MariaDbAdminSession& operator=(const MariaDbAdminSession&) = delete;

  // Runs one statement, discarding any result.
  void exec(std::string_view sql) {
    if (mysql_real_query(mysql_, sql.data(), static_cast<unsigned long>(sql.size())) != 0)
      throw std::runtime_error("mariadb admin: " + std::string(mysql_error(mysql_)) + " in: " + std::string(sql));
    if (MYSQL_RES* r = mysql_store_result(mysql_)) mysql_free_result(r);
  }

  // The first column of the first row as text (nullopt: no row or NULL).
  std::optional<std::string> scalar(std::string_view sql) {
    if (mysql_real_query(mysql_, sql.data(), static_cast<unsigned long>(sql.size())) != 0)
      throw std::runtime_error("mariadb admin: " + std::string(mysql_error(mysql_)) + " in: " + std::string(sql));
    MYSQL_RES* r = mysql_store_result(mysql_);
    if (r == nullptr) return std::nullopt;
    std::optional<std::string> out;
    if (MYSQL_ROW row = mysql_fetch_row(r); row != nullptr && row[0] != nullptr)
      out = std::string(row[0], mysql_fetch_lengths(r)[0]);
    mysql_free_result(r);
    return out;
  }

  std::int64_t count(std::string_view sql) {
    auto v = scalar(sql);
    return v ? std::stoll(*v) : 0;
  }

  // Sends a statement without waiting for its result (for a statement that will block), then
  // collects the outcome with read_result(): the error number, 0 on success.
  void send(std::string_view sql) {
    if (mysql_send_query(mysql_, sql.data(), static_cast<unsigned long>(sql.size())) != 0)
      throw std::runtime_error("mariadb admin: " + std::string(mysql_error(mysql_)));
  }
  unsigned read_result() {
    if (mysql_read_query_result(mysql_) != 0) return mysql_errno(mysql_);
    if (MYSQL_RES* r = mysql_store_result(mysql_)) mysql_free_result(r);
    return 0;
  }

 private:
  MYSQL* mysql_ = nullptr;
};

class MariaDbServer {
 public:
  // The server binaries, or empty if MariaDB is not installed (tests then skip).
  static std::string find_binary(std::initializer_list<const char*> names) {
    std::vector<std::string> dirs;
    if (const char* path = std::getenv("PATH")) {
      std::stringstream ss(path);
      for (std::string d; std::getline(ss, d, ':');)
        if (!d.empty()) dirs.push_back(d);
    }
    for (const char* d : {"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/usr/libexec"}) dirs.push_back(d);
    for (const char* name : names)
      for (const auto& d : dirs) {
        auto p = std::filesystem::path(d) / name;
        if (::access(p.c_str(), X_OK) == 0) return p.string();
      }
    return {};
  }
  static std::string server_binary() { return find_binary({"mariadbd", "mysqld"}); }
  static std::string install_binary() { return find_binary({"mariadb-install-db", "mysql_install_db"}); }
  static bool available() { return !server_binary().empty() && !install_binary().empty(); }

  // Installs a fresh data directory, starts the server on a free port and creates `database`
  // and a user with a password and all privileges (it is a throwaway server).
  // `extra_args` go to every start of mariadbd (e.g. the TLS options: --ssl-cert, --ssl-key,
  // --ssl-ca, --require-secure-transport=ON; the Unix socket the harness uses stays allowed).
  explicit MariaDbServer(std::string database = "registrar", std::vector<std::string> extra_args = {})
      : database_(std::move(database)), extra_args_(std::move(extra_args)) {
    mariadbd_ = server_binary();
    install_db_ = install_binary();
    if (mariadbd_.empty() || install_db_.empty())
      throw std::runtime_error("mariadb: mariadbd / mariadb-install-db not found (apt-get install mariadb-server)");
    dir_ = make_temp_dir();
    try {
      install();
      // A free port can be taken by someone else between our probe and the server's bind: try again.
      for (int attempt = 0;; ++attempt) {
        port_ = free_port();
        try {
          start();
          break;
        } catch (const std::exception&) {
          if (attempt >= 4 || !log_contains("Address already in use")) throw;
        }
      }
      MariaDbAdminSession admin(socket_path());
      admin.exec("CREATE USER '" + user_ + "'@'%' IDENTIFIED BY '" + password_ + "'");
      admin.exec("GRANT ALL PRIVILEGES ON *.* TO '" + user_ + "'@'%'");
      admin.exec("CREATE DATABASE `" + database_ + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    } catch (...) {
      teardown();
      throw;
    }
  }

  ~MariaDbServer() { teardown(); }
  MariaDbServer(const MariaDbServer&) = delete;
  MariaDbServer& operator=(const MariaDbServer&) = delete;

  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }
  const std::string& user() const { return user_; }
  const std::string& password() const { return password_; }
  const std::string& database() const { return database_; }
  std::string socket_path() const { return (dir_ / "mysqld.sock").string(); }
  const std::filesystem::path& dir() const { return dir_; }
  std::string url() const {
    return "mysql://" + user_ + ":" + password_ + "@" + host_ + ":" + std::to_string(port_) + "/" + database_;
  }
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // Starts the server on the existing data directory and waits until it accepts connections.
  void start() {
    if (pid_ > 0) return;
    std::filesystem::remove(socket_path());
    std::vector<std::string> args = {mariadbd_, "--no-defaults"};
    for (auto& a : common_args()) args.push_back(a);
    for (auto& a : std::initializer_list<std::string>{
             "--port=" + std::to_string(port_),
             "--socket=" + socket_path(),
             "--pid-file=" + (dir_ / "mysqld.pid").string(),
             "--log-error=" + (dir_ / "error.log").string(),
             "--bind-address=127.0.0.1",
             "--skip-networking=0",
             "--skip-log-bin",
             "--skip-name-resolve",
             "--innodb-flush-log-at-trx-commit=2",  // survives kill -9 (the OS keeps the writes)
             "--innodb-doublewrite=0",
             "--performance-schema=OFF",
             "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_unicode_ci",
             "--max-connections=500",
         })
      args.push_back(a);
    for (const auto& a : extra_args_) args.push_back(a);
    pid_ = spawn(args, dir_ / "mariadbd.out");
    wait_ready();
  }

  // Graceful shutdown: SIGTERM, wait up to `grace`, then SIGKILL.
  void stop(std::chrono::seconds grace = std::chrono::seconds(30)) {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // in case it was paused
    ::kill(pid_, SIGTERM);
    if (!wait_exit(std::chrono::steady_clock::now() + grace)) {
      ::kill(pid_, SIGKILL);
      wait_exit(std::chrono::steady_clock::time_point::max());
    }
  }

  // Crash: SIGKILL, and reap the process.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::steady_clock::time_point::max());
  }

  // A hung server: the process stays, connections stay open, nothing answers.
  // SIGSTOP is delivered asynchronously: on a busy machine a query could still be answered after
  // kill() returned. Waits until the kernel reports every thread stopped (state T), up to 5 s.
  void pause() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGSTOP);
    auto stopped = [](const std::filesystem::path& stat_file) {
      std::ifstream stat(stat_file);
      std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      auto close = text.rfind(')');  // the state follows the command name in parentheses
      return text.empty() || (close != std::string::npos && close + 2 < text.size() &&
                              (text[close + 2] == 'T' || text[close + 2] == 't'));
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      std::error_code ec;
      for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec))
        all = all && stopped(task.path() / "stat");
      if (all) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  void resume() {
    if (pid_ > 0) ::kill(pid_, SIGCONT);
  }

  std::unique_ptr<MariaDbAdminSession> admin(const std::string& database = {}) const {
    return std::make_unique<MariaDbAdminSession>(socket_path(), database);
  }

  // A new, empty database (name returned) on this server.
  std::string create_database(std::string_view prefix = "t") {
    static std::atomic<int> counter{0};
    std::string name = std::string(prefix) + "_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    admin()->exec("CREATE DATABASE `" + name + "` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci");
    return name;
  }
  void drop_database(const std::string& name) { admin()->exec("DROP DATABASE IF EXISTS `" + name + "`"); }

  // The last lines of the server's error log (for failure messages).
  std::string log_tail(std::size_t max_bytes = 4000) const {
    std::string text;
    for (const char* f : {"install.log", "error.log", "mariadbd.out"}) {
      std::ifstream in(dir_ / f);
      std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (!content.empty()) text += std::string("--- ") + f + "\n" + content;
    }
    return text.size() > max_bytes ? text.substr(text.size() - max_bytes) : text;
  }

 private:
  // Options shared by mariadb-install-db (which passes them on to its bootstrap server) and the
  // server itself: a small buffer pool and redo log (the server starts in a fraction of a second).
  static std::vector<std::string> size_args() {
    return {"--innodb-buffer-pool-size=32M", "--innodb-log-file-size=16M", "--innodb-log-buffer-size=4M"};
  }

  std::vector<std::string> common_args() const {
    std::vector<std::string> a = {
        "--datadir=" + (dir_ / "data").string(),
        "--tmpdir=" + (dir_ / "tmp").string(),
    };
    for (auto& s : size_args()) a.push_back(s);
    if (::geteuid() == 0) a.push_back("--user=root");
    return a;
  }

  static std::filesystem::path make_temp_dir() {
    // Unix socket paths are limited to 108 bytes: stay in a short directory.
    std::filesystem::path base = std::filesystem::temp_directory_path();
    if (base.string().size() > 40) base = "/tmp";
    std::string tmpl = (base / "registrar-mariadb-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mariadb: mkdtemp failed");
    std::filesystem::path dir = tmpl;
    std::filesystem::create_directories(dir / "tmp");
    return dir;
  }

  static std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("mariadb: socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("mariadb: cannot find a free port");
    }
    ::close(fd);
    return ntohs(addr.sin_port);
  }

  static pid_t spawn(const std::vector<std::string>& args, const std::filesystem::path& output) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("mariadb: fork failed");
    if (pid == 0) {
      // Child: only async-signal-safe calls until exec.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int fd = ::open(output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::setpgid(0, 0);  // a Ctrl-C in the terminal goes to the test, which tears the server down
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    return pid;
  }

  // mariadb-install-db takes seconds (it bootstraps the system tables with many syncs); copying
  // an installed data directory takes a fraction of that (MariaDB's own test runner does the
  // same). The first server installs and publishes a template (atomically, by rename) next to its
  // directory, keyed by the server binary and the install options; later ones copy it.
  // REGISTRAR_MARIADB_NO_TEMPLATE=1 always installs afresh.
  void install() {
    bool use_template = std::getenv("REGISTRAR_MARIADB_NO_TEMPLATE") == nullptr;
    auto templ = template_dir();
    std::error_code ec;
    if (use_template && std::filesystem::exists(templ / "ready", ec)) {
      std::filesystem::copy(templ / "data", dir_ / "data", std::filesystem::copy_options::recursive, ec);
      if (!ec) return;
      std::filesystem::remove_all(dir_ / "data", ec);
    }
    run_install_db();
    if (!use_template) return;
    auto staging = templ;
    staging += ".tmp-" + std::to_string(::getpid());
    std::filesystem::remove_all(staging, ec);
    std::filesystem::create_directories(staging, ec);
    if (!ec) std::filesystem::copy(dir_ / "data", staging / "data", std::filesystem::copy_options::recursive, ec);
    if (!ec) std::ofstream(staging / "ready") << "ok\n";
    if (!ec) std::filesystem::rename(staging, templ, ec);  // fails if another process published first
    if (ec) std::filesystem::remove_all(staging, ec);
  }

  std::filesystem::path template_dir() const {
    std::error_code ec;
    auto size = std::filesystem::file_size(mariadbd_, ec);
    auto mtime = std::filesystem::last_write_time(mariadbd_, ec).time_since_epoch().count();
    std::string key = mariadbd_ + "|" + std::to_string(size) + "|" + std::to_string(mtime) + "|" +
                      std::to_string(::geteuid());
    for (auto& a : size_args()) key += "|" + a;
    for (auto& a : install_args()) key += "|" + a;
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    return dir_.parent_path() / ("registrar-mariadb-template-" + std::string(hex));
  }

  // Install options besides the per-server directories and sizes of common_args().
  // --auth-root-authentication-method=normal: root@localhost without a password (reachable only
  // through this server's own socket).
  static std::vector<std::string> install_args() {
    return {"--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"};
  }

  void run_install_db() {
    std::vector<std::string> args = {install_db_, "--no-defaults"};
    for (auto& a : common_args()) args.push_back(a);
    for (auto& a : install_args()) args.push_back(a);
    std::error_code ec;
    std::filesystem::remove_all(dir_ / "data", ec);
    pid_t pid = spawn(args, dir_ / "install.log");
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      throw std::runtime_error("mariadb: mariadb-install-db failed:\n" + log_tail());
  }

  void wait_ready() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    for (;;) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("mariadb: mariadbd exited during startup:\n" + log_tail());
      }
      if (can_connect()) return;
      if (std::chrono::steady_clock::now() > deadline) {
        kill();
        throw std::runtime_error("mariadb: mariadbd did not accept connections within 60 s:\n" + log_tail());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  bool can_connect() const {
    if (!std::filesystem::exists(socket_path())) return false;
    MYSQL* m = mysql_init(nullptr);
    unsigned timeout = 1;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    bool ok = mysql_real_connect(m, "localhost", "root", "", nullptr, 0, socket_path().c_str(), 0) != nullptr;
    mysql_close(m);
    return ok;
  }

  // Waits for the server process to exit until `deadline`; true if it did (and was reaped).
  bool wait_exit(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      int status = 0;
      pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) {
        pid_ = -1;
        return true;
      }
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  bool log_contains(std::string_view needle) const { return log_tail(1 << 20).find(needle) != std::string::npos; }

  void teardown() noexcept {
    try {
      kill();  // the data is thrown away: no need for a clean shutdown
    } catch (...) {
    }
    if (!dir_.empty() && std::getenv("REGISTRAR_KEEP_MARIADB") == nullptr) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  std::string mariadbd_, install_db_;
  std::filesystem::path dir_;
  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 0;
  std::string user_ = "registrar";
  std::string password_ = "registrar-test-password";
  std::string database_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
};

// One server per test process, started on first use (so test processes that never touch MySQL do
// not pay for it) and stopped by shutdown_shared_mariadb() (a gtest Environment's TearDown) or at
// exit. Returns nullptr if MariaDB is not installed.
inline std::unique_ptr<MariaDbServer>& shared_mariadb_slot() {
  static std::unique_ptr<MariaDbServer> server;
  return server;
}
inline std::mutex& shared_mariadb_mutex() {
  static std::mutex m;
  return m;
}
inline MariaDbServer* shared_mariadb() {
  std::lock_guard lock(shared_mariadb_mutex());
  auto& slot = shared_mariadb_slot();
  if (!slot) {
    if (!MariaDbServer::available()) return nullptr;
    slot = std::make_unique<MariaDbServer>();
  }
  return slot.get();
}
inline void shutdown_shared_mariadb() {
  std::lock_guard lock(shared_mariadb_mutex());
  shared_mariadb_slot().reset();
}

}  // namespace registrar::testing
