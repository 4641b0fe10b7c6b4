//! `cpq-relay`: publishes the outbox to Kafka until SIGTERM or Ctrl-C. Run several for
//! availability and throughput: they share the outbox by slot leases. Topics must exist
//! (`cpq-admin topics apply`, a release step).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use cpq_events::catalogue::Catalogue;
use cpq_events::relay::{Relay, RelayOptions};

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
}

async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
}

async fn run(
    args: Args,
    config: cpq_config::Config,
    kafka: cpq_config::KafkaConfig,
) -> Result<(), String> {
    let metrics_handle = cpq_telemetry::metrics_handle().map_err(|e| e.to_string())?;
    let pool = cpq_db::pool::app_pool(&config.database, "cpq-relay");
    let catalogue = Arc::new(Catalogue::shipped().map_err(|e| e.to_string())?);
    let owner = format!("relay-{}-{}", hostname(), std::process::id());
    let mut opts = RelayOptions::new(owner.clone());
    opts.batch = args.batch;
    let relay = Relay::new(pool.clone(), kafka, catalogue, opts).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(args.admin_bind)
        .await
        .map_err(|e| format!("admin port {}: {e}", args.admin_bind))?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let admin = {
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, cpq_telemetry::admin::router(pool, metrics_handle))
                .with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                })
                .await;
        })
    };
    tracing::info!(%owner, admin = %args.admin_bind, "cpq-relay started");
    let relaying = tokio::spawn(relay.run(stop_rx));
    signal().await;
    tracing::info!("cpq-relay stopping");
    let _ = stop_tx.send(true);
    let _ = relaying.await;
    let _ = admin.await;
    Ok(())
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let sources = cpq_config::Sources::from_process(args.env.clone(), args.config_dir.clone());
    let config = match cpq_config::load(&sources) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpq-relay: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(kafka) = config.kafka.clone() else {
        eprintln!("cpq-relay: the configuration has no [kafka] section");
        return ExitCode::from(2);
    };
    if let Err(e) = kafka.check_credentials() {
        eprintln!("cpq-relay: {e}");
        return ExitCode::from(2);
    }
    if let Err(e) = cpq_telemetry::init_tracing(&config.log) {
        eprintln!("cpq-relay: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cpq-relay: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args, config, kafka)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpq-relay: {e}");
            ExitCode::FAILURE
        }
    }
}
