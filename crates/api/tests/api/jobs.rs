//! The workflow over HTTP: deploy, start, the worker job API (long poll, complete, fail, error),
//! incidents and their resolution, cancellation, messages.

use std::time::{Duration, Instant};

use cpq_core::Role;
use cpq_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

const PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:message id="M" name="order-cancelled"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:process id="fulfil" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="reserve"><bpmn:extensionElements><zeebe:taskDefinition type="reserve-inventory" retries="1" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:serviceTask id="provision"><bpmn:extensionElements><zeebe:taskDefinition type="provision-service" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="cancelled" attachedToRef="provision"><bpmn:messageEventDefinition messageRef="M" /></bpmn:boundaryEvent>
    <bpmn:endEvent id="e" /><bpmn:endEvent id="e2" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="reserve" />
    <bpmn:sequenceFlow id="f2" sourceRef="reserve" targetRef="provision" />
    <bpmn:sequenceFlow id="f3" sourceRef="provision" targetRef="e" />
    <bpmn:sequenceFlow id="f4" sourceRef="cancelled" targetRef="e2" />
  </bpmn:process>
</bpmn:definitions>"#;

async fn setup(app: &TestApp) -> (String, String) {
    let operator = app.token("acme", &[Role::Operator]);
    let deployed = Answer::from(
        app.client
            .post(app.url("/v1/process-definitions?allow_unsupported_job_types=true"))
            .bearer_for(&operator)
            .header("content-type", "application/xml")
            .body(PROCESS)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    (
        operator,
        app.token_for("worker-1", "platform", &[Role::Worker]),
    )
}

async fn start(app: &TestApp, operator: &str, order: &str) -> String {
    let started = post(
        app,
        operator,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": "fulfil", "variables": { "orderId": order } }),
        None,
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    started.body["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn activate(app: &TestApp, worker: &str, job_type: &str, wait_ms: u64) -> Vec<Value> {
    let a = post(app, worker, "/v1/jobs/activation", &json!({ "job_type": job_type, "worker": "w1", "timeout_ms": 30000, "max_jobs": 10, "request_timeout_ms": wait_ms }), None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["jobs"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_worker_runs_jobs_over_http_and_operations_repair_incidents() {
    let app = TestApp::spawn().await;
    let (operator, worker) = setup(&app).await;
    post(
        &app,
        &operator,
        "/v1/jobs/activation",
        &json!({ "job_type": "x", "worker": "w", "timeout_ms": 1000, "max_jobs": 1 }),
        None,
    )
    .await
    .assert_problem(403, "forbidden");

    let instance = start(&app, &operator, "O-1").await;
    let jobs = activate(&app, &worker, "reserve-inventory", 0).await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0]["variables"]["orderId"], "O-1");
    assert_eq!(jobs[0]["tenant"], "acme");
    assert_eq!(
        jobs[0]["idempotency_key"],
        format!("job-{}", jobs[0]["job_id"].as_str().unwrap())
    );
    let job = jobs[0]["job_id"].as_str().unwrap().to_owned();

    // Out of retries: an incident, visible to operations.
    let failed = post(
        &app,
        &worker,
        &format!("/v1/jobs/{job}/failure"),
        &json!({ "retries": 0, "error_message": "inventory down" }),
        None,
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    let incidents = get(&app, &operator, "/v1/incidents").await;
    let incident = incidents.body["items"][0]["incident_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(incidents.body["items"][0]["message"]
        .as_str()
        .unwrap()
        .contains("inventory down"));
    post(
        &app,
        &operator,
        &format!("/v1/incidents/{incident}/resolution"),
        &json!({ "reason": " " }),
        None,
    )
    .await
    .assert_problem(422, "validation-failed");
    let resolved = post(
        &app,
        &operator,
        &format!("/v1/incidents/{incident}/resolution"),
        &json!({ "reason": "inventory back", "retries": 2 }),
        None,
    )
    .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    assert_eq!(count(&app, "SELECT count(*) FROM audit_record WHERE action = 'incident.resolve' AND reason = 'inventory back'").await, 1);

    let again = activate(&app, &worker, "reserve-inventory", 0).await;
    assert_eq!(again[0]["job_id"], json!(job));
    assert_eq!(again[0]["attempt"], 2);
    let done = post(
        &app,
        &worker,
        &format!("/v1/jobs/{job}/completion"),
        &json!({ "variables": { "reservation": "R-1" } }),
        None,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    post(
        &app,
        &worker,
        &format!("/v1/jobs/{job}/completion"),
        &json!({}),
        None,
    )
    .await
    .assert_problem(409, "conflict");

    let provision = activate(&app, &worker, "provision-service", 0).await;
    assert_eq!(provision[0]["variables"]["reservation"], "R-1");
    post(
        &app,
        &worker,
        &format!(
            "/v1/jobs/{}/completion",
            provision[0]["job_id"].as_str().unwrap()
        ),
        &json!({}),
        None,
    )
    .await;
    let detail = get(
        &app,
        &operator,
        &format!("/v1/process-instances/{instance}"),
    )
    .await;
    assert_eq!(detail.body["status"], "completed", "{}", detail.body);
    let commands: Vec<&str> = detail.body["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["command"]["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        ["start", "complete_job", "complete_job"],
        "history: start, then each job completion"
    );
    assert_eq!(
        detail.body["history"][0]["effects"][0]["effect"],
        "create_job"
    );
    get(
        &app,
        &app.token("globex", &[Role::Operator]),
        &format!("/v1/process-instances/{instance}"),
    )
    .await
    .assert_problem(404, "not-found");
}

#[tokio::test]
async fn a_long_poll_wakes_when_a_job_is_created() {
    let app = TestApp::spawn().await;
    let (operator, worker) = setup(&app).await;
    let started = Instant::now();
    let poll = {
        let (client, url, worker) = (
            app.client.clone(),
            app.url("/v1/jobs/activation"),
            worker.clone(),
        );
        tokio::spawn(async move {
            client.post(url).bearer_auth(worker)
                .json(&json!({ "job_type": "reserve-inventory", "worker": "w1", "timeout_ms": 30000, "max_jobs": 1, "request_timeout_ms": 8000 }))
                .send().await.unwrap().json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    start(&app, &operator, "O-2").await;
    let answer = poll.await.unwrap();
    assert_eq!(answer["jobs"].as_array().unwrap().len(), 1, "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "answered on the notification, not at the deadline"
    );

    // Nothing to do: an empty answer after the wait.
    assert!(activate(&app, &worker, "nothing-here", 200)
        .await
        .is_empty());
}

#[tokio::test]
async fn messages_and_cancellation_reach_instances_through_the_api() {
    let app = TestApp::spawn().await;
    let (operator, worker) = setup(&app).await;
    let first = start(&app, &operator, "O-3").await;
    let reserve = activate(&app, &worker, "reserve-inventory", 0).await;
    post(
        &app,
        &worker,
        &format!(
            "/v1/jobs/{}/completion",
            reserve[0]["job_id"].as_str().unwrap()
        ),
        &json!({}),
        None,
    )
    .await;
    // The provisioning task waits; a cancellation message interrupts it.
    let published = post(
        &app,
        &operator,
        "/v1/messages",
        &json!({ "name": "order-cancelled", "correlation_key": "O-3" }),
        None,
    )
    .await;
    assert_eq!(
        published.body["outcome"], "correlated",
        "{}",
        published.body
    );
    assert_eq!(
        get(&app, &operator, &format!("/v1/process-instances/{first}"))
            .await
            .body["status"],
        "completed"
    );
    assert!(
        activate(&app, &worker, "provision-service", 0)
            .await
            .is_empty(),
        "the provisioning job was cancelled"
    );

    let second = start(&app, &operator, "O-4").await;
    let metrics = app.metrics().await;
    assert!(
        metrics.lines().any(
            |l| l.starts_with("workflow_active_instances{") && l.contains("process=\"fulfil\"")
        ),
        "{metrics}"
    );
    let cancelled = post(
        &app,
        &operator,
        &format!("/v1/process-instances/{second}/cancellation"),
        &json!({ "reason": "customer withdrew" }),
        None,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(
        get(&app, &operator, &format!("/v1/process-instances/{second}"))
            .await
            .body["status"],
        "terminated"
    );
    assert!(activate(&app, &worker, "reserve-inventory", 0)
        .await
        .is_empty());
    post(
        &app,
        &operator,
        &format!("/v1/process-instances/{second}/cancellation"),
        &json!({ "reason": "again" }),
        None,
    )
    .await
    .assert_problem(409, "conflict");
    let listed = get(&app, &operator, "/v1/process-instances?status=terminated").await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}
