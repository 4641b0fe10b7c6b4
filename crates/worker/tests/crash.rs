#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real `cpq-worker` binary against a real HTTP endpoint: killed with SIGKILL in the middle of
//! a job, its job is claimed again after the lease by another worker process and the instance
//! completes; the external system sees the same idempotency key twice (so it can apply the call
//! once), the engine applies the step once, and every call was recorded as an attempt first.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use cpq_core::TenantId;
use cpq_db::tenant;
use cpq_testkit::TestDb;
use cpq_workflow::deployment::{deploy, DeployRequest};
use cpq_workflow::instances::{start_instance, StartRequest};
use serde_json::{json, Value};
use tokio::sync::Notify;
use uuid::Uuid;

const PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="provisioning" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="provision"><bpmn:extensionElements><zeebe:taskDefinition type="provision-service" retries="3" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="provision" />
    <bpmn:sequenceFlow id="f2" sourceRef="provision" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

#[derive(Clone, Default)]
struct External {
    calls: Arc<Mutex<Vec<String>>>,
    first_call: Arc<Notify>,
}

/// The first call hangs (the worker is killed meanwhile); later calls answer at once.
async fn provision(
    State(ext): State<External>,
    headers: HeaderMap,
    Json(_): Json<Value>,
) -> Json<Value> {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let n = {
        let mut calls = ext.calls.lock().unwrap();
        calls.push(key);
        calls.len()
    };
    if n == 1 {
        ext.first_call.notify_one();
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Json(json!({ "serviceId": "S-1" }))
}

fn worker(db: &TestDb, config_file: &std::path::Path) -> Child {
    let config = db.config();
    let mut cmd = cpq_testkit::binary(env!("CARGO_BIN_EXE_cpq-worker"));
    cmd.env("CPQ_ENV", "local")
        .env("CPQ_DATABASE__NAME", &db.name)
        .env("CPQ_DATABASE__HOST", &config.database.host)
        .env(
            "CPQ_DATABASE__APP_PASSWORD",
            config.database.app_password.expose(),
        )
        .env("CPQ_LOG__LEVEL", "warn")
        .arg("--worker-config")
        .arg(config_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.spawn().unwrap()
}

#[tokio::test]
async fn a_worker_killed_mid_job_loses_nothing_and_duplicates_no_step() {
    let db = TestDb::fresh().await;
    let pool = db.app_pool().await;
    let acme = TenantId::parse("acme").unwrap();
    let mut tx = tenant::begin(&pool, &acme).await.unwrap();
    deploy(
        &mut tx,
        &DeployRequest {
            resource_name: "p.bpmn",
            xml: PROCESS,
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
    let started = start_instance(
        &mut tx,
        &StartRequest {
            tenant: &acme,
            bpmn_process_id: "provisioning",
            product_line: None,
            release_flags: vec![],
            variables: serde_json::Map::new(),
            at: Utc::now(),
        },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let ext = External::default();
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/provision", server.local_addr().unwrap());
    let app = Router::new()
        .route("/provision", post(provision))
        .with_state(ext.clone());
    tokio::spawn(async move {
        let _ = axum::serve(server, app).await;
    });

    let dir = std::env::temp_dir().join(format!("cpq-worker-crash-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("worker.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[worker]
group = "provisioning-workers"
admin_bind = "127.0.0.1:0"
timer_scan_interval_ms = 200

[[worker.job_types]]
job_type = "provision-service"
handler = "http"
url = "{url}"
max_active = 2
lease_ms = 2000
request_timeout_ms = 1500
poll_interval_ms = 100
"#
        ),
    )
    .unwrap();

    let mut first = cpq_testkit::KillOnDrop(worker(&db, &file));
    tokio::time::timeout(Duration::from_secs(30), ext.first_call.notified())
        .await
        .expect("the first worker never called the external system");
    first.0.kill().unwrap(); // SIGKILL, mid-call
    first.0.wait().unwrap();

    let second = cpq_testkit::KillOnDrop(worker(&db, &file));
    let owner = db.owner_pool().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: String = sqlx::query_scalar(
            "SELECT status FROM process_instance WHERE process_instance_id = $1",
        )
        .bind(started.process_instance_id)
        .fetch_one(&owner)
        .await
        .unwrap();
        if status == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the instance did not complete after the crash (status {status})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let calls = ext.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one call per delivery: {calls:?}");
    assert_eq!(
        calls[0], calls[1],
        "both deliveries carry the same idempotency key"
    );
    let attempts: Vec<(i32, Option<String>, String)> = sqlx::query_as(
        "SELECT attempt, outcome, idempotency_key FROM external_call_attempt ORDER BY attempt",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[0].0, attempts[0].1.as_deref()),
        (1, None),
        "recorded before the call that never returned"
    );
    assert_eq!(
        (attempts[1].0, attempts[1].1.as_deref()),
        (2, Some("success"))
    );
    assert!(attempts.iter().all(|a| a.2 == calls[0]));
    let (jobs, job_status, job_attempt): (i64, String, i32) =
        sqlx::query_as("SELECT count(*) OVER (), status, attempt FROM job")
            .fetch_one(&owner)
            .await
            .unwrap();
    assert_eq!(
        (jobs, job_status.as_str(), job_attempt),
        (1, "completed", 2)
    );
    let revision: i64 = sqlx::query_scalar("SELECT revision FROM process_instance")
        .fetch_one(&owner)
        .await
        .unwrap();
    assert_eq!(revision, 2, "started once, stepped once");
    let heartbeat: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM worker_group WHERE group_name = 'provisioning-workers'",
    )
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(heartbeat, 1);

    // SIGTERM: the worker stops claiming and exits cleanly.
    let term = Command::new("kill")
        .arg("-TERM")
        .arg(second.0.id().to_string())
        .status()
        .unwrap();
    assert!(term.success());
    let exit = tokio::task::spawn_blocking(move || {
        let mut second = second;
        second.0.wait().unwrap()
    })
    .await
    .unwrap();
    assert!(exit.success(), "{exit:?}");
    owner.close().await;
    pool.close().await;
    std::fs::remove_dir_all(dir).ok();
}
