#pragma once

namespace registrar::adapters::sodium {

// Initializes libsodium once per process (thread-safe, idempotent). Every adapter that uses
// libsodium calls this before its first use; throws std::runtime_error if the library cannot
// start (e.g. no entropy source), since nothing secure can be done without it.
void ensure_sodium();

}  // namespace registrar::adapters::sodium
