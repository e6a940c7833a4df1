#include "adapters/sqlite/database.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include "ports/errors.hpp"

namespace registrar::adapters::sqlite {

namespace {

constexpr std::string_view kJournalModeWal = "PRAGMA journal_mode = WAL";

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

SqliteDatabase::SqliteDatabase(std::filesystem::path path, SqliteOptions options)
    : path_(std::move(path)), options_(options) {
  if (options_.max_readers == 0) options_.max_readers = 1;
  create_private_file(path_);
  writer_ = std::make_unique<Connection>(path_, Connection::Mode::writer, options_.busy_timeout);
  // Before anything writes the file's first page (WAL does): a new file then takes incremental
  // auto-vacuum at once (the retention sweep gives freed pages back with it). On an existing file
  // this changes nothing; ensure_incremental_vacuum() (migrations.hpp) converts one.
  writer_->exec("PRAGMA auto_vacuum = INCREMENTAL");
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
