#pragma once
// The built-in "audit" consumer: one JSON line per event in an append-only file.
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>

#include "ports/event_bus.hpp"
#include "ports/processed_events.hpp"
#include "ports/system.hpp"

namespace registrar::adapters::audit {

// Appends, for each event, one line
//   {"eventId":…,"type":…,"occurredAt":…,"receivedAt":…,"payload":{…the event body…}}
// to a JSON Lines file (default <data-dir>/audit.jsonl, mode 0600: the payload holds e-mail
// addresses). Exactly one line per event id, even though delivery is at-least-once and the
// process may be killed at any instant:
//
//  * Events are handled one at a time under a mutex. An event already recorded in ProcessedEvents
//    is skipped. Otherwise its line is appended with a single write() and made durable with
//    fdatasync(), and only THEN is its id recorded as processed.
//  * So a crash can leave just two states that need repair, both at the end of the file:
//     - a partial last line (the write or its sync did not complete): its id was never recorded,
//       the event will be delivered again, so the fragment is truncated away;
//     - a complete last line whose id is not recorded (killed between the sync and the record):
//       the line is there, so the id is recorded now, and the redelivery will be skipped.
//    The constructor performs this repair before any new line is written. The same repair runs
//    in-process when recording an id fails (the database was briefly unavailable): the next
//    handle() records the pending id first instead of writing the line again.
//  * One process writes a given file (run the audit consumer in one place).
class AuditConsumer final : public ports::EventConsumer {
 public:
  static constexpr const char* kName = "audit";

  // Opens (creates with 0600) `file` and repairs the crash window described above. `processed`
  // and `clock` must outlive the consumer. Throws std::system_error if the file cannot be opened.
  AuditConsumer(std::filesystem::path file, ports::ProcessedEvents& processed, ports::Clock& clock);
  ~AuditConsumer() override;
  AuditConsumer(const AuditConsumer&) = delete;
  AuditConsumer& operator=(const AuditConsumer&) = delete;

  std::string name() const override { return kName; }
  // Throws ports::BackendUnavailable if the line cannot be written durably or the id recorded.
  void handle(const domain::EventEnvelope& event) override;

  const std::filesystem::path& path() const { return path_; }

 private:
  void recover();
  void append_durably(const std::string& line);

  std::filesystem::path path_;
  ports::ProcessedEvents& processed_;
  ports::Clock& clock_;
  int fd_ = -1;
  std::mutex mutex_;
  std::optional<std::string> unrecorded_;  // id whose line is written but not yet recorded
};

// The audit line for `event` received at `received_at`, without the trailing newline. A payload
// that is not JSON is kept as a JSON string rather than dropped.
std::string audit_line(const domain::EventEnvelope& event, domain::Timestamp received_at);

}  // namespace registrar::adapters::audit
