#pragma once
#include <stdexcept>

namespace registrar::ports {

// Infrastructure failures are exceptions, caught at the edge (HTTP → 503 + Retry-After).
// A backend that cannot be reached or timed out: the operation was not applied (transactions
// roll back), and retrying later may succeed.
struct BackendUnavailable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Too much work queued already (admission control): the caller should retry later.
struct Overloaded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace registrar::ports
