#include "app/create_user.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "app/verification.hpp"
#include "domain/credentials.hpp"
#include "ports/errors.hpp"

namespace registrar::app {

namespace json = boost::json;
namespace msg = create_user_messages;

namespace {

// The fields of a job's data that hold secrets or personal data: gone once the job has ended.
constexpr std::string_view kSecretFields[] = {"token", "code", "phone", "password"};

CreateUserOutcome outcome(std::string id, bool success, std::string_view message, std::string room = {}) {
  CreateUserOutcome o;
  o.id = std::move(id);
  o.success = success;
  o.message = std::string(message);
  o.room = std::move(room);
  return o;
}

}  // namespace

domain::Expected<CreateUserJob, std::string> parse_create_user_job(std::string_view data_json) {
  boost::system::error_code ec;
  json::value v = json::parse(data_json, ec);
  if (ec) return domain::make_error<CreateUserJob>(std::string("job data is not JSON"));
  const json::object* o = v.if_object();
  if (o == nullptr) return domain::make_error<CreateUserJob>(std::string("job data is not a JSON object"));
  CreateUserJob job;
  struct Field {
    std::string_view name;
    std::string* out;
  };
  const Field fields[] = {{"id", &job.id},         {"token", &job.token},       {"code", &job.code},
                          {"phone", &job.phone},   {"password", &job.password}, {"username", &job.username},
                          {"image", &job.image}};
  for (const auto& [name, out] : fields) {
    const json::value* f = o->if_contains(name);
    if (f == nullptr || f->is_null()) continue;  // missing: empty (the checks below refuse what must be there)
    if (const auto* s = f->if_string()) {
      *out = std::string(*s);
    } else if (name == "code" && (f->is_int64() || f->is_uint64())) {
      // The Node worker compares String(code): a producer may send the digits as a number. A number
      // loses leading zeros, as it does there.
      *out = f->is_int64() ? std::to_string(f->get_int64()) : std::to_string(f->get_uint64());
    } else {
      return domain::make_error<CreateUserJob>("job data field \"" + std::string(name) + "\" is not a string");
    }
  }
  return job;
}

std::string outcome_json(const CreateUserOutcome& o) {
  json::object out;
  out["id"] = o.id;
  out["success"] = o.success;
  out["message"] = o.message;
  if (o.user_id) out["userId"] = *o.user_id;
  return json::serialize(out);
}

std::string ended_job_data(std::string_view data_json, const CreateUserOutcome& o) {
  boost::system::error_code ec;
  json::value v = json::parse(data_json, ec);
  json::object data;
  if (!ec && v.is_object()) data = std::move(v.as_object());
  for (auto field : kSecretFields) data.erase(field);
  json::object recorded;
  recorded["success"] = o.success;
  recorded["message"] = o.message;
  if (o.user_id) recorded["userId"] = *o.user_id;
  if (!o.room.empty()) recorded["room"] = o.room;
  data["outcome"] = std::move(recorded);
  return json::serialize(data);
}

std::optional<CreateUserOutcome> recorded_outcome(std::string_view data_json) {
  boost::system::error_code ec;
  json::value v = json::parse(data_json, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const json::object& data = v.as_object();
  const json::value* rec = data.if_contains("outcome");
  if (rec == nullptr || !rec->is_object()) return std::nullopt;
  const json::object& r = rec->as_object();
  const json::value* success = r.if_contains("success");
  const json::value* message = r.if_contains("message");
  if (success == nullptr || !success->is_bool() || message == nullptr || !message->is_string()) return std::nullopt;
  CreateUserOutcome o;
  if (const auto* id = data.if_contains("id"); id != nullptr && id->is_string()) o.id = std::string(id->get_string());
  o.success = success->get_bool();
  o.message = std::string(message->get_string());
  if (const auto* u = r.if_contains("userId"); u != nullptr && u->is_string()) o.user_id = std::string(u->get_string());
  if (const auto* room = r.if_contains("room"); room != nullptr && room->is_string()) o.room = std::string(room->get_string());
  return o;
}

CreateUserOutcome processing_error_outcome(std::string_view id) { return outcome(std::string(id), false, msg::processing_error); }

namespace {
// Runs a call on the code store; its outage becomes CodeStoreUnavailable.
template <typename F>
auto on_code_store(F&& call) -> decltype(call()) {
  try {
    return call();
  } catch (const ports::BackendUnavailable& e) {
    throw CodeStoreUnavailable(e.what());
  }
}
}  // namespace

CreateUserOutcome CreateUserFromJob::operator()(const CreateUserJob& job) const {
  // 1. The session token: ours (a verification token for this very session), or, in drop-in mode,
  //    one of the existing issuer. An access token, an expired or tampered one: the session is over.
  auto verified = tokens.verify(job.token, ports::TokenType::verification);
  if (!verified || job.id.empty() || (!accept_foreign_tokens && verified->subject != job.id))
    return outcome(job.id, false, msg::session_expired);
  const std::string room = verified->subject;

  // A job run before (a stall, a retry after the account was written, the same data again): the
  // account of that run is the answer, and its code is gone already or goes now.
  if (auto existing = users.find_by_verification_id(job.id)) {
    on_code_store([&] { codes.consume(job.id); });
    auto o = outcome(job.id, true, msg::created, room);
    o.user_id = existing->id;
    return o;
  }

  // 2. The code, by its keyed hash; a wrong one counts against the session's tries.
  if (job.code.empty()) return outcome(job.id, false, msg::code_incorrect, room);
  const auto checked = on_code_store([&] { return codes.check(job.id, code_hash(keys, job.id, job.code), max_wrong_tries); });
  if (checked.outcome != ports::CheckOutcome::match) return outcome(job.id, false, msg::code_incorrect, room);

  // 3 and 4. Protect the credentials (argon2id hash, sealed phone) and create the account, in
  // CreateAccount like every account. The job's data was not checked by anyone before: invalid
  // values end the job as the Node worker ends an insert that fails.
  auto phone = domain::Phone::parse(job.phone);
  if (!phone) return outcome(job.id, false, msg::processing_error, room);
  CreateAccountCommand cmd;
  cmd.username = job.username;
  cmd.password = job.password;
  cmd.phone = std::move(*phone);
  cmd.image = job.image;
  cmd.verification_id = job.id;
  std::optional<domain::Expected<Account, domain::DomainError>> account;
  try {
    account.emplace(create_account(cmd));
  } catch (const ports::KeyUnavailable&) {
    return outcome(job.id, false, msg::encryption_failed, room);
  }
  if (!*account) return outcome(job.id, false, msg::processing_error, room);

  // 5. The code is spent. 6. The caller notifies (after the queue has recorded the outcome).
  on_code_store([&] { codes.consume(job.id); });
  auto o = outcome(job.id, true, msg::created, room);
  o.user_id = (*account)->user.id;
  return o;
}

bool RunCreateUserJob::queue_answers(const ports::Job& job) const {
  try {
    queue.extend_lock(job);  // false (the lock is lost) is an answer too: the queue is up
    return true;
  } catch (const ports::BackendUnavailable&) {
    return false;
  }
}

ports::JobResult RunCreateUserJob::operator()(const ports::Job& job) const {
  if (auto again = recorded_outcome(job.data)) return ports::JobResult::completed(outcome_json(*again));

  const auto end = [&](CreateUserOutcome o) {
    // Recorded (and the secrets gone) before the notification and before the queue finishes it.
    // The queue down here: the run is repeated once it answers (the pipeline is idempotent: the
    // account of this run answers then), so nobody is notified of an outcome not recorded.
    try {
      queue.update_data(job, ended_job_data(job.data, o));
    } catch (const ports::BackendUnavailable&) {
      return ports::JobResult::rerun("the outcome could not be recorded: the queue is unavailable");
    }
    if (!o.room.empty()) notifier.notify(ports::Notification{o.room, o.id, o.success, o.message});
    return ports::JobResult::completed(outcome_json(o));
  };

  auto parsed = parse_create_user_job(job.data);
  if (!parsed) return end(processing_error_outcome(""));
  try {
    return end(pipeline(*parsed));
  } catch (const CodeStoreUnavailable&) {
    // The codes live beside the queue (Redis holds both): whether or not it answers again by now,
    // this run met the queue's own outage, which would burn an attempt that nobody could record.
    // It runs again (idempotent) when the queue answers.
    return ports::JobResult::rerun("the code store (beside the queue) is unavailable");
  } catch (const ports::BackendUnavailable&) {
    // Another store's outage (the database): Bull's retry, as the Node worker — unless the queue
    // does not answer either.
    if (!queue_answers(job)) return ports::JobResult::rerun("a store and the queue are unavailable");
    const int attempts = std::max(1, job.options.attempts);
    if (job.attempts_made + 1 < attempts) return ports::JobResult::retry(std::string(msg::processing_error));
    auto o = processing_error_outcome(parsed->id);
    // The room of a session whose token we could read; the pipeline may have stopped before it.
    if (auto v = pipeline.tokens.verify(parsed->token, ports::TokenType::verification)) o.room = v->subject;
    return end(std::move(o));
  }
}

domain::Expected<JobView, domain::DomainError> GetCreateUserJob::operator()(std::string_view job_id,
                                                                          std::string_view bearer_token) const {
  const auto not_found = [] {
    return domain::make_error<JobView>(domain::DomainError{domain::ErrorKind::not_found, "No such job", {}});
  };
  auto token = tokens.verify(bearer_token, ports::TokenType::verification);
  if (!token) {
    return domain::make_error<JobView>(
        domain::DomainError{domain::ErrorKind::unauthenticated, "A verification token is required", {}});
  }
  auto status = queue.status(job_id);
  if (!status) return not_found();
  // Whose job: the data's `id` (kept when the secrets are scrubbed) is the session id.
  std::string session;
  boost::system::error_code ec;
  json::value data = json::parse(status->data, ec);
  if (!ec && data.is_object()) {
    if (const auto* id = data.as_object().if_contains("id"); id != nullptr && id->is_string()) session = std::string(id->get_string());
  }
  if (session.empty() || (session != token->subject && !accept_foreign_tokens)) return not_found();
  JobView view;
  view.outcome = recorded_outcome(status->data);
  view.status = std::move(*status);
  view.status.data.clear();  // the job's own fields never leave (a password until the job ends)
  return view;
}

}  // namespace registrar::app
