//! `cpq-worker`: reads and validates configuration (with the worker group's file), then runs the
//! group until SIGTERM or Ctrl-C.

/// mimalloc rather than glibc's malloc: the engine and each command's JSON allocate heavily
/// (malloc and free were a quarter of cpq-api's CPU under the conversion load, `perf`), and the
/// engine's start of a 32-task fulfillment ran 36% faster with it (`benches/fulfillment_start.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cpq_telemetry::process;

#[derive(Parser)]
#[command(name = "cpq-worker", version, about = "Workflow job workers")]
struct Args {
    #[arg(long)]
    env: Option<String>,
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// The worker group's TOML file ([worker] and its [[worker.job_types]]).
    #[arg(long)]
    worker_config: PathBuf,
    #[arg(long)]
    dump_config: bool,
}

fn main() -> ExitCode {
    const NAME: &str = "cpq-worker";
    let args = Args::parse();
    let mut sources = cpq_config::Sources::from_process(args.env, args.config_dir);
    sources.extra_files.push(args.worker_config);
    let config = match process::config(NAME, &sources) {
        Ok(c) if c.worker.is_some() => c,
        Ok(_) => {
            eprintln!("{NAME}: the worker config file has no [worker] section");
            return ExitCode::from(2);
        }
        Err(code) => return code,
    };
    if args.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    if let Err(code) = process::start_tracing(NAME, &config) {
        return code;
    }
    process::block_on(NAME, cpq_worker::run(config, process::shutdown_signal()))
}
