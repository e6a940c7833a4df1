// Wire compatibility of the Bull queue with Node's real `bull` (4.16.5, from tests/node's
// lockfile): registrar's worker (JobWorker on BullQueue, with a handler double) serves a Node
// producer (tests/node/bull_wire.js) on a private redis-server, with no Node worker (but in the
// mixed test):
// queue.add + job.finished() resolve with our return value and reject with our failure reason,
// getJobCounts() agrees, removeOnComplete jobs still resolve, exponential backoff with attempts 3
// completes on the third run, and jobs go both ways (our add() seen by Node's getJob, Node's add
// taken by us), and a Node worker (queue.process) shares the queue with ours, each job run once.
#include <gtest/gtest.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include <boost/json.hpp>

#include "adapters/bull/bull_queue.hpp"
#include "adapters/jobs/job_worker.hpp"
#include "adapters/logging/json_logger.hpp"
#include "adapters/redis/client.hpp"
#include "ports/job_queue.hpp"
#include "support/redis_server.hpp"

namespace registrar {
namespace {

using namespace std::chrono_literals;
namespace json = boost::json;

const std::string kNodeDir = std::string(REGISTRAR_SOURCE_DIR) + "/tests/node";

testing::RedisServer& shared_redis() {
  static testing::RedisServer server;
  return server;
}

// Runs tests/node/bull_wire.js and returns the JSON line it printed.
json::object run_node(const std::string& scenario, const std::vector<std::string>& args = {}) {
  std::string cmd = "cd '" + kNodeDir + "' && node bull_wire.js '" + shared_redis().url() + "' " + scenario;
  for (const auto& a : args) cmd += " '" + a + "'";  // the tests' own arguments: no quotes in them
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen failed");
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = ::pclose(p);
  const auto nl = out.find_last_of('\n', out.size() >= 2 ? out.size() - 2 : 0);
  const std::string line = nl == std::string::npos ? out : out.substr(nl + 1);
  boost::system::error_code ec;
  json::value v = json::parse(line, ec);
  if (ec || !v.is_object()) throw std::runtime_error("node printed no JSON (status " + std::to_string(status) + "): " + out);
  if (v.as_object().contains("error")) throw std::runtime_error("node: " + json::serialize(v));
  return v.as_object();
}

class BullWire : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::RedisServer::available()) GTEST_SKIP() << "redis-server not installed";
    ASSERT_EQ(::access((kNodeDir + "/node_modules/bull/package.json").c_str(), R_OK), 0)
        << "tests/node/node_modules/bull missing: run scripts/install-deps.sh";
    url_ = adapters::redis::Url::parse(shared_redis().url());
    adapters::redis::Client c(url_);
    c.command({"FLUSHALL"}).throw_if_error();
    client_ = std::make_unique<adapters::redis::Client>(url_);
    blocking_ = std::make_unique<adapters::redis::Client>(url_);
    events_ = std::make_unique<adapters::redis::Subscriber>(url_);
    queue_ = std::make_unique<adapters::bull::BullQueue>(*client_, *blocking_, adapters::bull::BullQueueOptions{},
                                                         events_.get());
  }
  void TearDown() override {
    if (worker_) worker_->stop();
  }

  // The handler double: does what the job's data says (see bull_wire.js).
  ports::JobResult handle(const ports::Job& job) {
    {
      std::lock_guard lock(mutex_);
      ++runs_[job.id];
    }
    const auto data = json::parse(job.data).as_object();
    if (const auto* work = data.if_contains("workMs")) std::this_thread::sleep_for(std::chrono::milliseconds(work->to_number<int>()));
    const std::string behaviour(data.at("behaviour").as_string());
    if (behaviour == "ok") return ports::JobResult::completed(R"({"success":true,"message":"User created successfully"})");
    if (behaviour == "fail") return ports::JobResult::failed(std::string(data.at("message").as_string()));
    if (behaviour == "flaky" && job.attempts_made < data.at("failures").to_number<int>()) {
      return ports::JobResult::retry("Error processing job");
    }
    return ports::JobResult::completed(R"({"success":true,"message":"User created successfully","runs":)" +
                                       std::to_string(job.attempts_made + 1) + "}");
  }
  void start_worker() {
    adapters::jobs::JobWorkerOptions o;
    o.concurrency = 2;
    o.take_wait = 500ms;
    worker_ = std::make_unique<adapters::jobs::JobWorker>(
        *queue_, [this](const ports::Job& job) { return handle(job); }, log_, o);
    worker_->start();
  }
  int runs(const std::string& id) {
    std::lock_guard lock(mutex_);
    return runs_[id];
  }

  adapters::logging::Logger log_{"error"};
  adapters::redis::Url url_;
  std::unique_ptr<adapters::redis::Client> client_, blocking_;
  std::unique_ptr<adapters::redis::Subscriber> events_;
  std::unique_ptr<adapters::bull::BullQueue> queue_;
  std::unique_ptr<adapters::jobs::JobWorker> worker_;
  std::mutex mutex_;
  std::map<std::string, int> runs_;
};

std::string id_of(const json::value& v) { return v.is_string() ? std::string(v.as_string()) : json::serialize(v); }

TEST_F(BullWire, FinishedResolvesWithOurReturnValueAndRejectsWithOurReason) {
  start_worker();
  const auto out = run_node("finished");
  const auto& results = out.at("results").as_array();
  ASSERT_EQ(results.size(), 5u);
  EXPECT_EQ(results[0].as_object().at("resolved"),
            json::parse(R"({"success":true,"message":"User created successfully"})"));
  const char* messages[] = {"Session expired. Please log in again", "The verification code is incorrect",
                            "Error encrypting your credentials. Please try again", "Error processing job"};
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(results[i + 1].as_object().at("rejected"), json::value(messages[i])) << json::serialize(results[i + 1]);
    // attempts: 3, but a failure for good is not retried.
    EXPECT_EQ(runs(id_of(out.at("ids").as_array()[i + 1])), 1);
  }
  EXPECT_EQ(out.at("counts"), json::parse(R"({"waiting":0,"active":0,"completed":1,"failed":4,"delayed":0,"paused":0})"));
  const auto ours = queue_->counts();
  EXPECT_EQ(ours.completed, 1);
  EXPECT_EQ(ours.failed, 4);
}

// The job is gone when it completes, so finished() resolves from the `completed` message alone.
// bull's finished() subscribes after queue.add() returns: a job completed before that (by any
// worker, Node's included) is missed, so the double works 300 ms, as the real pipeline (argon2)
// does at least.
TEST_F(BullWire, RemoveOnCompleteStillResolvesFinished) {
  start_worker();
  const auto out = run_node("removeOnComplete");
  EXPECT_EQ(out.at("result").as_object().at("resolved"),
            json::parse(R"({"success":true,"message":"User created successfully"})"));
  EXPECT_TRUE(out.at("after").is_null());
  EXPECT_EQ(out.at("counts").as_object().at("completed"), 0);
}

TEST_F(BullWire, RemoveOnCompleteAndOnFailAsCountsKeepTheLastJobs) {
  start_worker();
  const auto out = run_node("keepLast");
  const auto& results = out.at("results").as_array();
  ASSERT_EQ(results.size(), 6u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_TRUE(results[i].as_object().contains("resolved")) << i;
  for (std::size_t i = 3; i < 6; ++i) EXPECT_EQ(results[i].as_object().at("rejected"), "no") << i;
  // Which ones are kept depends on the finishing order (two worker threads): count them.
  const auto& kept = out.at("kept").as_array();
  EXPECT_EQ(std::count(kept.begin(), kept.begin() + 3, json::value(true)), 2);
  EXPECT_EQ(std::count(kept.begin() + 3, kept.end(), json::value(true)), 1);
  EXPECT_EQ(out.at("counts"), json::parse(R"({"waiting":0,"active":0,"completed":2,"failed":1,"delayed":0,"paused":0})"));
}

TEST_F(BullWire, ExponentialBackoffWithThreeAttemptsCompletesOnTheThirdRun) {
  start_worker();
  const auto out = run_node("exponential");
  EXPECT_EQ(out.at("result").as_object().at("resolved"),
            json::parse(R"({"success":true,"message":"User created successfully","runs":3})"));
  EXPECT_EQ(out.at("attemptsMade"), 2);
  EXPECT_EQ(out.at("state"), "completed");
  EXPECT_EQ(out.at("stacktrace").as_array().size(), 2u);
  EXPECT_GE(out.at("elapsed").to_number<double>(), 200 + 600);  // bull's backoffs: 200 ms, then 600 ms
  EXPECT_EQ(out.at("counts"), json::parse(R"({"waiting":0,"active":0,"completed":1,"failed":0,"delayed":0,"paused":0})"));
}

TEST_F(BullWire, ANodeWorkerAndOursShareTheQueueEachJobRunsOnce) {
  start_worker();
  const auto out = run_node("mixed");
  const auto& ids = out.at("ids").as_array();
  ASSERT_EQ(ids.size(), 40u);
  std::map<std::string, int> node_runs;
  for (const auto& id : out.at("byNode").as_array()) ++node_runs[id_of(id)];
  int ours = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const std::string id = id_of(ids[i]);
    EXPECT_EQ(runs(id) + node_runs[id], 1) << "job " << id;
    ours += runs(id);
    const auto& result = out.at("results").as_array()[i].as_object();
    ASSERT_TRUE(result.contains("resolved")) << json::serialize(result);
    const auto& value = result.at("resolved").as_object();
    const std::string returned_by = value.contains("by") ? "node" : "registrar";
    EXPECT_EQ(returned_by, runs(id) == 1 ? "registrar" : "node") << "job " << id;
  }
  EXPECT_EQ(out.at("counts").as_object().at("completed"), 40);
  std::printf("mixed queue: %d jobs run by registrar, %d by Node\n", ours, 40 - ours);
}

// Node's add() publishes the delayed job's due time; the worker (asleep for its 5 s guard
// interval, the delayed set being empty) wakes and promotes the job when it is due.
TEST_F(BullWire, ANodeProducersDelayedJobRunsWhenDue) {
  start_worker();
  std::this_thread::sleep_for(200ms);  // the worker's first maintenance is done: it sleeps
  const auto out = run_node("delayed");
  EXPECT_EQ(out.at("stateBefore"), "delayed");
  EXPECT_TRUE(out.at("result").as_object().contains("resolved")) << json::serialize(out);
  const double elapsed = out.at("elapsed").to_number<double>();
  EXPECT_GE(elapsed, 1500);
  EXPECT_LT(elapsed, 1500 + 1500) << "promoted late (by the guard interval, not when due)";
}

TEST_F(BullWire, OurAddIsSeenByNodesGetJob) {
  ports::JobOptions o;
  o.attempts = 3;
  o.backoff_type = "exponential";
  o.backoff_delay = 200ms;
  o.remove_on_complete = true;
  const std::string id = queue_->add(R"({"behaviour":"ok","username":"ada","image":""})", o);
  const auto out = run_node("getJob", {id});
  EXPECT_EQ(out.at("data"), json::parse(R"({"behaviour":"ok","username":"ada","image":""})"));
  EXPECT_EQ(out.at("name"), "__default__");
  EXPECT_EQ(out.at("state"), "waiting");
  const auto& opts = out.at("opts").as_object();
  EXPECT_EQ(opts.at("attempts"), 3);
  EXPECT_EQ(opts.at("backoff"), json::parse(R"({"type":"exponential","delay":200})"));
  EXPECT_EQ(opts.at("removeOnComplete"), true);
  EXPECT_EQ(out.at("counts").as_object().at("waiting"), 1);

  // And a Node worker-less producer's own view agrees once our worker has run it.
  start_worker();
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (queue_->status(id) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(queue_->status(id));  // removeOnComplete
  EXPECT_TRUE(run_node("getJob", {id}).at("job").is_null());
}

TEST_F(BullWire, NodesAddIsTakenWithItsOptions) {
  const auto out = run_node("add", {R"({"behaviour":"ok","username":"ada"})",
                                    R"({"attempts":2,"backoff":{"type":"fixed","delay":50},"removeOnComplete":5})"});
  const std::string id = id_of(out.at("id"));
  auto job = queue_->take(2s);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->id, id);
  EXPECT_EQ(json::parse(job->data), json::parse(R"({"behaviour":"ok","username":"ada"})"));
  EXPECT_EQ(job->options.attempts, 2);
  EXPECT_EQ(job->options.backoff_type, "fixed");
  EXPECT_EQ(job->options.backoff_delay, 50ms);
  EXPECT_FALSE(job->options.remove_on_complete);  // keeps the last 5
  EXPECT_TRUE(queue_->complete(*job, "\"done\""));
  EXPECT_EQ(queue_->status(id)->return_value, "\"done\"");
}

}  // namespace
}  // namespace registrar
