//! What the event deployables share around their work: configuration with a `[kafka]` section
//! (credentials checked), tracing, the admin port, the runtime and shutdown on SIGTERM or Ctrl-C.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use cpq_config::{Config, KafkaConfig};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

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

/// Runs `work` on a multi-threaded runtime; its error is printed and the exit code is 1.
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
    match runtime.block_on(work) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
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
}

/// Serves liveness, readiness and `/metrics` on `bind` until `stop` turns true.
pub async fn serve_admin(
    bind: SocketAddr,
    pool: PgPool,
    mut stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, String> {
    let handle = cpq_telemetry::metrics_handle().map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| format!("admin port {bind}: {e}"))?;
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, cpq_telemetry::admin::router(pool, handle))
            .with_graceful_shutdown(async move {
                let _ = stop.changed().await;
            })
            .await;
    }))
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
