//! `cpq-admin`: parses the command line, loads the configuration and runs the library's
//! [`cpq_admin::run`]. Everything else is in the library.

use std::process::ExitCode;

use clap::Parser;
use cpq_admin::cli::Args;
use cpq_config::Sources;
use cpq_telemetry::process;

const NAME: &str = "cpq-admin";

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match process::config(NAME, &Sources::from_process(args.env, args.config_dir)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // `{:#}`: the whole chain of causes, as operators need it.
    process::block_on(NAME, async {
        cpq_admin::run(args.command, config)
            .await
            .map_err(|e| format!("{e:#}"))
    })
}
