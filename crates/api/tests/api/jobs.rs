//! The workflow over HTTP: deploy, start, the worker job API (long poll, complete, fail, error),
//! incidents and their resolution, cancellation, messages; workers scoped to the tenants they
//! are authorised for; message ids kept for their time to live; numbers range-checked.

use std::time::{Duration, Instant};

use crate::support::TestApp;
use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;

pub(crate) const PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
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
    let deployed = deploy_bpmn(app, &operator, "?allow_unsupported_job_types=true", PROCESS).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    (operator, app.token_for("worker-1", "acme", &[Role::Worker]))
}

/// A token of `tenant` with `roles` and the `tenants` claim (further tenants, or `*`).
pub fn token_with_tenants(app: &TestApp, tenant: &str, roles: &[Role], tenants: &[&str]) -> String {
    app.signer()
        .mint_with_tenants(
            &format!("svc@{tenant}"),
            &cpq_core::TenantId::parse(tenant).unwrap(),
            roles,
            &[],
            tenants,
            Duration::from_secs(600),
        )
        .unwrap()
}

/// A platform credential: `roles` with the all-tenants grant, as `cpq-admin token --all-tenants`
/// mints it.
pub fn platform_token(app: &TestApp, roles: &[Role]) -> String {
    token_with_tenants(app, "platform", roles, &[cpq_auth::ALL_TENANTS])
}

async fn activate_as(
    app: &TestApp,
    worker: &str,
    job_type: &str,
    tenant_ids: Option<Value>,
) -> Answer {
    let mut body =
        json!({ "job_type": job_type, "worker": "w1", "timeout_ms": 30000, "max_jobs": 10 });
    if let Some(t) = tenant_ids {
        body["tenant_ids"] = t;
    }
    post(app, worker, "/v1/jobs/activation", &body, None).await
}

fn job_ids(a: &Answer) -> Vec<String> {
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_owned())
        .collect()
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
    // Another tenant's operator does not find it; nor does anyone find an unknown instance.
    let globex_operator = app.token("globex", &[Role::Operator]);
    post(
        &app,
        &globex_operator,
        &format!("/v1/process-instances/{second}/cancellation"),
        &json!({ "reason": "not ours" }),
        None,
    )
    .await
    .assert_problem(404, "not-found");
    post(
        &app,
        &operator,
        &format!(
            "/v1/process-instances/{}/cancellation",
            uuid::Uuid::now_v7()
        ),
        &json!({ "reason": "no such instance" }),
        None,
    )
    .await
    .assert_problem(404, "not-found");
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

#[tokio::test]
async fn a_worker_serves_only_the_tenants_it_is_authorised_for() {
    let app = TestApp::spawn().await;
    let (acme_operator, acme_worker) = setup(&app).await;
    let globex_operator = app.token("globex", &[Role::Operator]);
    start(&app, &acme_operator, "ACME-SECRET").await;
    start(&app, &globex_operator, "G-1").await;
    let globex_worker = app.token_for("worker-g", "globex", &[Role::Worker]);

    // By default a worker serves its token's tenant: globex's worker never sees acme's job.
    let seen = activate_as(&app, &globex_worker, "reserve-inventory", None).await;
    let jobs = seen.body["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 1, "{}", seen.body);
    assert_eq!(
        (
            jobs[0]["tenant"].as_str(),
            jobs[0]["variables"]["orderId"].as_str()
        ),
        (Some("globex"), Some("G-1"))
    );
    assert!(!seen.body.to_string().contains("ACME-SECRET"));

    // Naming a tenant it is not authorised for is refused, naming the tenant; so is "every tenant".
    let refused = activate_as(
        &app,
        &globex_worker,
        "reserve-inventory",
        Some(json!(["acme"])),
    )
    .await;
    refused.assert_problem(403, "forbidden");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("\"acme\""),
        "{}",
        refused.body
    );
    activate_as(
        &app,
        &globex_worker,
        "reserve-inventory",
        Some(json!(["*"])),
    )
    .await
    .assert_problem(403, "forbidden");
    let bad = activate_as(
        &app,
        &globex_worker,
        "reserve-inventory",
        Some(json!(["globex", "Not A Tenant"])),
    )
    .await;
    bad.assert_problem(422, "validation-failed");
    assert_eq!(bad.error_fields(), ["tenant_ids[1]"]);

    // Acme's job, activated by acme's worker: another tenant's worker cannot touch it (404).
    let acme_jobs = job_ids(&activate_as(&app, &acme_worker, "reserve-inventory", None).await);
    assert_eq!(acme_jobs.len(), 1);
    let job = &acme_jobs[0];
    for (path, body) in [
        ("completion", json!({ "variables": { "hijacked": true } })),
        ("failure", json!({ "retries": 0, "error_message": "x" })),
        ("error", json!({ "error_code": "X" })),
    ] {
        post(
            &app,
            &globex_worker,
            &format!("/v1/jobs/{job}/{path}"),
            &body,
            None,
        )
        .await
        .assert_problem(404, "not-found");
    }
    let done = post(
        &app,
        &acme_worker,
        &format!("/v1/jobs/{job}/completion"),
        &json!({}),
        None,
    )
    .await;
    assert_eq!(
        done.status,
        StatusCode::OK,
        "the job was left alone: {}",
        done.body
    );

    // A credential listing further tenants serves them when it names them.
    start(&app, &acme_operator, "A-2").await;
    start(&app, &globex_operator, "G-2").await;
    let both = token_with_tenants(&app, "globex", &[Role::Worker], &["acme"]);
    assert_eq!(
        job_ids(
            &activate_as(
                &app,
                &both,
                "reserve-inventory",
                Some(json!(["acme", "globex"]))
            )
            .await
        )
        .len(),
        2
    );

    // Only the all-tenants grant serves every tenant, and only when it asks for "*".
    start(&app, &acme_operator, "A-3").await;
    start(&app, &globex_operator, "G-3").await;
    let platform = platform_token(&app, &[Role::Worker]);
    assert!(job_ids(&activate_as(&app, &platform, "reserve-inventory", None).await).is_empty());
    assert_eq!(
        job_ids(&activate_as(&app, &platform, "reserve-inventory", Some(json!(["*"]))).await).len(),
        2
    );
}

pub(crate) const WITH_HEADERS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:error id="OOS" name="out of stock" errorCode="OUT_OF_STOCK" />
  <bpmn:process id="reserve" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="reserve_stock"><bpmn:extensionElements><zeebe:taskDefinition type="reserve-stock" />
      <zeebe:taskHeaders><zeebe:header key="system" value="inventory" /><zeebe:header key="region" value="eu" /></zeebe:taskHeaders>
    </bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:boundaryEvent id="no_stock" attachedToRef="reserve_stock"><bpmn:errorEventDefinition errorRef="OOS" /></bpmn:boundaryEvent>
    <bpmn:serviceTask id="backorder"><bpmn:extensionElements><zeebe:taskDefinition type="backorder" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" /><bpmn:endEvent id="e2" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="reserve_stock" />
    <bpmn:sequenceFlow id="f2" sourceRef="reserve_stock" targetRef="e" />
    <bpmn:sequenceFlow id="f3" sourceRef="no_stock" targetRef="backorder" />
    <bpmn:sequenceFlow id="f4" sourceRef="backorder" targetRef="e2" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn custom_headers_are_an_object_and_a_thrown_error_carries_its_variables() {
    let app = TestApp::spawn().await;
    let (operator, worker) = setup(&app).await;
    let deployed = deploy_bpmn(
        &app,
        &operator,
        "?allow_unsupported_job_types=true",
        WITH_HEADERS,
    )
    .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    let started = post(
        &app,
        &operator,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": "reserve", "variables": { "sku": "R-1" } }),
        None,
    )
    .await;
    let instance = started.body["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let jobs = activate(&app, &worker, "reserve-stock", 0).await;
    assert_eq!(
        jobs[0]["custom_headers"],
        json!({ "system": "inventory", "region": "eu" }),
        "Camunda's job carries its headers as an object"
    );
    let job = jobs[0]["job_id"].as_str().unwrap();
    let thrown = post(
        &app,
        &worker,
        &format!("/v1/jobs/{job}/error"),
        &json!({ "error_code": "OUT_OF_STOCK", "error_message": "none left", "variables": { "backorderDays": 14 } }),
        None,
    )
    .await;
    assert_eq!(thrown.status, StatusCode::OK, "{}", thrown.body);
    // Caught by the boundary event (no output mappings): the variables reach the process scope.
    let backorder = activate(&app, &worker, "backorder", 0).await;
    assert_eq!(backorder[0]["variables"]["backorderDays"], 14);
    assert_eq!(backorder[0]["custom_headers"], json!({}));
    let detail = get(
        &app,
        &operator,
        &format!("/v1/process-instances/{instance}"),
    )
    .await;
    assert_eq!(
        detail.body["variables"]["backorderDays"], 14,
        "{}",
        detail.body
    );

    let not_an_object = post(
        &app,
        &worker,
        &format!(
            "/v1/jobs/{}/error",
            backorder[0]["job_id"].as_str().unwrap()
        ),
        &json!({ "error_code": "X", "variables": [1, 2] }),
        None,
    )
    .await;
    not_an_object.assert_problem(400, "malformed-request");
    assert_eq!(not_an_object.error_fields(), ["variables"]);
}

#[tokio::test]
async fn a_message_id_is_taken_for_its_time_to_live_even_when_it_correlated_at_once() {
    let app = TestApp::spawn().await;
    let (operator, worker) = setup(&app).await;
    let waiting_for_cancel = |order: &'static str| {
        let (app, operator, worker) = (&app, operator.clone(), worker.clone());
        async move {
            let instance = start(app, &operator, order).await;
            let reserve = activate(app, &worker, "reserve-inventory", 0).await;
            let job = reserve[0]["job_id"].as_str().unwrap();
            post(
                app,
                &worker,
                &format!("/v1/jobs/{job}/completion"),
                &json!({}),
                None,
            )
            .await;
            instance
        }
    };
    let first = waiting_for_cancel("O-5").await;
    let message = json!({ "name": "order-cancelled", "correlation_key": "O-5", "message_id": "cancel-O-5", "time_to_live_ms": 60000 });
    let published = post(&app, &operator, "/v1/messages", &message, None).await;
    assert_eq!(
        published.body["outcome"], "correlated",
        "{}",
        published.body
    );

    // The same id again, after the first correlated at once: refused as Zeebe does (ALREADY_EXISTS).
    let again = post(&app, &operator, "/v1/messages", &message, None).await;
    again.assert_problem(409, "conflict");
    assert!(
        again.body["detail"]
            .as_str()
            .unwrap()
            .contains("cancel-O-5"),
        "{}",
        again.body
    );

    // So a later instance waiting for the same key is not cancelled by a duplicate.
    let second = waiting_for_cancel("O-5").await;
    assert_eq!(
        get(&app, &operator, &format!("/v1/process-instances/{first}"))
            .await
            .body["status"],
        "completed"
    );
    assert_eq!(
        get(&app, &operator, &format!("/v1/process-instances/{second}"))
            .await
            .body["status"],
        "active"
    );
    assert_eq!(
        activate(&app, &worker, "provision-service", 0).await.len(),
        1
    );

    // Without a time to live nothing is kept: the same id may come again.
    let fleeting =
        json!({ "name": "order-cancelled", "correlation_key": "nobody", "message_id": "m-0" });
    for _ in 0..2 {
        let a = post(&app, &operator, "/v1/messages", &fleeting, None).await;
        assert_eq!(a.body["outcome"], "dropped", "{}", a.body);
    }
    // Another tenant has its own ids.
    let elsewhere = post(
        &app,
        &app.token("globex", &[Role::Operator]),
        "/v1/messages",
        &message,
        None,
    )
    .await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
}

#[tokio::test]
async fn numbers_out_of_range_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let (operator, worker) = setup(&app).await;
    let message = |ttl: Value| json!({ "name": "order-cancelled", "correlation_key": "O-9", "time_to_live_ms": ttl });
    // Once a 500 (DateTime overflow), once silently a time to live of 0.
    for ttl in [
        json!(10_000_000_000_000_000u64),
        json!(u64::MAX),
        json!(315_360_000_001u64),
    ] {
        let a = post(&app, &operator, "/v1/messages", &message(ttl.clone()), None).await;
        a.assert_problem(422, "validation-failed");
        assert_eq!(a.error_fields(), ["time_to_live_ms"], "{ttl}");
    }
    let longest = post(
        &app,
        &operator,
        "/v1/messages",
        &message(json!(315_360_000_000u64)),
        None,
    )
    .await;
    assert_eq!(longest.body["outcome"], "buffered", "{}", longest.body);
    post(&app, &operator, "/v1/messages", &message(json!(-1)), None)
        .await
        .assert_problem(400, "malformed-request");

    let activation = post(
        &app,
        &worker,
        "/v1/jobs/activation",
        &json!({ "job_type": "reserve-inventory", "worker": "w", "timeout_ms": 99, "max_jobs": 0, "request_timeout_ms": 60001, "tenant_ids": [] }),
        None,
    )
    .await;
    activation.assert_problem(422, "validation-failed");
    assert_eq!(
        activation.error_fields(),
        ["max_jobs", "timeout_ms", "request_timeout_ms"]
    );
    let no_tenants = post(
        &app,
        &worker,
        "/v1/jobs/activation",
        &json!({ "job_type": "reserve-inventory", "worker": "w", "timeout_ms": 1000, "max_jobs": 1, "tenant_ids": [] }),
        None,
    )
    .await;
    no_tenants.assert_problem(422, "validation-failed");
    assert_eq!(no_tenants.error_fields(), ["tenant_ids"]);

    start(&app, &operator, "O-10").await;
    let job = activate(&app, &worker, "reserve-inventory", 0).await[0]["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for backoff in [json!(10_000_000_000_000_000u64), json!(u64::MAX)] {
        let a = post(
            &app,
            &worker,
            &format!("/v1/jobs/{job}/failure"),
            &json!({ "retries": 1, "retry_back_off_ms": backoff, "error_message": "down" }),
            None,
        )
        .await;
        a.assert_problem(422, "validation-failed");
        assert_eq!(a.error_fields(), ["retry_back_off_ms"]);
    }
    let failed = post(
        &app,
        &worker,
        &format!("/v1/jobs/{job}/failure"),
        &json!({ "retries": 1, "retry_back_off_ms": 604_800_000u64, "error_message": "down" }),
        None,
    )
    .await;
    assert_eq!(failed.status, StatusCode::OK, "{}", failed.body);
    assert!(
        activate(&app, &worker, "reserve-inventory", 0)
            .await
            .is_empty(),
        "backing off for a week"
    );

    let deploy = deploy_bpmn(
        &app,
        &operator,
        "?allow_unsupported_job_types=true&variable_schema_version=0",
        PROCESS,
    )
    .await;
    deploy.assert_problem(422, "validation-failed");
    assert_eq!(deploy.error_fields(), ["variable_schema_version"]);
}
