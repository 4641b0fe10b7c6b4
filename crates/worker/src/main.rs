//! `cpq-worker`: reads and validates configuration (with the worker group's file), then runs the
//! group until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

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

async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut sources = cpq_config::Sources::from_process(args.env, args.config_dir);
    sources.extra_files.push(args.worker_config);
    let config = match cpq_config::load(&sources) {
        Ok(c) if c.worker.is_some() => c,
        Ok(_) => {
            eprintln!("cpq-worker: the worker config file has no [worker] section");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("cpq-worker: {e}");
            return ExitCode::from(2);
        }
    };
    if args.dump_config {
        print!("{}", config.dump());
        return ExitCode::SUCCESS;
    }
    if let Err(e) = cpq_telemetry::init_tracing(&config.log) {
        eprintln!("cpq-worker: {e}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cpq-worker: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cpq_worker::run(config, signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpq-worker: {e}");
            ExitCode::FAILURE
        }
    }
}
