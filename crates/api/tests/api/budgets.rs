//! Statement budgets: each quote and order command, driven over HTTP, sends at most the SQL
//! statements its budget allows; the test fails naming every command over its budget with the
//! statements it sent, by name.
//!
//! Every statement goes through `cpq_db::timed`, so `/metrics` counts it by name in
//! `db_query_duration_seconds_count{query=...}`. The test starts the real `cpq-api` binary, so
//! that the counts are that process's alone (the in-process apps of the other tests share one
//! recorder), warms it up with whole flows (the compiled catalog and the process definitions are
//! then cached in process), and reads the counts before and after each single request with
//! nothing else running against that process; the scrape's own statement
//! (`workflow_active_instances`) is left out. POSTs carry an `Idempotency-Key`, so their counts
//! include the five statements of the command envelope (`transaction_begin`, `tenant_scope_set`,
//! `idempotency_record_insert`, `idempotency_record_complete`, `transaction_commit`); PUT and
//! DELETE carry no key: three.
//!
//! "Before" is the count on 2026-12-04 before the `order` crate; "needs" is what the command
//! needs: the envelope, one locked read, its writes with `RETURNING` instead of re-reads, an
//! audit record and each event (two statements per record with one event). Every budget is now
//! what its command needs: the quote is read with its lines in one statement
//! (`quote_fetch_for_update`), each change of the quote is one UPDATE (status, version and the
//! command's fields) answering with the quote as written, and the commands that validate or price
//! take the quote's catalog version from that locked read (the compiled catalog is cached).
//!
//! | command | before | budget | needs | what the budget is made of |
//! | --- | --- | --- | --- | --- |
//! | convert (1 line) | 26 | 14 | 14 | envelope 5; `quote_fetch_for_conversion` (locked) 1; `process_routing_fetch` 1 (the definition's model is cached); `process_instance_insert` (with its history) 1; `user_task_insert` 1; `sales_order_insert_converting_quote` (order, items through `unnest`, quote converted) 1; two audit records and their events 4 |
//! | convert (10 lines) | 35 | 14 | 14 | the same: nothing grows with the lines |
//! | create quote | 12 | 10 | 10 | envelope 5; account (`customer_account_fetch_for_quote`) 1; catalog in force 1; `quote_insert` (`RETURNING`) 1; audit 2 |
//! | add item | 17 | 10 | 10 | envelope 5; locked read 1 (it gives the catalog version); `quote_item_insert` 1; `quote_update_status` (`RETURNING`) 1; audit 2 |
//! | change item (PUT) | 15 | 8 | 8 | envelope 3; locked read 1; `quote_item_update` 1; `quote_update_status` 1; audit 2 |
//! | remove item (DELETE) | 11 | 8 | 8 | envelope 3; locked read 1; `quote_item_delete` 1; `quote_update_status` 1; audit 2 |
//! | set terms (PUT) | 11 | 7 | 7 | envelope 3; locked read 1; `quote_update_terms` (terms and status) 1; audit 2 |
//! | price | 17 | 9 | 9 | envelope 5; locked read 1; `quote_update_price` (snapshot and status) 1; audit 2 |
//! | submit (approval-free) | 14 | 10 | 10 | envelope 5; locked read 1; policy 1; `quote_update_submission` (decision and status) 1; audit 2 |
//! | submit (approval needed) | 24 | 17 | 17 | as approval-free, and the approval process: routing 1 (was 3 with the model), instance with history 1 (was 2), user task 1, two timers 2; a second audit record 2 |
//! | approve task | 27 | 23 | 23 | envelope 5; task and instance locked 3; the runtime step (instance, history, task, a timer and a subscription delete per element: 9); decision count and insert 2; quote 2 (`quote_fetch_for_update_by_approval_instance`, `quote_update_status`; was 6); audit 2 |
//! | accept | 13 | 9 | 9 | envelope 5; locked read 1; `quote_update_acceptance` (acceptance and status) 1; audit 2 |
//! | revise | 14 | 11 | 11 | envelope 5; locked read 1; frozen revision 1; items carried 1; `quote_open_revision` (`RETURNING`) 1; audit 2 |
//! | cancel | 12 | 9 | 9 | envelope 5; locked read 1; `quote_update_status` 1; audit 2 |
//!
//! To see it fail, lower a budget below its command's count and run
//! `<api test executable> budgets::`: the message lists each command over budget.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use cpq_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::approvals::deploy_platform_processes;
use crate::catalog::{demo, publish};
use crate::helpers::*;

/// The budgets of the table above, by command.
const BUDGETS: &[(&str, u64)] = &[
    ("convert (1 line)", 14),
    ("convert (10 lines)", 14),
    ("create quote", 10),
    ("add item", 10),
    ("change item", 8),
    ("remove item", 8),
    ("set terms", 7),
    ("price", 9),
    ("submit (approval-free)", 10),
    ("submit (approval needed)", 17),
    ("approve task", 23),
    ("accept", 9),
    ("revise", 11),
    ("cancel", 9),
];

/// The statement `GET /metrics` itself sends (the active instance gauges).
const SCRAPE_QUERY: &str = "workflow_active_instances";

/// One request: method, path, token, `If-Match` version and body.
struct Call<'a>(Method, String, &'a str, Option<i64>, Option<Value>);

fn post(path: impl Into<String>, token: &str, if_match: Option<i64>, body: Value) -> Call<'_> {
    Call(Method::POST, path.into(), token, if_match, Some(body))
}

fn put(path: impl Into<String>, token: &str, if_match: i64, body: Value) -> Call<'_> {
    Call(Method::PUT, path.into(), token, Some(if_match), Some(body))
}

fn line(discount: &str) -> Value {
    json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }, "manual_discount_percent": discount })
}

/// The real `cpq-api` binary on an ephemeral port, killed when dropped.
struct Isolated {
    _child: cpq_testkit::KillOnDrop,
    base: String,
    client: reqwest::Client,
    keys: std::sync::atomic::AtomicU32,
}

impl Isolated {
    fn spawn(db: &cpq_testkit::TestDb) -> Isolated {
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

    /// Sends `call`, a POST with a fresh `Idempotency-Key`.
    async fn send(&self, Call(method, path, token, if_match, body): Call<'_>) -> Answer {
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
            req = req.json(&b);
        }
        Answer::from(req.send().await.unwrap()).await
    }

    /// Sends `call`, which must succeed.
    async fn ok(&self, call: Call<'_>) -> Answer {
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

    /// The statements sent so far, by name.
    async fn statements(&self) -> BTreeMap<String, u64> {
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

/// What each command sent, by statement name; checked against [`BUDGETS`] at the end.
#[derive(Default)]
struct Report(Vec<(&'static str, BTreeMap<String, u64>)>);

impl Report {
    /// Sends `call`, which must succeed, and records the statements it sent as `command`'s.
    async fn measure(&mut self, api: &Isolated, command: &'static str, call: Call<'_>) -> Answer {
        let before = api.statements().await;
        let answer = api.ok(call).await;
        let sent = api
            .statements()
            .await
            .into_iter()
            .map(|(q, n)| (n - before.get(&q).copied().unwrap_or(0), q))
            .filter(|(n, _)| *n > 0)
            .map(|(n, q)| (q, n))
            .collect();
        self.0.push((command, sent));
        answer
    }

    fn total(&self, command: &str) -> u64 {
        self.0
            .iter()
            .find(|(c, _)| *c == command)
            .map_or(0, |(_, sent)| sent.values().sum())
    }

    /// Fails naming every command over its budget, with what it sent.
    fn assert_within_budgets(&self) {
        let mut over = Vec::new();
        for (command, sent) in &self.0 {
            let budget = BUDGETS
                .iter()
                .find(|(c, _)| c == command)
                .unwrap_or_else(|| panic!("no budget for {command}"))
                .1;
            let n = self.total(command);
            let detail: Vec<String> = sent.iter().map(|(q, n)| format!("{q} {n}")).collect();
            let line = format!(
                "{command}: {n} statements, budget {budget}: {}",
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

/// A platform (both processes deployed, the demo catalog in force, a customer account) served by
/// a `cpq-api` process of its own: (that process, a sales token, the account id, the in-process
/// app that set it up and owns the database).
async fn platform() -> (Isolated, String, String, crate::support::TestApp) {
    let app = crate::support::TestApp::spawn().await;
    deploy_platform_processes(&app).await;
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let sales = app.token("acme", SALES);
    let account = create_account(&app, &sales, "Initech", "CRM-budgets").await;
    let account = account.body["id"].as_str().unwrap().to_owned();
    (Isolated::spawn(&app.db), sales, account, app)
}

/// A quote of `lines` lines at `discount` percent off, priced: (id, version).
async fn priced(
    api: &Isolated,
    sales: &str,
    account: &str,
    lines: i64,
    discount: &str,
) -> (String, i64) {
    let created = api
        .ok(post(
            "/v1/quotes",
            sales,
            None,
            json!({ "customer_account_id": account }),
        ))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    for v in 1..=lines {
        api.ok(post(
            format!("/v1/quotes/{id}/items"),
            sales,
            Some(v),
            line(discount),
        ))
        .await;
    }
    let price = format!("/v1/quotes/{id}/price");
    api.ok(post(price, sales, Some(lines + 1), json!({}))).await;
    (id, lines + 2)
}

/// A quote of `lines` lines, priced, submitted (approval-free) and accepted: (id, version).
async fn accepted(api: &Isolated, sales: &str, account: &str, lines: i64) -> (String, i64) {
    let (id, v) = priced(api, sales, account, lines, "5").await;
    let submitted = api
        .ok(post(
            format!("/v1/quotes/{id}/submit"),
            sales,
            Some(v),
            json!({}),
        ))
        .await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    api.ok(post(
        format!("/v1/quotes/{id}/accept"),
        sales,
        Some(v + 1),
        json!({}),
    ))
    .await;
    (id, v + 2)
}

#[tokio::test]
async fn conversion_stays_within_14_statements_for_1_and_10_lines() {
    let (api, sales, account, _app) = platform().await;
    let (id, v) = accepted(&api, &sales, &account, 1).await;
    api.ok(post(
        format!("/v1/quotes/{id}/convert"),
        &sales,
        Some(v),
        json!({}),
    ))
    .await;

    let mut report = Report::default();
    for (command, lines) in [("convert (1 line)", 1), ("convert (10 lines)", 10)] {
        let (id, v) = accepted(&api, &sales, &account, lines).await;
        let convert = post(
            format!("/v1/quotes/{id}/convert"),
            &sales,
            Some(v),
            json!({}),
        );
        let order = report.measure(&api, command, convert).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        assert_eq!(order.body["items"].as_array().unwrap().len() as i64, lines);
    }
    report.assert_within_budgets();
    assert_eq!(
        report.total("convert (1 line)"),
        report.total("convert (10 lines)"),
        "conversion sends more statements for more lines"
    );
}

#[tokio::test]
async fn each_quote_command_stays_within_its_statement_budget() {
    let (api, sales, account, app) = platform().await;
    // Warm-up: both processes and the catalog get cached.
    accepted(&api, &sales, &account, 1).await;
    let (id, v) = priced(&api, &sales, &account, 1, "20").await;
    api.ok(post(
        format!("/v1/quotes/{id}/submit"),
        &sales,
        Some(v),
        json!({}),
    ))
    .await;

    let mut r = Report::default();
    let new_quote = post(
        "/v1/quotes",
        &sales,
        None,
        json!({ "customer_account_id": account }),
    );
    let created = r.measure(&api, "create quote", new_quote).await;
    let q = format!("/v1/quotes/{}", created.body["id"].as_str().unwrap());
    let add = post(format!("{q}/items"), &sales, Some(1), line("5"));
    r.measure(&api, "add item", add).await;
    let change = put(format!("{q}/items/1"), &sales, 2, line("4"));
    r.measure(&api, "change item", change).await;
    api.ok(post(format!("{q}/items"), &sales, Some(3), line("5")))
        .await;
    let remove = Call(
        Method::DELETE,
        format!("{q}/items/2"),
        &sales,
        Some(4),
        None,
    );
    r.measure(&api, "remove item", remove).await;
    let terms = put(
        format!("{q}/terms"),
        &sales,
        5,
        json!({ "special_terms": "net 60" }),
    );
    r.measure(&api, "set terms", terms).await;
    api.ok(put(
        format!("{q}/terms"),
        &sales,
        6,
        json!({ "special_terms": null }),
    ))
    .await;
    let price = post(format!("{q}/price"), &sales, Some(7), json!({}));
    r.measure(&api, "price", price).await;
    let submit = post(format!("{q}/submit"), &sales, Some(8), json!({}));
    let submitted = r.measure(&api, "submit (approval-free)", submit).await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    let accept = post(format!("{q}/accept"), &sales, Some(9), json!({}));
    r.measure(&api, "accept", accept).await;

    // Approval: submission starts the process, a manager approves, the rep revises and cancels.
    let (id, v) = priced(&api, &sales, &account, 1, "20").await;
    let q = format!("/v1/quotes/{id}");
    let submit = post(format!("{q}/submit"), &sales, Some(v), json!({}));
    let pending = r.measure(&api, "submit (approval needed)", submit).await;
    assert_eq!(
        pending.body["status"], "approval-pending",
        "{}",
        pending.body
    );
    let manager = app.token_with_groups("mgr@acme", "acme", &[Role::Approver], &["manager"]);
    let tasks = api
        .ok(Call(
            Method::GET,
            "/v1/approval-tasks".into(),
            &manager,
            None,
            None,
        ))
        .await;
    let task = tasks.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["quote_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no task for {id}: {}", tasks.body))["task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let approve = post(
        format!("/v1/approval-tasks/{task}/approve"),
        &manager,
        None,
        json!({ "comment": "fine" }),
    );
    let approved = r.measure(&api, "approve task", approve).await;
    assert_eq!(
        approved.body["quote"]["status"], "approved",
        "{}",
        approved.body
    );
    let revise = post(
        format!("{q}/revise"),
        &sales,
        Some(v + 2),
        json!({ "reason": "terms" }),
    );
    r.measure(&api, "revise", revise).await;
    let cancel = post(
        format!("{q}/cancel"),
        &sales,
        Some(v + 3),
        json!({ "reason": "lost" }),
    );
    r.measure(&api, "cancel", cancel).await;

    r.assert_within_budgets();
}
