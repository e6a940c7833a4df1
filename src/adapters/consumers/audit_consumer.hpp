#pragma once
// The built-in "audit" consumer: one JSON line per event in an append-only file.
#include <filesystem>
#include <mutex>
#include <span>
#include <string>
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
class AuditConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "audit";
  // Most lines written (and recorded) at once; recovery looks back at most this far.
  static constexpr std::size_t kMaxBatch = 1024;

  // Opens (creates with 0600) `file` and repairs the crash window described above, telling `log`
  // what it repaired. `processed` and `clock` must outlive the consumer. Throws std::system_error
  // if the file cannot be opened.
  AuditConsumer(std::filesystem::path file, ports::ProcessedEvents& processed, ports::Clock& clock,
                logging::Logger log);
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

  std::filesystem::path path_;
  ports::ProcessedEvents& processed_;
  ports::Clock& clock_;
  logging::Logger log_;
  int fd_ = -1;
  std::mutex mutex_;
  std::vector<std::string> unrecorded_;  // ids whose lines are written but not yet recorded
};

// The audit line for `event` received at `received_at`, without the trailing newline. A payload
// that is not JSON is kept as a JSON string rather than dropped.
std::string audit_line(const domain::EventEnvelope& event, domain::Timestamp received_at);

}  // namespace registrar::adapters::consumers
