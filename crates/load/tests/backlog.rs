#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The backlog profile at 200 orders (issue 15 item 9: "a 200-order version runs in the test
//! suite"), through the real deployables: `cpq-api`, `cpq-sim` and `cpq-worker` as child
//! processes on a fresh database, and `cpq-load --profile backlog` itself, as
//! `scripts/backlog.sh` runs it: the worker stopped while the orders are created through the API
//! (a real backlog of 1,600 plan tasks), then started for the drain. The simulators answer faster
//! than the scenario's p95 2 s (p50 20 ms, p95 100 ms, so that the test takes well under a minute
//! on two cores), but with the scenario's failures: 5 % transient, 1 % permanent, and
//! provisioning down for 8 s in the middle. `cpq-load` exits 0 only when the backlog drained, the
//! fallout cases equal `cpq-sim`'s permanent failures and no request was executed twice; the test
//! checks that and the report's figures.
//!
//! `cpq-api`, `cpq-admin`, `cpq-sim` and `cpq-worker` are reached as binaries in the same target
//! directory as `cpq-load` (build them first: `cargo build -p cpq-api -p cpq-admin -p cpq-sim
//! -p cpq-worker`; the workspace's `cargo test` builds them).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use cpq_testkit::processes::{sibling_binary, wait_for_log, worker_process, SimProcess};
use cpq_testkit::{binary, KillOnDrop, TestDb};

const ORDERS: u32 = 200;

fn load_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cpq-load"))
}

fn sibling(name: &str) -> PathBuf {
    sibling_binary(&load_bin(), name)
}

/// The environment that points a deployable at the test's database.
fn db_env(cmd: &mut Command, db: &TestDb) {
    let c = db.config().database;
    cmd.env("CPQ_ENV", "local")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_DATABASE__HOST", &c.host)
        .env("CPQ_DATABASE__PORT", c.port.to_string())
        .env("CPQ_DATABASE__APP_PASSWORD", c.app_password.expose())
        .env("CPQ_DATABASE__OWNER_PASSWORD", c.owner_password.expose());
}

/// `cpq-api` on an ephemeral port: the child and its base URL.
fn api(db: &TestDb) -> (KillOnDrop, String) {
    let mut cmd = binary(sibling("cpq-api").to_str().unwrap());
    db_env(&mut cmd, db);
    cmd.env("CPQ_HTTP__BIND", "127.0.0.1:0")
        .env("CPQ_LOG__LEVEL", "warn,cpq_api=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cpq-api starts");
    let addr = wait_for_log(&mut child, "cpq-api", "cpq-api serving", "addr");
    let addr = addr.trim_start_matches("Some(").trim_end_matches(')');
    (KillOnDrop(child), format!("http://{addr}"))
}

fn admin(db: &TestDb, args: &[&str]) {
    let mut cmd = binary(sibling("cpq-admin").to_str().unwrap());
    db_env(&mut cmd, db);
    let out = cmd.args(args).output().expect("cpq-admin runs");
    assert!(
        out.status.success(),
        "cpq-admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo catalog's systems' job types against `sim`, callbacks to `api`, and the process's
/// internal jobs: deploy/local/backlog-workers.toml with the test's addresses and back-offs
/// scaled to its faster systems and shorter outage.
fn job_types(api: &str, sim: &str) -> String {
    cpq_testkit::processes::fulfillment_job_types(
        api,
        sim,
        "max_active = 16\nlease_ms = 20000\npoll_interval_ms = 100\nrequest_timeout_ms = 10000\n\
         retry_backoff_ms = 2000\nretry_backoff_max_ms = 8000\nbreaker_failure_threshold = 5\nbreaker_open_ms = 2000",
        "max_active = 16\npoll_interval_ms = 100\nretry_backoff_ms = 200",
    )
}

/// Runs `cpq-load --profile backlog` with `args`; prints what it said.
fn cpq_load(db: &TestDb, api: &str, sim: &str, args: &[String]) -> (Output, String) {
    let mut cmd = binary(load_bin().to_str().unwrap());
    db_env(&mut cmd, db);
    cmd.env("CPQ_ADMIN_BIN", sibling("cpq-admin"))
        .args(["--profile", "backlog", "-H", api, "--sim", sim])
        .args(["--latency-p50-ms", "20", "--latency-p95-ms", "100"])
        .args(args);
    let out = cmd.output().expect("cpq-load runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    (out, stdout)
}

/// The number after `prefix` on the report's line that starts with it.
fn figure(report: &str, prefix: &str) -> i64 {
    let line = report
        .lines()
        .find_map(|l| l.split_once(prefix).map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no {prefix:?} in the report"));
    line.trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {prefix:?}: {line}"))
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpq-backlog-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn orders_file(dir: &Path) -> String {
    dir.join("orders.txt").to_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_orders_drain_with_fallout_equal_to_permanent_failures_and_no_duplicate() {
    let started = Instant::now();
    let db = TestDb::fresh().await;
    let dir = temp_dir();
    let (_api, api) = api(&db);
    admin(&db, &["seed", "demo", "--tenant", "demo"]);
    let sim = SimProcess::start(&sibling("cpq-sim"), &dir, "").await;
    let types = job_types(&api, &sim.base);

    // The processes deploy once a worker group runs their job types: the worker registers it,
    // then stops, so that the orders pile up.
    {
        let _worker = worker_process(&sibling("cpq-worker"), &db, &dir, "backlog-test", &types);
        let mut deployed = false;
        for _ in 0..40 {
            let mut cmd = binary(sibling("cpq-admin").to_str().unwrap());
            db_env(&mut cmd, &db);
            if cmd
                .args(["deploy-bpmn", "processes"])
                .output()
                .unwrap()
                .status
                .success()
            {
                deployed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(deployed, "the processes did not deploy");
    }

    let file = orders_file(&dir);
    let (out, report) = cpq_load(
        &db,
        &api,
        &sim.base,
        &[
            "--backlog-phase".into(),
            "create".into(),
            "--orders".into(),
            ORDERS.to_string(),
            "--orders-file".into(),
            file.clone(),
        ],
    );
    assert!(out.status.success(), "creating the orders failed");
    assert!(
        report.contains(&format!("created {ORDERS} orders (0 failed)")),
        "{report}"
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        ORDERS as usize
    );

    let worker_started = chrono::Utc::now().to_rfc3339();
    let (worker, admin_addr) =
        worker_process(&sibling("cpq-worker"), &db, &dir, "backlog-test", &types);
    let (out, report) = cpq_load(
        &db,
        &api,
        &sim.base,
        &[
            "--backlog-phase".into(),
            "drain".into(),
            "--orders-file".into(),
            file,
            "--worker-pid".into(),
            worker.0.id().to_string(),
            "--worker-started-at".into(),
            worker_started,
            "--worker-admin".into(),
            format!("http://{admin_addr}"),
            "--outage-secs".into(),
            "8".into(),
            "--drain-timeout-secs".into(),
            "150".into(),
            "--progress-secs".into(),
            "5".into(),
        ],
    );
    assert!(out.status.success(), "the backlog did not drain cleanly");

    // Everything done: completed, or failed with its case open and the tasks behind it pending.
    let tasks = i64::from(ORDERS) * 8;
    let completed = figure(&report, "tasks: ");
    let failed = figure(&report, "completed, ");
    let pending = figure(&report, "failed, ");
    assert_eq!(completed + failed + pending, tasks, "{report}");
    let fallout = figure(&report, "fallout cases of the run's orders: ");
    let permanent = figure(&report, "cpq-sim's permanent failures over the run: ");
    assert_eq!(fallout, permanent, "{report}");
    assert!(
        permanent > 0,
        "1 % of 1,600 tasks failed permanently: {report}"
    );
    assert!(failed > 0 && completed > tasks * 9 / 10, "{report}");
    assert_eq!(
        figure(&report, "duplicate executions (cpq-sim, whole record): "),
        0
    );
    assert_eq!(figure(&report, "incidents of the run's processes: "), 0);
    assert!(report.contains("provisioning outage: down at"), "{report}");
    assert!(report.contains("drain time: "), "{report}");
    assert!(
        report.contains("cpq-worker (pid "),
        "no CPU and memory: {report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("backlog test took {:.0} s", started.elapsed().as_secs_f64());
}
