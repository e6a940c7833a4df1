#include "main/create_user_jobs.hpp"

#include <algorithm>
#include <thread>

namespace registrar {

namespace {

std::unique_ptr<adapters::redis::Client> redis_client(const config::Settings& s, const char* name) {
  if (s.redis_url.empty()) return nullptr;
  adapters::redis::ClientOptions options;
  options.client_name = std::string("registrar-") + name;
  return std::make_unique<adapters::redis::Client>(adapters::redis::Url::parse(s.redis_url), options);
}

std::unique_ptr<adapters::redis::Subscriber> redis_subscriber(const config::Settings& s) {
  if (s.redis_url.empty()) return nullptr;
  adapters::redis::ClientOptions options;
  options.client_name = "registrar-jobs-events";
  return std::make_unique<adapters::redis::Subscriber>(adapters::redis::Url::parse(s.redis_url), options);
}

std::unique_ptr<ports::JobQueue> make_queue(const config::Settings& s, adapters::redis::Client* client,
                                            adapters::redis::Client* blocking, adapters::redis::Subscriber* events) {
  if (client == nullptr) return std::make_unique<adapters::inproc::InProcessJobQueue>();
  adapters::bull::BullQueueOptions options;
  options.prefix = s.jobs.bull_prefix;
  options.queue = s.jobs.bull_queue;
  options.stalled_interval = s.jobs.stalled_interval;
  options.lock_duration = s.jobs.lock_duration;
  return std::make_unique<adapters::bull::BullQueue>(*client, *blocking, options, events);
}

ports::JobOptions default_job_options(const config::Jobs& j) {
  ports::JobOptions o;
  o.attempts = j.attempts;
  o.backoff_type = j.backoff_type;
  o.backoff_delay = j.backoff_delay;
  return o;
}

}  // namespace

CreateUserJobs::CreateUserJobs(const config::Settings& settings, const app::CreateUserFromJob& pipeline,
                               const adapters::logging::Logger& log, ports::Notifier* hub)
    : log_(log),
      client_(redis_client(settings, "jobs")),
      blocking_(redis_client(settings, "jobs-take")),
      events_(redis_subscriber(settings)),
      queue_(make_queue(settings, client_.get(), blocking_.get(), events_.get())),
      notifier_(log, hub),
      run_{.pipeline = pipeline, .queue = *queue_, .notifier = notifier_},
      submit_{.queue = *queue_, .options = default_job_options(settings.jobs)} {
  // Jobs wait mostly on Redis and the database; the hasher keeps argon2 itself to its own concurrency.
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  worker_options_.concurrency = static_cast<int>(settings.jobs.effective_concurrency(cores));
  worker_options_.lock_renew_interval = settings.jobs.lock_duration / 2;
  description_ = client_ ? "bull " + settings.jobs.bull_prefix + ":" + settings.jobs.bull_queue + " on " +
                               adapters::redis::Url::parse(settings.redis_url).redacted()
                         : "in-process";
}

void CreateUserJobs::start_worker() {
  if (worker_) return;
  worker_ = std::make_unique<adapters::jobs::JobWorker>(*queue_, [this](const ports::Job& job) { return run_(job); }, log_,
                                                        worker_options_);
  worker_->start();
}

void CreateUserJobs::stop() {
  if (worker_) worker_->stop();
}

}  // namespace registrar
