//! Statement budgets: every command of the API, driven over HTTP, sends at most the SQL
//! statements its budget allows; a test fails naming every command over its budget with the
//! statements it sent, by name.
//!
//! Every statement goes through `cpq_db::timed`, so `/metrics` counts it by name in
//! `db_query_duration_seconds_count{query=...}`. Each test starts the real `cpq-api` binary
//! ([`Isolated`]), so that the counts are that process's alone (the in-process apps of the other
//! tests share one recorder), warms it up (the compiled catalog and the process definitions are
//! then cached in process), and reads the counts before and after each single request with
//! nothing else running against that process; the scrape's own statement
//! (`workflow_active_instances`) is left out.
//!
//! The command envelope: a POST carries an `Idempotency-Key`, so its count includes four
//! statements (`transaction_begin`, which also sets the tenant, `idempotency_record_insert`,
//! `idempotency_record_complete`, `transaction_commit`); PUT, PATCH and DELETE carry no key: two.
//! An audit record with all its outbox events is one statement (`audit_record_insert`).
//!
//! "Needs" is what a command needs: the envelope, one locked read, its writes with `RETURNING`
//! instead of re-reads, one audit statement. The budget is the count today when that is what the
//! command needs; where the command does more, its table row says "needs N, does M" and why, and
//! the budget stays at M until the command is fixed (the suite stays green; lower the budget with
//! the fix). Each file holds its commands' budgets (`BUDGETS`) and, in its module doc, the table
//! of what each is made of:
//!
//! - [`quotes`]: quotes, approval decisions and policy, conversion to an order;
//! - [`customers`]: customer accounts;
//! - [`catalog`]: catalog versions;
//! - [`fallout`]: the fallout repairs (retry, skip, cancel-order);
//! - [`workflow`]: process definitions, worker groups, routing, instances, messages, incidents,
//!   jobs and user tasks.
//!
//! `GET`s, `POST /v1/configurations/validate` and `POST /v1/price` are queries (no `command`
//! envelope, nothing written) and have no budget here.
//!
//! To see it fail, lower a budget below its command's count and run
//! `cargo test -p cpq-api --test api -- budgets`: the message lists each command over budget with
//! the statements it sent.

mod catalog;
mod customers;
mod fallout;
mod quotes;
mod workflow;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// A command's budget: at most `budget` statements; `needs` is what it needs (see the module
/// doc), lower than `budget` only while the command does more than it needs.
pub struct Budget {
    pub command: &'static str,
    pub budget: u64,
    pub needs: u64,
}

/// `(command, budget, needs)` as a [`Budget`], to keep the tables one line a command.
pub const fn budget(command: &'static str, budget: u64, needs: u64) -> Budget {
    Budget {
        command,
        budget,
        needs,
    }
}

/// The statement `GET /metrics` itself sends (the active instance gauges).
const SCRAPE_QUERY: &str = "workflow_active_instances";

/// One request: method, path, token, `If-Match` version and body.
pub struct Call<'a>(
    pub Method,
    pub String,
    pub &'a str,
    pub Option<i64>,
    pub Option<Value>,
);

/// A POST (it gets an `Idempotency-Key`).
pub fn post(path: impl Into<String>, token: &str, if_match: Option<i64>, body: Value) -> Call<'_> {
    Call(Method::POST, path.into(), token, if_match, Some(body))
}

/// A PUT without `If-Match`.
pub fn put(path: impl Into<String>, token: &str, body: Value) -> Call<'_> {
    Call(Method::PUT, path.into(), token, None, Some(body))
}

/// A PUT with `If-Match`.
pub fn put_at(path: impl Into<String>, token: &str, if_match: i64, body: Value) -> Call<'_> {
    Call(Method::PUT, path.into(), token, Some(if_match), Some(body))
}

/// A DELETE with `If-Match`.
pub fn delete_at(path: impl Into<String>, token: &str, if_match: i64) -> Call<'_> {
    Call(Method::DELETE, path.into(), token, Some(if_match), None)
}

/// A GET.
pub fn get(path: impl Into<String>, token: &str) -> Call<'_> {
    Call(Method::GET, path.into(), token, None, None)
}

/// The real `cpq-api` binary on an ephemeral port, killed when dropped.
pub struct Isolated {
    _child: cpq_testkit::KillOnDrop,
    base: String,
    client: reqwest::Client,
    keys: std::sync::atomic::AtomicU32,
}

impl Isolated {
    pub fn spawn(db: &cpq_testkit::TestDb) -> Isolated {
        let config = db.config();
        let mut child = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-api"))
            .env("CPQ_ENV", "local")
            .env("CPQ_HTTP__BIND", "127.0.0.1:0")
            .env("CPQ_DATABASE__NAME", &db.name)
            .env("CPQ_DATABASE__HOST", &config.database.host)
            .env("CPQ_DATABASE__PORT", config.database.port.to_string())
            .env(
                "CPQ_DATABASE__APP_PASSWORD",
                config.database.app_password.expose(),
            )
            .env("CPQ_LOG__LEVEL", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let child = cpq_testkit::KillOnDrop(child);
        let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
        // Reads stderr to its end, so that the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let addr = loop {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("cpq-api did not start");
            let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
            if v["message"] == "cpq-api serving" {
                break v["addr"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("Some(")
                    .trim_end_matches(')')
                    .to_owned();
            }
        };
        Isolated {
            _child: child,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            keys: Default::default(),
        }
    }

    /// Sends `call`; a POST gets a fresh `Idempotency-Key`.
    pub async fn send(&self, Call(method, path, token, if_match, body): Call<'_>) -> Answer {
        let mut req = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_for(token);
        if method == Method::POST {
            let n = self.keys.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            req = req.header("Idempotency-Key", format!("budget-{n}"));
        }
        if let Some(v) = if_match {
            req = req.header("If-Match", format!("\"{v}\""));
        }
        if let Some(b) = body {
            req = match method {
                // A customer account change is a JSON merge patch.
                Method::PATCH => req
                    .header("content-type", "application/merge-patch+json")
                    .body(b.to_string()),
                _ => req.json(&b),
            };
        }
        Answer::from(req.send().await.unwrap()).await
    }

    /// Sends `call`, which must succeed.
    pub async fn ok(&self, call: Call<'_>) -> Answer {
        let (method, path) = (call.0.clone(), call.1.clone());
        let a = self.send(call).await;
        assert!(
            a.status.is_success(),
            "{method} {path}: {} {}",
            a.status,
            a.body
        );
        a
    }

    /// Deploys BPMN `xml` through this process (so that it caches the definitions), allowing job
    /// types no worker group executes.
    pub async fn deploy(&self, token: &str, xml: &str) -> Answer {
        let n = self.keys.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let req = self
            .client
            .post(format!(
                "{}/v1/process-definitions?allow_unsupported_job_types=true",
                self.base
            ))
            .bearer_for(token)
            .header("Idempotency-Key", format!("budget-{n}"))
            .header("content-type", "application/xml")
            .body(xml.to_owned());
        Answer::from(req.send().await.unwrap()).await
    }

    /// The statements sent so far, by name.
    pub async fn statements(&self) -> BTreeMap<String, u64> {
        let page = self
            .client
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut counts = BTreeMap::new();
        for line in page.lines() {
            let Some(rest) = line.strip_prefix("db_query_duration_seconds_count{") else {
                continue;
            };
            let (labels, value) = rest.rsplit_once("} ").unwrap();
            let query = labels
                .split(',')
                .find_map(|l| l.strip_prefix("query=\""))
                .unwrap()
                .trim_end_matches('"');
            if query != SCRAPE_QUERY {
                *counts.entry(query.to_owned()).or_insert(0) += value.parse::<u64>().unwrap();
            }
        }
        counts
    }
}

/// What each command sent, by statement name; checked against its file's budgets at the end.
pub struct Report {
    budgets: &'static [Budget],
    sent: Vec<(&'static str, BTreeMap<String, u64>)>,
}

impl Report {
    pub fn new(budgets: &'static [Budget]) -> Report {
        Report {
            budgets,
            sent: Vec::new(),
        }
    }

    fn budget(&self, command: &str) -> &Budget {
        self.budgets
            .iter()
            .find(|b| b.command == command)
            .unwrap_or_else(|| panic!("no budget for {command}"))
    }

    /// Sends `call`, which must succeed, and records the statements it sent as `command`'s.
    pub async fn measure(
        &mut self,
        api: &Isolated,
        command: &'static str,
        call: Call<'_>,
    ) -> Answer {
        self.budget(command);
        let before = api.statements().await;
        let answer = api.ok(call).await;
        self.record(api, command, before).await;
        answer
    }

    /// Records the statements sent since `before` as `command`'s (for a request [`Self::measure`]
    /// cannot send, such as a deployment).
    pub async fn record(
        &mut self,
        api: &Isolated,
        command: &'static str,
        before: BTreeMap<String, u64>,
    ) {
        self.budget(command);
        let sent = api
            .statements()
            .await
            .into_iter()
            .map(|(q, n)| (n - before.get(&q).copied().unwrap_or(0), q))
            .filter(|(n, _)| *n > 0)
            .map(|(n, q)| (q, n))
            .collect();
        self.sent.push((command, sent));
    }

    pub fn total(&self, command: &str) -> u64 {
        self.sent
            .iter()
            .find(|(c, _)| *c == command)
            .map_or(0, |(_, sent)| sent.values().sum())
    }

    /// Prints every command's count, and fails naming every command over its budget, with what
    /// it sent.
    pub fn assert_within_budgets(&self) {
        let mut over = Vec::new();
        for (command, sent) in &self.sent {
            let Budget { budget, needs, .. } = *self.budget(command);
            let n = self.total(command);
            let detail: Vec<String> = sent.iter().map(|(q, n)| format!("{q} {n}")).collect();
            let line = format!(
                "{command}: {n} statements, budget {budget}, needs {needs}: {}",
                detail.join(", ")
            );
            eprintln!("{line}");
            if n > budget {
                over.push(line);
            }
        }
        assert!(
            over.is_empty(),
            "over the statement budget:\n{}",
            over.join("\n")
        );
    }
}

/// A test app (it owns the database) and a `cpq-api` process of its own on that database.
pub async fn isolated() -> (crate::support::TestApp, Isolated) {
    let app = crate::support::TestApp::spawn().await;
    let api = Isolated::spawn(&app.db);
    (app, api)
}

/// Every table's commands are distinct, and no budget is below what its command needs.
#[test]
fn the_tables_are_consistent() {
    for table in [
        quotes::BUDGETS,
        customers::BUDGETS,
        catalog::BUDGETS,
        workflow::BUDGETS,
        fallout::BUDGETS,
    ] {
        for (i, b) in table.iter().enumerate() {
            assert!(b.budget >= b.needs, "{}: budget below its need", b.command);
            assert!(
                table[..i].iter().all(|o| o.command != b.command),
                "{} twice",
                b.command
            );
        }
    }
}
