#pragma once
// Versioned schema migrations, the part every database adapter shares: what a migration run
// reports, the error for a database newer than the binary, and the version arithmetic. Each
// adapter (adapters/sqlite/migrations.hpp, adapters/mysql/migrations.hpp) keeps its own SQL,
// bookkeeping table, locking and transactions.
//
// A migration list is numbered 1, 2, 3, … without gaps; its last version is the schema version the
// binary knows. A database records the versions applied to it; its schema version is the highest
// (0 for a new database). Migrations are never edited once released: a change is a new migration.
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace registrar::app {

// A migration a run applied.
struct AppliedMigration {
  int version;
  std::string name;
  bool operator==(const AppliedMigration&) const = default;
};

// The database was migrated by a newer registrar than this one: running against it could corrupt
// data the newer schema relies on, so the binary refuses to start.
class SchemaTooNew : public std::runtime_error {
 public:
  SchemaTooNew(int database_version, int known_version);
  int database_version() const { return database_version_; }
  int known_version() const { return known_version_; }

 private:
  int database_version_, known_version_;
};

// The version checks of a migration list, from its versions alone.
class SchemaPlan {
 public:
  // From any list of migrations with an `int version` member, in order.
  template <class Migration>
  static SchemaPlan of(std::span<const Migration> migrations) {
    std::vector<int> versions;
    versions.reserve(migrations.size());
    for (const auto& m : migrations) versions.push_back(m.version);
    return SchemaPlan(std::move(versions));
  }
  explicit SchemaPlan(std::vector<int> versions) : versions_(std::move(versions)) {}

  // Throws std::logic_error unless the list is numbered 1, 2, 3, … without gaps (`adapter` names
  // the list in the message).
  void check_numbering(std::string_view adapter) const;

  // The schema version the list brings a database to (0 for an empty list).
  int latest() const { return versions_.empty() ? 0 : versions_.back(); }

  // Throws SchemaTooNew if a database at version `current` is ahead of the list.
  void refuse_newer(int current) const;

  // Whether the migration `version` is still to be applied to a database at version `current`.
  static bool pending(int version, int current) { return version > current; }

 private:
  std::vector<int> versions_;
};

}  // namespace registrar::app
