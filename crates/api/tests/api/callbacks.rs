//! `POST /v1/callbacks/{system}`: an asynchronous system's answer reaches the process waiting for
//! it, once, whatever the system redelivers; a callback that is unsigned, wrongly signed, for an
//! unknown system or request, or malformed is refused with a problem and writes nothing.

use cpq_core::Role;
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use uuid::Uuid;

use crate::helpers::*;
use crate::support::TestApp;

/// A provisioning task answered asynchronously: the job's result says a callback is expected,
/// and the process waits for it on the request's idempotency key.
const PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:message id="M" name="external-callback"><bpmn:extensionElements><zeebe:subscription correlationKey="=external_idempotency_key" /></bpmn:extensionElements></bpmn:message>
  <bpmn:process id="provision-async" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="provision"><bpmn:extensionElements><zeebe:taskDefinition type="provision-service" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:receiveTask id="wait" messageRef="M" />
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="provision" />
    <bpmn:sequenceFlow id="f2" sourceRef="provision" targetRef="wait" />
    <bpmn:sequenceFlow id="f3" sourceRef="wait" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

/// The local configuration's secret for provisioning (config/local.toml, as cpq-sim's default).
const SECRET: &str = "sim-secret-provisioning";

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn callback(app: &TestApp, system: &str, body: &Value, signature: Option<String>) -> Answer {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut request = app
        .client
        .post(app.url(&format!("/v1/callbacks/{system}")))
        .header("content-type", "application/json");
    if let Some(s) = signature {
        request = request.header("x-cpq-signature", s);
    }
    Answer::from(request.body(bytes).send().await.unwrap()).await
}

async fn signed(app: &TestApp, system: &str, body: &Value) -> Answer {
    let signature = sign(SECRET, &serde_json::to_vec(body).unwrap());
    callback(app, system, body, Some(signature)).await
}

/// Deploys the process, starts an instance in tenant acme, claims its provisioning job and
/// records the attempt as cpq-worker does before it calls the system; returns the instance and
/// the job with its idempotency key.
async fn provisioning_requested(app: &TestApp) -> (String, String, String) {
    let operator = app.token("acme", &[Role::Operator]);
    let deployed = deploy_bpmn(app, &operator, "?allow_unsupported_job_types=true", PROCESS).await;
    assert!(deployed.status.is_success(), "{}", deployed.body);
    let started = post(
        app,
        &operator,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": "provision-async", "variables": {} }),
        None,
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let instance = started.body["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
    let activated = post(
        app,
        &worker,
        "/v1/jobs/activation",
        &json!({ "job_type": "provision-service", "worker": "w1", "timeout_ms": 30000, "max_jobs": 1, "request_timeout_ms": 5000 }),
        None,
    )
    .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    let job = activated.body["jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let key = format!("job-{job}");
    let pool = app.db.owner_pool().await;
    sqlx::query(
        "INSERT INTO external_call_attempt (attempt_id, tenant_id, job_id, attempt, target, idempotency_key, started_at) \
         VALUES ($1, 'acme', $2::uuid, 1, 'http://127.0.0.1:8090/systems/provisioning/requests', $3, now())",
    )
    .bind(Uuid::now_v7())
    .bind(&job)
    .bind(&key)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    (instance, job, key)
}

async fn complete_expecting_callback(app: &TestApp, job: &str, key: &str) {
    let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
    let done = post(
        app,
        &worker,
        &format!("/v1/jobs/{job}/completion"),
        &json!({ "variables": { "callback_expected": true, "external_idempotency_key": key } }),
        None,
    )
    .await;
    assert!(done.status.is_success(), "{}", done.body);
}

async fn instance_status(app: &TestApp, instance: &str) -> String {
    let operator = app.token("acme", &[Role::Operator]);
    let detail = get(app, &operator, &format!("/v1/process-instances/{instance}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    detail.body["status"].as_str().unwrap().to_owned()
}

fn succeeded(key: &str) -> Value {
    json!({
        "callback_id": Uuid::new_v4(),
        "request_id": "prov-42",
        "idempotency_key": key,
        "system": "provisioning",
        "outcome": "succeeded",
        "result": { "service_id": "svc-7" }
    })
}

#[tokio::test]
async fn a_signed_callback_reaches_the_waiting_process_once_and_a_redelivery_changes_nothing() {
    let app = TestApp::spawn().await;
    let (instance, job, key) = provisioning_requested(&app).await;
    complete_expecting_callback(&app, &job, &key).await;
    assert_eq!(instance_status(&app, &instance).await, "active");

    let body = succeeded(&key);
    let first = signed(&app, "provisioning", &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["status"], "accepted");
    assert_eq!(instance_status(&app, &instance).await, "completed");

    let again = signed(&app, "provisioning", &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["status"], "duplicate");
    assert_eq!(
        count(&app, "SELECT count(*) FROM external_callback").await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM audit_record WHERE action = 'external-callback.receive'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_callback_that_arrives_before_the_process_waits_is_kept_for_it() {
    let app = TestApp::spawn().await;
    let (instance, job, key) = provisioning_requested(&app).await;
    // The system answers before the worker has reported its 202.
    let early = signed(&app, "provisioning", &succeeded(&key)).await;
    assert_eq!(early.body["status"], "accepted", "{}", early.body);
    assert_eq!(instance_status(&app, &instance).await, "active");
    complete_expecting_callback(&app, &job, &key).await;
    assert_eq!(instance_status(&app, &instance).await, "completed");
}

#[tokio::test]
async fn unsigned_wrongly_signed_unknown_or_malformed_callbacks_are_refused_and_write_nothing() {
    let app = TestApp::spawn().await;
    let (instance, job, key) = provisioning_requested(&app).await;
    complete_expecting_callback(&app, &job, &key).await;
    let body = succeeded(&key);

    callback(&app, "provisioning", &body, None)
        .await
        .assert_problem(401, "unauthenticated");
    let wrong = sign("not-the-secret", &serde_json::to_vec(&body).unwrap());
    callback(&app, "provisioning", &body, Some(wrong))
        .await
        .assert_problem(401, "unauthenticated");
    // Signed over other bytes than those sent.
    let other = sign(SECRET, b"{}");
    callback(&app, "provisioning", &body, Some(other))
        .await
        .assert_problem(401, "unauthenticated");
    signed(&app, "teleportation", &body)
        .await
        .assert_problem(404, "not-found");
    signed(
        &app,
        "provisioning",
        &succeeded("job-00000000-0000-0000-0000-000000000000"),
    )
    .await
    .assert_problem(404, "not-found");
    let mut bad = succeeded(&key);
    bad["outcome"] = json!("maybe");
    bad["system"] = json!("billing");
    let refused = signed(&app, "provisioning", &bad).await;
    refused.assert_problem(422, "validation-failed");
    let mut fields = refused.error_fields();
    fields.sort();
    assert_eq!(fields, ["outcome", "system"]);
    let garbage = b"not json".to_vec();
    let answer = Answer::from(
        app.client
            .post(app.url("/v1/callbacks/provisioning"))
            .header("content-type", "application/json")
            .header("x-cpq-signature", sign(SECRET, &garbage))
            .body(garbage)
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_problem(400, "malformed-request");

    assert_eq!(
        count(&app, "SELECT count(*) FROM external_callback").await,
        0
    );
    assert_eq!(count(&app, "SELECT count(*) FROM message").await, 0);
    assert_eq!(instance_status(&app, &instance).await, "active");
}
