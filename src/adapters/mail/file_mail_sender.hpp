#pragma once
// The default development mail sender: messages land in files a developer (or a test) can read.
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

#include "domain/time.hpp"
#include "ports/mail_sender.hpp"

namespace registrar::adapters::mail {

// For each message:
//  * one file <data-dir>/spool/mail/<name>.json holding the whole message as a JSON object
//      {"channel","to","subject","body","code","idempotencyKey"}
//    written atomically (temp file, fsync, link into place, fsync of the directory), mode 0600.
//    <name> is the idempotency key when it is a safe file name ([A-Za-z0-9._-], ≤ 128, no leading
//    dot), otherwise "k-" + 32 hex digits of its SHA-256; an empty key gets a random name.
//    A message whose spool file already exists was sent before: send() does nothing. That makes
//    the redelivery of an event harmless.
//  * one line {"channel","to","subject","body","code"} (DESIGN.md; "code" is null when there is
//    none) appended to <data-dir>/messages.jsonl with a single write() + fdatasync(), mode 0600.
//
// Text messages (channel "sms", verification codes): no phone number is written in clear in any
// file of the data dir (issue 12), so `to` is masked ("+33•••••••78": the first two and last two
// digits) in both the line and the spool file, and the message carries `"session"`, the
// verification session id its code belongs to (MailMessage::session_id), so that a developer or a
// test finds the code of a session: the line of an SMS reads
//   {"channel":"sms","to":"+33•••••••78","session":"<id>","subject":…,"body":…,"code":"123456"}
// Any other message with a session id carries it too. Mail keeps its address as is.
//
// A batch (send_all) is written the same way with the costs shared: its lines with one write()
// and one fdatasync(), its spool files written under temporary names, made durable together by
// one syncfs() of the spool's file system, then linked into place, and the directory synced once.
//
// Order and crash windows: the line is appended first, the spool file is linked into place last,
// so the spool file is the "sent" mark. A crash between the two makes the redelivered message
// append its line a second time (at least once in messages.jsonl, exactly once in the spool);
// the other order could lose the line for good. Threads are serialized by a mutex, processes
// sharing the data dir by flock() on messages.jsonl, so the "already sent?" check and both writes
// are one step.
//
// Bounded storage (issue 14): messages.jsonl rotates by size (FileMailOptions: before a line that
// would take it past max_bytes it becomes messages.jsonl.1, .1 becomes .2, … up to `keep`), under
// the flock, so processes sharing the data dir rotate it once (a process that waited for the lock
// on the renamed file opens the new one). The line log is for reading; nothing depends on its old
// lines. The spool files are the "sent" marks that make a redelivered event harmless, so they go
// only through expire_spool(), once older than a retention at least as long as an event can be
// redelivered (the processed-event records' rule: README, Retention).
struct FileMailOptions {
  std::uint64_t max_bytes = 0;  // messages.jsonl: 0 = never rotated
  unsigned keep = 5;            // rotated messages files kept (≥ 1)
};

class FileMailSender final : public ports::MailSender {
 public:
  // Creates <data-dir> and <data-dir>/spool/mail (0700) if missing. Throws std::system_error /
  // std::filesystem::filesystem_error if they cannot be created.
  explicit FileMailSender(std::filesystem::path data_dir, FileMailOptions options = {});

  // Deletes up to `limit` spool files (and temporary files a crash left) last written before
  // `older_than`; returns how many. Throws BackendUnavailable if the spool cannot be read.
  std::size_t expire_spool(domain::Timestamp older_than, std::size_t limit);

  // Throws ports::BackendUnavailable when a file cannot be written (disk full, permissions).
  void send(const ports::MailMessage& message) override;
  // The same for a batch, with one lock, one write and sync of messages.jsonl, one sync for all
  // the spool files and one of the directory: the cost of one message, plus the files' writes.
  void send_all(std::span<const ports::MailMessage> messages) override;

  const std::filesystem::path& messages_file() const { return messages_file_; }
  const std::filesystem::path& spool_dir() const { return spool_dir_; }
  // Where the message with this idempotency key is (or would be) spooled; empty key → empty path.
  std::filesystem::path spool_file(const std::string& idempotency_key) const;

 private:
  std::filesystem::path messages_file_;
  std::filesystem::path spool_dir_;
  FileMailOptions options_;
  std::mutex mutex_;

  int open_locked() const;
  void rotate_messages() const;
};

// "+33•••••••78": '+' and the digits of `phone` with all but the first two and last two digits
// replaced by U+2022 (all of them when there are six digits or fewer); other characters dropped.
std::string mask_phone(std::string_view phone);

// "<key>" when the key is usable as a file name as is, else "k-<32 hex of SHA-256(key)>".
std::string spool_name(const std::string& idempotency_key);

// The messages.jsonl line (no trailing newline) and the spool file content for `message`.
std::string message_line(const ports::MailMessage& message);
std::string spool_document(const ports::MailMessage& message);

}  // namespace registrar::adapters::mail
