//! `cpq-sim`: reads its options (flags, with `CPQ_SIM_*` environment fallbacks) and the optional
//! systems file, then serves the simulated systems until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use cpq_config::{LogConfig, LogFormat, Secret};
use cpq_sim::{Options, Systems, LOCAL_DATABASE_URL};
use cpq_telemetry::process;

#[derive(Parser)]
#[command(
    name = "cpq-sim",
    version,
    about = "Simulators of the external systems: inventory, provisioning, billing, crm, notification"
)]
struct Args {
    #[arg(long, env = "CPQ_SIM_LISTEN", default_value = "127.0.0.1:8090")]
    listen: SocketAddr,
    /// The simulator's own database (default: the local cpq_sim database).
    #[arg(long, env = "CPQ_SIM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Seed of every random choice (latency, injected failures, dropped callbacks).
    #[arg(long, env = "CPQ_SIM_SEED")]
    seed: Option<u64>,
    /// TOML file with each system's initial knobs and callback secret (systems.example.toml).
    #[arg(long, env = "CPQ_SIM_SYSTEMS_CONFIG")]
    systems_config: Option<PathBuf>,
    /// First retry delay of a callback the receiver did not accept; doubled per attempt.
    #[arg(long, env = "CPQ_SIM_CALLBACK_RETRY_BASE_MS", default_value_t = 250)]
    callback_retry_base_ms: u64,
    #[arg(long, env = "CPQ_SIM_LOG_LEVEL", default_value = "info,sqlx=warn")]
    log_level: String,
    #[arg(long, env = "CPQ_SIM_LOG_FORMAT", default_value = "json", value_parser = ["json", "pretty"])]
    log_format: String,
    #[arg(long, default_value_t = process::DEFAULT_SHUTDOWN_GRACE_SECS)]
    shutdown_grace_secs: u64,
}

fn main() -> ExitCode {
    const NAME: &str = "cpq-sim";
    let args = Args::parse();
    let systems = match &args.systems_config {
        Some(path) => match Systems::load(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{NAME}: {e}");
                return ExitCode::from(2);
            }
        },
        None => Systems::default(),
    };
    let log = LogConfig {
        level: args.log_level,
        format: match args.log_format.as_str() {
            "pretty" => LogFormat::Pretty,
            _ => LogFormat::Json,
        },
    };
    if let Err(e) = cpq_telemetry::init_tracing(&log) {
        eprintln!("{NAME}: {e}");
        return ExitCode::from(2);
    }
    let options = Options {
        listen: args.listen,
        database_url: Secret::new(
            args.database_url
                .unwrap_or_else(|| LOCAL_DATABASE_URL.to_owned()),
        ),
        seed: args.seed,
        systems,
        callback_retry_base: Duration::from_millis(args.callback_retry_base_ms.max(1)),
        shutdown_grace: Duration::from_secs(args.shutdown_grace_secs),
    };
    process::block_on(NAME, cpq_sim::run(options, process::shutdown_signal()))
}
