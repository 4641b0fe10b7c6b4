//! Orders fulfilled end to end: conversion starts `processes/order-fulfillment-v2.bpmn` with the
//! order's plan; the real `cpq-worker` runs every plan task against the real `cpq-sim` over HTTP
//! (asynchronous systems call back to this API's `POST /v1/callbacks/{system}`, signed) and the
//! fulfillment process's internal jobs; the order completes and its items become the customer's
//! assets. A permanent failure opens a fallout case and puts the order in fallout; a repair
//! (retry) completes it. Every test checks that `cpq-sim` executed no request twice.
//!
//! `cpq-worker` and `cpq-sim` are reached as binaries in the same target directory (the
//! workspace's `cargo test` builds them).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cpq_testkit::processes::{fulfillment_job_types, sibling_binary, worker_process, SimProcess};
use cpq_testkit::KillOnDrop;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fulfillment::{converted_order_of, platform};
use crate::helpers::*;
use crate::support::TestApp;

/// The systems' job types of the demo catalog (`deploy/local/fulfillment-workers.toml`'s), against
/// `sim`, with callbacks to `app`, and the process's internal jobs: fast back-offs for tests.
fn job_types(app: &TestApp, sim: &str) -> String {
    fulfillment_job_types(
        &app.address,
        sim,
        "max_active = 8\nlease_ms = 5000\npoll_interval_ms = 100\nretry_backoff_ms = 50\nretry_backoff_max_ms = 200\n\
         request_timeout_ms = 2000\nbreaker_failure_threshold = 50\nbreaker_open_ms = 500",
        "max_active = 8\npoll_interval_ms = 100\nretry_backoff_ms = 50",
    )
}

pub(crate) fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cpq-order-fulfillment-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The test executable's own path: `cpq-worker` and `cpq-sim` are built next to it.
fn here() -> PathBuf {
    std::env::current_exe().unwrap()
}

/// The platform with the demo catalog, a simulator and a worker running every job type.
struct Fulfillment {
    app: TestApp,
    sales: String,
    sim: SimProcess,
    http: reqwest::Client,
    _worker: KillOnDrop,
}

impl Fulfillment {
    async fn start() -> Fulfillment {
        let (app, sales) = platform().await;
        let dir = temp_dir();
        let sim = SimProcess::start(&sibling_binary(&here(), "cpq-sim"), &dir, "").await;
        let (worker, _) = worker_process(
            &sibling_binary(&here(), "cpq-worker"),
            &app.db,
            &dir,
            "fulfillment-test",
            &job_types(&app, &sim.base),
        );
        Fulfillment {
            app,
            sales,
            sim,
            http: reqwest::Client::new(),
            _worker: worker,
        }
    }

    async fn sim(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.sim.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn assert_no_duplicate_executions(&self) {
        let d = self
            .sim(
                reqwest::Method::GET,
                "/admin/executions?duplicates_only=true",
                None,
            )
            .await;
        assert_eq!(d["executions"], json!([]), "duplicate executions: {d}");
    }

    async fn order(&self, order: &str) -> Value {
        let o = get(&self.app, &self.sales, &format!("/v1/orders/{order}")).await;
        assert_eq!(o.status, StatusCode::OK, "{}", o.body);
        o.body
    }

    /// Polls the order until its status is `status` (60 s at most), showing its plan otherwise.
    async fn wait_for_status(&self, order: &str, status: &str) -> Value {
        let started = Instant::now();
        loop {
            let o = self.order(order).await;
            if o["status"] == status {
                return o;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let plan = self.plan(order).await;
                let stats = self.sim(reqwest::Method::GET, "/admin/stats", None).await;
                let owner = self.app.db.owner_pool().await;
                let messages: Vec<(String, String, bool)> = sqlx::query_as(
                    "SELECT message_name, correlation_key, correlated_at IS NOT NULL FROM message ORDER BY published_at",
                )
                .fetch_all(&owner)
                .await
                .unwrap();
                let subscriptions: Vec<(String, String)> = sqlx::query_as(
                    "SELECT message_name, correlation_key FROM message_subscription ORDER BY created_at",
                )
                .fetch_all(&owner)
                .await
                .unwrap();
                let callbacks: Vec<(String, String)> =
                    sqlx::query_as("SELECT idempotency_key, outcome FROM external_callback")
                        .fetch_all(&owner)
                        .await
                        .unwrap();
                panic!(
                    "order {order} is {} after 60 s, not {status}; plan: {plan:#}\nsim: {}\nmessages: {messages:?}\nsubscriptions: {subscriptions:?}\ncallbacks: {callbacks:?}",
                    o["status"], stats["total"]
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn plan(&self, order: &str) -> Value {
        let p = get(
            &self.app,
            &self.sales,
            &format!("/v1/orders/{order}/fulfillment-plan"),
        )
        .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        p.body
    }

    /// (event type, count) of the order's events in the outbox.
    async fn events(&self, order: &str) -> BTreeMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT event_type, count(*) FROM outbox_event WHERE aggregate_id = $1::uuid GROUP BY event_type",
        )
        .bind(order)
        .fetch_all(&self.app.db.owner_pool().await)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }
}

fn at(t: &Value, field: &str) -> DateTime<Utc> {
    t[field]
        .as_str()
        .unwrap_or_else(|| panic!("task {} has no {field}: {t}", t["key"]))
        .parse()
        .unwrap()
}

/// Every task is completed, after every task it depends on.
fn assert_done_in_dependency_order(plan: &Value) {
    let tasks = plan["tasks"].as_array().unwrap();
    let by_key: BTreeMap<&str, &Value> = tasks
        .iter()
        .map(|t| (t["key"].as_str().unwrap(), t))
        .collect();
    for t in tasks {
        assert_eq!(t["status"], "completed", "{t}");
        for dep in t["depends_on"].as_array().unwrap() {
            let d = by_key[dep.as_str().unwrap()];
            assert!(
                at(d, "completed_at") <= at(t, "started_at"),
                "{} started before its dependency {} finished: {t} / {d}",
                t["key"],
                d["key"]
            );
        }
    }
}

#[tokio::test]
async fn an_order_is_fulfilled_through_the_simulators_in_dependency_order_and_becomes_assets() {
    let f = Fulfillment::start().await;
    let (order, account) = converted_order_of(&f.app, &f.sales, crate::fulfillment::lines()).await;
    let done = f.wait_for_status(&order, "completed").await;
    assert!(done["completed_at"].is_string(), "{done}");
    assert!(
        done["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "completed"),
        "{done}"
    );

    let plan = f.plan(&order).await;
    assert_done_in_dependency_order(&plan);
    let tasks = plan["tasks"].as_array().unwrap();
    // Independent tasks run side by side: every task that waits for nothing had its job created
    // by the process's start, at the same instant, before any of them finished.
    let instance = done["fulfillment_instance_id"].as_str().unwrap();
    let first_jobs: Vec<(String, DateTime<Utc>)> = sqlx::query_as(
        "SELECT DISTINCT ON (variables->'task'->>'key') variables->'task'->>'key', created_at FROM job \
         WHERE process_instance_id = $1::uuid AND variables->'task' IS NOT NULL \
         ORDER BY variables->'task'->>'key', created_at",
    )
    .bind(instance)
    .fetch_all(&f.app.db.owner_pool().await)
    .await
    .unwrap();
    let independent: Vec<&Value> = tasks
        .iter()
        .filter(|t| t["depends_on"].as_array().unwrap().is_empty())
        .collect();
    assert!(independent.len() >= 4, "{plan}");
    let started: std::collections::BTreeSet<DateTime<Utc>> = independent
        .iter()
        .map(|t| {
            first_jobs
                .iter()
                .find(|(k, _)| t["key"] == k.as_str())
                .unwrap_or_else(|| panic!("no job for {}: {first_jobs:?}", t["key"]))
                .1
        })
        .collect();
    assert_eq!(started.len(), 1, "{first_jobs:?}");
    let first_done = tasks.iter().map(|t| at(t, "completed_at")).min().unwrap();
    assert!(started.iter().all(|s| *s <= first_done), "{first_jobs:?}");
    // System tasks were called at least once; independent tasks ran side by side: some task
    // started before another independent one finished.
    for t in tasks.iter().filter(|t| !t["system"].is_null()) {
        assert!(t["attempts"].as_i64().unwrap() >= 1, "{t}");
    }

    // Provisioning is asynchronous: its tasks completed through the callback.
    let provisioned = f
        .sim(
            reqwest::Method::GET,
            "/admin/executions?system=provisioning&limit=1000",
            None,
        )
        .await;
    let provisioning_tasks = tasks
        .iter()
        .filter(|t| t["system"] == "provisioning")
        .count();
    assert_eq!(
        provisioned["executions"].as_array().unwrap().len(),
        provisioning_tasks,
        "{provisioned}"
    );
    let callbacks: i64 =
        sqlx::query_scalar("SELECT count(*) FROM external_callback WHERE system = 'provisioning'")
            .fetch_one(&f.app.db.owner_pool().await)
            .await
            .unwrap();
    assert_eq!(callbacks as usize, provisioning_tasks);

    // Events: one task-completed per task, one completed; assets, one per item.
    let events = f.events(&order).await;
    assert_eq!(
        events.get("order.task-completed").copied(),
        Some(tasks.len() as i64),
        "{events:?}"
    );
    assert_eq!(
        events.get("order.completed").copied(),
        Some(1),
        "{events:?}"
    );
    assert_eq!(events.get("order.in-fallout"), None, "{events:?}");
    let assets = get(
        &f.app,
        &f.sales,
        &format!("/v1/customer-accounts/{account}/assets"),
    )
    .await;
    assert_eq!(assets.status, StatusCode::OK, "{}", assets.body);
    let items = done["items"].as_array().unwrap();
    let assets = assets.body["items"].as_array().unwrap().clone();
    assert_eq!(assets.len(), items.len(), "{assets:?}");
    for item in items {
        let asset = assets
            .iter()
            .find(|a| a["line_no"] == item["line_no"])
            .unwrap_or_else(|| panic!("no asset for line {}: {assets:?}", item["line_no"]));
        assert_eq!(asset["offering_code"], item["offering_code"]);
        assert_eq!(asset["order_id"], order.as_str());
        assert_eq!(asset["status"], "active");
        assert_eq!(asset["configuration"], item["configuration"]);
    }
    f.assert_no_duplicate_executions().await;
}

#[tokio::test]
async fn a_permanent_failure_lands_in_fallout_and_a_retry_with_a_reason_completes_the_order() {
    let f = Fulfillment::start().await;
    // Billing refuses its next request with a business error, once.
    f.force("billing", "permanent:CREDIT_CHECK_FAILED", 1).await;
    let (order, _, case) = f.one_line_order_in_fallout().await;
    assert_eq!(case["system"], "billing");
    assert_eq!(case["category"], "business-failure");
    assert_eq!(case["error_code"], "CREDIT_CHECK_FAILED");
    let plan = f.plan(&order).await;
    let tasks = plan["tasks"].as_array().unwrap();
    let failed: Vec<&Value> = tasks.iter().filter(|t| t["status"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{plan}");
    assert_eq!(failed[0]["key"], case["task_key"]);
    // Its dependants wait.
    assert!(tasks.iter().any(|t| t["status"] == "pending"), "{plan}");

    let retried = f
        .repair(&case, "retry", "credit limit raised by finance")
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    f.wait_for_status(&order, "completed").await;
    assert_done_in_dependency_order(&f.plan(&order).await);
    let events = f.events(&order).await;
    for (event, count) in [
        ("order.in-fallout", 1),
        ("order.fallout-resolved", 1),
        ("order.completed", 1),
    ] {
        assert_eq!(
            events.get(event).copied(),
            Some(count),
            "{event}: {events:?}"
        );
    }
    let audit: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT action, reason FROM audit_record WHERE aggregate_id = $1::uuid ORDER BY occurred_at, action",
    )
    .bind(&order)
    .fetch_all(&f.app.db.owner_pool().await)
    .await
    .unwrap();
    assert!(
        audit.iter().any(|(a, _)| a == "order.fallout-open"),
        "{audit:?}"
    );
    let reason = Some("credit limit raised by finance");
    assert!(
        audit.iter().any(|(_, r)| r.as_deref() == reason),
        "{audit:?}"
    );
    f.assert_no_duplicate_executions().await;
}

impl Fulfillment {
    /// Queues `outcome` for `system`'s next `count` executions in the simulator.
    async fn force(&self, system: &str, outcome: &str, count: u32) {
        let path = format!("/admin/systems/{system}/force");
        let body = json!({ "outcome": outcome, "count": count });
        self.sim(reqwest::Method::POST, &path, Some(body)).await;
    }

    /// A converted one-line order (business internet) that lands in fallout: (order, account,
    /// its one open fallout case).
    async fn one_line_order_in_fallout(&self) -> (String, String, Value) {
        let line = json!({ "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500" } });
        let (order, account) = converted_order_of(&self.app, &self.sales, vec![line]).await;
        self.wait_for_status(&order, "in-fallout").await;
        let path = format!("/v1/fallout-cases?order_id={order}&status=open");
        let cases = get(&self.app, &self.sales_ops(), &path).await;
        assert_eq!(cases.status, StatusCode::OK, "{}", cases.body);
        let cases = cases.body["items"].as_array().unwrap().clone();
        assert_eq!(cases.len(), 1, "{cases:?}");
        assert!(
            cases[0]["request"]["idempotency_key"].is_string(),
            "{}",
            cases[0]
        );
        (order, account, cases[0].clone())
    }

    /// `POST /v1/fallout-cases/{id}/{action}` with `reason`, as order operations.
    async fn repair(&self, case: &Value, action: &str, reason: &str) -> Answer {
        let path = format!(
            "/v1/fallout-cases/{}/{action}",
            case["id"].as_str().unwrap()
        );
        post(
            &self.app,
            &self.sales_ops(),
            &path,
            &json!({ "reason": reason }),
            None,
        )
        .await
    }

    /// A token of the order operations staff who work fallout.
    fn sales_ops(&self) -> String {
        self.app.token("acme", &[cpq_core::Role::OrderOperations])
    }
}

/// Deploys, as the latest version of `order-fulfillment`, the platform's process with the
/// callback timeout shortened to `timeout` (an operator's own version of it), so that a missing
/// callback times out within the test.
async fn deploy_with_callback_timeout(app: &TestApp, timeout: &str) {
    let xml = std::fs::read_to_string(
        cpq_testkit::repo_root().join("processes/order-fulfillment-v2.bpmn"),
    )
    .unwrap();
    assert!(
        xml.contains(">PT15M<"),
        "the process's callback timeout moved"
    );
    let xml = xml.replace(">PT15M<", &format!(">{timeout}<"));
    let operator = app.token("acme", &[cpq_core::Role::Operator]);
    let deployed = deploy_bpmn(app, &operator, "", &xml).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
}

#[tokio::test]
async fn a_missing_callback_times_out_into_fallout_and_a_skip_lets_the_dependants_proceed() {
    let f = Fulfillment::start().await;
    deploy_with_callback_timeout(&f.app, "PT1S").await;
    // Provisioning accepts its next request and never calls back.
    f.force("provisioning", "callback_drop", 1).await;
    let (order, account, case) = f.one_line_order_in_fallout().await;
    assert_eq!(case["category"], "callback-timeout", "{case}");
    assert_eq!(case["system"], "provisioning", "{case}");
    assert_eq!(
        case["task_key"], "L1/access-line/provision-access",
        "{case}"
    );

    // A repair needs a reason: refused, nothing changes.
    let refused = f.repair(&case, "skip", " ").await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(f.order(&order).await["status"], "in-fallout");

    let reason = "line provisioned by hand by the field engineer";
    let skipped = f.repair(&case, "skip", reason).await;
    assert_eq!(skipped.status, StatusCode::OK, "{}", skipped.body);
    f.wait_for_status(&order, "completed").await;
    let plan = f.plan(&order).await;
    for t in plan["tasks"].as_array().unwrap() {
        let skipped = t["key"] == "L1/access-line/provision-access";
        assert_eq!(
            t["status"],
            if skipped { "skipped" } else { "completed" },
            "{t}"
        );
    }
    let events = f.events(&order).await;
    assert_eq!(
        events.get("order.completed").copied(),
        Some(1),
        "{events:?}"
    );
    let assets = get(
        &f.app,
        &f.sales,
        &format!("/v1/customer-accounts/{account}/assets"),
    )
    .await;
    assert_eq!(
        assets.body["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        assets.body
    );
    f.assert_no_duplicate_executions().await;
}

#[tokio::test]
async fn cancelling_an_order_in_fallout_stops_its_fulfillment() {
    let f = Fulfillment::start().await;
    f.force("inventory", "permanent:PORT_UNAVAILABLE", 1).await;
    let (order, account, case) = f.one_line_order_in_fallout().await;
    assert_eq!(case["error_code"], "PORT_UNAVAILABLE", "{case}");
    let cancelled = f
        .repair(
            &case,
            "cancel-order",
            "customer withdrew: no port at the site",
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let o = f.order(&order).await;
    assert_eq!(o["status"], "cancelled", "{o}");
    assert!(
        o["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "cancelled"),
        "{o}"
    );
    // The process instance is cancelled: nothing more runs, no asset is made.
    let instance = o["fulfillment_instance_id"].as_str().unwrap();
    let status: String = sqlx::query_scalar(
        "SELECT status FROM process_instance WHERE process_instance_id = $1::uuid",
    )
    .bind(instance)
    .fetch_one(&f.app.db.owner_pool().await)
    .await
    .unwrap();
    assert_eq!(status, "terminated");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let plan = f.plan(&order).await;
    let ended = ["cancelled", "failed", "completed"];
    assert!(
        plan["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| ended.contains(&t["status"].as_str().unwrap())),
        "{plan}"
    );
    let assets = get(
        &f.app,
        &f.sales,
        &format!("/v1/customer-accounts/{account}/assets"),
    )
    .await;
    assert_eq!(assets.body["items"], json!([]), "{}", assets.body);
    let again = f.repair(&case, "retry", "too late").await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    f.assert_no_duplicate_executions().await;
}

#[tokio::test]
async fn a_task_that_exhausts_its_retries_falls_out_as_a_technical_failure_and_a_retry_completes_it(
) {
    let f = Fulfillment::start().await;
    // Billing answers 500 to its next five executions: the task's five tries (retries="5").
    f.force("billing", "transient", 5).await;
    let (order, _, case) = f.one_line_order_in_fallout().await;
    assert_eq!(case["category"], "technical-failure", "{case}");
    assert_eq!(case["system"], "billing", "{case}");
    assert_eq!(case["attempts"], 5, "{case}");
    assert_eq!(case["error_code"], "500", "{case}");
    let retried = f.repair(&case, "retry", "billing is back").await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    f.wait_for_status(&order, "completed").await;
    let plan = f.plan(&order).await;
    let tasks = plan["tasks"].as_array().unwrap();
    let billing = tasks.iter().find(|t| t["system"] == "billing").unwrap();
    assert_eq!(billing["attempts"], 6, "{billing}");
    f.assert_no_duplicate_executions().await;
}
