//! The platform's other deployables as child processes of a test: `cpq-sim` with its own empty
//! database ([`SimProcess`]) and `cpq-worker` for a worker group against a test's platform
//! database ([`worker_process`]). Each is killed when dropped; each announces its address in its
//! JSON log, which [`wait_for_log`] reads.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

use crate::{binary, KillOnDrop, TestDb};

/// A deployable built into the same target directory and profile as `next_to` (a binary of the
/// test's own package, `env!("CARGO_BIN_EXE_...")`, or the test executable itself).
pub fn sibling_binary(next_to: &Path, name: &str) -> PathBuf {
    let mut dir = next_to.parent().expect("a binary has a directory");
    if dir.ends_with("deps") {
        dir = dir.parent().expect("deps has a parent");
    }
    let bin = dir.join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build it first (`cargo build -p {name}`, same target directory and profile)",
        bin.display()
    );
    bin
}

/// Reads a child's JSON log lines on a thread (so it never blocks on a full pipe) and returns the
/// value of `field` of the first line whose message is `message`. With `CPQ_TEST_CHILD_LOG` set,
/// every line is echoed, prefixed with `name`.
pub fn wait_for_log(child: &mut Child, name: &str, message: &str, field: &str) -> String {
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = mpsc::channel::<String>();
    let echo = std::env::var_os("CPQ_TEST_CHILD_LOG").is_some()
        || std::env::var_os("WORKER_TEST_LOG").is_some();
    let label = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if echo {
                eprintln!("{label}: {line}");
            }
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{name} did not start; it said:\n{}", seen.join("\n")));
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["message"] == message {
            return v[field].as_str().expect("a text field").to_owned();
        }
        seen.push(line);
    }
}

/// A running `cpq-sim` with its own empty database; `base` is its URL.
pub struct SimProcess {
    pub base: String,
    _child: KillOnDrop,
    _db: TestDb,
}

impl SimProcess {
    /// Starts `bin` with every system answering at once (no latency, no callback delay) plus
    /// `extra` TOML appended to its systems file; callbacks retry after 100 ms.
    pub async fn start(bin: &Path, dir: &Path, extra: &str) -> SimProcess {
        let db = TestDb::empty().await;
        let c = db.config().database;
        let url = format!(
            "postgres://{}:{}@{}:{}/{}",
            c.owner_user,
            c.owner_password.expose(),
            c.host,
            c.port,
            db.name
        );
        let systems = dir.join("systems.toml");
        let mut file = String::new();
        for s in [
            "inventory",
            "provisioning",
            "billing",
            "crm",
            "notification",
        ] {
            file.push_str(&format!(
                "[systems.{s}]\nlatency_p50_ms = 0\nlatency_p95_ms = 0\ncallback_delay_ms = 0\n\n"
            ));
        }
        file.push_str(extra);
        std::fs::write(&systems, file).expect("systems file written");
        let mut child = binary(bin.to_str().expect("a UTF-8 path"))
            .args(["--listen", "127.0.0.1:0", "--seed", "7"])
            .args([
                "--callback-retry-base-ms",
                "100",
                "--log-level",
                "info,sqlx=warn",
            ])
            .arg("--systems-config")
            .arg(&systems)
            .arg("--database-url")
            .arg(&url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cpq-sim starts");
        let addr = wait_for_log(&mut child, "cpq-sim", "cpq-sim serving", "addr");
        SimProcess {
            base: format!("http://{addr}"),
            _child: KillOnDrop(child),
            _db: db,
        }
    }
}

/// A `cpq-worker` process (`bin`) for the worker group `name` on `db`, with `job_types` (TOML of
/// `[[worker.job_types]]`); returns it and its admin address.
pub fn worker_process(
    bin: &Path,
    db: &TestDb,
    dir: &Path,
    name: &str,
    job_types: &str,
) -> (KillOnDrop, String) {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "[worker]\ngroup = \"{name}\"\nadmin_bind = \"127.0.0.1:0\"\ntimer_scan_interval_ms = 100\n\n{job_types}"
        ),
    )
    .expect("worker config written");
    let config = db.config();
    let mut cmd = binary(bin.to_str().expect("a UTF-8 path"));
    cmd.env("CPQ_ENV", "local")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_DATABASE__HOST", &config.database.host)
        .env(
            "CPQ_DATABASE__APP_PASSWORD",
            config.database.app_password.expose(),
        )
        .env("CPQ_LOG__LEVEL", "info,sqlx=warn")
        .arg("--worker-config")
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cpq-worker starts");
    let addr = wait_for_log(&mut child, name, "cpq-worker admin port", "addr");
    (KillOnDrop(child), addr)
}

/// The `[[worker.job_types]]` of the demo catalog's systems (as `deploy/local/fulfillment-workers.toml`
/// has them) against the simulator at `sim`, with callbacks to the API at `api`, each with the
/// `system_settings` lines (max_active, lease, back-offs, breaker), and the fulfillment process's
/// internal jobs, each with `internal_settings`.
pub fn fulfillment_job_types(
    api: &str,
    sim: &str,
    system_settings: &str,
    internal_settings: &str,
) -> String {
    let mut toml = String::new();
    for (job_type, system, operation) in [
        ("reserve-inventory", "inventory", "reserve"),
        ("ship-equipment", "inventory", "ship"),
        ("provision-service", "provisioning", "provision"),
        ("activate-billing", "billing", "activate-subscription"),
        ("update-crm", "crm", "record-order"),
        ("send-notification", "notification", "notify-customer"),
    ] {
        toml.push_str(&format!(
            "\n[[worker.job_types]]\njob_type = \"{job_type}\"\nhandler = \"system\"\nsystem = \"{system}\"\n\
             operation = \"{operation}\"\nurl = \"{sim}\"\ncallback_url = \"{api}/v1/callbacks/{system}\"\n{system_settings}\n"
        ));
    }
    for job_type in [
        "fulfillment-task-done",
        "fulfillment-fallout",
        "fulfillment-order-complete",
    ] {
        toml.push_str(&format!(
            "\n[[worker.job_types]]\njob_type = \"{job_type}\"\nhandler = \"fulfillment\"\n{internal_settings}\n"
        ));
    }
    toml
}
