#pragma once
// Part of the composition root: the Create_User job path — the queue (Bull on Redis when
// --redis-url is set, in process otherwise), the notifier, the pipeline and the worker that runs
// it. `serve` builds it with the worker inside; `registrar worker` builds it alone.
#include <memory>
#include <optional>

#include "adapters/bull/bull_queue.hpp"
#include "adapters/inproc/job_queue.hpp"
#include "adapters/jobs/job_worker.hpp"
#include "adapters/logging/log_notifier.hpp"
#include "adapters/redis/client.hpp"
#include "app/create_user.hpp"
#include "main/config.hpp"

namespace registrar {

// Every Create_User outcome to the log, and to the process's other notifiers (serve: its Socket.IO
// rooms, and the --notify-url client; worker: the Redis emitter, and the --notify-url client).
class OutcomeNotifier final : public ports::Notifier {
 public:
  OutcomeNotifier(const adapters::logging::Logger& log, ports::Notifier* hub) : log_(log), hub_(hub) {}
  void notify(const ports::Notification& n) override {
    log_.notify(n);
    if (hub_ != nullptr) hub_->notify(n);
  }

 private:
  adapters::logging::LogNotifier log_;
  ports::Notifier* hub_;
};

class CreateUserJobs {
 public:
  // The Redis URL decides the queue; `pipeline`, `hub` (may be null) and what they refer to must
  // outlive this object.
  CreateUserJobs(const config::Settings& settings, const app::CreateUserFromJob& pipeline,
                 const adapters::logging::Logger& log, ports::Notifier* hub = nullptr);
  ~CreateUserJobs() { stop(); }

  void start_worker();  // takes jobs from now on
  void stop();          // lets running jobs finish, then returns (idempotent)

  ports::JobQueue& queue() { return *queue_; }
  const app::SubmitCreateUserJob& submit() const { return submit_; }
  std::string description() const { return description_; }

 private:
  const adapters::logging::Logger& log_;
  std::unique_ptr<adapters::redis::Client> client_, blocking_;
  std::unique_ptr<adapters::redis::Subscriber> events_;  // the queue's `delayed` channel
  std::unique_ptr<ports::JobQueue> queue_;
  OutcomeNotifier notifier_;
  app::RunCreateUserJob run_;
  app::SubmitCreateUserJob submit_;
  adapters::jobs::JobWorkerOptions worker_options_;
  std::unique_ptr<adapters::jobs::JobWorker> worker_;
  std::string description_;
};

}  // namespace registrar
