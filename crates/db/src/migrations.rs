//! The SQL migrations in `migrations/`, embedded in every binary. Forward-only; applied only by
//! `cpq-admin migrate`, never on a service's start. A service compares what the database has
//! applied with what it needs and reports not-ready when the database is behind.

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::PgPool;

use crate::timed;

pub static MIGRATOR: Migrator = sqlx::migrate!("../../migrations");

/// The newest migration this binary was built with: the schema version it needs.
pub fn required_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Newest successfully applied migration; `None` when nothing has been applied.
    pub applied: Option<i64>,
    pub required: i64,
    /// Migrations that started and failed (the database needs an operator).
    pub failed: Vec<i64>,
}

impl SchemaStatus {
    /// `None` when this binary can run against the schema; otherwise why not. A schema newer than
    /// the binary is compatible: migrations are expand-first, so the previous release keeps
    /// working during a rollout.
    pub fn incompatibility(&self) -> Option<String> {
        if !self.failed.is_empty() {
            return Some(format!(
                "migration(s) {:?} failed part-way; repair the database before serving",
                self.failed
            ));
        }
        match self.applied {
            None => Some(format!(
                "database schema has no migrations applied; this binary needs version {} (run `cpq-admin migrate`)",
                self.required
            )),
            Some(v) if v < self.required => Some(format!(
                "database schema version {v} is older than version {} that this binary needs (run `cpq-admin migrate`)",
                self.required
            )),
            Some(_) => None,
        }
    }
}

/// Reads the applied migrations. Works for the application role (it may read the table).
pub async fn schema_status(pool: &PgPool) -> Result<SchemaStatus, sqlx::Error> {
    let rows: Result<Vec<(i64, bool)>, sqlx::Error> = timed(
        "schema_migrations_fetch",
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations").fetch_all(pool),
    )
    .await;
    let rows = match rows {
        Ok(rows) => rows,
        // 42P01: undefined_table: nothing was ever migrated.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("42P01") => Vec::new(),
        Err(e) => return Err(e),
    };
    Ok(SchemaStatus {
        applied: rows.iter().filter(|(_, ok)| *ok).map(|(v, _)| *v).max(),
        required: required_version(),
        failed: rows
            .iter()
            .filter(|(_, ok)| !*ok)
            .map(|(v, _)| *v)
            .collect(),
    })
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub applied: Vec<(i64, String)>,
}

/// Applies every pending migration as the schema owner. Re-running is a no-op.
pub async fn migrate(owner: &PgPool) -> Result<MigrationReport, MigrateError> {
    run(&MIGRATOR, owner).await
}

/// Applies the migrations of `migrator`, which may be a prefix of [`MIGRATOR`] in tests that need
/// an old schema.
pub async fn run(migrator: &Migrator, owner: &PgPool) -> Result<MigrationReport, MigrateError> {
    let before = schema_status(owner).await?.applied;
    migrator.run(owner).await?;
    let after = schema_status(owner).await?.applied;
    let applied = migrator
        .iter()
        .filter(|m| before.is_none_or(|b| m.version > b) && after.is_some_and(|a| m.version <= a))
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    Ok(MigrationReport {
        before,
        after,
        applied,
    })
}
