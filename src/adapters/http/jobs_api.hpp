#pragma once
// The Create_User jobs over HTTP, for clients that are not Node producers:
//   POST /users      {id, token, code, phone, password, username, image} → 202 {jobId}, Location
//   GET  /jobs/{id}  (Authorization: Bearer <the session's verification token>)
//                    → 200 {jobId, state, attemptsMade, finishedOn?, outcome?}
// Same queue as the worker's: the Bull queue on Redis when configured (a Node producer sees these
// jobs too), the in-process queue otherwise.
#include "adapters/http/router.hpp"
#include "adapters/threads/blocking_runner.hpp"
#include "app/create_user.hpp"

namespace registrar::adapters::http {

struct JobsApi {
  const app::SubmitCreateUserJob& submit;
  const app::GetCreateUserJob& get;
  threads::BlockingRunner& queue_io;  // queue calls block (Redis round trips)
};

void add_jobs_routes(Router& router, JobsApi api);

}  // namespace registrar::adapters::http
