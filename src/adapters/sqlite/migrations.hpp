#pragma once
// Versioned schema migrations for the SQLite adapter.
//
// Each migration has a version (1, 2, 3, … with no gaps), a name and a script. Applied versions are
// recorded in `schema_migrations(version, name, applied_at)`. Each migration runs in its own
// BEGIN IMMEDIATE transaction together with its bookkeeping row, so a crash leaves the schema at
// a whole version, and two processes migrating at once apply each migration once. Migrations are
// never edited once released: a change is a new migration.
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/sqlite/database.hpp"
#include "app/schema_plan.hpp"

namespace registrar::adapters::sqlite {

// Shared by every adapter's migrations (app/schema_plan.hpp), also named here.
using app::AppliedMigration;
using app::SchemaTooNew;

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;  // one or more statements; no PRAGMA (not transactional)
};

// This binary's migrations, in order.
std::span<const Migration> builtin_migrations();

// The highest version applied to the database (0 for a new database).
int schema_version(SqliteDatabase& db);

// Applies the migrations the database does not have yet, in order, and returns them (empty if the
// schema was current). Throws SchemaTooNew if the database is ahead of `migrations`.
std::vector<AppliedMigration> apply_migrations(SqliteDatabase& db,
                                               std::span<const Migration> migrations = builtin_migrations());

// A migration-like step outside the numbered migrations, because it cannot run in a transaction:
// switches the database file to PRAGMA auto_vacuum = INCREMENTAL, so that the retention sweep's
// PRAGMA incremental_vacuum gives the pages freed by its deletes back to the file system. A new
// (empty) file switches at once; an existing one is rebuilt by one VACUUM, which holds the write
// lock for as long as copying the database takes and needs free disk of about its size (WAL mode:
// the copy goes through the -wal file). Done once: later calls see the mode and return false.
// Returns true if it rebuilt an existing file (VACUUM), false if there was nothing to do or the
// file had no tables yet.
bool ensure_incremental_vacuum(SqliteDatabase& db);

}  // namespace registrar::adapters::sqlite
