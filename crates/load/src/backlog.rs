//! Profile `backlog`: the seed's fulfillment backlog scenario (part 055, section 19; issue 15
//! item 9). N orders (default 10,000) of eight fulfillment tasks each are created exactly as a
//! sales rep creates them, through the API (account, quote, two BIZ-INTERNET lines, price,
//! submit, accept, convert: conversion decomposes each order into its plan and starts
//! `processes/order-fulfillment-v2.bpmn`); `cpq-worker` then drains the 8 × N tasks against
//! `cpq-sim`, whose systems answer at p95 2 s with 5 % transient and 1 % permanent failures, and
//! whose provisioning goes down for 60 s in the middle (when half of the tasks are done).
//!
//! The plan of one order (two access lines, the demo catalog's technical catalog): per line
//! `reserve-port` (inventory) -> `provision-access` (provisioning, asynchronous: 202, then a
//! signed callback) -> `start-billing` (billing, after every access line is provisioned); for the
//! order `record-order` (crm) and, last, `notify-customer` (notification).
//!
//! Phases (`--backlog-phase`): `all` creates the orders and measures the drain at once (the
//! worker may run while orders are created); `create` only creates them and writes their ids to
//! `--orders-file`; `drain` reads them and measures the drain. `scripts/backlog.sh` stops the
//! worker, runs `create` (a real backlog), starts the worker with the throughput group
//! (`deploy/local/backlog-workers.toml`) and runs `drain`.
//!
//! Drained: no task of the run's orders is `ready`, `running` or `waiting-callback`, no order
//! is `in-fulfillment`, and every `failed` task has its fallout case open (orders left are
//! `completed` or `in-fallout`). The report: task activation, completion and failure rates (the
//! worker's `/metrics`), incidents, fallout cases against the simulator's permanent failures
//! (must be equal), external latency (the worker's `worker_system_call_duration_seconds`),
//! pool waits (the worker's sessions in `pg_stat_activity`, sampled), worker CPU and memory
//! (`/proc/<pid>` of `cpq-worker`), events emitted (outbox rows), the drain time, and
//! duplicate executions (`cpq-sim`'s records, must be 0). It exits 1 when an order could not be
//! created, the drain did not finish in `--drain-timeout-secs`, the fallout cases differ from the
//! permanent failures, or a request was executed twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Plan tasks per order (two access lines of three tasks, two order tasks).
pub const TASKS_PER_ORDER: i64 = 8;

/// The systems `cpq-sim` plays.
const SYSTEMS: [&str; 5] = [
    "inventory",
    "provisioning",
    "billing",
    "crm",
    "notification",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Phase {
    /// Create the orders, then measure the drain.
    All,
    /// Create the orders and write their ids to --orders-file.
    Create,
    /// Measure the drain of the orders in --orders-file.
    Drain,
}

/// The backlog profile's options (`--profile backlog`).
#[derive(Args, Clone, Debug)]
pub struct BacklogArgs {
    /// Orders to create (eight plan tasks each).
    #[arg(long, default_value_t = 10_000, help_heading = "Backlog profile")]
    pub orders: u32,
    /// Orders created at the same time (each its own sequence of requests).
    #[arg(long, default_value_t = 8, help_heading = "Backlog profile")]
    pub create_concurrency: usize,
    /// all: create, then drain; create: only create (ids to --orders-file); drain: only drain.
    #[arg(
        long,
        value_enum,
        default_value = "all",
        help_heading = "Backlog profile"
    )]
    pub backlog_phase: Phase,
    /// Where `create` writes the order ids and `drain` reads them (one a line).
    #[arg(
        long,
        default_value = "backlog-orders.txt",
        help_heading = "Backlog profile"
    )]
    pub orders_file: PathBuf,
    /// cpq-sim's base URL (its admin endpoints set the knobs and give the records).
    #[arg(
        long,
        default_value = "http://127.0.0.1:8090",
        help_heading = "Backlog profile"
    )]
    pub sim: String,
    /// cpq-worker's admin address (its /metrics).
    #[arg(
        long,
        default_value = "http://127.0.0.1:9097",
        help_heading = "Backlog profile"
    )]
    pub worker_admin: String,
    /// cpq-worker's pid, for its CPU and memory from /proc. Default: .run/cpq-worker.pid.
    #[arg(long, help_heading = "Backlog profile")]
    pub worker_pid: Option<u32>,
    /// Every system's median latency (ms).
    #[arg(long, default_value_t = 500, help_heading = "Backlog profile")]
    pub latency_p50_ms: u64,
    /// Every system's 95th percentile latency (ms).
    #[arg(long, default_value_t = 2000, help_heading = "Backlog profile")]
    pub latency_p95_ms: u64,
    /// Every system's transient failure rate (500 without executing).
    #[arg(long, default_value_t = 0.05, help_heading = "Backlog profile")]
    pub transient_rate: f64,
    /// Every system's permanent failure rate (a business rejection: fallout).
    #[arg(long, default_value_t = 0.01, help_heading = "Backlog profile")]
    pub permanent_rate: f64,
    /// Provisioning is down this long (s) once --outage-at of the tasks are done; 0: no outage.
    #[arg(long, default_value_t = 60, help_heading = "Backlog profile")]
    pub outage_secs: u64,
    /// Share of the tasks done (completed or failed) when provisioning goes down.
    #[arg(long, default_value_t = 0.5, help_heading = "Backlog profile")]
    pub outage_at: f64,
    /// Give up waiting for the drain after this long (s).
    #[arg(long, default_value_t = 1800, help_heading = "Backlog profile")]
    pub drain_timeout_secs: u64,
    /// Progress line every this many seconds during the drain.
    #[arg(long, default_value_t = 10, help_heading = "Backlog profile")]
    pub progress_secs: u64,
    /// The drain phase's worker was started for it at this time (RFC 3339): the drain is timed
    /// from it, and the worker's counters and CPU time count from zero (they are all the drain's).
    #[arg(long, help_heading = "Backlog profile")]
    pub worker_started_at: Option<DateTime<Utc>>,
    /// Leave cpq-sim's knobs as the run set them (default: put back what they were).
    #[arg(long, help_heading = "Backlog profile")]
    pub keep_sim_knobs: bool,
}

/// Runs the profile against `host` (cpq-api) with the sales `tokens`.
pub async fn run(args: BacklogArgs, host: String, tokens: Vec<String>) -> anyhow::Result<()> {
    if tokens.is_empty() && args.backlog_phase != Phase::Drain {
        bail!("the backlog profile needs a sales token");
    }
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(60))
        .build()?;
    let sim = Sim {
        http: http.clone(),
        base: args.sim.trim_end_matches('/').to_owned(),
    };
    let config = config()?;
    // The machine is busy with the run itself (two cores): connecting may take a while.
    let mut database = config.database.clone();
    database.acquire_timeout_ms = database.acquire_timeout_ms.max(30_000);
    database.statement_timeout_ms = database.statement_timeout_ms.max(30_000);
    let db = owner_pool(&database).await?;
    let app = cpq_db::pool::app_pool(&database, "cpq-load-backlog");
    let knobs_before = sim.get("/admin/systems").await?;
    sim.set_knobs(&args).await?;
    let outcome = run_phases(&args, &host, &tokens, &http, &sim, (&db, &app)).await;
    if !args.keep_sim_knobs {
        if let Err(e) = sim.restore(&knobs_before).await {
            eprintln!("cpq-load: putting back cpq-sim's knobs failed: {e:#}");
        }
    }
    outcome
}

async fn run_phases(
    args: &BacklogArgs,
    host: &str,
    tokens: &[String],
    http: &reqwest::Client,
    sim: &Sim,
    (db, app): (&PgPool, &PgPool),
) -> anyhow::Result<()> {
    let started = Utc::now();
    let sim_before = sim.get("/admin/stats").await?;
    let orders = match args.backlog_phase {
        Phase::All | Phase::Create => {
            let created = create_orders(args, host, tokens, http).await?;
            let text: String = created.orders.iter().map(|o| format!("{o}\n")).collect();
            std::fs::write(&args.orders_file, text)
                .with_context(|| format!("writing {}", args.orders_file.display()))?;
            created.print(args);
            let events = outbox_since(db, started).await?;
            println!(
                "\nevents written while creating: {} outbox rows ({})",
                events.values().sum::<i64>(),
                fmt_counts(&events)
            );
            if created.failed > 0 {
                bail!("{} order(s) could not be created", created.failed);
            }
            created.orders
        }
        Phase::Drain => read_orders(&args.orders_file)?,
    };
    if args.backlog_phase == Phase::Create {
        return Ok(());
    }
    let drain_started = match (args.backlog_phase, args.worker_started_at) {
        (Phase::All, _) => started,
        (_, Some(at)) => at,
        (_, None) => Utc::now(),
    };
    let since = (started, &sim_before);
    drain(args, sim, (db, app), &orders, drain_started, since).await
}

/// cpq-sim's admin endpoints.
struct Sim {
    http: reqwest::Client,
    base: String,
}

impl Sim {
    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .with_context(|| format!("cpq-sim at {} does not answer", self.base))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("cpq-sim GET {path}: {status}: {body}");
        }
        Ok(body)
    }

    async fn put(&self, system: &str, knobs: &Value) -> anyhow::Result<()> {
        let r = self
            .http
            .put(format!("{}/admin/systems/{system}", self.base))
            .json(knobs)
            .send()
            .await?;
        let status = r.status();
        if !status.is_success() {
            bail!(
                "cpq-sim PUT /admin/systems/{system}: {status}: {}",
                r.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Every system up, at the scenario's latency and failure rates.
    async fn set_knobs(&self, args: &BacklogArgs) -> anyhow::Result<()> {
        for s in SYSTEMS {
            self.put(
                s,
                &json!({
                    "mode": "up",
                    "latency_p50_ms": args.latency_p50_ms,
                    "latency_p95_ms": args.latency_p95_ms,
                    "transient_failure_rate": args.transient_rate,
                    "permanent_failure_rate": args.permanent_rate,
                    "timeout_rate": 0.0,
                    "callback_drop_rate": 0.0,
                }),
            )
            .await?;
        }
        Ok(())
    }

    async fn mode(&self, system: &str, mode: &str) -> anyhow::Result<()> {
        self.put(system, &json!({ "mode": mode })).await
    }

    /// Puts back the knobs `GET /admin/systems` gave before the run.
    async fn restore(&self, before: &Value) -> anyhow::Result<()> {
        let Some(systems) = before["systems"].as_object() else {
            return Ok(());
        };
        for (name, knobs) in systems {
            self.put(name, knobs).await?;
        }
        Ok(())
    }
}

/// The configuration: `CPQ_ENV` (default `local`) from `config/`, then `CPQ_*` variables.
fn config() -> anyhow::Result<cpq_config::Config> {
    let env = std::env::var("CPQ_ENV").unwrap_or_else(|_| "local".to_owned());
    cpq_config::load(&cpq_config::Sources::from_process(Some(env), None))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// The reports read every tenant's rows: as the schema owner.
async fn owner_pool(c: &cpq_config::DatabaseConfig) -> anyhow::Result<PgPool> {
    cpq_db::pool::owner_pool(c, "cpq-load-backlog")
        .await
        .with_context(|| format!("connecting to database {} as {}", c.name, c.owner_user))
}

fn read_orders(path: &PathBuf) -> anyhow::Result<Vec<Uuid>> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (run --backlog-phase create first)",
            path.display()
        )
    })?;
    let orders = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Uuid::parse_str(l.trim()).with_context(|| format!("bad order id {l:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if orders.is_empty() {
        bail!("{} lists no order", path.display());
    }
    Ok(orders)
}

// ---------------------------------------------------------------------------------------------
// Creating the orders.

/// The steps of one order, in order.
const STEPS: [&str; 9] = [
    "account",
    "quote",
    "item 1",
    "item 2",
    "price",
    "submit",
    "accept",
    "convert",
    "plan check",
];

struct Created {
    orders: Vec<Uuid>,
    failed: u64,
    errors: Vec<String>,
    took: Duration,
    /// Per step: every successful request's latency (µs).
    latencies: Vec<Vec<u64>>,
}

impl Created {
    fn print(&self, args: &BacklogArgs) {
        let secs = self.took.as_secs_f64().max(0.001);
        println!(
            "\nbacklog: created {} orders ({} failed) in {:.1} s with {} at a time: {:.1} orders/s",
            self.orders.len(),
            self.failed,
            secs,
            args.create_concurrency,
            self.orders.len() as f64 / secs
        );
        println!();
        println!("| step | requests | p50 (ms) | p95 (ms) | p99 (ms) | max (ms) |");
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for (i, name) in STEPS.iter().enumerate() {
            let mut l = self.latencies[i].clone();
            if l.is_empty() {
                continue;
            }
            l.sort_unstable();
            println!(
                "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                l.len(),
                pct(&l, 0.5) as f64 / 1000.0,
                pct(&l, 0.95) as f64 / 1000.0,
                pct(&l, 0.99) as f64 / 1000.0,
                *l.last().unwrap_or(&0) as f64 / 1000.0
            );
        }
        for e in self.errors.iter().take(10) {
            println!("error: {e}");
        }
    }
}

fn pct(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn create_orders(
    args: &BacklogArgs,
    host: &str,
    tokens: &[String],
    http: &reqwest::Client,
) -> anyhow::Result<Created> {
    let next = Arc::new(AtomicU64::new(0));
    let run = Utc::now().format("%Y%m%d%H%M%S").to_string();
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for w in 0..args.create_concurrency.max(1) {
        let (next, http, host, run) = (next.clone(), http.clone(), host.to_owned(), run.clone());
        let token = tokens[w % tokens.len()].clone();
        let total = u64::from(args.orders);
        set.spawn(async move {
            let api = Api { http, host, token };
            let mut orders = Vec::new();
            let mut errors = Vec::new();
            let mut latencies = vec![Vec::new(); STEPS.len()];
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    break;
                }
                // The first order of each creator also checks its plan has eight tasks.
                let check = orders.is_empty() && errors.is_empty();
                match api.order(&run, n, check, &mut latencies).await {
                    Ok(o) => orders.push(o),
                    Err(e) => errors.push(format!("order {n}: {e:#}")),
                }
                if n > 0 && n % 1000 == 0 {
                    eprintln!(
                        "backlog: {n} orders started in {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
            (orders, errors, latencies)
        });
    }
    let mut created = Created {
        orders: Vec::new(),
        failed: 0,
        errors: Vec::new(),
        took: Duration::ZERO,
        latencies: vec![Vec::new(); STEPS.len()],
    };
    while let Some(r) = set.join_next().await {
        let (orders, errors, latencies) = r?;
        created.orders.extend(orders);
        created.failed += errors.len() as u64;
        created.errors.extend(errors);
        for (all, mine) in created.latencies.iter_mut().zip(latencies) {
            all.extend(mine);
        }
    }
    created.took = started.elapsed();
    Ok(created)
}

/// A sales rep's calls.
struct Api {
    http: reqwest::Client,
    host: String,
    token: String,
}

impl Api {
    /// Sends one request, records its latency under `step` when it succeeds, returns the body.
    async fn call(
        &self,
        step: usize,
        method: reqwest::Method,
        path: &str,
        if_match: Option<i64>,
        body: Option<Value>,
        latencies: &mut [Vec<u64>],
    ) -> anyhow::Result<Value> {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.host.trim_end_matches('/')))
            .bearer_auth(&self.token);
        if let Some(v) = if_match {
            r = r.header("If-Match", format!("\"{v}\""));
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let t = Instant::now();
        let resp = r.send().await.with_context(|| STEPS[step])?;
        let status = resp.status();
        let text = resp.text().await.with_context(|| STEPS[step])?;
        if !status.is_success() {
            bail!("{}: HTTP {status}: {text}", STEPS[step]);
        }
        latencies[step].push(t.elapsed().as_micros() as u64);
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON: {text}", STEPS[step]))
    }

    /// One order, as a rep makes it: its id.
    async fn order(
        &self,
        run: &str,
        n: u64,
        check_plan: bool,
        l: &mut [Vec<u64>],
    ) -> anyhow::Result<Uuid> {
        use reqwest::Method;
        let account = self
            .call(
                0,
                Method::POST,
                "/v1/customer-accounts",
                None,
                Some(json!({
                    "name": format!("Backlog Co {n}"),
                    "external_ref": format!("BACKLOG-{run}-{n}"),
                    "segment": "enterprise",
                    "market": "DE",
                    "currency": "EUR",
                })),
                l,
            )
            .await?;
        let account = text(&account, "id")?;
        let quote = self
            .call(
                1,
                Method::POST,
                "/v1/quotes",
                None,
                Some(json!({ "customer_account_id": account })),
                l,
            )
            .await?;
        let q = format!("/v1/quotes/{}", text(&quote, "id")?);
        let mut version = number(&quote, "version")?;
        for (step, bandwidth) in [(2, "500"), (3, "250")] {
            let body = json!({ "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": bandwidth } } });
            let a = self
                .call(
                    step,
                    Method::POST,
                    &format!("{q}/items"),
                    Some(version),
                    Some(body),
                    l,
                )
                .await?;
            version = number(&a, "version")?;
        }
        for (step, action, status) in [
            (4, "price", "priced"),
            (5, "submit", "submitted"),
            (6, "accept", "accepted"),
        ] {
            let a = self
                .call(
                    step,
                    Method::POST,
                    &format!("{q}/{action}"),
                    Some(version),
                    Some(json!({})),
                    l,
                )
                .await?;
            if a["status"] != status {
                bail!("{action}: the quote is {}, not {status}", a["status"]);
            }
            version = number(&a, "version")?;
        }
        let order = self
            .call(
                7,
                Method::POST,
                &format!("{q}/convert"),
                Some(version),
                Some(json!({})),
                l,
            )
            .await?;
        if order["status"] != "in-fulfillment" {
            bail!("convert: the order is {}", order["status"]);
        }
        let id = Uuid::parse_str(&text(&order, "order_id")?)?;
        if check_plan {
            let plan = self
                .call(
                    8,
                    Method::GET,
                    &format!("/v1/orders/{id}/fulfillment-plan"),
                    None,
                    None,
                    l,
                )
                .await?;
            let tasks = plan["tasks"].as_array().map_or(0, Vec::len);
            if tasks as i64 != TASKS_PER_ORDER {
                bail!("order {id} has {tasks} plan tasks, not {TASKS_PER_ORDER}: {plan}");
            }
        }
        Ok(id)
    }
}

fn text(v: &Value, field: &str) -> anyhow::Result<String> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no {field} in {v}"))
}

fn number(v: &Value, field: &str) -> anyhow::Result<i64> {
    v[field]
        .as_i64()
        .with_context(|| format!("no {field} in {v}"))
}

// ---------------------------------------------------------------------------------------------
// The drain.

/// Where the run's orders stand.
#[derive(Default, Debug)]
struct Standing {
    tasks: BTreeMap<String, i64>,
    orders: BTreeMap<String, i64>,
    failed_without_case: i64,
}

impl Standing {
    fn task(&self, status: &str) -> i64 {
        self.tasks.get(status).copied().unwrap_or(0)
    }

    fn active(&self) -> i64 {
        self.task("ready") + self.task("running") + self.task("waiting-callback")
    }

    fn done(&self) -> i64 {
        self.task("completed") + self.task("failed")
    }

    fn drained(&self) -> bool {
        self.active() == 0
            && self.orders.get("in-fulfillment").copied().unwrap_or(0) == 0
            && self.failed_without_case == 0
    }
}

async fn standing(db: &PgPool, orders: &[Uuid]) -> anyhow::Result<Standing> {
    let tasks: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM fulfillment_task WHERE order_id = ANY($1) GROUP BY status",
    )
    .bind(orders)
    .fetch_all(db)
    .await?;
    let by_order: Vec<(String, i64)> = sqlx::query_as(
        "SELECT status, count(*) FROM sales_order WHERE order_id = ANY($1) GROUP BY status",
    )
    .bind(orders)
    .fetch_all(db)
    .await?;
    let failed_without_case: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM fulfillment_task t WHERE t.order_id = ANY($1) AND t.status = 'failed' \
         AND NOT EXISTS (SELECT 1 FROM fallout_case f WHERE f.order_id = t.order_id \
         AND f.task_key = t.task_key AND f.status = 'open')",
    )
    .bind(orders)
    .fetch_one(db)
    .await?;
    Ok(Standing {
        tasks: tasks.into_iter().collect(),
        orders: by_order.into_iter().collect(),
        failed_without_case,
    })
}

async fn outbox_since(db: &PgPool, since: DateTime<Utc>) -> anyhow::Result<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT event_type, count(*) FROM outbox_event WHERE occurred_at >= $1 GROUP BY event_type",
    )
    .bind(since)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

fn fmt_counts(m: &BTreeMap<String, i64>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The worker's sessions in `pg_stat_activity`: (open, busy, waiting on a lock). Read as the
/// application role, the worker's own: PostgreSQL shows a session's state only to its role (or
/// a superuser), so the owner would see every worker session without one.
async fn worker_sessions(app: &PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state IS DISTINCT FROM 'idle'), \
         count(*) FILTER (WHERE wait_event_type = 'Lock') \
         FROM pg_stat_activity WHERE application_name = 'cpq-worker' AND datname = current_database()",
    )
    .fetch_one(app)
    .await
    .unwrap_or((0, 0, 0))
}

/// A process's CPU time (s) and resident memory (kB, now and peak), from /proc.
fn proc_sample(pid: u32) -> Option<(f64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Some((ticks as f64 / clock_ticks(), kb("VmRSS:"), kb("VmHWM:")))
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The machine's CPU time: (busy, total) jiffies over every core, from /proc/stat.
fn machine_cpu() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn worker_pid(args: &BacklogArgs) -> Option<u32> {
    args.worker_pid.or_else(|| {
        std::fs::read_to_string(".run/cpq-worker.pid")
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

/// Prometheus text: (metric name, labels) -> value.
type Metrics = BTreeMap<(String, String), f64>;

async fn scrape(http: &reqwest::Client, admin: &str) -> Metrics {
    let Ok(r) = http
        .get(format!("{}/metrics", admin.trim_end_matches('/')))
        .send()
        .await
    else {
        return Metrics::new();
    };
    let text = r.text().await.unwrap_or_default();
    let mut out = Metrics::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, l.trim_end_matches('}')),
            None => (series, ""),
        };
        out.insert((name.to_owned(), labels.to_owned()), v);
    }
    out
}

fn label(labels: &str, name: &str) -> Option<String> {
    labels
        .split(',')
        .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
        .map(|v| v.trim_end_matches('"').to_owned())
}

/// After minus before of every series of `metric`, grouped by the label `by`.
fn delta_by(before: &Metrics, after: &Metrics, metric: &str, by: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for ((name, labels), v) in after {
        if name != metric {
            continue;
        }
        let b = before
            .get(&(name.clone(), labels.clone()))
            .copied()
            .unwrap_or(0.0);
        *out.entry(label(labels, by).unwrap_or_default())
            .or_insert(0.0) += v - b;
    }
    out
}

/// p50 and p95 (s) of one system's call durations from the histogram's bucket deltas.
fn histogram_quantiles(before: &Metrics, after: &Metrics, system: &str) -> Option<(f64, f64)> {
    let metric = "worker_system_call_duration_seconds_bucket";
    let mut buckets: Vec<(f64, f64)> = after
        .iter()
        .filter(|((n, l), _)| n == metric && label(l, "system").as_deref() == Some(system))
        .map(|((n, l), v)| {
            let le = label(l, "le").unwrap_or_default();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            let b = before.get(&(n.clone(), l.clone())).copied().unwrap_or(0.0);
            (le, v - b)
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let q = |q: f64| {
        buckets
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or(f64::INFINITY, |(le, _)| *le)
    };
    Some((q(0.5), q(0.95)))
}

fn stat(v: &Value, field: &str) -> i64 {
    v["total"][field].as_i64().unwrap_or(0)
}

async fn drain(
    args: &BacklogArgs,
    sim: &Sim,
    (db, app): (&PgPool, &PgPool),
    orders: &[Uuid],
    started: DateTime<Utc>,
    // When cpq-sim's records were read before the run, and what they said: the fallout cases
    // compared with its permanent failures are those opened since (a drain of orders that an
    // earlier, interrupted drain left has cases from before).
    (sim_read_at, sim_before): (DateTime<Utc>, &Value),
) -> anyhow::Result<()> {
    let total = orders.len() as i64 * TASKS_PER_ORDER;
    let pid = worker_pid(args);
    let t0 = Instant::now() - (Utc::now() - started).to_std().unwrap_or(Duration::ZERO);
    // A worker started for this drain: everything it counted is the drain's.
    let fresh = args.worker_started_at.is_some() && args.backlog_phase == Phase::Drain;
    let metrics_before = if fresh {
        Metrics::new()
    } else {
        scrape(&sim.http, &args.worker_admin).await
    };
    let proc_before = match pid.and_then(proc_sample) {
        Some(_) if fresh => Some((0.0, 0, 0)),
        p => p,
    };
    let machine_before = machine_cpu();
    if pid.is_none() || proc_before.is_none() {
        eprintln!("backlog: no cpq-worker pid to sample (--worker-pid); no CPU and memory figures");
    }
    println!(
        "\nbacklog: draining {} orders, {total} tasks (cpq-worker pid {})",
        orders.len(),
        pid.map_or("unknown".to_owned(), |p| p.to_string())
    );
    println!();
    println!("| s | tasks done | completed | failed | active | orders completed | in fallout | worker CPU % | worker RSS MB | provisioning |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
    let deadline = Duration::from_secs(args.drain_timeout_secs);
    let mut outage: Option<(Instant, Option<Instant>)> = None;
    let mut outage_at_s = (0.0, 0.0);
    let mut last_progress = Instant::now() - Duration::from_secs(3600);
    let mut last_proc = proc_before.map(|p| (if fresh { t0 } else { Instant::now() }, p.0));
    let mut peak_rss = 0u64;
    let mut sessions = Vec::new();
    let mut drained_at = None;
    let mut last;
    let mut misses = 0;
    loop {
        let now = Instant::now();
        // A report that fails (the database busy) is taken again; ten in a row end the run.
        let s = match standing(db, orders).await {
            Ok(s) => {
                misses = 0;
                s
            }
            Err(e) if misses < 10 => {
                misses += 1;
                eprintln!("backlog: reading the orders' standing failed ({e:#}); again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        sessions.push(worker_sessions(app).await);
        let sample = pid.and_then(proc_sample);
        if let Some((_, rss, hwm)) = sample {
            peak_rss = peak_rss.max(rss).max(hwm);
        }
        // Provisioning down once --outage-at of the tasks are done, up again after --outage-secs.
        match outage {
            None if args.outage_secs > 0 && s.done() as f64 >= args.outage_at * total as f64 => {
                sim.mode("provisioning", "down").await?;
                outage_at_s.0 = t0.elapsed().as_secs_f64();
                println!(
                    "| {:.0} | provisioning down ({} of {total} tasks done) | | | | | | | | down |",
                    outage_at_s.0,
                    s.done()
                );
                outage = Some((now, None));
            }
            Some((down, None)) if now - down >= Duration::from_secs(args.outage_secs) => {
                sim.mode("provisioning", "up").await?;
                outage_at_s.1 = t0.elapsed().as_secs_f64();
                println!(
                    "| {:.0} | provisioning up again | | | | | | | | up |",
                    outage_at_s.1
                );
                outage = Some((down, Some(now)));
            }
            _ => {}
        }
        let outage_over = args.outage_secs == 0 || matches!(outage, Some((_, Some(_))));
        if now - last_progress >= Duration::from_secs(args.progress_secs) || s.drained() {
            let cpu = match (last_proc, sample) {
                (Some((at, cpu0)), Some((cpu1, _, _))) => {
                    let pct = 100.0 * (cpu1 - cpu0) / (now - at).as_secs_f64().max(0.001);
                    last_proc = Some((now, cpu1));
                    format!("{pct:.0}")
                }
                _ => "-".to_owned(),
            };
            println!(
                "| {:.0} | {} | {} | {} | {} | {} | {} | {cpu} | {} | {} |",
                t0.elapsed().as_secs_f64(),
                s.done(),
                s.task("completed"),
                s.task("failed"),
                s.active(),
                s.orders.get("completed").copied().unwrap_or(0),
                s.orders.get("in-fallout").copied().unwrap_or(0),
                sample.map_or("-".to_owned(), |p| format!("{:.0}", p.1 as f64 / 1024.0)),
                match outage {
                    Some((_, None)) => "down",
                    _ => "up",
                }
            );
            last_progress = now;
        }
        last = s;
        if last.drained() && outage_over {
            drained_at = Some(t0.elapsed());
            break;
        }
        if t0.elapsed() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if matches!(outage, Some((_, None))) {
        sim.mode("provisioning", "up").await?;
    }
    let elapsed = drained_at.unwrap_or_else(|| t0.elapsed());
    let secs = elapsed.as_secs_f64().max(0.001);
    let metrics_after = scrape(&sim.http, &args.worker_admin).await;
    let proc_after = pid.and_then(proc_sample);
    let machine_after = machine_cpu();
    let sim_after = sim.get("/admin/stats").await?;
    let duplicates = sim.get("/admin/executions?duplicates_only=true").await?;
    let run_ended = Utc::now();

    // The run's fallout cases and incidents.
    let cases: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT category, status, count(*) FROM fallout_case WHERE order_id = ANY($1) AND created_at >= $2 \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .bind(orders)
    .bind(sim_read_at)
    .fetch_all(db)
    .await?;
    let incidents: Vec<(String, i64)> = sqlx::query_as(
        "SELECT i.status, count(*) FROM incident i JOIN sales_order o ON o.fulfillment_instance_id = i.process_instance_id \
         WHERE o.order_id = ANY($1) GROUP BY 1",
    )
    .bind(orders)
    .fetch_all(db)
    .await?;
    let events = outbox_since(db, started).await?;
    let events_of_orders: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_event WHERE aggregate_id = ANY($1)")
            .bind(orders)
            .fetch_one(db)
            .await?;
    let attempts: Option<i64> = sqlx::query_scalar(
        "SELECT sum(attempts)::bigint FROM fulfillment_task WHERE order_id = ANY($1)",
    )
    .bind(orders)
    .fetch_one(db)
    .await?;

    let permanent = stat(&sim_after, "permanent_failures_injected")
        - stat(sim_before, "permanent_failures_injected");
    let fallout: i64 = cases.iter().map(|c| c.2).sum();
    let duplicate_keys = duplicates["executions"].as_array().map_or(0, Vec::len);
    let duplicate_executions = stat(&sim_after, "duplicate_executions");

    println!();
    match drained_at {
        Some(d) => println!(
            "drain time: {:.1} s ({:.1} min) for {} orders, {total} tasks{}",
            d.as_secs_f64(),
            d.as_secs_f64() / 60.0,
            orders.len(),
            if args.backlog_phase == Phase::All {
                " (from the first order's creation)"
            } else {
                " (from the drain's start)"
            }
        ),
        None => println!(
            "NOT DRAINED after {:.0} s: {} tasks active, orders {:?}, {} failed tasks without an open case",
            secs,
            last.active(),
            last.orders,
            last.failed_without_case
        ),
    }
    if outage_at_s.0 > 0.0 {
        println!(
            "provisioning outage: down at {:.0} s, up at {:.0} s",
            outage_at_s.0, outage_at_s.1
        );
    }
    println!(
        "tasks: {} completed, {} failed, {} pending behind a fallout, {} other ({}); {} attempts in all",
        last.task("completed"),
        last.task("failed"),
        last.task("pending"),
        total - last.task("completed") - last.task("failed") - last.task("pending"),
        fmt_counts(&last.tasks),
        attempts.unwrap_or(0)
    );
    println!(
        "orders: {}; plan tasks completed {:.1}/s, done (completed or failed) {:.1}/s",
        fmt_counts(&last.orders),
        last.task("completed") as f64 / secs,
        last.done() as f64 / secs
    );

    // Jobs, from the worker's counters.
    let activated = delta_by(
        &metrics_before,
        &metrics_after,
        "workflow_jobs_activated_total",
        "job_type",
    );
    let completed = delta_by(
        &metrics_before,
        &metrics_after,
        "workflow_jobs_completed_total",
        "job_type",
    );
    let failed = delta_by(
        &metrics_before,
        &metrics_after,
        "workflow_jobs_failed_total",
        "job_type",
    );
    println!();
    println!("jobs (cpq-worker's workflow_jobs_*_total over the drain):");
    println!();
    println!("| job type | activated | activated/s | completed | completed/s | failed (retried) | failed/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut sums = (0.0, 0.0, 0.0);
    for (job_type, a) in &activated {
        let c = completed.get(job_type).copied().unwrap_or(0.0);
        let f = failed.get(job_type).copied().unwrap_or(0.0);
        if a + c + f == 0.0 {
            continue;
        }
        sums = (sums.0 + a, sums.1 + c, sums.2 + f);
        println!(
            "| {job_type} | {a:.0} | {:.1} | {c:.0} | {:.1} | {f:.0} | {:.2} |",
            a / secs,
            c / secs,
            f / secs
        );
    }
    println!(
        "| all | {:.0} | {:.1} | {:.0} | {:.1} | {:.0} | {:.2} |",
        sums.0,
        sums.0 / secs,
        sums.1,
        sums.1 / secs,
        sums.2,
        sums.2 / secs
    );

    // External calls.
    let calls = delta_by(
        &metrics_before,
        &metrics_after,
        "worker_system_calls_total",
        "system",
    );
    let call_sums = delta_by(
        &metrics_before,
        &metrics_after,
        "worker_system_call_duration_seconds_sum",
        "system",
    );
    let call_counts = delta_by(
        &metrics_before,
        &metrics_after,
        "worker_system_call_duration_seconds_count",
        "system",
    );
    let mut outcomes: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for ((name, labels), v) in &metrics_after {
        if name == "worker_system_calls_total" {
            let b = metrics_before
                .get(&(name.clone(), labels.clone()))
                .copied()
                .unwrap_or(0.0);
            if v - b > 0.0 {
                outcomes
                    .entry(label(labels, "system").unwrap_or_default())
                    .or_default()
                    .insert(label(labels, "outcome").unwrap_or_default(), v - b);
            }
        }
    }
    println!();
    println!("external calls (cpq-worker's worker_system_call*):");
    println!();
    println!("| system | calls | mean (ms) | p50 (ms, bucket) | p95 (ms, bucket) | outcomes |");
    println!("| --- | ---: | ---: | ---: | ---: | --- |");
    for s in SYSTEMS {
        let n = call_counts.get(s).copied().unwrap_or(0.0);
        let mean = call_sums.get(s).copied().unwrap_or(0.0) * 1000.0 / n.max(1.0);
        let (p50, p95) = histogram_quantiles(&metrics_before, &metrics_after, s).map_or(
            ("-".to_owned(), "-".to_owned()),
            |(a, b)| {
                (
                    format!("<= {:.0}", a * 1000.0),
                    format!("<= {:.0}", b * 1000.0),
                )
            },
        );
        let o = outcomes
            .get(s)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "| {s} | {:.0} | {mean:.0} | {p50} | {p95} | {o} |",
            calls.get(s).copied().unwrap_or(n)
        );
    }

    // Worker process and database sessions.
    println!();
    match (proc_before, proc_after) {
        (Some(b), Some(a)) => println!(
            "cpq-worker (pid {}): {:.1} s CPU over {:.0} s = {:.0} % of a core on average; RSS {:.0} MB at the end, peak {:.0} MB",
            pid.unwrap_or_default(),
            a.0 - b.0,
            secs,
            100.0 * (a.0 - b.0) / secs,
            a.1 as f64 / 1024.0,
            peak_rss.max(a.2) as f64 / 1024.0
        ),
        _ => println!("cpq-worker: no /proc figures (pid unknown or gone)"),
    }
    if let (Some(b), Some(a)) = (machine_before, machine_after) {
        println!(
            "machine: {:.0} % of all cores busy over the drain",
            100.0 * (a.0 - b.0) as f64 / (a.1 - b.1).max(1) as f64
        );
    }
    if !sessions.is_empty() {
        let n = sessions.len() as f64;
        let max_open = sessions.iter().map(|s| s.0).max().unwrap_or(0);
        let mean_busy = sessions.iter().map(|s| s.1).sum::<i64>() as f64 / n;
        let max_busy = sessions.iter().map(|s| s.1).max().unwrap_or(0);
        let saturated = sessions
            .iter()
            .filter(|s| s.0 > 0 && s.1 >= s.0 && s.0 >= max_open)
            .count();
        let lock_waits = sessions.iter().map(|s| s.2).sum::<i64>() as f64 / n;
        println!(
            "pool waits: cpq-worker sessions sampled {} times: at most {max_open} open, busy {mean_busy:.1} on average (max {max_busy}); \
             every open session busy (a claim or report would wait for a connection) in {saturated} samples ({:.0} %); \
             sessions waiting on a lock: {lock_waits:.2} on average",
            sessions.len(),
            100.0 * saturated as f64 / n
        );
    }
    let worker_db = delta_by(
        &metrics_before,
        &metrics_after,
        "db_query_duration_seconds_count",
        "query",
    );
    // `transaction_begin` is the pool's acquire plus BEGIN (crates/db/src/tenant.rs): what it
    // takes beyond one round trip is the wait for a connection.
    let begins = worker_db.get("transaction_begin").copied().unwrap_or(0.0);
    if begins > 0.0 {
        let begin_s = delta_by(
            &metrics_before,
            &metrics_after,
            "db_query_duration_seconds_sum",
            "query",
        )
        .get("transaction_begin")
        .copied()
        .unwrap_or(0.0);
        println!(
            "pool waits (the worker's transaction_begin: acquire a connection + BEGIN): {begins:.0} transactions, \
             mean {:.1} ms, {begin_s:.0} s in all ({:.1} transactions waiting on average)",
            begin_s * 1000.0 / begins,
            begin_s / secs
        );
    }
    let statements = worker_db.values().sum::<f64>();
    println!(
        "worker statements: {statements:.0} ({:.0}/s, {:.1} per plan task done)",
        statements / secs,
        statements / last.done().max(1) as f64
    );
    // Where the worker's database time goes: its statements by total time.
    let worker_db_secs = delta_by(
        &metrics_before,
        &metrics_after,
        "db_query_duration_seconds_sum",
        "query",
    );
    let mut by_time: Vec<(&String, &f64)> = worker_db_secs.iter().collect();
    by_time.sort_by(|a, b| b.1.total_cmp(a.1));
    if !by_time.is_empty() {
        println!();
        println!("| worker statement (top 12 by total time) | count | total (s) | mean (ms) |");
        println!("| --- | ---: | ---: | ---: |");
        for (query, total_s) in by_time.into_iter().take(12) {
            let n = worker_db.get(query).copied().unwrap_or(0.0);
            println!(
                "| {query} | {n:.0} | {total_s:.1} | {:.2} |",
                total_s * 1000.0 / n.max(1.0)
            );
        }
    }

    // Incidents, fallout, events, duplicates.
    println!();
    println!(
        "incidents of the run's processes: {}",
        if incidents.is_empty() {
            "0".to_owned()
        } else {
            incidents
                .iter()
                .map(|(s, n)| format!("{s} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    println!(
        "fallout cases of the run's orders: {fallout} ({}; opened since {}); cpq-sim's permanent failures over the run: {permanent}",
        cases
            .iter()
            .map(|(c, s, n)| format!("{c}/{s} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        sim_read_at.format("%H:%M:%S")
    );
    println!(
        "cpq-sim over the run: {} requests, {} executions, {} transient failures, {} permanent failures, {} callbacks delivered",
        stat(&sim_after, "requests") - stat(sim_before, "requests"),
        stat(&sim_after, "executions") - stat(sim_before, "executions"),
        stat(&sim_after, "transient_failures_injected")
            - stat(sim_before, "transient_failures_injected"),
        permanent,
        stat(&sim_after, "callbacks_delivered") - stat(sim_before, "callbacks_delivered"),
    );
    println!(
        "events emitted (outbox rows, {} to {}): {} ({}); of the run's orders (aggregate = order): {events_of_orders}",
        started.format("%H:%M:%S"),
        run_ended.format("%H:%M:%S"),
        events.values().sum::<i64>(),
        fmt_counts(&events)
    );
    println!(
        "duplicate executions (cpq-sim, whole record): {duplicate_executions}; keys executed more than once: {duplicate_keys}"
    );

    let mut problems = Vec::new();
    if drained_at.is_none() {
        problems.push(format!("not drained within {} s", args.drain_timeout_secs));
    }
    if fallout != permanent {
        problems.push(format!(
            "{fallout} fallout cases but {permanent} permanent failures"
        ));
    }
    if duplicate_keys > 0 || duplicate_executions > 0 {
        problems.push(format!(
            "{duplicate_executions} duplicate executions: {duplicates}"
        ));
    }
    if !problems.is_empty() {
        bail!("backlog: {}", problems.join("; "));
    }
    println!("\nbacklog: drained; fallout cases = permanent failures; no duplicate execution");
    Ok(())
}
