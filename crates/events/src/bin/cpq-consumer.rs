//! `cpq-consumer`: runs consumer groups (one per responsibility; `--consumer` repeatable, every
//! one by default) until SIGTERM or Ctrl-C.

/// mimalloc rather than glibc's malloc: the engine and each command's JSON allocate heavily
/// (malloc and free were a quarter of cpq-api's CPU under the conversion load, `perf`), and the
/// engine's start of a 32-task fulfillment ran 36% faster with it (`benches/fulfillment_start.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cpq_events::catalogue::Catalogue;
use cpq_events::consumer::{ConsumerOptions, Consumers};
use cpq_events::dead_letter::DEAD_LETTER_TOPIC;
use cpq_events::health::{self, KafkaHealth};
use cpq_events::kafka::topic_name;
use cpq_events::projections::Projection;
use cpq_events::service;
use cpq_telemetry::process;

#[derive(Parser)]
#[command(
    name = "cpq-consumer",
    version,
    about = "Event consumers: projections and exports, with an inbox each"
)]
struct Args {
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// quote-search-projection or audit-export; repeatable; default: all.
    #[arg(long = "consumer")]
    consumers: Vec<String>,
    /// Liveness, readiness and /metrics (with consumer_lag).
    #[arg(long, default_value = "127.0.0.1:9096")]
    admin_bind: SocketAddr,
    /// Join each group as this static member (Kafka's group.instance.id), e.g. the pod name of a
    /// StatefulSet: a restart under the same id takes over its partitions at once.
    #[arg(long)]
    instance_id: Option<String>,
    /// Retries of a transient failure before the event is dead-lettered.
    #[arg(long, default_value_t = 5)]
    max_retries: u32,
    /// After SIGTERM, at most this long to finish the records at hand, commit the offsets of
    /// what was applied and close; then it exits regardless (what was applied and not committed
    /// is read again after a restart, and the inbox absorbs it).
    #[arg(long, default_value_t = process::DEFAULT_SHUTDOWN_GRACE_SECS)]
    shutdown_grace_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut projections = Vec::new();
    for c in &args.consumers {
        match Projection::parse(c) {
            Some(p) => projections.push(p),
            None => {
                eprintln!(
                    "cpq-consumer: unknown consumer \"{c}\"; expected one of {}",
                    Projection::ALL.map(Projection::name).join(", ")
                );
                return ExitCode::from(2);
            }
        }
    }
    if projections.is_empty() {
        projections = Projection::ALL.to_vec();
    }
    let (config, kafka) =
        match service::load("cpq-consumer", args.env.clone(), args.config_dir.clone()) {
            Ok(c) => c,
            Err(code) => return code,
        };
    process::block_on("cpq-consumer", async move {
        let pool = cpq_db::pool::app_pool(&config.database, "cpq-consumer");
        let catalogue = Catalogue::shipped().map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let kafka_health = KafkaHealth::default();
        let probe = health::watch(
            &kafka,
            kafka_health.clone(),
            topic_name(&kafka, DEAD_LETTER_TOPIC),
            stop_rx.clone(),
        )
        .map_err(|e| e.to_string())?;
        let admin = service::serve_admin(
            args.admin_bind,
            pool.clone(),
            kafka_health.clone(),
            stop_rx.clone(),
        )
        .await?;
        let grace = std::time::Duration::from_secs(args.shutdown_grace_secs);
        let opts = ConsumerOptions {
            max_retries: args.max_retries,
            instance_id: args.instance_id.clone(),
            // The records at hand are finished first (one transaction each): 2 s of the grace.
            close_timeout: grace
                .saturating_sub(std::time::Duration::from_secs(2))
                .max(std::time::Duration::from_secs(1)),
            health: kafka_health,
            ..ConsumerOptions::default()
        };
        let consumers = Consumers::start(&pool, &kafka, &catalogue, &projections, &opts)
            .map_err(|e| e.to_string())?;
        process::shutdown_signal().await;
        tracing::info!(grace_ms = grace.as_millis() as u64, "cpq-consumer stopping");
        let _ = stop_tx.send(true);
        process::stop_within("cpq-consumer", grace, async {
            consumers.stop().await;
            let _ = probe.await;
            let _ = admin.await;
        })
        .await;
        Ok::<(), String>(())
    })
}
