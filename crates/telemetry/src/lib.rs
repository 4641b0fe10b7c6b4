//! Process-wide telemetry: the `tracing` subscriber (JSON lines in every shipped environment) and
//! the Prometheus recorder behind the `metrics` facade. Both are global, so both are installed at
//! most once; a second call (tests start many apps in one process) reuses the first. Also the life
//! of every binary ([`process`]: configuration, runtime, signals, bounded shutdown) and the admin
//! port of the deployables that serve no API ([`admin`]).

pub mod admin;
pub mod process;

use std::sync::OnceLock;

use cpq_config::{LogConfig, LogFormat};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, EnvFilter};

/// Bucket bounds (seconds) for every `*_duration_seconds` histogram: fine below 10 ms, where the
/// platform's targets are, and coarse up to the seeds' multi-second limits.
const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log.level filter \"{level}\": {reason}")]
    LogFilter { level: String, reason: String },
    #[error("cannot install the metrics recorder: {0}")]
    Metrics(String),
}

/// Installs the global `tracing` subscriber. `RUST_LOG`, when set, overrides `log.level`.
/// Returns without change when a subscriber is already installed.
pub fn init_tracing(config: &LogConfig) -> Result<(), TelemetryError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directive) => EnvFilter::try_new(&directive),
        Err(_) => EnvFilter::try_new(&config.level),
    }
    .map_err(|e| TelemetryError::LogFilter {
        level: config.level.clone(),
        reason: e.to_string(),
    })?;
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `try_init` fails only when a subscriber exists already, which is fine.
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    Ok(())
}

static METRICS: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use.
pub fn metrics_handle() -> Result<PrometheusHandle, TelemetryError> {
    METRICS
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".to_owned()),
                    DURATION_BUCKETS,
                )
                .map_err(|e| e.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|e| e.to_string())?;
            Ok(handle)
        })
        .clone()
        .map_err(TelemetryError::Metrics)
}
