#pragma once
// The built-in "audit" consumer: one JSON line per event in an append-only file.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/logging/json_logger.hpp"
#include "ports/event_bus.hpp"
#include "ports/processed_events.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::consumers {

// Appends, for each event, one line
//   {"eventId":…,"type":…,"occurredAt":…,"receivedAt":…,"payload":{…the event body…}}
// to a JSON Lines file (default <data-dir>/audit.jsonl, mode 0600: the payload holds e-mail
// addresses). Exactly one line per event id, even though delivery is at-least-once and the
// process may be killed at any instant:
//
//  * Events are handled a batch at a time under a mutex. Events already recorded in
//    ProcessedEvents are skipped. The lines of the others are appended with a single write() and
//    made durable with one fdatasync(), and only THEN are their ids recorded as processed, all in
//    one transaction (so a batch costs one sync of the file and one commit, whatever its size).
//  * So a crash can leave just two states that need repair, both at the end of the file:
//     - a partial last line (the write or its sync did not complete): its id was never recorded,
//       the event will be delivered again, so the fragment is truncated away;
//     - complete last lines whose ids are not recorded (killed between the sync and the record):
//       the lines are there, so their ids are recorded now, and the redeliveries will be skipped.
//       Walking back from the end, the first line whose id is recorded ends that batch.
//    The constructor performs this repair before any new line is written. The same repair runs
//    in-process when recording ids fails (the database was briefly unavailable): the next
//    handle_batch() records the pending ids first instead of writing the lines again.
//  * One process writes a given file (run the audit consumer in one place).
//  * Rotation by size (AuditRotation): before a batch that would take the file past max_bytes,
//    audit.jsonl becomes audit.jsonl.1 (.1 becomes .2, …; beyond `keep` the oldest goes) and a new
//    audit.jsonl is started. It happens only when every line of the file is recorded (at the start
//    of a batch, after any pending ids were recorded), so the repair above never needs a rotated
//    file, and a crash at any step of a rotation leaves a state the constructor handles: the
//    renames of the rotated files lose nothing but the oldest file (which was to go), and a crash
//    after audit.jsonl was renamed and before the new one exists leaves no active file: the next
//    start creates it empty, and the redeliveries of the events in audit.jsonl.1 are skipped as
//    recorded. Each rename is followed by an fsync of the directory.
struct AuditRotation {
  std::uint64_t max_bytes = 0;  // 0: the file is never rotated
  unsigned keep = 5;            // rotated files kept (≥ 1)
  // Test seam: called before each step of a rotation ("shift", "rename", "reopen"); a test throws
  // from it to stop the rotation there, as a crash would.
  std::function<void(std::string_view step)> fault_point{};
};

class AuditConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "audit";
  // Most lines written (and recorded) at once; recovery looks back at most this far.
  static constexpr std::size_t kMaxBatch = 1024;

  // Opens (creates with 0600) `file` and repairs the crash window described above, telling `log`
  // what it repaired. `processed` and `clock` must outlive the consumer. Throws std::system_error
  // if the file cannot be opened.
  AuditConsumer(std::filesystem::path file, ports::ProcessedEvents& processed, ports::Clock& clock,
                logging::Logger log, AuditRotation rotation = {});
  ~AuditConsumer() override;
  AuditConsumer(const AuditConsumer&) = delete;
  AuditConsumer& operator=(const AuditConsumer&) = delete;

  std::string name() const override { return kName; }
  // Throws ports::BackendUnavailable if the line cannot be written durably or the id recorded.
  void handle(const domain::EventEnvelope& event) override;
  bool handle_batch(std::span<const domain::EventEnvelope> events) override;

  const std::filesystem::path& path() const { return path_; }

 private:
  void recover();
  void append_durably(const std::string& line);
  void rotate();

  std::filesystem::path path_;
  ports::ProcessedEvents& processed_;
  ports::Clock& clock_;
  logging::Logger log_;
  AuditRotation rotation_;
  int fd_ = -1;
  std::mutex mutex_;
  std::vector<std::string> unrecorded_;  // ids whose lines are written but not yet recorded
};

// The audit line for `event` received at `received_at`, without the trailing newline. A payload
// that is not JSON is kept as a JSON string rather than dropped.
std::string audit_line(const domain::EventEnvelope& event, domain::Timestamp received_at);

// `file` with ".N" appended: the N-th most recent rotated file (audit.jsonl.1 is the newest).
std::filesystem::path rotated_file(const std::filesystem::path& file, unsigned n);

}  // namespace registrar::adapters::consumers
