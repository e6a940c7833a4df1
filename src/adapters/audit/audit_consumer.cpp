#include "adapters/audit/audit_consumer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <vector>

#include "ports/errors.hpp"

namespace registrar::adapters::audit {

namespace json = boost::json;

namespace {

std::string errno_text(int err) { return std::system_category().message(err); }

off_t file_size(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw ports::BackendUnavailable("audit log: fstat failed: " + errno_text(errno));
  return st.st_size;
}

// Position of the last '\n' in [0, end), reading backwards in chunks; nullopt if there is none.
std::optional<off_t> last_newline_before(int fd, off_t end) {
  constexpr off_t kChunk = 64 * 1024;
  std::vector<char> buf(kChunk);
  while (end > 0) {
    off_t start = std::max<off_t>(0, end - kChunk);
    auto want = static_cast<std::size_t>(end - start);
    std::size_t got = 0;
    while (got < want) {
      ssize_t n = ::pread(fd, buf.data() + got, want - got, start + static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw std::system_error(errno, std::system_category(), "audit log: read failed");
      got += static_cast<std::size_t>(n);
    }
    for (auto i = static_cast<off_t>(want); i-- > 0;)
      if (buf[static_cast<std::size_t>(i)] == '\n') return start + i;
    end = start;
  }
  return std::nullopt;
}

std::string read_range(int fd, off_t start, off_t end) {
  std::string s(static_cast<std::size_t>(end - start), '\0');
  std::size_t got = 0;
  while (got < s.size()) {
    ssize_t n = ::pread(fd, s.data() + got, s.size() - got, start + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::system_error(errno, std::system_category(), "audit log: read failed");
    got += static_cast<std::size_t>(n);
  }
  return s;
}

}  // namespace

std::string audit_line(const domain::EventEnvelope& event, domain::Timestamp received_at) {
  json::object line;
  line["eventId"] = event.id;
  line["type"] = event.type;
  line["occurredAt"] = domain::to_iso8601(event.occurred_at);
  line["receivedAt"] = domain::to_iso8601(received_at);
  std::error_code ec;
  json::value payload = json::parse(event.payload, ec);
  if (ec) payload = json::string(event.payload);
  line["payload"] = std::move(payload);
  // JSON escapes control characters inside strings, so the line has no raw newline.
  return json::serialize(line);
}

AuditConsumer::AuditConsumer(std::filesystem::path file, ports::ProcessedEvents& processed, ports::Clock& clock)
    : path_(std::move(file)), processed_(processed), clock_(clock) {
  if (path_.has_parent_path()) std::filesystem::create_directories(path_.parent_path());
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::system_error(errno, std::system_category(), "audit log: cannot open " + path_.string());
  try {
    recover();
  } catch (...) {
    ::close(fd_);
    throw;
  }
}

AuditConsumer::~AuditConsumer() {
  if (fd_ >= 0) ::close(fd_);
}

void AuditConsumer::recover() {
  off_t size = file_size(fd_);
  if (size == 0) return;

  // 1. A partial last line: the crash hit before its write()+fdatasync() completed, so its id was
  //    never recorded and the event will come again. Cut it off.
  auto last_nl = last_newline_before(fd_, size);
  if (!last_nl || *last_nl != size - 1) {
    off_t keep = last_nl ? *last_nl + 1 : 0;
    if (::ftruncate(fd_, keep) != 0 || ::fdatasync(fd_) != 0)
      throw std::system_error(errno, std::system_category(), "audit log: cannot truncate a partial line");
    spdlog::warn("audit log: removed an incomplete last line ({} bytes) left by an interrupted write",
                 static_cast<long long>(size - keep));
    size = keep;
    if (size == 0) return;
  }

  // 2. The last complete line was durably written, but the process may have died before recording
  //    its id. Record it now, so the redelivery of that event is skipped, not written twice.
  auto prev_nl = last_newline_before(fd_, size - 1);
  off_t start = prev_nl ? *prev_nl + 1 : 0;
  std::string text = read_range(fd_, start, size - 1);
  std::error_code ec;
  json::value line = json::parse(text, ec);
  const json::string* id = nullptr;
  if (!ec && line.is_object())
    if (auto* v = line.as_object().if_contains("eventId")) id = v->if_string();
  if (id == nullptr) {
    spdlog::warn("audit log: the last line is not an audit record; left as is");
    return;
  }
  std::string event_id(id->data(), id->size());
  if (processed_.try_mark_processed(kName, event_id))
    spdlog::info("audit log: recorded event {} written just before a crash", event_id);
}

void AuditConsumer::append_durably(const std::string& line) {
  off_t before = file_size(fd_);
  auto undo = [&](const char* what, int err) {
    // Never leave a fragment behind a later line: cut the file back to where it was.
    if (::ftruncate(fd_, before) == 0) ::fdatasync(fd_);
    throw ports::BackendUnavailable(std::string("audit log: ") + what + ": " + errno_text(err));
  };
  // One write() of the whole line (O_APPEND): a reader or a crash sees the line whole or partial,
  // never interleaved. A short write (disk full) is undone rather than continued.
  ssize_t n;
  do {
    n = ::write(fd_, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  if (n < 0) undo("write failed", errno);
  if (static_cast<std::size_t>(n) != line.size()) undo("short write", ENOSPC);
  if (::fdatasync(fd_) != 0) undo("fdatasync failed", errno);
}

void AuditConsumer::handle(const domain::EventEnvelope& event) {
  std::lock_guard lock(mutex_);
  // A line written earlier whose id could not be recorded: record it before anything else.
  if (unrecorded_) {
    processed_.try_mark_processed(kName, *unrecorded_);
    unrecorded_.reset();
  }
  if (processed_.is_processed(kName, event.id)) return;  // redelivery: already in the file

  append_durably(audit_line(event, clock_.now()) + '\n');
  unrecorded_ = event.id;
  processed_.try_mark_processed(kName, event.id);
  unrecorded_.reset();
}

}  // namespace registrar::adapters::audit
