#include "adapters/sqlite/database.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

#include "ports/errors.hpp"

namespace registrar::adapters::sqlite {

namespace {

constexpr std::string_view kJournalModeWal = "PRAGMA journal_mode = WAL";

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool starts_with_icase(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(s[i])) != prefix[i]) return false;
  return true;
}

// Creates the database file with mode 0600 if it does not exist yet: it holds password hashes and
// e-mail addresses. SQLite would create it with 0644 (minus umask); it creates the -wal and -shm
// files with the same mode as the database file, so they inherit 0600 too.
void create_private_file(const std::filesystem::path& path) {
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) throw ports::BackendUnavailable("sqlite: cannot create the database directory: " + ec.message());
  }
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    throw ports::BackendUnavailable("sqlite: cannot create the database file: " +
                                    std::system_category().message(errno));
  }
  ::close(fd);
}

}  // namespace

std::filesystem::path sqlite_path_from_url(std::string_view url) {
  std::string_view rest = url;
  if (starts_with_icase(url, "sqlite://")) {
    rest = url.substr(9);
  } else if (starts_with_icase(url, "sqlite:")) {
    rest = url.substr(7);
  } else if (auto colon = url.find("://"); colon != std::string_view::npos) {
    throw std::invalid_argument("not an sqlite:// URL");
  }
  if (rest.find('?') != std::string_view::npos || rest.find('#') != std::string_view::npos)
    throw std::invalid_argument("sqlite URL: query strings and fragments are not supported");
  std::string decoded;
  decoded.reserve(rest.size());
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '%') {
      int hi = i + 2 < rest.size() ? hex_value(rest[i + 1]) : -1;
      int lo = i + 2 < rest.size() ? hex_value(rest[i + 2]) : -1;
      if (hi < 0 || lo < 0) throw std::invalid_argument("sqlite URL: bad %-escape");
      decoded.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      decoded.push_back(rest[i]);
    }
  }
  if (decoded.empty()) throw std::invalid_argument("sqlite URL: empty path");
  if (decoded == ":memory:" || decoded.find('\0') != std::string::npos)
    throw std::invalid_argument("sqlite URL: needs a file path");
  return std::filesystem::path(decoded);
}

SqliteDatabase::SqliteDatabase(std::filesystem::path path, SqliteOptions options)
    : path_(std::move(path)), options_(options) {
  if (options_.max_readers == 0) options_.max_readers = 1;
  create_private_file(path_);
  writer_ = std::make_unique<Connection>(path_, Connection::Mode::writer, options_.busy_timeout);
  // WAL is a property of the file (persistent), set once through the writer: readers then run
  // concurrently with the writer instead of being blocked by it.
  auto q = writer_->query(kJournalModeWal);
  if (!q.step() || q.text(0) != "wal")
    throw SqliteError(SQLITE_ERROR, "sqlite: could not switch the database to WAL mode");
}

SqliteDatabase::~SqliteDatabase() = default;

std::unique_ptr<Connection> SqliteDatabase::acquire_reader() {
  std::unique_lock lock(readers_mutex_);
  reader_returned_.wait(lock, [&] { return !idle_readers_.empty() || open_readers_ < options_.max_readers; });
  if (!idle_readers_.empty()) {
    auto c = std::move(idle_readers_.back());
    idle_readers_.pop_back();
    return c;
  }
  ++open_readers_;
  lock.unlock();
  try {
    return std::make_unique<Connection>(path_, Connection::Mode::reader, options_.busy_timeout);
  } catch (...) {
    lock.lock();
    --open_readers_;
    reader_returned_.notify_one();
    throw;
  }
}

void SqliteDatabase::release_reader(std::unique_ptr<Connection> connection) noexcept {
  if (!connection) return;
  connection->rollback_quietly();  // a reader never leaves a transaction open for the next user
  {
    std::lock_guard lock(readers_mutex_);
    idle_readers_.push_back(std::move(connection));
  }
  reader_returned_.notify_one();
}

}  // namespace registrar::adapters::sqlite
