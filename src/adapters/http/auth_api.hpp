#pragma once
// The sign-up API's routes: POST /auth/register, POST /auth/login, GET /users/me,
// GET /healthz, GET /readyz.
#include <functional>
#include "adapters/threads/blocking_runner.hpp"
#include "adapters/http/router.hpp"
#include "app/use_cases.hpp"

namespace registrar::adapters::http {

struct AuthApi {
  const app::RegisterUser& register_user;
  const app::Login& login;
  const app::CurrentUser& current_user;
  threads::BlockingRunner& cpu;    // argon2 work (register, login)
  threads::BlockingRunner& store;  // store reads (inline for embedded SQLite, a pool for network databases)
  std::function<void()> readiness_check;  // throws ports::BackendUnavailable when not ready
};

void add_auth_routes(Router& router, AuthApi api);

}  // namespace registrar::adapters::http
