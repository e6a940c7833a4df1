#include "adapters/consumers/audit_consumer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <system_error>
#include <vector>

#include "ports/errors.hpp"

namespace registrar::adapters::consumers {

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
  constexpr off_t kChunk = 8 * 1024;  // a few audit lines: recovery looks at the last lines only
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

// The eventId of an audit line, or nullopt if the line is not an audit record.
std::optional<std::string> event_id_of(const std::string& text) {
  std::error_code ec;
  json::value line = json::parse(text, ec);
  if (ec || !line.is_object()) return std::nullopt;
  const auto* v = line.as_object().if_contains("eventId");
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string(v->get_string().data(), v->get_string().size());
}

// True if `v` holds a number Boost.JSON read as ±infinity (a literal beyond double's range such as
// 1e400): it serialises that as `Infinity`, which is not JSON.
bool has_non_finite_number(const json::value& v) {
  switch (v.kind()) {
    case json::kind::double_: return !std::isfinite(v.get_double());
    case json::kind::array:
      for (const auto& item : v.get_array())
        if (has_non_finite_number(item)) return true;
      return false;
    case json::kind::object:
      for (const auto& member : v.get_object())
        if (has_non_finite_number(member.value())) return true;
      return false;
    default: return false;
  }
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
  // Kept as text if it is not JSON, or holds a number the line could not carry as JSON (found by
  // fuzz/fuzz_amqp_message: `Infinity` in a line stopped the crash recovery that re-reads it).
  if (ec || has_non_finite_number(payload)) payload = json::string(event.payload);
  line["payload"] = std::move(payload);
  // JSON escapes control characters inside strings, so the line has no raw newline.
  return json::serialize(line);
}

std::filesystem::path rotated_file(const std::filesystem::path& file, unsigned n) {
  auto p = file;
  p += "." + std::to_string(n);
  return p;
}

AuditConsumer::AuditConsumer(std::filesystem::path file, ports::ProcessedEvents& processed, ports::Clock& clock,
                             logging::Logger log, AuditRotation rotation)
    : path_(std::move(file)), processed_(processed), clock_(clock), log_(std::move(log)), rotation_(std::move(rotation)) {
  rotation_.keep = std::max(rotation_.keep, 1u);
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
    log_.warn("audit log: removed an incomplete last line left by an interrupted write",
              {{"file", path_.string()}, {"bytes", static_cast<std::int64_t>(size - keep)}});
    size = keep;
    if (size == 0) return;
  }

  // 2. The last batch of complete lines was durably written, but the process may have died before
  //    recording their ids. Walking back from the end, collect the ids not recorded yet; the first
  //    recorded one marks the end of that batch (batches are recorded whole, in file order).
  // At most one batch (kMaxBatch lines) can be unrecorded, so the walk never reads further back.
  std::vector<std::string> unrecorded;
  off_t end = size - 1;  // the newline ending the line being looked at
  while (end >= 0 && unrecorded.size() < kMaxBatch) {
    auto prev_nl = last_newline_before(fd_, end);
    off_t start = prev_nl ? *prev_nl + 1 : 0;
    auto id = event_id_of(read_range(fd_, start, end));
    if (!id) {
      log_.warn("audit log: a line that is not an audit record ends the file's recovery scan; left as is",
                {{"file", path_.string()}});
      break;
    }
    if (processed_.is_processed(kName, *id)) break;
    unrecorded.push_back(std::move(*id));
    if (!prev_nl) break;
    end = *prev_nl;
  }
  if (unrecorded.empty()) return;
  std::reverse(unrecorded.begin(), unrecorded.end());
  processed_.mark_all_processed(kName, unrecorded);
  log_.info("audit log: recorded events written just before a crash",
            {{"file", path_.string()}, {"events", unrecorded.size()}, {"lastEventId", unrecorded.back()}});
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

namespace {

void sync_directory(const std::filesystem::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throw ports::BackendUnavailable("audit log: cannot open its directory: " + errno_text(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw ports::BackendUnavailable("audit log: cannot sync its directory: " + errno_text(err));
}

void rename_or_throw(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0)
    throw ports::BackendUnavailable("audit log: cannot rename " + from.filename().string() + ": " + errno_text(errno));
}

}  // namespace

void AuditConsumer::rotate() {
  auto fault = [&](std::string_view step) {
    if (rotation_.fault_point) rotation_.fault_point(step);
  };
  const auto dir = path_.parent_path();
  // Make room for .1: shift .1 … .(gap-1) up by one into the first free number, or drop the oldest
  // (.keep) when there is no gap. Shifting only up to a gap means that a rotation cut short (a
  // crash between two renames) costs no further file at the next one.
  fault("shift");
  unsigned gap = 1;
  while (gap <= rotation_.keep && std::filesystem::exists(rotated_file(path_, gap))) ++gap;
  if (gap > rotation_.keep) {
    gap = rotation_.keep;
    if (::unlink(rotated_file(path_, gap).c_str()) != 0 && errno != ENOENT)
      throw ports::BackendUnavailable("audit log: cannot remove the oldest rotated file: " + errno_text(errno));
  }
  for (unsigned n = gap; n > 1; --n) rename_or_throw(rotated_file(path_, n - 1), rotated_file(path_, n));
  if (gap > 1 || rotation_.keep == gap) sync_directory(dir);

  fault("rename");
  rename_or_throw(path_, rotated_file(path_, 1));
  fault("reopen");
  int fd = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    int err = errno;
    ::rename(rotated_file(path_, 1).c_str(), path_.c_str());  // keep writing where we were
    throw ports::BackendUnavailable("audit log: cannot start a new file: " + errno_text(err));
  }
  ::close(fd_);
  fd_ = fd;
  sync_directory(dir);
  log_.info("audit log: rotated", {{"file", path_.string()}, {"keep", static_cast<std::int64_t>(rotation_.keep)}});
}

void AuditConsumer::handle(const domain::EventEnvelope& event) { handle_batch({&event, 1}); }

bool AuditConsumer::handle_batch(std::span<const domain::EventEnvelope> events) {
  // Recovery walks back over at most one batch: larger batches are written in slices of kMaxBatch.
  while (events.size() > kMaxBatch) {
    handle_batch(events.first(kMaxBatch));
    events = events.subspan(kMaxBatch);
  }
  std::lock_guard lock(mutex_);
  // Lines written earlier whose ids could not be recorded: record them before anything else.
  if (!unrecorded_.empty()) {
    processed_.mark_all_processed(kName, unrecorded_);
    unrecorded_.clear();
  }

  std::vector<std::string> batch_ids;
  batch_ids.reserve(events.size());
  for (const auto& event : events) batch_ids.push_back(event.id);
  const auto recorded = processed_.processed_among(kName, batch_ids);  // one query for the batch

  std::vector<std::string> ids;  // those to write, each once
  std::string lines;
  const auto received_at = clock_.now();
  for (const auto& event : events) {
    if (std::find(ids.begin(), ids.end(), event.id) != ids.end()) continue;  // twice in this batch
    if (recorded.contains(event.id)) continue;                               // redelivery: already in the file
    lines += audit_line(event, received_at);
    lines += '\n';
    ids.push_back(event.id);
  }
  if (ids.empty()) return true;

  // Every line of the file is recorded at this point (unrecorded_ is empty): the one moment a
  // rotation may happen (see AuditRotation).
  if (rotation_.max_bytes > 0) {
    auto size = static_cast<std::uint64_t>(file_size(fd_));
    if (size > 0 && size + lines.size() > rotation_.max_bytes) rotate();
  }
  // One write and one fdatasync for the batch, then one transaction recording all its ids.
  append_durably(lines);
  unrecorded_ = std::move(ids);
  processed_.mark_all_processed(kName, unrecorded_);
  unrecorded_.clear();
  return true;
}

}  // namespace registrar::adapters::consumers
