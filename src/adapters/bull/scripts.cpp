#include "adapters/bull/scripts.hpp"

#include <stdexcept>
#include <string>

namespace registrar::adapters::bull {

const Script& script(std::string_view name) {
  for (const Script& s : all_scripts()) {
    if (name == s.name) return s;
  }
  throw std::out_of_range("bull " + std::string(kBullVersion) + " has no script " + std::string(name));
}

}  // namespace registrar::adapters::bull
