#pragma once
// Versioned schema migrations for the MySQL/MariaDB adapter: the same versions and names as the
// SQLite adapter's (adapters/sqlite/migrations.hpp), in MySQL's dialect.
//
// Applied versions are recorded in `schema_migrations(version, name, applied_at)`. MySQL commits
// DDL implicitly (a migration cannot be one transaction with its bookkeeping), so:
//  - the whole run holds an advisory lock (GET_LOCK, named after the database): two processes
//    starting at once apply each migration once, the second waits and then finds nothing to do;
//  - each migration is recorded right after its statements succeed;
//  - migration statements are written to be re-runnable (CREATE TABLE IF NOT EXISTS, indexes
//    inside CREATE TABLE), so a crash between a migration and its record is repaired by running
//    the migration again.
// Migrations are never edited once released: a change is a new migration (in both adapters).
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/mysql/pool.hpp"
#include "app/schema_plan.hpp"

namespace registrar::adapters::mysql {

// Shared by every adapter's migrations (app/schema_plan.hpp), also named here.
using app::AppliedMigration;
using app::SchemaTooNew;

struct Migration {
  int version;
  std::string_view name;
  // One constant statement each, run over the text protocol: the server cannot prepare some DDL
  // (CREATE PROCEDURE), and migrations carry no values.
  std::span<const std::string_view> statements;
};

// This binary's migrations, in order.
std::span<const Migration> builtin_migrations();

// The highest version applied to the database (0 for a new database).
int schema_version(MysqlPool& pool);

// Applies the migrations the database does not have yet, in order, under the migration lock, and
// returns them (empty if the schema was current). Throws SchemaTooNew if the database is ahead of
// `migrations`, BackendUnavailable if the server cannot be used or the lock is not obtained within
// options().migration_lock_timeout, MysqlError if a migration statement fails.
std::vector<AppliedMigration> apply_migrations(MysqlPool& pool,
                                               std::span<const Migration> migrations = builtin_migrations());

}  // namespace registrar::adapters::mysql
