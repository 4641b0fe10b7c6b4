//! `cpq-api`: reads and validates configuration, then serves. Everything else is in the library.

/// mimalloc rather than glibc's malloc: the engine and each command's JSON allocate heavily
/// (malloc and free were a quarter of cpq-api's CPU under the conversion load, `perf`), and the
/// engine's start of a 32-task fulfillment ran 36% faster with it (`benches/fulfillment_start.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cpq_telemetry::process;

const NAME: &str = "cpq-api";

#[derive(Parser)]
#[command(name = "cpq-api", version, about = "The CPQ platform's HTTP API")]
struct Args {
    /// Environment: local, integration, staging or production (default: $CPQ_ENV).
    #[arg(long)]
    env: Option<String>,
    /// Directory holding <env>.toml (default: $CPQ_CONFIG_DIR or ./config).
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// Print the effective configuration, secrets redacted, and exit.
    #[arg(long)]
    dump_config: bool,
    /// Validate the configuration and exit.
    #[arg(long)]
    check_config: bool,
    /// Print the OpenAPI document and exit.
    #[arg(long)]
    print_openapi: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_openapi {
        println!("{}", cpq_api::openapi_json());
        return ExitCode::SUCCESS;
    }
    let sources = cpq_config::Sources::from_process(args.env, args.config_dir);
    let config = match process::config(NAME, &sources) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if args.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    if args.check_config {
        println!("configuration for {} is valid", config.environment.as_str());
        return ExitCode::SUCCESS;
    }
    if let Err(code) = process::start_tracing(NAME, &config) {
        return code;
    }
    process::block_on(NAME, cpq_api::run(config))
}
