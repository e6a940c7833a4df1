#pragma once
// The one composition root: turns validated Settings into wired adapters and use cases, and
// runs the chosen role until it is told to stop.
#include <string>
#include <vector>
#include "main/config.hpp"

namespace registrar {

// Resolves secrets, builds the role's object graph and runs it. `notes` are warnings from
// loading the settings, to be logged. Returns the process exit code.
int run(config::Settings settings, const std::vector<std::string>& notes);

}  // namespace registrar
