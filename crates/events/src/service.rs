//! What the event deployables share around their work: configuration with a `[kafka]` section
//! (credentials checked), tracing, the admin port (its readiness includes Kafka's), the runtime
//! and a shutdown on SIGTERM or Ctrl-C bounded by a grace period.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cpq_config::{Config, KafkaConfig};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::health::KafkaHealth;

/// Default of `--shutdown-grace-secs`: how long after SIGTERM a deployable may take to stop,
/// under the 10 s the platform promises (and Kubernetes' 30 s default grace period).
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 8;

/// Loads the configuration and its `[kafka]` section, or says why not (exit code 2).
pub fn load(
    name: &str,
    env: Option<String>,
    config_dir: Option<PathBuf>,
) -> Result<(Config, KafkaConfig), ExitCode> {
    let config =
        cpq_config::load(&cpq_config::Sources::from_process(env, config_dir)).map_err(|e| {
            eprintln!("{name}: {e}");
            ExitCode::from(2)
        })?;
    let kafka = config.kafka.clone().ok_or_else(|| {
        eprintln!("{name}: the configuration has no [kafka] section");
        ExitCode::from(2)
    })?;
    kafka.check_credentials().map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })?;
    cpq_telemetry::init_tracing(&config.log).map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })?;
    Ok((config, kafka))
}

/// Runs `work` on a multi-threaded runtime; its error is printed and the exit code is 1. Work
/// left on the runtime when `work` returns (a Kafka client's close waiting for an unreachable
/// broker, on the blocking pool) gets a second, then the process exits without it.
pub fn block_on<F: Future<Output = Result<(), String>>>(name: &str, work: F) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{name}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(work);
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Waits for `stopping` (what a deployable does once told to stop) at most `grace`; past it,
/// says what was left and returns anyway: the deployables leave nothing that a restart does not
/// pick up (events not marked published are published again, offsets not committed are read
/// again, and the inbox absorbs both).
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
             is picked up after a restart: events not marked published are published again, \
             offsets not committed are read again, the inbox absorbs both)"
        ),
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
}

/// Serves liveness, readiness and `/metrics` on `bind` until `stop` turns true. Readiness is the
/// database's (reachable, schema compatible) and Kafka's, as `kafka` finds it: 503 naming Kafka
/// while it is unreachable or has not answered yet (and the database's reason too when it fails).
pub async fn serve_admin(
    bind: SocketAddr,
    pool: PgPool,
    kafka: KafkaHealth,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    let handle = cpq_telemetry::metrics_handle().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("admin port {bind}: {e}"))?;
    let router = cpq_telemetry::admin::router(pool, handle)
        .layer(axum::middleware::from_fn_with_state(kafka, kafka_readiness));
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
    }))
}

/// `/health/ready` answers 503 while Kafka is unreachable, whatever the database's check says.
async fn kafka_readiness(State(kafka): State<KafkaHealth>, req: Request, next: Next) -> Response {
    if req.uri().path() != "/health/ready" {
        return next.run(req).await;
    }
    let Err(mut why) = kafka.status() else {
        return next.run(req).await;
    };
    let inner = next.run(req).await;
    if !inner.status().is_success() {
        if let Ok(body) = axum::body::to_bytes(inner.into_body(), 64 * 1024).await {
            why.push_str("; ");
            why.push_str(&String::from_utf8_lossy(&body));
        }
    }
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}

/// A name for this process among its peers that stays the same across restarts on the same host
/// (a pod name in Kubernetes): `<role>-<host name>`.
pub fn instance_name(role: &str) -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    format!("{role}-{host}")
}
