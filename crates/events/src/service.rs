//! What the event deployables share around their work: configuration with a `[kafka]` section
//! (credentials checked) and the admin port (its readiness includes Kafka's). The runtime,
//! signals and bounded shutdown are every binary's: `cpq_telemetry::process`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cpq_config::{Config, KafkaConfig};
use cpq_telemetry::process;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::health::KafkaHealth;

/// Loads the configuration and its `[kafka]` section, or says why not (exit code 2).
pub fn load(
    name: &str,
    env: Option<String>,
    config_dir: Option<PathBuf>,
) -> Result<(Config, KafkaConfig), ExitCode> {
    let config = process::config(name, &cpq_config::Sources::from_process(env, config_dir))?;
    let kafka = config.kafka.clone().ok_or_else(|| {
        eprintln!("{name}: the configuration has no [kafka] section");
        ExitCode::from(2)
    })?;
    kafka.check_credentials().map_err(|e| {
        eprintln!("{name}: {e}");
        ExitCode::from(2)
    })?;
    process::start_tracing(name, &config)?;
    Ok((config, kafka))
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
