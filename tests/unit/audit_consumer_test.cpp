// The audit consumer: one JSON line per event id, even across redeliveries and crashes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <latch>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "adapters/consumers/audit_consumer.hpp"
#include "ports/errors.hpp"
#include "support/captured_log.hpp"
#include "support/fakes.hpp"
#include "support/temp_dir.hpp"

namespace registrar {
namespace {

namespace json = boost::json;
using adapters::consumers::AuditConsumer;
using adapters::consumers::audit_line;
using testing::MemoryProcessedEvents;
using testing::TempDir;

domain::EventEnvelope event(const std::string& id) {
  domain::EventEnvelope e;
  e.id = id;
  e.type = "user.registered";
  e.aggregate_id = "user-" + id;
  e.payload = R"({"event":"user.registered","pattern":"user.registered","data":{"id":"user-)" + id +
              R"(","email":"a@example.com"},"timestamp":"2025-10-19T16:37:15.456Z"})";
  e.occurred_at = domain::Timestamp{std::chrono::milliseconds{1'760'891'835'456}};
  return e;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::filesystem::path& p, const std::string& content) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << content;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(text.substr(start, nl - start));
  EXPECT_EQ(start, text.size()) << "the file must end with a newline";
  return lines;
}

std::vector<std::string> event_ids_in(const std::filesystem::path& p) {
  std::vector<std::string> ids;
  for (const auto& line : lines_of(read_file(p)))
    ids.push_back(std::string(json::parse(line).as_object().at("eventId").as_string()));
  return ids;
}

class AuditConsumerTest : public ::testing::Test {
 protected:
  std::filesystem::path file() const { return dir_.path() / "audit.jsonl"; }
  TempDir dir_;
  MemoryProcessedEvents processed_;
  testing::FixedClock clock_{domain::Timestamp{std::chrono::milliseconds{1'760'891'836'000}}};
  testing::CapturedLog log_;
};

TEST_F(AuditConsumerTest, AppendsOneJsonLinePerEvent) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  EXPECT_EQ(audit.name(), "audit");
  audit.handle(event("e1"));
  audit.handle(event("e2"));

  auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 2u);
  auto first = json::parse(lines[0]).as_object();
  std::vector<std::string> keys;
  for (const auto& kv : first) keys.emplace_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"eventId", "type", "occurredAt", "receivedAt", "payload"}));
  EXPECT_EQ(first.at("eventId"), "e1");
  EXPECT_EQ(first.at("type"), "user.registered");
  EXPECT_EQ(first.at("occurredAt"), "2025-10-19T16:37:15.456Z");
  EXPECT_EQ(first.at("receivedAt"), "2025-10-19T16:37:16.000Z");
  EXPECT_EQ(first.at("payload"), json::parse(event("e1").payload));  // an object, not a string
  EXPECT_EQ(json::parse(lines[1]).as_object().at("eventId"), "e2");
  EXPECT_TRUE(processed_.is_processed("audit", "e1"));
  EXPECT_TRUE(processed_.is_processed("audit", "e2"));
}

TEST_F(AuditConsumerTest, TheFileIsPrivate) {
  AuditConsumer audit(dir_.path() / "sub" / "audit.jsonl", processed_, clock_, log_.logger);
  struct stat st {};
  ASSERT_EQ(::stat(audit.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(AuditConsumerTest, ARedeliveredEventWritesNothing) {
  {
    AuditConsumer audit(file(), processed_, clock_, log_.logger);
    audit.handle(event("e1"));
    audit.handle(event("e1"));
  }
  AuditConsumer restarted(file(), processed_, clock_, log_.logger);
  restarted.handle(event("e1"));
  restarted.handle(event("e2"));
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1", "e2"}));
}

TEST_F(AuditConsumerTest, ConcurrentDuplicateDeliveriesWriteEachEventOnce) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  constexpr int kThreads = 8, kEvents = 25;
  std::latch start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kEvents; ++i) audit.handle(event("e" + std::to_string(i)));
    });
  for (auto& t : threads) t.join();
  auto ids = event_ids_in(file());
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kEvents));
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), static_cast<std::size_t>(kEvents));
}

TEST_F(AuditConsumerTest, RecoveryTruncatesAPartialLastLine) {
  {
    AuditConsumer audit(file(), processed_, clock_, log_.logger);
    audit.handle(event("e1"));
  }
  auto complete = read_file(file());
  // A crash in the middle of writing e2's line: the fragment has no newline, e2 was not recorded.
  write_file(file(), complete + R"({"eventId":"e2","type":"user.regis)");

  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  EXPECT_EQ(read_file(file()), complete);
  EXPECT_EQ(log_.count(R"("msg":"audit log: removed an incomplete last line left by an interrupted write")"), 1u)
      << log_.text();
  EXPECT_FALSE(processed_.is_processed("audit", "e2"));
  audit.handle(event("e2"));  // the redelivery writes it whole
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1", "e2"}));
}

TEST_F(AuditConsumerTest, RecoveryTruncatesAFileThatIsOnlyAFragment) {
  write_file(file(), R"({"eventId":"e1","ty)");
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  EXPECT_EQ(read_file(file()), "");
  audit.handle(event("e1"));
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1"}));
}

TEST_F(AuditConsumerTest, RecoveryRecordsACompleteLastLineThatWasNotRecorded) {
  // A crash after e2's line was durably written but before its id was recorded.
  {
    AuditConsumer audit(file(), processed_, clock_, log_.logger);
    audit.handle(event("e1"));
  }
  write_file(file(), read_file(file()) + adapters::consumers::audit_line(event("e2"), clock_.now()) + "\n");
  ASSERT_FALSE(processed_.is_processed("audit", "e2"));

  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  EXPECT_TRUE(processed_.is_processed("audit", "e2"));
  EXPECT_EQ(log_.count(R"("events":1,"lastEventId":"e2")"), 1u) << log_.text();
  audit.handle(event("e2"));  // the redelivery is skipped: no second line
  audit.handle(event("e3"));
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1", "e2", "e3"}));
}

TEST_F(AuditConsumerTest, AFailureToRecordDoesNotWriteTheLineTwice) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  processed_.fail_next_marks = 1;
  EXPECT_THROW(audit.handle(event("e1")), ports::BackendUnavailable);  // line written, id not recorded
  audit.handle(event("e1"));  // the retry records the pending id instead of writing again
  EXPECT_TRUE(processed_.is_processed("audit", "e1"));
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1"}));
}

TEST_F(AuditConsumerTest, ABatchIsWrittenInOrderOnceAndRecordedInOneCall) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  audit.handle(event("e2"));
  const int marks_before = processed_.batch_marks();
  // e2 is a redelivery, e1 comes twice in the batch: neither gets a second line.
  std::vector<domain::EventEnvelope> batch{event("e1"), event("e2"), event("e3"), event("e1"), event("e4")};
  EXPECT_TRUE(audit.handle_batch(batch));
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e2", "e1", "e3", "e4"}));
  EXPECT_EQ(processed_.batch_marks() - marks_before, 1);  // one transaction for the batch
  for (const char* id : {"e1", "e3", "e4"}) EXPECT_TRUE(processed_.is_processed("audit", id)) << id;
  // The whole batch again: nothing new.
  EXPECT_TRUE(audit.handle_batch(batch));
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e2", "e1", "e3", "e4"}));
}

TEST_F(AuditConsumerTest, RecoveryRecordsEveryUnrecordedLineOfTheLastBatch) {
  // A crash after a batch (e2, e3, e4) was durably written but before its ids were recorded.
  {
    AuditConsumer audit(file(), processed_, clock_, log_.logger);
    audit.handle(event("e1"));
  }
  std::string text = read_file(file());
  for (const char* id : {"e2", "e3", "e4"}) text += adapters::consumers::audit_line(event(id), clock_.now()) + "\n";
  write_file(file(), text);

  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  for (const char* id : {"e1", "e2", "e3", "e4"}) EXPECT_TRUE(processed_.is_processed("audit", id)) << id;
  std::vector<domain::EventEnvelope> redelivery{event("e2"), event("e3"), event("e4"), event("e5")};
  audit.handle_batch(redelivery);  // only e5 is new
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1", "e2", "e3", "e4", "e5"}));
}

TEST_F(AuditConsumerTest, ABatchLargerThanTheMaximumIsWrittenInSlices) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  std::vector<domain::EventEnvelope> batch;
  for (std::size_t i = 0; i < AuditConsumer::kMaxBatch + 3; ++i) batch.push_back(event("e" + std::to_string(i)));
  const int marks_before = processed_.batch_marks();
  EXPECT_TRUE(audit.handle_batch(batch));
  EXPECT_EQ(processed_.batch_marks() - marks_before, 2);
  auto ids = event_ids_in(file());
  ASSERT_EQ(ids.size(), batch.size());
  EXPECT_EQ(ids.back(), batch.back().id);
}

TEST_F(AuditConsumerTest, RecoveryLeavesAFileThatEndsInAForeignLineAsIs) {
  write_file(file(), adapters::consumers::audit_line(event("e1"), clock_.now()) + "\nnot an audit record\n");
  AuditConsumer audit(file(), processed_, clock_, log_.logger);  // does not throw, records nothing
  EXPECT_FALSE(processed_.is_processed("audit", "e1"));
  EXPECT_EQ(log_.count("a line that is not an audit record ends the file's recovery scan"), 1u) << log_.text();
  audit.handle(event("e2"));
  EXPECT_EQ(lines_of(read_file(file())).size(), 3u);
}

TEST_F(AuditConsumerTest, AFailureToRecordABatchDoesNotWriteItsLinesTwice) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  processed_.fail_next_marks = 1;
  std::vector<domain::EventEnvelope> first{event("e1"), event("e2")};
  EXPECT_THROW(audit.handle_batch(first), ports::BackendUnavailable);  // lines written, ids not recorded
  std::vector<domain::EventEnvelope> retry{event("e1"), event("e2"), event("e3")};
  EXPECT_TRUE(audit.handle_batch(retry));  // records the pending ids first, then writes e3 only
  EXPECT_EQ(event_ids_in(file()), (std::vector<std::string>{"e1", "e2", "e3"}));
}

TEST_F(AuditConsumerTest, ANonJsonPayloadIsKeptAsAString) {
  AuditConsumer audit(file(), processed_, clock_, log_.logger);
  auto e = event("e1");
  e.payload = "not json\nat all";
  audit.handle(e);
  auto lines = lines_of(read_file(file()));
  ASSERT_EQ(lines.size(), 1u);  // the newline inside is escaped
  EXPECT_EQ(json::parse(lines[0]).as_object().at("payload"), "not json\nat all");
}

// Found by fuzz/fuzz_amqp_message: Boost.JSON reads 1e400 as infinity and writes it back as
// `Infinity`, so such a payload made a line that is not JSON (and stopped the crash recovery).
TEST_F(AuditConsumerTest, APayloadWithANumberBeyondDoubleIsKeptAsAString) {
  auto e = event("e1");
  e.payload = R"({"event":"user.registered","n":[1,{"m":-1e400}],"data":{"id":"u1"}})";
  const auto line = json::parse(adapters::consumers::audit_line(e, clock_.now()));  // throws if not JSON
  EXPECT_EQ(line.at("eventId").as_string(), "e1");
  EXPECT_EQ(line.at("payload").as_string(), e.payload);
  e.payload = R"({"n":1e308})";  // in range: still embedded as JSON
  EXPECT_TRUE(json::parse(adapters::consumers::audit_line(e, clock_.now())).at("payload").is_object());
}

TEST_F(AuditConsumerTest, AFailedWriteThrowsBackendUnavailableAndRecordsNothing) {
  // /dev/full accepts open() and fails every write() with ENOSPC.
  if (::access("/dev/full", W_OK) != 0) GTEST_SKIP() << "/dev/full is not available";
  AuditConsumer audit("/dev/full", processed_, clock_, log_.logger);
  EXPECT_THROW(audit.handle(event("e1")), ports::BackendUnavailable);
  EXPECT_FALSE(processed_.is_processed("audit", "e1"));
}


// --- rotation by size (issue 14) ---

using adapters::consumers::AuditRotation;
using adapters::consumers::rotated_file;

// Every event id in the audit file and its rotated files, oldest file first.
std::vector<std::string> all_ids(const std::filesystem::path& file, unsigned keep) {
  std::vector<std::string> ids;
  for (unsigned n = keep; n >= 1; --n)
    if (std::filesystem::exists(rotated_file(file, n)))
      for (auto& id : event_ids_in(rotated_file(file, n))) ids.push_back(std::move(id));
  if (std::filesystem::exists(file))
    for (auto& id : event_ids_in(file)) ids.push_back(std::move(id));
  return ids;
}

std::vector<std::string> ids_from(int first, int last) {
  std::vector<std::string> ids;
  for (int i = first; i <= last; ++i) ids.push_back("e" + std::to_string(i));
  return ids;
}

TEST_F(AuditConsumerTest, RotatesBeforeAFileWouldPassItsSizeAndKeepsKFiles) {
  const auto line_size = audit_line(event("e1"), clock_.now()).size() + 1;  // ids e1…e9 are one size
  AuditConsumer audit(file(), processed_, clock_, log_.logger, AuditRotation{.max_bytes = 3 * line_size, .keep = 2});
  for (int i = 1; i <= 9; ++i) audit.handle(event("e" + std::to_string(i)));
  // Three lines a file.
  EXPECT_EQ(event_ids_in(file()), ids_from(7, 9));
  EXPECT_EQ(event_ids_in(rotated_file(file(), 1)), ids_from(4, 6));
  EXPECT_EQ(event_ids_in(rotated_file(file(), 2)), ids_from(1, 3));
  // The third rotation needs room beyond keep = 2: the oldest file (e1…e3) goes.
  audit.handle(event("e9"));  // a redelivery: nothing written, nothing rotated
  audit.handle(event("e10"));
  EXPECT_EQ(event_ids_in(rotated_file(file(), 2)), ids_from(4, 6));
  EXPECT_EQ(event_ids_in(rotated_file(file(), 1)), ids_from(7, 9));
  EXPECT_EQ(event_ids_in(file()), ids_from(10, 10));
  EXPECT_FALSE(std::filesystem::exists(rotated_file(file(), 3)));
  struct stat st {};
  ASSERT_EQ(::stat(file().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A crash at each step of a rotation (the fault point throws there, and the consumer is dropped
// as a killed process drops it), then a restart that receives every event again, as the relay or
// the broker redelivers what was not confirmed: each event id is in the files exactly once.
class AuditRotationCrash : public AuditConsumerTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(AuditRotationCrash, NoLineIsLostOrDuplicated) {
  const auto line_size = audit_line(event("e1"), clock_.now()).size() + 1;
  const std::string crash_at = GetParam();
  struct Crash {};
  std::vector<domain::EventEnvelope> events;
  for (int i = 1; i <= 9; ++i) events.push_back(event("e" + std::to_string(i)));
  int rotations = 0;
  {
    AuditRotation rotation{.max_bytes = 3 * line_size, .keep = 2};
    rotation.fault_point = [&](std::string_view step) {
      // The second rotation crashes (the first leaves a rotated file for the shift to move).
      if (step == "shift") ++rotations;
      if (rotations == 2 && step == crash_at) throw Crash{};
    };
    AuditConsumer audit(file(), processed_, clock_, log_.logger, rotation);
    std::size_t delivered = 0;
    try {
      for (; delivered < events.size(); ++delivered) audit.handle(events[delivered]);
    } catch (const Crash&) {
    }
    ASSERT_EQ(rotations, 2);
    ASSERT_LT(delivered, events.size()) << "the crash must have happened";
  }
  // Restart: recovery, then every event again (the unconfirmed ones and, harmlessly, the rest).
  AuditConsumer restarted(file(), processed_, clock_, log_.logger, AuditRotation{.max_bytes = 3 * line_size, .keep = 2});
  restarted.handle_batch(events);
  auto ids = all_ids(file(), 2);
  EXPECT_EQ(ids, ids_from(1, 9)) << "crash at " << crash_at;
}

INSTANTIATE_TEST_SUITE_P(Steps, AuditRotationCrash, ::testing::Values("shift", "rename", "reopen"));

TEST_F(AuditConsumerTest, ACrashAfterTheRenameLeavesNoActiveFileAndTheRestartStartsOne) {
  // The state a crash between rename(audit.jsonl → .1) and the new file leaves: no audit.jsonl.
  {
    AuditConsumer audit(file(), processed_, clock_, log_.logger);
    audit.handle_batch(std::vector{event("e1"), event("e2")});
  }
  std::filesystem::rename(file(), rotated_file(file(), 1));
  AuditConsumer restarted(file(), processed_, clock_, log_.logger, AuditRotation{.max_bytes = 1 << 20, .keep = 3});
  restarted.handle_batch(std::vector{event("e1"), event("e2"), event("e3")});
  EXPECT_EQ(event_ids_in(rotated_file(file(), 1)), ids_from(1, 2));
  EXPECT_EQ(event_ids_in(file()), ids_from(3, 3));
}

}  // namespace
}  // namespace registrar
