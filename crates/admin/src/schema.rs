//! `cpq-admin migrate` and `cpq-admin schema-status`, as the schema owner.

use anyhow::Context;
use cpq_config::Config;
use cpq_db::migrations::{self, MIGRATOR};

/// Applies pending migrations; re-running is a no-op.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    cpq_telemetry::init_tracing(&config.log)?;
    let pool = cpq_db::pool::owner_pool(&config.database, "cpq-admin")
        .await
        .with_context(|| {
            format!(
                "connecting to {}/{} as {}",
                config.database.host, config.database.name, config.database.owner_user
            )
        })?;
    let report = migrations::migrate(&pool).await.context("migrating");
    pool.close().await;
    let report = report?;
    if report.applied.is_empty() {
        println!(
            "schema is up to date at version {}",
            report.after.unwrap_or(0)
        );
    } else {
        for (version, description) in &report.applied {
            println!("applied {version} {description}");
        }
        println!(
            "schema version {} -> {}",
            report.before.map_or("none".to_owned(), |v| v.to_string()),
            report.after.unwrap_or(0)
        );
    }
    Ok(())
}

/// The applied and required schema versions and the pending migrations. Read-only.
pub async fn status(config: &Config) -> anyhow::Result<()> {
    let pool = cpq_db::pool::owner_pool(&config.database, "cpq-admin")
        .await
        .context("connecting")?;
    let status = migrations::schema_status(&pool).await;
    pool.close().await;
    let status = status?;
    println!(
        "applied: {}",
        status.applied.map_or("none".to_owned(), |v| v.to_string())
    );
    println!("required by this build: {}", status.required);
    for m in MIGRATOR
        .iter()
        .filter(|m| status.applied.is_none_or(|a| m.version > a))
    {
        println!("pending: {} {}", m.version, m.description);
    }
    match status.incompatibility() {
        Some(reason) => println!("status: behind: {reason}"),
        None => println!("status: compatible"),
    }
    Ok(())
}
