#pragma once
// The Create_User job (issue 12): what the Node Create_User worker does, in the same order and with
// the same messages, on ports only. The queue adapters (Bull on Redis, in process) and the worker
// runner call it; they never look inside a job themselves.
//
//   token → code → protect the credentials → create the account → delete the code → notify
//
// Outcomes, and how a queue reports them (drop-in for the Node worker, which completes every job
// with `{id, success, message}`, so `await job.finished()` in a Node producer resolves with that
// object whatever happened):
//  - success, and the definitive refusals (session expired, wrong code, the credentials cannot be
//    protected, invalid job data): the job completes with `{id, success, message}` and is never
//    retried;
//  - a backend outage (ports::BackendUnavailable from the stores): the job is retried as its
//    `attempts`/`backoff` say; on its last attempt it completes with "Error processing job".
// Idempotent: the account carries the verification id (the job data's `id`), so a job run twice (a
// stalled job, a retry, the same data submitted again) finds the account of its first run and
// reports success again; no second account, no second user.registered event.
#include <optional>
#include <string>
#include <string_view>

#include "app/use_cases.hpp"
#include "domain/expected.hpp"
#include "ports/errors.hpp"
#include "ports/job_queue.hpp"
#include "ports/notifier.hpp"
#include "ports/pii_cipher.hpp"
#include "ports/token_service.hpp"
#include "ports/user_store.hpp"
#include "ports/verification_codes.hpp"

namespace registrar::app {

// The Node Create_User service's messages, exactly (DESIGN.md "Notifications over Socket.IO").
namespace create_user_messages {
inline constexpr std::string_view session_expired = "Session expired. Please log in again";
inline constexpr std::string_view code_incorrect = "The verification code is incorrect";
inline constexpr std::string_view encryption_failed = "Error encrypting your credentials. Please try again";
inline constexpr std::string_view created = "User created successfully";
inline constexpr std::string_view processing_error = "Error processing job";
}  // namespace create_user_messages

// The job's data as a Node producer writes it: {"id","token","code","phone","password","username",
// "image"}. `code` may be a JSON number (the Node worker compares String(code)).
struct CreateUserJob {
  std::string id, token, code, phone, password, username, image;
};

// The outcome a job ends with (the queue's return value): `{"id","success","message"}`, plus
// `"userId"` on success.
struct CreateUserOutcome {
  std::string id;
  bool success = false;
  std::string message;
  std::optional<std::string> user_id;
  std::string room;  // whom the notification is for (the session token's subject; "" if unknown)
};

// Parses a job's data. A value that is not a JSON object, or a field of the wrong type, gives the
// reason (for the log; never the values themselves).
domain::Expected<CreateUserJob, std::string> parse_create_user_job(std::string_view data_json);

// The job's data with the password, phone, token and code removed, and the outcome recorded under
// "outcome": what stays in the queue once the job has ended. A job whose data already holds an
// outcome ran to its end before (its worker died between recording and finishing): it finishes
// with that outcome again.
std::string ended_job_data(std::string_view data_json, const CreateUserOutcome& outcome);
std::optional<CreateUserOutcome> recorded_outcome(std::string_view data_json);

std::string outcome_json(const CreateUserOutcome& outcome);

// The verification-code store did not answer. With Redis configured it lives beside the queue (the
// in-process store never fails), so its outage is the queue's: RunCreateUserJob runs the job again
// rather than spend an attempt.
struct CodeStoreUnavailable : ports::BackendUnavailable {
  using ports::BackendUnavailable::BackendUnavailable;
};

struct CreateUserFromJob {
  ports::TokenService& tokens;
  ports::VerificationCodeStore& codes;
  ports::PiiCipher& keys;  // the code's keyed hash
  ports::UserStore& users;
  const CreateAccount& create_account;
  int max_wrong_tries = ports::CodeRules{}.max_wrong_tries;
  // Drop-in: accept session tokens of an existing issuer that shares the HS256 secret and does not
  // write our `typ` (then the token's subject is not required to be the job's id).
  bool accept_foreign_tokens = false;

  // Runs the pipeline. Returns the outcome for every definitive result; throws
  // ports::BackendUnavailable when a store is down (the queue retries the job).
  CreateUserOutcome operator()(const CreateUserJob& job) const;
};

// The job's end, for the queue adapters: the outcome to complete with for a job whose data cannot
// be read, and for the last attempt of a job that met an outage.
CreateUserOutcome processing_error_outcome(std::string_view job_id_or_data_id);

// One run of a Create_User job, as the worker runner calls it (adapters/jobs/JobWorker):
//  - a job that already recorded its outcome (it ended, but its worker died before finishing it)
//    completes with that outcome again;
//  - otherwise the pipeline runs; a definitive outcome is recorded in the job's data with the
//    password, phone, token and code removed (JobQueue::update_data), the user is notified, and the
//    job completes with `{id, success, message}`;
//  - an outage (ports::BackendUnavailable) retries the run while attempts are left, and on the last
//    one ends the job as above with "Error processing job";
//  - unless the outage is the code store's (beside the queue, in Redis), the queue itself does not
//    answer either, or the outcome cannot be recorded: then the run is repeated once the queue is
//    back (JobResult::rerun), without counting an attempt.
struct RunCreateUserJob {
  const CreateUserFromJob& pipeline;
  ports::JobQueue& queue;
  ports::Notifier& notifier;

  ports::JobResult operator()(const ports::Job& job) const;

 private:
  bool queue_answers(const ports::Job& job) const;
};

// POST /users: queues a Create_User job with the fields a Node producer would give (the JSON
// object as the client sent it, already checked to hold the fields with the right types) and the
// queue's default options; returns the job id.
struct SubmitCreateUserJob {
  ports::JobQueue& queue;
  ports::JobOptions options{};

  std::string operator()(std::string_view data_json) const { return queue.add(data_json, options); }
};

// GET /jobs/{id}: the job's state and, once it ended, its outcome — for the holder of the
// verification token of the job's session only (anyone else, and an unknown id: not_found, so job
// ids, which Bull numbers in sequence, reveal nothing).
struct JobView {
  ports::JobStatus status;
  std::optional<CreateUserOutcome> outcome;  // recorded when the job ended
};
struct GetCreateUserJob {
  ports::JobQueue& queue;
  ports::TokenService& tokens;
  bool accept_foreign_tokens = false;

  domain::Expected<JobView, domain::DomainError> operator()(std::string_view job_id, std::string_view bearer_token) const;
};

}  // namespace registrar::app
