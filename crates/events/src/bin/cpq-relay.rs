//! `cpq-relay`: publishes the outbox to Kafka until SIGTERM or Ctrl-C. Run several for
//! availability and throughput: they share the outbox by slot leases. Topics must exist
//! (`cpq-admin topics apply`, a release step).

/// mimalloc rather than glibc's malloc: the engine and each command's JSON allocate heavily
/// (malloc and free were a quarter of cpq-api's CPU under the conversion load, `perf`), and the
/// engine's start of a 32-task fulfillment ran 36% faster with it (`benches/fulfillment_start.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cpq_events::catalogue::Catalogue;
use cpq_events::dead_letter::DEAD_LETTER_TOPIC;
use cpq_events::health::{self, KafkaHealth};
use cpq_events::kafka::topic_name;
use cpq_events::relay::{Relay, RelayOptions, DEFAULT_IN_FLIGHT, DEFAULT_MARK_EVERY};
use cpq_events::service;
use cpq_telemetry::process;

#[derive(Parser)]
#[command(name = "cpq-relay", version, about = "Outbox relay to Kafka")]
struct Args {
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Liveness, readiness and /metrics.
    #[arg(long, default_value = "127.0.0.1:9095")]
    admin_bind: SocketAddr,
    /// Events per cycle.
    #[arg(long, default_value_t = 500)]
    batch: i64,
    /// This relay's identity, the same across its restarts: a restarted relay takes back the
    /// slots it held at once. Default: relay-<host name> (a pod name in Kubernetes). Two relays
    /// alive under one id cannot both hold it: the second runs under a unique name.
    #[arg(long)]
    instance_id: Option<String>,
    /// At most this many events handed to the broker and not yet marked published: the most a
    /// relay killed at any moment leaves to be published again.
    #[arg(long, default_value_t = DEFAULT_IN_FLIGHT)]
    in_flight: usize,
    /// Acknowledged events are marked published this many at a time.
    #[arg(long, default_value_t = DEFAULT_MARK_EVERY)]
    mark_every: usize,
    /// Lease of a slot, renewed every cycle: how long the slots of a relay that died for good
    /// (and is not restarted under its id) wait before others take them.
    #[arg(long, default_value_t = 15)]
    lease_secs: u64,
    /// After SIGTERM, at most this long to finish the cycle at hand (bounded by the producer's
    /// 5 s delivery timeout), give the slots back and close; then it exits regardless. Events it
    /// had not marked published are published again by whoever takes the slots.
    #[arg(long, default_value_t = process::DEFAULT_SHUTDOWN_GRACE_SECS)]
    shutdown_grace_secs: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let (config, kafka) =
        match service::load("cpq-relay", args.env.clone(), args.config_dir.clone()) {
            Ok(c) => c,
            Err(code) => return code,
        };
    process::block_on("cpq-relay", async move {
        let pool = cpq_db::pool::app_pool(&config.database, "cpq-relay");
        let catalogue = Arc::new(Catalogue::shipped().map_err(|e| e.to_string())?);
        let owner = args
            .instance_id
            .clone()
            .unwrap_or_else(|| process::instance_name("relay"));
        let mut opts = RelayOptions::new(owner.clone());
        opts.batch = args.batch;
        opts.in_flight = args.in_flight.max(1);
        opts.mark_every = args.mark_every.clamp(1, opts.in_flight);
        opts.lease = std::time::Duration::from_secs(args.lease_secs.max(1));
        let kafka_health = KafkaHealth::default();
        opts.health = kafka_health.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let probe = health::watch(
            &kafka,
            kafka_health.clone(),
            topic_name(&kafka, DEAD_LETTER_TOPIC),
            stop_rx.clone(),
        )
        .map_err(|e| e.to_string())?;
        let relay = Relay::new(pool.clone(), kafka, catalogue, opts).map_err(|e| e.to_string())?;
        let admin =
            service::serve_admin(args.admin_bind, pool, kafka_health, stop_rx.clone()).await?;
        tracing::info!(%owner, admin = %args.admin_bind, "cpq-relay started");
        let relaying = tokio::spawn(relay.run(stop_rx));
        process::shutdown_signal().await;
        let grace = std::time::Duration::from_secs(args.shutdown_grace_secs);
        tracing::info!(grace_ms = grace.as_millis() as u64, "cpq-relay stopping");
        let _ = stop_tx.send(true);
        process::stop_within("cpq-relay", grace, async {
            let _ = relaying.await;
            let _ = probe.await;
            let _ = admin.await;
        })
        .await;
        Ok::<(), String>(())
    })
}
