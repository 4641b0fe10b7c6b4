//! `cpq-load`: the platform's load generator, built on goose. It drives a running `cpq-api` with
//! a business workload profile (seed part 055, section 4) and reports each step's p50/p95/p99,
//! throughput and failures (seed section 3.5: percentiles, not averages).
//!
//! Profiles (`--profile`). `interactive-sales` (section 4.1, the default): every goose user is
//! a sales rep of tenant `demo` who creates a customer account once, then loops over one quote:
//! search the catalog, validate a configuration, create a quote, add an item, price it, change
//! it (add a line, remove a line: the price goes stale), re-price, submit. Each step is its own goose
//! transaction and request name, so URLs with ids aggregate per step. See [`sales`].
//! `create-accounts`: every user only creates customer accounts (`POST /v1/customer-accounts`,
//! each with its own `Idempotency-Key`), the API half of `scripts/physical-limit.sh`. See
//! [`accounts`]. After the run, the server-side share of each route's time is read from
//! `cpq-api`'s `/metrics` (see `server`).
//!
//! Run it against the API that `scripts/up.sh` started (demo catalog seeded), from the
//! repository root, after a release build:
//!
//! ```sh
//! scripts/up.sh
//! export CPQ_ENV=local CARGO_TARGET_DIR=$HOME/.cache/cpq-platform/target
//! cargo build --release -p cpq-load
//! $CARGO_TARGET_DIR/release/cpq-load -u 8 -r 4 -t 60s --report-file sales.md
//! ```
//!
//! Tokens: `--token`/`CPQ_LOAD_TOKEN` (comma-separated, users take them round robin), or by
//! default minted by running `cpq-admin token --tenant demo --subject load-rep-N --role sales`
//! (`--admin-bin`, `--subjects`). Every goose option (`-H`, `-u`, `-r`, `-t`, `--report-file`,
//! ...) is accepted as well; see `cpq-load --help`. It talks plain HTTP to the host given
//! (default `http://127.0.0.1:8080`), and stops by itself after the run time (default 60 s).
//! At the end it prints a Markdown table per step (requests, failures, p50/p95/p99/max in ms
//! from goose's microsecond histograms) and exits 1 if any request failed.

mod accounts;
mod backlog;
mod sales;
mod server;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use goose::config::GooseConfiguration;
use goose::metrics::GooseMetrics;
use goose::prelude::*;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Profile {
    /// Seed 4.1: search, validate, quote, add item, price, modify, re-price, submit.
    InteractiveSales,
    /// One `POST /v1/customer-accounts` per iteration, each with its own Idempotency-Key: the
    /// physical-limit workload that scripts/physical-limit.sh compares with pgbench.
    CreateAccounts,
    /// Seed section 19: N orders of eight fulfillment tasks created through the API, drained by
    /// cpq-worker against cpq-sim (p95 2 s, 5 % transient, 1 % permanent, provisioning down for
    /// 60 s); not a goose run (see the "Backlog profile" options).
    Backlog,
}

#[derive(Parser)]
#[command(
    name = "cpq-load",
    about = "Load generator for cpq-api (goose): business workload profiles, per-step p50/p95/p99",
    long_about = "Load generator for cpq-api (goose): business workload profiles, per-step \
                  p50/p95/p99.\n\nProfile interactive-sales (seed part 055, section 4.1): every \
                  goose user is a sales rep with its own customer account who loops over one \
                  quote: search the catalog, validate a configuration, create a quote, add an \
                  item, price, add a line, remove a line, re-price, submit. Each step is a named \
                  transaction and request, so goose's report (and the summary table printed at \
                  the end) gives per-step p50/p95/p99; a non-2xx answer is a failure.\n\n\
                  Below: the CPQ options, then goose's own, all accepted in any order.",
    disable_version_flag = true,
    args_override_self = true,
    after_help = "Defaults: -H http://127.0.0.1:8080 -u 8 -r 4 -t 60 (goose's own options \
                  override them). Exits 1 when a request failed. Example, against scripts/up.sh, from the \
                  repository root:\n  CPQ_ENV=local cpq-load -u 8 -r 4 -t 60s --report-file sales.md"
)]
struct Cli {
    /// Workload profile (seed part 055, section 4).
    #[arg(
        long,
        value_enum,
        default_value = "interactive-sales",
        help_heading = "CPQ"
    )]
    profile: Profile,
    /// Bearer token(s) of sales users of the tenant, comma-separated; goose user N uses token
    /// N mod count. Without one, tokens are minted with --admin-bin.
    #[arg(
        long,
        env = "CPQ_LOAD_TOKEN",
        value_delimiter = ',',
        hide_env_values = true,
        help_heading = "CPQ"
    )]
    token: Vec<String>,
    /// The cpq-admin that mints the tokens (`cpq-admin token --tenant T --subject load-rep-N
    /// --role sales`), run in the current directory with CPQ_ENV (local when unset). Default:
    /// $CARGO_TARGET_DIR/release/cpq-admin, else target/release/cpq-admin.
    #[arg(
        long,
        env = "CPQ_ADMIN_BIN",
        hide_env_values = true,
        help_heading = "CPQ"
    )]
    admin_bin: Option<PathBuf>,
    /// Tenant the minted tokens are for (its catalog must be the demo catalog).
    #[arg(long, default_value = "demo", help_heading = "CPQ")]
    tenant: String,
    /// How many distinct sales subjects (load-rep-1..N) to mint tokens for.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..), help_heading = "CPQ")]
    subjects: u16,
    /// interactive-sales: lines of each quote when it is submitted and converted (step 6 adds
    /// the first, step 6b the others): 10 measures conversion and decomposition of a 10-item
    /// order.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=50), help_heading = "CPQ")]
    order_lines: u16,
    /// Think time: pause after each step, at least this long (ms).
    #[arg(long, default_value_t = 0, help_heading = "CPQ")]
    think_min_ms: u64,
    /// Think time: pause after each step, at most this long (ms). 0: no pause (closed loop at
    /// full speed).
    #[arg(long, default_value_t = 0, help_heading = "CPQ")]
    think_max_ms: u64,
    #[command(flatten)]
    backlog: backlog::BacklogArgs,
    #[command(flatten)]
    goose: GooseConfiguration,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cpq-load: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // Goose's informational flags print and exit without needing tokens.
    let informational = cli.goose.version || cli.goose.list || cli.goose.scenarios_list;
    let tokens = if !cli.token.is_empty() || informational {
        cli.token.clone()
    } else {
        mint_tokens(&cli)?
    };
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
        .to_string();
    if let Profile::Backlog = cli.profile {
        let host = cli.goose.host.clone().filter(|h| !h.is_empty());
        let host = host.unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
        return backlog::run(cli.backlog, host, tokens).await;
    }
    let think = (
        Duration::from_millis(cli.think_min_ms),
        Duration::from_millis(cli.think_max_ms.max(cli.think_min_ms)),
    );
    let scenario = match cli.profile {
        Profile::InteractiveSales => sales::scenario(
            sales::Setup {
                tokens,
                run_id,
                order_lines: cli.order_lines,
            },
            think,
        )?,
        Profile::CreateAccounts => accounts::scenario(sales::Setup {
            tokens,
            run_id,
            order_lines: 1,
        })?,
        Profile::Backlog => unreachable!("the backlog profile returned above"),
    };
    let host = cli
        .goose
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let routes = match cli.profile {
        Profile::InteractiveSales => sales::ROUTES,
        Profile::CreateAccounts => accounts::ROUTES,
        Profile::Backlog => &[],
    };
    let before = if informational {
        None
    } else {
        server::scrape(&host).await
    };
    let metrics = GooseAttack::initialize_with_config(cli.goose)?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, "http://127.0.0.1:8080")?
        .set_default(GooseDefault::Users, 8)?
        .set_default(GooseDefault::IncreaseRate, "4")?
        .set_default(GooseDefault::RunTime, 60)?
        // No telnet controller (goose's WebSocket one is off unless asked for): cpq-load
        // listens on no port.
        .set_default(GooseDefault::NoTelnet, true)?
        .execute()
        .await?;
    if !informational {
        let failed = print_summary(&metrics);
        match (before, server::scrape(&host).await) {
            (Some(before), Some(after)) => server::print_share(&metrics, routes, &before, &after),
            _ => println!("\n(no server-side share: {host}/metrics did not answer)"),
        }
        if failed > 0 {
            bail!("{failed} request(s) failed (see the errors above)");
        }
    }
    Ok(())
}

/// Mints one sales token per subject by running `cpq-admin token`.
fn mint_tokens(cli: &Cli) -> anyhow::Result<Vec<String>> {
    let admin = match &cli.admin_bin {
        Some(p) => p.clone(),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target"))
            .join("release/cpq-admin"),
    };
    let mut tokens = Vec::new();
    for n in 1..=cli.subjects {
        let mut cmd = Command::new(&admin);
        cmd.args(["token", "--tenant", &cli.tenant, "--role", "sales"])
            .args(["--subject", &format!("load-rep-{n}")])
            // Long enough for any bounded run on a development machine.
            .args(["--ttl-secs", "43200"]);
        if std::env::var_os("CPQ_ENV").is_none() {
            cmd.env("CPQ_ENV", "local");
        }
        let out = cmd.output().with_context(|| {
            format!(
                "running {} (set --admin-bin, or pass --token / CPQ_LOAD_TOKEN)",
                admin.display()
            )
        })?;
        if !out.status.success() {
            bail!(
                "{} token failed ({}): {}",
                admin.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let token = String::from_utf8(out.stdout)
            .context("cpq-admin token printed something that is not UTF-8")?
            .trim()
            .to_owned();
        if token.is_empty() {
            bail!("{} token printed no token", admin.display());
        }
        tokens.push(token);
    }
    Ok(tokens)
}

fn ms(us: u64) -> String {
    format!("{:.1}", us as f64 / 1000.0)
}

/// A Markdown table per request name (one per step): after goose's own report, the figures
/// BENCHMARKS.md takes, with microsecond resolution (goose's console rounds to whole ms).
/// Returns how many requests failed.
fn print_summary(m: &GooseMetrics) -> usize {
    let secs = m.duration.max(1) as f64;
    let mut names: Vec<_> = m.requests.values().collect();
    names.sort_by(|a, b| a.path.cmp(&b.path));
    println!();
    println!(
        "cpq-load summary: {} users, {} s measured (after ramp-up)",
        m.maximum_users, m.duration
    );
    println!();
    println!("| step | requests | failures | req/s | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let (mut total, mut failed) = (0, 0);
    for r in &names {
        let t = &r.raw_data;
        let count = r.success_count + r.fail_count;
        total += count;
        failed += r.fail_count;
        println!(
            "| {} {} | {} | {} | {:.1} | {} | {} | {} | {} |",
            r.method,
            r.path,
            count,
            r.fail_count,
            count as f64 / secs,
            ms(t.percentile_us(0.5)),
            ms(t.percentile_us(0.95)),
            ms(t.percentile_us(0.99)),
            ms(t.maximum_time_us),
        );
    }
    let quotes = names
        .iter()
        .find(|r| r.path.starts_with("9 "))
        .map_or(0, |r| r.success_count);
    println!();
    println!(
        "total: {total} requests, {failed} failed, {:.1} requests/s; {quotes} quotes submitted, {:.1} quotes/s",
        total as f64 / secs,
        quotes as f64 / secs
    );
    failed
}
