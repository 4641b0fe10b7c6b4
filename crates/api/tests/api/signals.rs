//! Signals over HTTP (issue 16): `POST /v1/signals` triggers every catch of the name in the
//! caller's tenant and starts the processes with a signal start event; a signal end event
//! broadcasts in turn; a non-interrupting event subprocess with a signal start runs each time;
//! another tenant's signal reaches nothing here; a loop of signals is refused whole.

use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::support::TestApp;

const SIGNALS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="signals">
  <bpmn:signal id="Signal_stock" name="stock-arrived" />
  <bpmn:signal id="Signal_ack" name="restock-acknowledged" />
  <bpmn:signal id="Signal_price" name="price-changed" />
  <bpmn:process id="waiter" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:intermediateCatchEvent id="stock"><bpmn:signalEventDefinition signalRef="Signal_stock" /></bpmn:intermediateCatchEvent>
    <bpmn:serviceTask id="ship"><bpmn:extensionElements><zeebe:taskDefinition type="sig-ship" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="stock" />
    <bpmn:sequenceFlow id="f2" sourceRef="stock" targetRef="ship" />
    <bpmn:sequenceFlow id="f3" sourceRef="ship" targetRef="e" />
    <bpmn:subProcess id="reprice" triggeredByEvent="true">
      <bpmn:startEvent id="priceChanged" isInterrupting="false"><bpmn:signalEventDefinition signalRef="Signal_price" /></bpmn:startEvent>
      <bpmn:serviceTask id="requote"><bpmn:extensionElements><zeebe:taskDefinition type="sig-requote" /></bpmn:extensionElements></bpmn:serviceTask>
      <bpmn:endEvent id="re" />
      <bpmn:sequenceFlow id="r1" sourceRef="priceChanged" targetRef="requote" />
      <bpmn:sequenceFlow id="r2" sourceRef="requote" targetRef="re" />
    </bpmn:subProcess>
  </bpmn:process>
  <bpmn:process id="restocker" isExecutable="true">
    <bpmn:startEvent id="rs"><bpmn:signalEventDefinition signalRef="Signal_stock" /></bpmn:startEvent>
    <bpmn:endEvent id="acknowledge">
      <bpmn:extensionElements><zeebe:ioMapping><zeebe:input source="=qty" target="acknowledgedQty" /></zeebe:ioMapping></bpmn:extensionElements>
      <bpmn:signalEventDefinition signalRef="Signal_ack" />
    </bpmn:endEvent>
    <bpmn:sequenceFlow id="rf" sourceRef="rs" targetRef="acknowledge" />
  </bpmn:process>
  <bpmn:process id="ackWaiter" isExecutable="true">
    <bpmn:startEvent id="as" />
    <bpmn:intermediateCatchEvent id="ack"><bpmn:signalEventDefinition signalRef="Signal_ack" /></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="ae" />
    <bpmn:sequenceFlow id="a1" sourceRef="as" targetRef="ack" />
    <bpmn:sequenceFlow id="a2" sourceRef="ack" targetRef="ae" />
  </bpmn:process>
</bpmn:definitions>"#;

const PING_PONG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="pingpong">
  <bpmn:signal id="Signal_ping" name="ping" />
  <bpmn:signal id="Signal_pong" name="pong" />
  <bpmn:process id="pinger" isExecutable="true">
    <bpmn:startEvent id="ps"><bpmn:signalEventDefinition signalRef="Signal_ping" /></bpmn:startEvent>
    <bpmn:endEvent id="pe"><bpmn:signalEventDefinition signalRef="Signal_pong" /></bpmn:endEvent>
    <bpmn:sequenceFlow id="pf" sourceRef="ps" targetRef="pe" />
  </bpmn:process>
  <bpmn:process id="ponger" isExecutable="true">
    <bpmn:startEvent id="qs"><bpmn:signalEventDefinition signalRef="Signal_pong" /></bpmn:startEvent>
    <bpmn:endEvent id="qe"><bpmn:signalEventDefinition signalRef="Signal_ping" /></bpmn:endEvent>
    <bpmn:sequenceFlow id="qf" sourceRef="qs" targetRef="qe" />
  </bpmn:process>
</bpmn:definitions>"#;

async fn start(app: &TestApp, token: &str, process: &str, variables: Value) -> String {
    let started = post(
        app,
        token,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": process, "variables": variables }),
        None,
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    started.body["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn signal(app: &TestApp, token: &str, name: &str, variables: Value) -> Answer {
    post(
        app,
        token,
        "/v1/signals",
        &json!({ "signal_name": name, "variables": variables }),
        None,
    )
    .await
}

async fn jobs(app: &TestApp, worker: &str, job_type: &str) -> Vec<Value> {
    let a = post(
        app,
        worker,
        "/v1/jobs/activation",
        &json!({ "job_type": job_type, "worker": "w1", "timeout_ms": 30000, "max_jobs": 10 }),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["jobs"].as_array().unwrap().clone()
}

async fn status(app: &TestApp, token: &str, id: &str) -> Value {
    let i = get(app, token, &format!("/v1/process-instances/{id}")).await;
    assert_eq!(i.status, StatusCode::OK, "{}", i.body);
    i.body
}

#[tokio::test]
async fn a_broadcast_triggers_every_catch_of_its_name_in_the_tenant_and_starts_signal_processes() {
    let app = TestApp::spawn().await;
    let operator = app.token("acme", &[Role::Operator]);
    let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
    let deployed = deploy_bpmn(
        &app,
        &operator,
        "?allow_unsupported_job_types=true",
        SIGNALS,
    )
    .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);

    let waiter = start(&app, &operator, "waiter", json!({ "orderId": "O-1" })).await;
    let ack_waiter = start(&app, &operator, "ackWaiter", json!({})).await;

    // Another tenant's signal reaches nothing of acme's (it starts its own restocker).
    let globex = app.token("globex", &[Role::Operator]);
    let elsewhere = signal(&app, &globex, "stock-arrived", json!({ "qty": 1 })).await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{}", elsewhere.body);
    assert_eq!(elsewhere.body["triggered"], 0, "{}", elsewhere.body);
    assert_eq!(status(&app, &operator, &waiter).await["status"], "active");

    // acme's: the waiter's catch, a new restocker, whose end event signals the ack waiter.
    let sent = signal(&app, &operator, "stock-arrived", json!({ "qty": 5 })).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.body["triggered"], 2, "{}", sent.body);
    assert_eq!(sent.body["signals"], 2, "{}", sent.body);
    let started = sent.body["started_instances"].as_array().unwrap();
    assert_eq!(started.len(), 1, "{}", sent.body);
    let restocker = status(&app, &operator, started[0].as_str().unwrap()).await;
    assert_eq!(restocker["bpmn_process_id"], "restocker");
    assert_eq!(restocker["status"], "completed", "{restocker}");
    assert_eq!(restocker["variables"]["qty"], 5);
    let acked = status(&app, &operator, &ack_waiter).await;
    assert_eq!(acked["status"], "completed", "{acked}");
    assert_eq!(
        acked["variables"]["acknowledgedQty"], 5,
        "the end event's input mappings are the signal's variables: {acked}"
    );
    let ship = jobs(&app, &worker, "sig-ship").await;
    assert_eq!(ship.len(), 1);
    assert_eq!(ship[0]["variables"]["qty"], 5);

    // Caught once: the catch event is gone, a second signal finds only the restocker's start.
    let again = signal(&app, &operator, "stock-arrived", json!({})).await;
    assert_eq!(again.body["triggered"], 0, "{}", again.body);

    // A non-interrupting event subprocess with a signal start runs each time.
    for _ in 0..2 {
        let price = signal(&app, &operator, "price-changed", json!({})).await;
        assert_eq!(price.body["triggered"], 1, "{}", price.body);
    }
    assert_eq!(jobs(&app, &worker, "sig-requote").await.len(), 2);
    assert_eq!(status(&app, &operator, &waiter).await["status"], "active");

    // Nothing waits once the waiter is cancelled.
    let cancelled = post(
        &app,
        &operator,
        &format!("/v1/process-instances/{waiter}/cancellation"),
        &json!({ "reason": "done" }),
        None,
    )
    .await;
    assert!(cancelled.status.is_success(), "{}", cancelled.body);
    assert_eq!(
        count(&app, "SELECT count(*) FROM signal_subscription").await,
        0
    );
}

#[tokio::test]
async fn a_blank_signal_or_a_loop_of_signals_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let operator = app.token("acme", &[Role::Operator]);
    let deployed = deploy_bpmn(&app, &operator, "", PING_PONG).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);

    signal(&app, &operator, " ", json!({}))
        .await
        .assert_problem(422, "validation-failed");
    let unknown = post(
        &app,
        &operator,
        "/v1/signals",
        &json!({ "signal_name": "ping", "colour": "red" }),
        None,
    )
    .await;
    assert!(unknown.status.is_client_error(), "{}", unknown.body);

    let looping = signal(&app, &operator, "ping", json!({})).await;
    looping.assert_problem(409, "conflict");
    assert!(
        looping.body["detail"]
            .as_str()
            .unwrap()
            .contains("more than 100 signals"),
        "{}",
        looping.body
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM process_instance").await,
        0,
        "nothing of the cascade was kept"
    );
    let sales = app.token("acme", SALES);
    signal(&app, &sales, "ping", json!({}))
        .await
        .assert_problem(403, "forbidden");
}

const NAMED_BY_EXPRESSION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="named">
  <bpmn:signal id="Signal_ready" name="=&quot;ready-&quot; + orderId" />
  <bpmn:process id="perOrder" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:intermediateCatchEvent id="ready"><bpmn:signalEventDefinition signalRef="Signal_ready" /></bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ready" />
    <bpmn:sequenceFlow id="f2" sourceRef="ready" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

/// A signal name written as FEEL is evaluated when the catch event is entered: each order's
/// instance waits for its own signal.
#[tokio::test]
async fn a_signal_name_given_by_an_expression_is_each_instances_own() {
    let app = TestApp::spawn().await;
    let operator = app.token("acme", &[Role::Operator]);
    let deployed = deploy_bpmn(&app, &operator, "", NAMED_BY_EXPRESSION).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    let one = start(&app, &operator, "perOrder", json!({ "orderId": "O-1" })).await;
    let two = start(&app, &operator, "perOrder", json!({ "orderId": "O-2" })).await;
    let sent = signal(&app, &operator, "ready-O-2", json!({})).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.body["triggered"], 1, "{}", sent.body);
    assert_eq!(status(&app, &operator, &two).await["status"], "completed");
    assert_eq!(status(&app, &operator, &one).await["status"], "active");
    let sent = signal(&app, &operator, "ready-O-1", json!({})).await;
    assert_eq!(sent.body["triggered"], 1, "{}", sent.body);
    assert_eq!(status(&app, &operator, &one).await["status"], "completed");
}
