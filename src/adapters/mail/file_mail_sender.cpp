#include "adapters/mail/file_mail_sender.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <span>
#include <system_error>
#include <unordered_set>
#include <vector>

#include "adapters/sodium/hex.hpp"
#include "adapters/sodium/sodium.hpp"
#include "ports/errors.hpp"

namespace registrar::adapters::mail {

namespace json = boost::json;

namespace {

[[noreturn]] void fail(const std::string& what, int err) {
  throw ports::BackendUnavailable("mail spool: " + what + ": " + std::system_category().message(err));
}

bool safe_file_name(const std::string& s) {
  if (s.empty() || s.size() > 128 || s.front() == '.') return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// Closes a descriptor on scope exit.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(-1); }
  void reset(int f) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

void write_all(int fd, const std::string& data, const std::string& what) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("cannot write " + what, errno);
    if (n == 0) fail("cannot write " + what, ENOSPC);
    done += static_cast<std::size_t>(n);
  }
}

// Creates `dir` with mode 0700 if it does not exist (an existing directory keeps its mode).
void make_private_dir(const std::filesystem::path& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    throw std::system_error(errno, std::system_category(), "mail spool: cannot create " + dir.string());
}

json::object message_fields(const ports::MailMessage& m) {
  json::object o;
  o["channel"] = m.channel;
  // No phone number in clear in any file of the data dir (issue 12): an SMS is filed with its
  // number masked and under its verification session.
  const bool sms = m.channel == "sms";
  o["to"] = sms ? mask_phone(m.to) : m.to;
  if (sms || !m.session_id.empty()) o["session"] = m.session_id;
  o["subject"] = m.subject;
  o["body"] = m.body;
  if (m.code) o["code"] = *m.code;
  else o["code"] = nullptr;
  return o;
}

}  // namespace

std::string mask_phone(std::string_view phone) {
  std::size_t digits = 0;
  for (char c : phone) digits += (c >= '0' && c <= '9') ? 1 : 0;
  constexpr std::size_t kShown = 2;  // digits kept at each end
  std::string out;
  std::size_t seen = 0;
  for (char c : phone) {
    if (c == '+' && out.empty()) {
      out += c;
      continue;
    }
    if (c < '0' || c > '9') continue;  // only '+' and digits are written
    ++seen;
    const bool shown = digits > 2 * kShown + 2 && (seen <= kShown || seen > digits - kShown);
    out += shown ? std::string(1, c) : std::string("\xE2\x80\xA2")  /* U+2022 BULLET */;
  }
  return out;
}

std::string spool_name(const std::string& key) {
  if (safe_file_name(key)) return key;
  sodium::ensure_sodium();
  unsigned char digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return "k-" + sodium::hex_encode(std::span(digest, 16));
}

std::string message_line(const ports::MailMessage& message) {
  // JSON escapes control characters inside strings, so the line holds no raw newline.
  return json::serialize(message_fields(message));
}

std::string spool_document(const ports::MailMessage& message) {
  json::object o = message_fields(message);
  o["idempotencyKey"] = message.idempotency_key;
  return json::serialize(o) + "\n";
}

FileMailSender::FileMailSender(std::filesystem::path data_dir, FileMailOptions options)
    : messages_file_(data_dir / "messages.jsonl"), spool_dir_(data_dir / "spool" / "mail"), options_(options) {
  options_.keep = std::max(options_.keep, 1u);
  sodium::ensure_sodium();
  std::filesystem::create_directories(data_dir);
  make_private_dir(data_dir / "spool");
  make_private_dir(spool_dir_);
}

// messages.jsonl opened for appending and locked (flock) against other processes. A process that
// waited for the lock while another rotated the file holds a lock on the renamed file: it then
// opens the path again, until the file it locked is the one the path names.
int FileMailSender::open_locked() const {
  for (;;) {
    Fd log(::open(messages_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
    if (log.fd < 0) fail("cannot open " + messages_file_.string(), errno);
    // Other processes on the same data dir: the check below and both writes are one step.
    while (::flock(log.fd, LOCK_EX) != 0)
      if (errno != EINTR) fail("cannot lock " + messages_file_.string(), errno);
    struct stat held {}, named {};
    if (::fstat(log.fd, &held) != 0) fail("cannot stat " + messages_file_.string(), errno);
    if (::stat(messages_file_.c_str(), &named) == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev) {
      int fd = log.fd;
      log.fd = -1;
      return fd;
    }
  }
}

// Called with the lock held: messages.jsonl.(keep) goes, each .N becomes .N+1, messages.jsonl
// becomes .1. A crash between two renames costs nothing but lines that were to go.
void FileMailSender::rotate_messages() const {
  auto numbered = [&](unsigned n) {
    auto p = messages_file_;
    p += "." + std::to_string(n);
    return p;
  };
  if (::unlink(numbered(options_.keep).c_str()) != 0 && errno != ENOENT)
    fail("cannot remove " + numbered(options_.keep).string(), errno);
  for (unsigned n = options_.keep; n > 1; --n)
    if (::rename(numbered(n - 1).c_str(), numbered(n).c_str()) != 0 && errno != ENOENT)
      fail("cannot rename " + numbered(n - 1).string(), errno);
  if (::rename(messages_file_.c_str(), numbered(1).c_str()) != 0) fail("cannot rename " + messages_file_.string(), errno);
  Fd dir(::open(messages_file_.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0 || ::fsync(dir.fd) != 0) fail("cannot sync " + messages_file_.parent_path().string(), errno);
}

std::size_t FileMailSender::expire_spool(domain::Timestamp older_than, std::size_t limit) {
  const auto cutoff_s = std::chrono::duration_cast<std::chrono::seconds>(older_than.time_since_epoch()).count();
  std::size_t removed = 0;
  DIR* dir = ::opendir(spool_dir_.c_str());
  if (dir == nullptr) fail("cannot read " + spool_dir_.string(), errno);
  const int dfd = ::dirfd(dir);
  while (removed < limit) {
    errno = 0;
    const dirent* entry = ::readdir(dir);
    if (entry == nullptr) break;
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dfd, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
    if (st.st_mtim.tv_sec >= cutoff_s) continue;
    if (::unlinkat(dfd, entry->d_name, 0) == 0) ++removed;
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) fail("cannot read " + spool_dir_.string(), err);
  return removed;
}

std::filesystem::path FileMailSender::spool_file(const std::string& idempotency_key) const {
  if (idempotency_key.empty()) return {};
  return spool_dir_ / (spool_name(idempotency_key) + ".json");
}

void FileMailSender::send(const ports::MailMessage& message) { send_all(std::span(&message, 1)); }

void FileMailSender::send_all(std::span<const ports::MailMessage> messages) {
  if (messages.empty()) return;
  // Each message's spool file and line; a key given twice in the batch is sent once.
  struct Pending {
    const ports::MailMessage* message;
    std::filesystem::path spool_file;
    std::string line;
  };
  std::vector<Pending> pending;
  pending.reserve(messages.size());
  std::unordered_set<std::string> names;
  std::size_t line_bytes = 0;
  for (const auto& message : messages) {
    std::string name;
    if (message.idempotency_key.empty()) {
      unsigned char random[16];
      randombytes_buf(random, sizeof random);
      name = "anon-" + sodium::hex_encode(random);
    } else {
      name = spool_name(message.idempotency_key);
    }
    if (!names.insert(name).second) continue;
    pending.push_back({&message, spool_dir_ / (name + ".json"), message_line(message) + "\n"});
    line_bytes += pending.back().line.size();
  }

  std::lock_guard lock(mutex_);
  Fd log(open_locked());
  // Rotation first, then the "already sent?" checks, all under the lock of the file written to.
  for (struct stat log_st {};;) {
    if (::fstat(log.fd, &log_st) != 0) fail("cannot stat " + messages_file_.string(), errno);
    if (options_.max_bytes == 0 || log_st.st_size == 0 ||
        static_cast<std::uint64_t>(log_st.st_size) + line_bytes <= options_.max_bytes)
      break;
    rotate_messages();
    log.reset(open_locked());
  }
  std::erase_if(pending, [&](const Pending& p) {
    struct stat st {};
    if (::stat(p.spool_file.c_str(), &st) == 0) return true;  // sent before: a redelivery
    if (errno != ENOENT) fail("cannot check " + p.spool_file.string(), errno);
    return false;
  });
  if (pending.empty()) return;
  std::string lines;
  for (const auto& p : pending) lines += p.line;

  // 1. The lines, whole, with one write() and one fdatasync(); a short write is cut back rather
  //    than continued, so no fragment stays in front of a later line.
  {
    struct stat log_st {};
    if (::fstat(log.fd, &log_st) != 0) fail("cannot stat " + messages_file_.string(), errno);
    ssize_t n;
    do {
      n = ::write(log.fd, lines.data(), lines.size());
    } while (n < 0 && errno == EINTR);
    int err = 0;
    if (n < 0) err = errno;
    else if (static_cast<std::size_t>(n) != lines.size()) err = ENOSPC;
    else if (::fdatasync(log.fd) != 0) err = errno;
    if (err != 0) {
      if (::ftruncate(log.fd, log_st.st_size) == 0) ::fdatasync(log.fd);
      fail("cannot append to " + messages_file_.string(), err);
    }
  }

  // 2. The spool files: each written under a temporary name, all made durable, then each linked
  //    to its final name (link() never replaces an existing file), then the directory synced once.
  //    One message: fsync() of its file. Several: one syncfs() of the spool's file system, which
  //    costs about one fsync() (one journal commit) however many files it covers, where an
  //    fsync() per file would cost a journal commit each.
  std::vector<std::filesystem::path> temps;
  temps.reserve(pending.size());
  auto remove_temps = [&] {
    for (const auto& t : temps) ::unlink(t.c_str());
  };
  try {
    for (const auto& p : pending) {
      unsigned char random[8];
      randombytes_buf(random, sizeof random);
      temps.push_back(spool_dir_ / (".tmp-" + sodium::hex_encode(random)));
      Fd tmp(::open(temps.back().c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
      if (tmp.fd < 0) {
        temps.pop_back();
        fail("cannot create spool file in " + spool_dir_.string(), errno);
      }
      write_all(tmp.fd, spool_document(*p.message), temps.back().string());
      if (pending.size() == 1 && ::fsync(tmp.fd) != 0) fail("cannot sync " + temps.back().string(), errno);
    }
    if (pending.size() > 1) {
      Fd dir(::open(spool_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir.fd < 0 || ::syncfs(dir.fd) != 0) fail("cannot sync the file system of " + spool_dir_.string(), errno);
    }
  } catch (...) {
    remove_temps();
    throw;
  }
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const int link_rc = ::link(temps[i].c_str(), pending[i].spool_file.c_str());
    const int link_err = errno;
    if (link_rc != 0 && link_err != EEXIST) {
      remove_temps();
      fail("cannot create " + pending[i].spool_file.string(), link_err);
    }
  }
  remove_temps();
  Fd dir(::open(spool_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0 || ::fsync(dir.fd) != 0) fail("cannot sync " + spool_dir_.string(), errno);
}

}  // namespace registrar::adapters::mail
