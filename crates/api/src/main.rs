//! `cpq-api`: reads and validates configuration, then serves. Everything else is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

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
    let config = match cpq_config::load(&cpq_config::Sources::from_process(
        args.env,
        args.config_dir,
    )) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cpq-api: {e}");
            return ExitCode::from(2);
        }
    };
    if args.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    if args.check_config {
        println!("configuration for {} is valid", config.environment.as_str());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = cpq_telemetry::init_tracing(&config.log) {
        eprintln!("cpq-api: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cpq-api: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cpq_api::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "cpq-api failed");
            eprintln!("cpq-api: {e}");
            ExitCode::FAILURE
        }
    }
}
