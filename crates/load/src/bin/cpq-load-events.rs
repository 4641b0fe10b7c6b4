//! `cpq-load-events`: measures the event backbone through the real components: PostgreSQL (a
//! scratch database of its own on the configured server, migrated with the platform's migrations
//! and dropped at the end), the broker in `[kafka]` (a unique topic namespace) and the platform's
//! own relay and consumer code, in this process. Events are written as a producer writes them:
//! `cpq_audit::record` in one transaction with their audit record. It uses no test support.
//!
//! 1. Relay throughput: a backlog of `--backlog` events is written, then one relay drains it.
//! 2. Commit to acknowledgement: writers commit one event per transaction at `--rate` events/s
//!    for `--seconds` while the relay runs; for each event, the time from just before its
//!    transaction commits to the broker's acknowledgement (the relay stamps `published_at` as
//!    acknowledgements arrive, every `mark_every` of them and at the end of a cycle):
//!    p50/p95/p99/max, and the rate achieved.
//! 3. Consumer throughput: the audit-export consumer applies every event (inbox row and export
//!    row in one transaction, offset stored after it).
//! 4. Inbox dedupe: every event is published again (the relay's redelivery) and the same consumer
//!    group receives them all as duplicates, which the inbox absorbs.
//!
//! Run from the repository root with the stack up (`scripts/up.sh` or `scripts/test.sh`):
//! `cargo run --release -p cpq-load --bin cpq-load-events -- --rate 1000 --seconds 30`. The
//! configuration is the `local` one unless `CPQ_ENV` names another (`CPQ_*` variables override).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::TenantId;
use cpq_events::catalogue::Catalogue;
use cpq_events::consumer::{ConsumerOptions, Consumers};
use cpq_events::projections::Projection;
use cpq_events::relay::{Relay, RelayOptions};
use cpq_events::topics::Cluster;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};
use tokio::sync::watch;
use uuid::Uuid;

#[derive(Parser)]
#[command(
    name = "cpq-load-events",
    about = "Relay and consumer throughput, commit-to-ack latency"
)]
struct Args {
    /// Events in the backlog the relay drains (phase 1).
    #[arg(long, default_value_t = 20_000)]
    backlog: usize,
    /// Events per second committed while the relay runs (phase 2).
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Length of phase 2.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// Concurrent writers in phase 2.
    #[arg(long, default_value_t = 8)]
    writers: u32,
}

/// The configuration: `CPQ_ENV` (default `local`) from `config/`, then `CPQ_*` variables.
fn config() -> anyhow::Result<cpq_config::Config> {
    let env = std::env::var("CPQ_ENV").unwrap_or_else(|_| "local".to_owned());
    cpq_config::load(&cpq_config::Sources::from_process(Some(env), None))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// As the schema owner, without the application's statement timeout (the redelivery phase
/// updates every outbox row at once).
fn owner_options(config: &cpq_config::DatabaseConfig, database: &str) -> PgConnectOptions {
    PgConnectOptions::new()
        .host(&config.host)
        .port(config.port)
        .username(&config.owner_user)
        .password(config.owner_password.expose())
        .database(database)
        .disable_statement_logging()
}

/// A database of this run's own on the configured server, with every migration applied.
struct ScratchDb {
    name: String,
    config: cpq_config::DatabaseConfig,
}

impl ScratchDb {
    async fn create(config: &cpq_config::DatabaseConfig) -> anyhow::Result<ScratchDb> {
        let name = format!("cpq_load_{}", Uuid::new_v4().simple());
        let mut conn = owner_options(config, "postgres")
            .connect()
            .await
            .with_context(|| format!("connecting to PostgreSQL as {}", config.owner_user))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .with_context(|| format!("creating {name}"))?;
        conn.close().await.ok();
        let mut config = config.clone();
        config.name = name.clone();
        let db = ScratchDb { name, config };
        match db.migrate().await {
            Ok(()) => Ok(db),
            Err(e) => {
                let name = db.name.clone();
                db.drop_database().await.ok();
                Err(e.context(format!("migrating {name}")))
            }
        }
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        let owner = self.owner_pool().await?;
        cpq_db::migrations::migrate(&owner).await?;
        owner.close().await;
        Ok(())
    }

    async fn owner_pool(&self) -> anyhow::Result<PgPool> {
        Ok(PgPoolOptions::new()
            .max_connections(4)
            .connect_with(owner_options(&self.config, &self.name))
            .await?)
    }

    fn app_pool(&self) -> PgPool {
        cpq_db::pool::app_pool(&self.config, "cpq-load-events")
    }

    async fn drop_database(self) -> anyhow::Result<()> {
        let mut conn = owner_options(&self.config, "postgres").connect().await?;
        sqlx::query(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .execute(&mut conn)
        .await?;
        conn.close().await.ok();
        Ok(())
    }
}

/// Writes `events` of one aggregate in tenant `acme` as a command does: one transaction with its
/// audit record and outbox rows.
async fn emit(
    pool: &PgPool,
    aggregate_type: &'static str,
    aggregate_id: Uuid,
    events: &[(&'static str, serde_json::Value)],
) -> anyhow::Result<()> {
    let tenant = TenantId::parse("acme").map_err(|e| anyhow::anyhow!("tenant: {e:?}"))?;
    let mut tx = cpq_db::tenant::begin(pool, &tenant).await?;
    let meta = CommandMeta {
        tenant,
        actor_subject: "cpq-load-events".into(),
        correlation_id: "load".into(),
        causation_id: None,
        occurred_at: chrono::Utc::now(),
    };
    let audit = AuditEntry {
        action: "load.emit",
        aggregate_type,
        aggregate_id,
        before: None,
        after: None,
        reason: None,
    };
    let events: Vec<NewEvent> = events
        .iter()
        .map(|(event_type, payload)| NewEvent {
            event_type,
            schema_version: 1,
            aggregate_type,
            aggregate_id,
            payload: payload.clone(),
        })
        .collect();
    record(&mut tx, &meta, &audit, &events).await?;
    tx.commit().await?;
    Ok(())
}

async fn scalar(pool: &PgPool, sql: &str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

async fn wait_for(
    pool: &PgPool,
    sql: &str,
    want: i64,
    limit: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        let got = scalar(pool, sql).await?;
        if got >= want {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < limit,
            "{sql}: {got} of {want} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn start_relay(
    pool: &PgPool,
    kafka: &cpq_config::KafkaConfig,
    catalogue: &Arc<Catalogue>,
) -> anyhow::Result<(watch::Sender<bool>, tokio::task::JoinHandle<()>)> {
    // The deployable's defaults (batch 500, 100 in flight marked 25 at a time, 20 ms idle poll).
    let relay = Relay::new(
        pool.clone(),
        kafka.clone(),
        catalogue.clone(),
        RelayOptions::new("load-relay"),
    )?;
    let (tx, rx) = watch::channel(false);
    Ok((tx, tokio::spawn(relay.run(rx))))
}

fn start_consumer(
    pool: &PgPool,
    kafka: &cpq_config::KafkaConfig,
    catalogue: &Catalogue,
) -> anyhow::Result<Consumers> {
    Ok(Consumers::start(
        pool,
        kafka,
        catalogue,
        &[Projection::AuditExport],
        &ConsumerOptions::default(),
    )?)
}

/// Waits until `total` outbox events are marked published.
async fn all_published(owner: &PgPool, total: i64) -> anyhow::Result<Duration> {
    wait_for(
        owner,
        "SELECT count(*) FROM outbox_event WHERE published_at IS NOT NULL",
        total,
        Duration::from_secs(600),
    )
    .await
}

/// `consumer_events_total{outcome}` for the audit export, from this process's metrics.
fn counted(handle: &metrics_exporter_prometheus::PrometheusHandle, outcome: &str) -> i64 {
    handle
        .render()
        .lines()
        .find(|l| {
            l.starts_with("consumer_events_total")
                && l.contains("cpq.audit-export")
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as i64)
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let metrics = cpq_telemetry::metrics_handle().map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = config()?;
    let mut kafka = config
        .kafka
        .clone()
        .context("the configuration has no [kafka]")?;
    // Topics and consumer groups of this run's own.
    kafka.namespace = format!("t{}.", Uuid::new_v4().simple());
    let db = ScratchDb::create(&config.database).await?;
    let outcome = measure(&args, &db, &kafka, &metrics).await;
    // The scratch database goes whatever the outcome; a failed run says why first.
    let dropped = db.drop_database().await;
    outcome?;
    dropped.context("dropping the scratch database")
}

async fn measure(
    args: &Args,
    db: &ScratchDb,
    kafka: &cpq_config::KafkaConfig,
    metrics: &metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<()> {
    let catalogue = Arc::new(Catalogue::shipped()?);
    Cluster::connect(kafka)?
        .apply(&catalogue)
        .await
        .context("creating the topics")?;
    let app = db.app_pool();
    let owner = db.owner_pool().await?;
    println!(
        "database {}, topic namespace {}, broker {}",
        db.name, kafka.namespace, kafka.bootstrap_servers
    );

    // 1. Relay throughput on a backlog (written 20 events per transaction, 500 aggregates).
    let aggregates: Vec<Uuid> = (0..500).map(|_| Uuid::now_v7()).collect();
    let mut written = 0;
    while written < args.backlog {
        let a = aggregates[(written / 20) % aggregates.len()];
        let n = 20.min(args.backlog - written);
        let events: Vec<_> = (0..n)
            .map(|i| {
                (
                    "quote.item-added",
                    json!({ "quote_id": a, "line_no": written + i }),
                )
            })
            .collect();
        emit(&app, "quote", a, &events).await?;
        written += n;
    }
    let (stop_relay, relay) = start_relay(&app, kafka, &catalogue)?;
    let drain = all_published(&owner, args.backlog as i64).await?;
    let relay_rate = args.backlog as f64 / drain.as_secs_f64();

    // 2. Steady rate, one event per transaction, relay running.
    let per_writer = Duration::from_secs_f64(f64::from(args.writers) / f64::from(args.rate));
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..args.writers {
        let app = app.clone();
        writers.push(tokio::spawn(async move {
            let mut next = tokio::time::Instant::now() + per_writer.mul_f64(f64::from(w) / 8.0);
            let mut n = 0u64;
            while Instant::now() < until {
                tokio::time::sleep_until(next).await;
                next += per_writer;
                let a = Uuid::now_v7();
                emit(
                    &app,
                    "order",
                    a,
                    &[(
                        "order.created",
                        json!({ "order_id": a, "quote_id": Uuid::now_v7() }),
                    )],
                )
                .await?;
                n += 1;
            }
            Ok::<u64, anyhow::Error>(n)
        }));
    }
    let mut steady = 0u64;
    for w in writers {
        steady += w.await??;
    }
    let offered = steady as f64 / started.elapsed().as_secs_f64();
    let total = (args.backlog as u64 + steady) as i64;
    all_published(&owner, total).await?;
    let (p50, p95, p99, max): (f64, f64, f64, f64) = sqlx::query_as(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY ms), \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), max(ms) \
         FROM (SELECT (extract(epoch FROM published_at - occurred_at) * 1000)::float8 AS ms FROM outbox_event WHERE aggregate_type = 'order') t",
    )
    .fetch_one(&owner)
    .await?;
    let _ = stop_relay.send(true);
    relay.await?;

    // 3. Consumer throughput: every event applied with its inbox row.
    let started = Instant::now();
    let consumer = start_consumer(&app, kafka, &catalogue)?;
    wait_for(
        &owner,
        "SELECT count(*) FROM consumer_inbox",
        total,
        Duration::from_secs(900),
    )
    .await?;
    let apply = started.elapsed();
    consumer.stop().await;

    // 4. Redelivery of everything: the inbox absorbs it.
    sqlx::query("UPDATE outbox_event SET published_at = NULL")
        .execute(&owner)
        .await?;
    let (stop_relay, relay) = start_relay(&app, kafka, &catalogue)?;
    all_published(&owner, total).await?;
    let _ = stop_relay.send(true);
    relay.await?;
    let started = Instant::now();
    let consumer = start_consumer(&app, kafka, &catalogue)?;
    let limit = Instant::now() + Duration::from_secs(900);
    while counted(metrics, "duplicate") < total {
        anyhow::ensure!(
            Instant::now() < limit,
            "{} of {total} duplicates after 900 s",
            counted(metrics, "duplicate")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dedupe = started.elapsed();
    consumer.stop().await;
    anyhow::ensure!(
        scalar(&owner, "SELECT count(*) FROM audit_export").await? == total,
        "every event exported once"
    );

    println!();
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| relay: backlog of {} drained | {:.1} s, {:.0} events/s |",
        args.backlog,
        drain.as_secs_f64(),
        relay_rate
    );
    println!("| steady load: offered {} events/s for {} s, achieved | {:.0} events/s ({steady} events) |", args.rate, args.seconds, offered);
    println!("| commit to broker ack at that rate: p50 / p95 / p99 / max | {p50:.1} / {p95:.1} / {p99:.1} / {max:.1} ms |");
    println!("| consumer (audit export, inbox + row per event): {total} events | {:.1} s, {:.0} events/s |", apply.as_secs_f64(), total as f64 / apply.as_secs_f64());
    println!(
        "| consumer, all {total} redelivered, absorbed by the inbox | {:.1} s, {:.0} events/s |",
        dedupe.as_secs_f64(),
        total as f64 / dedupe.as_secs_f64()
    );
    app.close().await;
    owner.close().await;
    Ok(())
}
