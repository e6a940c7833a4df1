// registrar: parses and validates settings once, then hands them to the composition root.
#include <iostream>
#include <variant>

#include "adapters/sodium/hash_workers.hpp"
#include "main/composition.hpp"
#include "main/config_loader.hpp"
#include "main/dotenv.hpp"
#include "main/secrets.hpp"

extern char** environ;

int main(int argc, char** argv) {
  using namespace registrar;
  // A password-hashing worker started by the service itself (adapters/sodium/hash_workers.hpp):
  // no settings, no .env, no logging; it serves its socket until the service closes it.
  if (argc >= 2 && argv[1] == adapters::sodium::kHashWorkerCommand) return adapters::sodium::run_hash_worker(argc, argv);
  auto print_exit = [](const config::Exit& e) {
    if (!e.out.empty()) std::cout << e.out << std::flush;
    if (!e.err.empty()) std::cerr << e.err << (e.err.back() == '\n' ? "" : "\n");
    return e.code;
  };
  auto dotenv = dotenv::load_file(".env");
  if (!dotenv.ok()) {
    std::cerr << "registrar: " << dotenv.error << "\n";
    return 2;
  }
  auto loaded = config::load_settings(argc, argv, config::capture_environment(environ), dotenv.values);
  if (auto* exit = std::get_if<config::Exit>(&loaded)) return print_exit(*exit);
  auto& [settings, notes] = std::get<config::Loaded>(loaded);
  try {
    return run(settings, notes);
  } catch (const std::exception& e) {
    // Last resort: a start-up failure the composition root did not turn into a message itself.
    std::cerr << "registrar: " << e.what() << "\n";
    return 1;
  }
}
