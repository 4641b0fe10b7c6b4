#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `system` handler end to end: the real `cpq-worker` binary calls the real `cpq-sim` binary
//! over HTTP (each test with its own fresh platform database and its own empty simulator
//! database) for instances of a small process started through `cpq_workflow`. Success, an
//! asynchronous acceptance, transient failures retried to success with one execution, a business
//! rejection caught by an error boundary, retries exhausted into an incident, the circuit breaker
//! opening while a system is down and closing when it is back, and a worker killed with SIGKILL
//! during a slow call replaced by another with no duplicate execution; and a garbage answer (a
//! local server, since `cpq-sim` answers sensibly) taken as a failure, never as a success.
//!
//! `cpq-sim` is reached as a binary, never as a crate: build it first
//! (`cargo build -p cpq-sim`, same target directory and profile).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_testkit::processes::{sibling_binary, worker_process, SimProcess};
use cpq_testkit::{KillOnDrop, TestDb};
use cpq_workflow::deployment::{deploy, DeployRequest};
use cpq_workflow::instances::{start_instance, StartRequest};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// One service task of `job_type` with `retries`; a business failure is caught by an error
/// boundary event and ends the instance at `rejected`.
fn process(id: &str, job_type: &str, retries: u32) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d-{id}">
  <bpmn:error id="business" name="business" errorCode="business-failure" />
  <bpmn:process id="{id}" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="call"><bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" retries="{retries}" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="failed" attachedToRef="call"><bpmn:errorEventDefinition errorRef="business" /></bpmn:boundaryEvent>
    <bpmn:endEvent id="done" />
    <bpmn:endEvent id="rejected" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="done" />
    <bpmn:sequenceFlow id="f3" sourceRef="failed" targetRef="rejected" />
  </bpmn:process>
</bpmn:definitions>"#
    )
}

struct Sim {
    base: String,
    client: reqwest::Client,
    _process: SimProcess,
}

impl Sim {
    async fn start(dir: &Path) -> Sim {
        let bin = sibling_binary(Path::new(env!("CARGO_BIN_EXE_cpq-worker")), "cpq-sim");
        let process = SimProcess::start(&bin, dir, "").await;
        Sim {
            base: process.base.clone(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _process: process,
        }
    }

    async fn get(&self, path: &str) -> Value {
        let r = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().await.unwrap()
    }

    async fn put_knobs(&self, system: &str, knobs: Value) {
        let r = self
            .client
            .put(format!("{}/admin/systems/{system}", self.base))
            .json(&knobs)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    }

    /// The simulator's record of a key, if it has seen it.
    async fn key(&self, system: &str, key: &str) -> Option<Value> {
        let list = self
            .get(&format!("/admin/executions?system={system}&limit=10000"))
            .await;
        list["executions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["idempotency_key"] == key)
            .cloned()
    }

    async fn assert_no_duplicates(&self) {
        let d = self.get("/admin/executions?duplicates_only=true").await;
        assert_eq!(d["executions"], json!([]), "duplicate executions: {d}");
    }
}

/// A platform database with the processes deployed; instances are started in tenant `acme`.
struct Platform {
    db: TestDb,
    app: PgPool,
    owner: PgPool,
    tenant: TenantId,
}

impl Platform {
    async fn start(processes: &[(&str, &str, u32)]) -> Platform {
        let db = TestDb::fresh().await;
        let app = db.app_pool().await;
        let owner = db.owner_pool().await;
        let tenant = TenantId::parse("acme").unwrap();
        let mut tx = tenant::begin(&app, &tenant).await.unwrap();
        for (id, job_type, retries) in processes {
            let xml = process(id, job_type, *retries);
            deploy(
                &mut tx,
                &DeployRequest {
                    resource_name: &format!("{id}.bpmn"),
                    xml: &xml,
                    release_id: None,
                    source_commit: None,
                    variable_schema_version: 1,
                    allow_unsupported_job_types: true,
                    deployed_by: "t",
                    at: Utc::now(),
                },
            )
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
        Platform {
            db,
            app,
            owner,
            tenant,
        }
    }

    async fn start_instance(&self, process: &str, variables: Value) -> Uuid {
        let mut tx = tenant::begin(&self.app, &self.tenant).await.unwrap();
        let started = start_instance(
            &mut tx,
            &StartRequest {
                tenant: &self.tenant,
                bpmn_process_id: process,
                product_line: None,
                release_flags: vec![],
                variables: variables.as_object().cloned().unwrap_or_default(),
                at: Utc::now(),
            },
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        started.process_instance_id
    }

    /// The instance's status and root variables.
    async fn instance(&self, id: Uuid) -> (String, Map<String, Value>) {
        let (status, vars): (String, Value) = sqlx::query_as(
            "SELECT status, state->'variables' FROM process_instance WHERE process_instance_id = $1",
        )
        .bind(id)
        .fetch_one(&self.owner)
        .await
        .unwrap();
        (status, vars.as_object().cloned().unwrap_or_default())
    }

    /// Waits (at most 60 s) for the instance to complete; returns its variables.
    async fn completed(&self, id: Uuid) -> Map<String, Value> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, vars) = self.instance(id).await;
            if status == "completed" {
                return vars;
            }
            assert!(
                Instant::now() < deadline,
                "instance {id} did not complete (status {status}; jobs {:?}; incidents {:?})",
                self.jobs(id).await,
                self.incidents(id).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// (status, retries, attempt, error_message) of the instance's jobs.
    async fn jobs(&self, id: Uuid) -> Vec<(String, i32, i32, Option<String>)> {
        sqlx::query_as(
            "SELECT status, retries, attempt, error_message FROM job WHERE process_instance_id = $1 ORDER BY job_id",
        )
        .bind(id)
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }

    async fn job_key(&self, id: Uuid) -> String {
        let job: Uuid = sqlx::query_scalar("SELECT job_id FROM job WHERE process_instance_id = $1")
            .bind(id)
            .fetch_one(&self.owner)
            .await
            .unwrap();
        format!("job-{job}")
    }

    async fn incidents(&self, id: Uuid) -> Vec<(String, String)> {
        sqlx::query_as(
            "SELECT status, message FROM incident WHERE process_instance_id = $1 ORDER BY created_at",
        )
        .bind(id)
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }

    /// The outcomes of the attempts recorded for the instance's jobs, in order.
    async fn attempts(&self, id: Uuid) -> Vec<Option<String>> {
        sqlx::query_scalar(
            "SELECT a.outcome FROM external_call_attempt a JOIN job j USING (job_id) \
             WHERE j.process_instance_id = $1 ORDER BY a.started_at",
        )
        .bind(id)
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }

    /// A `cpq-worker` process for `job_types` (TOML of `[[worker.job_types]]`), and its admin
    /// address.
    fn worker(&self, dir: &Path, name: &str, job_types: &str) -> (KillOnDrop, String) {
        let bin = Path::new(env!("CARGO_BIN_EXE_cpq-worker"));
        worker_process(bin, &self.db, dir, name, job_types)
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cpq-worker-systems-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A `[[worker.job_types]]` entry of the `system` handler.
fn job_type(job_type: &str, system: &str, base: &str, extra: &str) -> String {
    format!(
        r#"
[[worker.job_types]]
job_type = "{job_type}"
handler = "system"
system = "{system}"
operation = "{job_type}"
url = "{base}"
max_active = 4
lease_ms = 5000
poll_interval_ms = 100
retry_backoff_ms = 50
retry_backoff_max_ms = 200
request_timeout_ms = 2000
{extra}
"#
    )
}

/// The value of one metric line (`name{labels}`) on the worker's admin port.
async fn metric(admin: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse::<f64>().ok())
    })
}

async fn eventually_metric(admin: &str, series: &str, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = metric(admin, series).await;
        if got == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {got:?}, expected {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn results_acceptances_and_transient_failures_retried_to_one_execution() {
    let dir = temp_dir();
    let sim = Sim::start(&dir).await;
    let platform = Platform::start(&[
        ("reserve", "reserve-inventory", 3),
        ("provision", "provision-service", 3),
        ("notify", "send-notification", 3),
    ])
    .await;
    // The timeout marker executes and stores, then answers after 5 s: past the worker's 2 s.
    sim.put_knobs("notification", json!({"timeout_delay_ms": 5000}))
        .await;
    let callback = "http://127.0.0.1:9/v1/callbacks/provisioning";
    let types = [
        job_type("reserve-inventory", "inventory", &sim.base, ""),
        job_type(
            "provision-service",
            "provisioning",
            &sim.base,
            &format!("callback_url = \"{callback}\""),
        ),
        job_type("send-notification", "notification", &sim.base, ""),
    ]
    .concat();
    let (_worker, admin) = platform.worker(&dir, "fulfillment", &types);

    let ok = platform
        .start_instance("reserve", json!({"task": {"order": "O-1", "sku": "R-1"}}))
        .await;
    let accepted = platform
        .start_instance("provision", json!({"order": "O-2"}))
        .await;
    let flaky = platform
        .start_instance(
            "reserve",
            json!({"order": "O-3", "sim_force": "transient:2"}),
        )
        .await;
    let slow = platform
        .start_instance("notify", json!({"order": "O-4", "sim_force": "timeout"}))
        .await;

    // 200: completed with the system's result.
    let vars = platform.completed(ok).await;
    let reservation = vars["result"]["reservation_id"].as_str().unwrap();
    assert!(reservation.starts_with("RES-"), "{vars:?}");
    assert!(vars["external_request_id"].is_string());
    let key = platform.job_key(ok).await;
    let record = sim.key("inventory", &key).await.unwrap();
    assert_eq!(record["executions"], 1);
    assert_eq!(platform.attempts(ok).await, [Some("success".to_owned())]);

    // 202: completed, and the process is told to wait for the callback.
    let vars = platform.completed(accepted).await;
    assert_eq!(vars["callback_expected"], true, "{vars:?}");
    assert_eq!(vars["external_system"], "provisioning");
    let key = platform.job_key(accepted).await;
    assert_eq!(vars["external_idempotency_key"], key.as_str());
    let record = sim.key("provisioning", &key).await.unwrap();
    assert_eq!(vars["external_request_id"], record["request_id"]);
    let callbacks = sim.get("/admin/callbacks?system=provisioning").await;
    assert!(
        callbacks.to_string().contains(callback),
        "the callback URL was sent: {callbacks}"
    );

    // Two transient failures, then success: one execution, three attempts, retries spent.
    platform.completed(flaky).await;
    let key = platform.job_key(flaky).await;
    let record = sim.key("inventory", &key).await.unwrap();
    assert_eq!(
        (
            record["executions"].clone(),
            record["transient_failures"].clone()
        ),
        (json!(1), json!(2)),
        "{record}"
    );
    assert_eq!(
        platform.attempts(flaky).await,
        [Some("failed"), Some("failed"), Some("success")].map(|s| s.map(str::to_owned))
    );
    let jobs = platform.jobs(flaky).await;
    assert_eq!(
        (jobs[0].0.as_str(), jobs[0].1),
        ("completed", 1),
        "{jobs:?}"
    );

    // A timeout: the system executed; the retry with the same key gets its stored answer.
    let vars = platform.completed(slow).await;
    assert!(vars["result"]["message_id"].is_string(), "{vars:?}");
    let key = platform.job_key(slow).await;
    let record = sim.key("notification", &key).await.unwrap();
    assert_eq!(record["executions"], 1, "{record}");
    assert_eq!(platform.attempts(slow).await[0].as_deref(), Some("failed"));

    sim.assert_no_duplicates().await;
    assert!(
        metric(
            &admin,
            "worker_system_calls_total{system=\"inventory\",outcome=\"unavailable\"}"
        )
        .await
            >= Some(2.0)
    );
    assert!(metric(
        &admin,
        "worker_system_call_duration_seconds_count{system=\"inventory\"}"
    )
    .await
    .is_some_and(|n| n >= 4.0));
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_business_rejection_is_caught_and_exhausted_retries_raise_an_incident() {
    let dir = temp_dir();
    let sim = Sim::start(&dir).await;
    let platform = Platform::start(&[
        ("provision", "provision-service", 3),
        ("bill", "activate-billing", 3),
    ])
    .await;
    let types = [
        job_type(
            "provision-service",
            "provisioning",
            &sim.base,
            "callback_url = \"http://127.0.0.1:9/v1/callbacks/provisioning\"",
        ),
        job_type("activate-billing", "billing", &sim.base, ""),
    ]
    .concat();
    let (_worker, _admin) = platform.worker(&dir, "fulfillment", &types);

    let refused = platform
        .start_instance(
            "provision",
            json!({"task": {"address": "nowhere", "sim_force": "permanent:INVALID_ADDRESS"}}),
        )
        .await;
    let broken = platform
        .start_instance("bill", json!({"account": "A-1", "sim_force": "transient"}))
        .await;

    // The BPMN error is caught by the boundary event; its variables say what happened.
    let vars = platform.completed(refused).await;
    let error = &vars["business_error"];
    assert_eq!(error["system"], "provisioning", "{vars:?}");
    assert_eq!(error["code"], "INVALID_ADDRESS");
    assert!(error["detail"].is_string());
    assert_eq!(error["request"]["payload"]["address"], "nowhere");
    assert_eq!(error["request"]["operation"], "provision-service");
    assert!(platform.incidents(refused).await.is_empty());
    assert_eq!(
        platform.attempts(refused).await,
        [Some("business-error".to_owned())]
    );

    // Always failing: three tries (the job's retries), then an incident; nothing executed.
    let deadline = Instant::now() + Duration::from_secs(60);
    let incidents = loop {
        let incidents = platform.incidents(broken).await;
        if !incidents.is_empty() {
            break incidents;
        }
        assert!(
            Instant::now() < deadline,
            "no incident: {:?}",
            platform.jobs(broken).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(incidents[0].0, "open");
    assert!(
        incidents[0].1.contains("billing answered 500"),
        "{incidents:?}"
    );
    let jobs = platform.jobs(broken).await;
    assert_eq!((jobs[0].0.as_str(), jobs[0].1), ("failed", 0), "{jobs:?}");
    assert_eq!(platform.attempts(broken).await.len(), 3);
    let key = platform.job_key(broken).await;
    let record = sim.key("billing", &key).await.unwrap();
    assert_eq!(
        (
            record["executions"].clone(),
            record["transient_failures"].clone()
        ),
        (json!(0), json!(3))
    );
    assert_eq!(platform.instance(broken).await.0, "active");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn the_breaker_opens_while_a_system_is_down_and_closes_when_it_is_back() {
    let dir = temp_dir();
    let sim = Sim::start(&dir).await;
    let platform = Platform::start(&[("record", "update-crm", 10)]).await;
    let types = job_type(
        "update-crm",
        "crm",
        &sim.base,
        "breaker_failure_threshold = 2\nbreaker_open_ms = 1000",
    );
    let (_worker, admin) = platform.worker(&dir, "crm-workers", &types);
    let state = "worker_circuit_breaker_state{system=\"crm\"}";
    eventually_metric(&admin, state, 0.0).await;

    sim.put_knobs("crm", json!({"mode": "down"})).await;
    let mut instances = Vec::new();
    for i in 0..4 {
        instances.push(
            platform
                .start_instance("record", json!({"customer": format!("C-{i}")}))
                .await,
        );
    }
    eventually_metric(&admin, state, 2.0).await;
    // While open, jobs are not called: they wait with their retries unchanged.
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(
        &admin,
        "worker_system_calls_total{system=\"crm\",outcome=\"breaker-open\"}",
    )
    .await
    .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "no call was refused by the open breaker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls_while_down = sim.get("/admin/stats").await["systems"]["crm"].clone();

    sim.put_knobs("crm", json!({"mode": "up"})).await;
    for id in &instances {
        platform.completed(*id).await;
        assert!(platform.incidents(*id).await.is_empty());
        let key = platform.job_key(*id).await;
        assert_eq!(sim.key("crm", &key).await.unwrap()["executions"], 1);
    }
    eventually_metric(&admin, state, 0.0).await;
    sim.assert_no_duplicates().await;
    assert_eq!(calls_while_down["executions"], 0, "{calls_while_down}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_worker_killed_during_a_slow_call_is_replaced_without_a_duplicate_execution() {
    let dir = temp_dir();
    let sim = Sim::start(&dir).await;
    let platform = Platform::start(&[("reserve", "reserve-inventory", 3)]).await;
    // Each execution takes 2.5 s: the worker is killed while the system is executing.
    sim.put_knobs(
        "inventory",
        json!({"latency_p50_ms": 2500, "latency_p95_ms": 2500}),
    )
    .await;
    let types = job_type("reserve-inventory", "inventory", &sim.base, "")
        .replace("request_timeout_ms = 2000", "request_timeout_ms = 4000");
    let (mut first, _) = platform.worker(&dir, "inventory-workers", &types);
    let id = platform
        .start_instance("reserve", json!({"order": "O-9"}))
        .await;

    // Wait until the simulator is executing the request, then SIGKILL the worker.
    let deadline = Instant::now() + Duration::from_secs(30);
    let key = loop {
        let jobs: Vec<Uuid> =
            sqlx::query_scalar("SELECT job_id FROM job WHERE process_instance_id = $1")
                .bind(id)
                .fetch_all(&platform.owner)
                .await
                .unwrap();
        if let Some(job) = jobs.first() {
            let key = format!("job-{job}");
            if sim.key("inventory", &key).await.is_some() {
                break key;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the call never reached the system"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.0.kill().unwrap();
    first.0.wait().unwrap();
    assert_eq!(
        platform.attempts(id).await,
        [None],
        "the attempt was recorded before the call, and never finished"
    );

    let (_second, _) = platform.worker(&dir, "inventory-workers", &types);
    let vars = platform.completed(id).await;
    assert!(vars["result"]["reservation_id"].is_string(), "{vars:?}");
    let record = sim.key("inventory", &key).await.unwrap();
    assert_eq!(record["executions"], 1, "{record}");
    sim.assert_no_duplicates().await;
    let attempts = platform.attempts(id).await;
    assert_eq!(attempts.first(), Some(&None));
    assert_eq!(attempts.last(), Some(&Some("success".to_owned())));
    let jobs = platform.jobs(id).await;
    assert_eq!(jobs[0].0, "completed");
    std::fs::remove_dir_all(dir).ok();
}

/// A system that answers 200 with a body that is not JSON.
async fn garbage_system() -> String {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/systems/{system}/requests",
        post(|| async { "<html>all good</html>" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_garbage_answer_is_a_failure_naming_the_system_never_a_success() {
    let dir = temp_dir();
    let base = garbage_system().await;
    let platform = Platform::start(&[("reserve", "reserve-inventory", 2)]).await;
    let types = job_type("reserve-inventory", "inventory", &base, "");
    let (_worker, _) = platform.worker(&dir, "inventory-workers", &types);
    let id = platform
        .start_instance("reserve", json!({"order": "O-1"}))
        .await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let incidents = loop {
        let incidents = platform.incidents(id).await;
        if !incidents.is_empty() {
            break incidents;
        }
        assert!(
            Instant::now() < deadline,
            "no incident: {:?}",
            platform.jobs(id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        incidents[0]
            .1
            .contains("inventory answered 200 with a body that is not a JSON object"),
        "{incidents:?}"
    );
    assert_eq!(platform.instance(id).await.0, "active");
    assert_eq!(
        platform.attempts(id).await,
        [Some("failed".to_owned()), Some("failed".to_owned())]
    );
    std::fs::remove_dir_all(dir).ok();
}
