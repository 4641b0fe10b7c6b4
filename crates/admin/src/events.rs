//! `cpq-admin topics apply|verify|drift`, `cpq-admin dead-letters list|replay` and
//! `cpq-admin replay` (rebuild a projection from its topics).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Subcommand;
use cpq_config::{Config, KafkaConfig};
use cpq_events::catalogue::Catalogue;
use cpq_events::dead_letter::{read_dead_letters, replay_dead_letters};
use cpq_events::projections::Projection;
use cpq_events::replay::{replay as replay_projection, ReplayOptions};
use cpq_events::topics::Cluster;

#[derive(Subcommand)]
pub enum TopicsWhat {
    /// Create missing topics, add partitions, set retention and cleanup policy. Never deletes.
    Apply {
        #[arg(long)]
        catalogue: Option<PathBuf>,
    },
    /// Exit non-zero unless every catalogue topic exists as the catalogue says.
    Verify {
        #[arg(long)]
        catalogue: Option<PathBuf>,
    },
    /// Report every difference between the catalogue and the cluster (unmanaged topics too);
    /// exit non-zero when there is one.
    Drift {
        #[arg(long)]
        catalogue: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum DeadLettersWhat {
    /// Every dead letter, one JSON object per line (headers and payload).
    List,
    /// Apply a consumer's dead letters again (through its inbox: nothing is applied twice).
    Replay {
        /// quote-search-projection or audit-export.
        #[arg(long)]
        consumer: String,
        /// Only this event.
        #[arg(long)]
        event_id: Option<String>,
    },
}

fn kafka(config: &Config) -> anyhow::Result<KafkaConfig> {
    let k = config
        .kafka
        .clone()
        .context("the configuration has no [kafka] section")?;
    k.check_credentials().map_err(anyhow::Error::msg)?;
    Ok(k)
}

fn catalogue(path: Option<PathBuf>) -> anyhow::Result<Catalogue> {
    Ok(match path {
        Some(p) => Catalogue::load(&p)?,
        None => Catalogue::shipped()?,
    })
}

pub async fn topics(what: TopicsWhat, config: &Config) -> anyhow::Result<()> {
    let k = kafka(config)?;
    let cluster = Cluster::connect(&k)?;
    match what {
        TopicsWhat::Apply { catalogue: path } => {
            let c = catalogue(path)?;
            let done = cluster.apply(&c).await?;
            if done.is_empty() {
                println!("the cluster already matches the catalogue");
            }
            for d in done {
                println!("{d}");
            }
        }
        TopicsWhat::Verify { catalogue: path } => {
            let c = catalogue(path)?;
            let broken: Vec<_> = cluster
                .drift(&c)
                .await?
                .into_iter()
                .filter(|d| d.breaks_contract())
                .collect();
            for d in &broken {
                println!("{d}");
            }
            if !broken.is_empty() {
                bail!("{} topic(s) do not match the catalogue", broken.len());
            }
            println!("every catalogue topic matches ({} topics)", c.topics.len());
        }
        TopicsWhat::Drift { catalogue: path } => {
            let c = catalogue(path)?;
            let drift = cluster.drift(&c).await?;
            for d in &drift {
                println!("{d}");
            }
            if !drift.is_empty() {
                bail!(
                    "{} difference(s) between the catalogue and the cluster",
                    drift.len()
                );
            }
            println!("no drift");
        }
    }
    Ok(())
}

pub async fn dead_letters(what: DeadLettersWhat, config: &Config) -> anyhow::Result<()> {
    let k = kafka(config)?;
    match what {
        DeadLettersWhat::List => {
            for l in read_dead_letters(&k, Duration::from_secs(60)).await? {
                println!("{}", serde_json::to_string(&l)?);
            }
        }
        DeadLettersWhat::Replay { consumer, event_id } => {
            let projection = Projection::parse(&consumer)
                .with_context(|| format!("unknown consumer \"{consumer}\""))?;
            let pool = cpq_db::pool::app_pool(&config.database, "cpq-admin");
            let report = replay_dead_letters(&pool, &k, projection, event_id.as_deref()).await;
            pool.close().await;
            let report = report?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.still_failing.is_empty() {
                bail!("{} dead letter(s) still fail", report.still_failing.len());
            }
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// quote-search-projection or audit-export.
    #[arg(long)]
    consumer: String,
    /// Events read and applied per second, at most.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Do everything in a transaction that is rolled back: report, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// After comparing, merge the rebuild into the live projection.
    #[arg(long)]
    swap: bool,
    /// Give up when the topics are not read to their end within this many seconds.
    #[arg(long, default_value_t = 600)]
    deadline_seconds: u64,
}

/// Rebuilds a projection from its topics, compares it with the live one and, on `--swap`, merges
/// it in. Exits non-zero when they differ and were not merged, or when an event failed.
pub async fn replay(args: ReplayArgs, config: &Config) -> anyhow::Result<()> {
    let k = kafka(config)?;
    let projection = Projection::parse(&args.consumer)
        .with_context(|| format!("unknown consumer \"{}\"", args.consumer))?;
    let opts = ReplayOptions {
        rate_per_second: args.rate,
        dry_run: args.dry_run,
        merge: args.swap,
        deadline: Duration::from_secs(args.deadline_seconds),
    };
    let owner = cpq_db::pool::owner_pool(&config.database, "cpq-admin")
        .await
        .context("connecting as the schema owner")?;
    let report = replay_projection(&owner, &k, &Catalogue::shipped()?, projection, &opts).await;
    owner.close().await;
    let report = report?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    if !report.failed.is_empty() {
        bail!("{} event(s) could not be applied", report.failed.len());
    }
    if !report.matches() && report.merged.is_none() {
        bail!(
            "the rebuild differs from the live projection ({} rows differ, {} only live, {} only rebuilt); run again with --swap to merge it",
            report.differing_count,
            report.only_live,
            report.only_rebuild
        );
    }
    Ok(())
}
