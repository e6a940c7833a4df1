#include "app/schema_plan.hpp"

#include <string>

namespace registrar::app {

SchemaTooNew::SchemaTooNew(int database_version, int known_version)
    : std::runtime_error("the database schema is at version " + std::to_string(database_version) +
                         ", newer than the " + std::to_string(known_version) +
                         " this registrar knows; run a registrar at least as new as the one that migrated it"),
      database_version_(database_version),
      known_version_(known_version) {}

void SchemaPlan::check_numbering(std::string_view adapter) const {
  for (std::size_t i = 0; i < versions_.size(); ++i)
    if (versions_[i] != static_cast<int>(i) + 1)
      throw std::logic_error(std::string(adapter) + " migrations must be numbered 1, 2, 3, … without gaps");
}

void SchemaPlan::refuse_newer(int current) const {
  if (current > latest()) throw SchemaTooNew(current, latest());
}

}  // namespace registrar::app
