//! `cpq-admin seed` and `cpq-admin generate-catalog`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use cpq_config::Config;
use cpq_core::TenantId;

use crate::cli::SeedWhat;

/// Loads a catalog as a published, active version; safe to repeat.
pub async fn seed(what: SeedWhat, config: &Config) -> anyhow::Result<()> {
    let (tenant, name, doc, from) = match what {
        SeedWhat::Demo {
            tenant,
            effective_from,
        } => (
            tenant,
            "demo-telecom".to_owned(),
            serde_json::from_str(cpq_catalog::seed::DEMO_TELECOM)?,
            effective_from,
        ),
        SeedWhat::File {
            tenant,
            path,
            name,
            effective_from,
        } => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            (
                tenant,
                name,
                serde_json::from_str(&text)
                    .with_context(|| format!("{} is not a catalog document", path.display()))?,
                effective_from,
            )
        }
    };
    let tenant = TenantId::parse(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {}", e.detail))?;
    let from: chrono::DateTime<chrono::Utc> =
        from.parse().context("--effective-from must be RFC 3339")?;
    let pool = cpq_db::pool::app_pool(&config.database, "cpq-admin");
    let seeded = cpq_catalog::seed::seed(&pool, &tenant, &name, &doc, from, "cpq-admin").await;
    pool.close().await;
    match seeded {
        Ok(cpq_catalog::seed::Seeded::Loaded {
            id,
            label,
            effective_from,
        }) => println!(
            "loaded catalog {label} ({id}) for tenant {tenant}, active from {effective_from}"
        ),
        Ok(cpq_catalog::seed::Seeded::AlreadyLoaded { id, label }) => {
            println!("catalog {label} ({id}) is already loaded for tenant {tenant}")
        }
        Err(cpq_core::Error::Validation { errors }) => {
            for e in &errors {
                eprintln!("  {} [{}] {}", e.field, e.code, e.detail);
            }
            bail!("the catalog does not publish: {} problem(s)", errors.len());
        }
        Err(e) => bail!("{e}"),
    }
    Ok(())
}

/// Writes a synthetic catalog document (benchmarks, load tests) to `out` or standard output.
pub fn generate(spec: cpq_catalog::synthetic::Spec, out: Option<PathBuf>) -> anyhow::Result<()> {
    let text = serde_json::to_string(&cpq_catalog::synthetic::generate(spec))?;
    match out {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?
        }
        None => println!("{text}"),
    }
    Ok(())
}
