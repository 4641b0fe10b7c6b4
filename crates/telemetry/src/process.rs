//! The life of a deployable, shared by every binary (`cpq-api`, `cpq-worker`, `cpq-relay`,
//! `cpq-consumer`, `cpq-admin`): configuration in or exit 2, tracing on, a runtime, SIGTERM or
//! Ctrl-C, and a shutdown bounded by a grace period. A binary's `main` reads its arguments and
//! calls these and one library entry point; nothing else.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use cpq_config::{Config, Sources};

/// Default of `--shutdown-grace-secs`: how long after SIGTERM a deployable may take to stop,
/// under the 10 s the platform promises (and Kubernetes' 30 s default grace period).
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 8;

/// The configuration from `sources`, or the reason it does not load on standard error and exit
/// code 2 (every problem at once: see `cpq_config::load`).
pub fn config(name: &str, sources: &Sources) -> Result<Config, ExitCode> {
    cpq_config::load(sources).map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })
}

/// Starts logging as `[log]` says, or exit code 2.
pub fn start_tracing(name: &str, config: &Config) -> Result<(), ExitCode> {
    crate::init_tracing(&config.log).map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })
}

/// Runs `work` on a multi-threaded runtime; its error is logged, printed, and the exit code is 1.
/// Work left on the runtime when `work` returns (a Kafka client's close waiting for an
/// unreachable broker, on the blocking pool) gets a second, then the process exits without it.
pub fn block_on<E: Display>(name: &str, work: impl Future<Output = Result<(), E>>) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(work);
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "{name} failed");
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = tokio::signal::ctrl_c() => {}, _ = term => {} }
    tracing::info!("shutdown requested");
}

/// Waits for `stopping` (what a deployable does once told to stop) at most `grace`; past it,
/// says what was left and returns anyway: the deployables leave nothing that a restart does not
/// pick up (events not marked published are published again, offsets not committed are read
/// again, and the inbox absorbs both; a job not completed is activated again after its timeout).
pub async fn stop_within(name: &str, grace: Duration, stopping: impl Future<Output = ()>) {
    let started = std::time::Instant::now();
    match tokio::time::timeout(grace, stopping).await {
        Ok(()) => tracing::info!(
            took_ms = started.elapsed().as_millis() as u64,
            "{name} stopped"
        ),
        Err(_) => tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "{name} did not finish stopping within its shutdown grace; exiting now (what it left \
             is picked up after a restart)"
        ),
    }
}

/// This process's default identity for `role`: `<role>-<host name>` (a pod name in Kubernetes).
pub fn instance_name(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{role}-{host}")
}
