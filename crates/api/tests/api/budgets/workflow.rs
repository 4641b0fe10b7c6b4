//! Budgets of the workflow commands: deployment, worker groups and routing (the platform's),
//! process instances, messages, incidents, the job API and user tasks.
//!
//! "Before" is the count when these budgets were first set (2026-12-04), where it was more than
//! the command needs; each such command now sends what it needs.
//!
//! | command | before | budget | needs | made of |
//! | --- | --- | --- | --- | --- |
//! | deploy process definition | 11 | 10 | 10 | envelope 4; `worker_group_job_types` 1; `process_definition_lock` (advisory) 1; `process_definition_fetch_by_checksum` 1; `process_definition_insert` (takes the next version under the lock, `RETURNING`; before, `process_definition_next_version` first) 1; `start_timer_delete_for_process` 1; audit 1 |
//! | worker group heartbeat (PUT) | — | 3 | 3 | envelope 2; `worker_group_upsert` 1 (a heartbeat: not audited) |
//! | replace routing rules (PUT) | 6 | 5 | 5 | envelope 2; `process_definition_versions` 1; `process_version_rule_delete` 1; `process_version_rule_insert` (every rule, through `unnest`) 1; before, `process_version_rule_list` also read the rules being replaced, unused. Not audited, although it changes what every tenant runs (one more statement if it were) |
//! | start instance | 9 | 8 | 8 | envelope 4; `process_routing_fetch` 1 (the model is cached); `process_instance_insert` (with its history) 1; `job_insert` 1, which also sends the new job's `NOTIFY` (before, `job_notify` was a round trip of its own); audit 1 |
//! | activate jobs | — | 1 | 1 | `job_activate` 1 (no transaction: one claim across the tenants served) |
//! | fail job (incident) | 10 | 8 | 8 | `job_tenant` 1 (outside the transaction: row-level security needs the job's tenant first); envelope 4; `job_fetch_for_update` 1 (it also gives the tenant and element the incident names; before, `job_fetch_incident_context` read them again); `job_fail` (status and retries in one UPDATE; before, `job_status_update` and `job_retries_zero`) 1; `incident_insert` 1 |
//! | resolve incident | — | 8 | 8 | envelope 4; `incident_fetch_for_update` 1; `incident_resolve` 1; `job_retries_update` 1; audit 1 |
//! | complete job | 14 | 14 | 14 | `job_tenant` 1; envelope 4; job locked 1, `job_status_update` 1; instance locked 1, updated 1, history 1; the next task's job (`job_insert` with its `NOTIFY`) 1; its message boundary (`message_correlation_lock`, `message_take_buffered`, `message_subscription_insert`) 3: the lock serialises a subscription with a publication of the same name and key, which could otherwise miss each other |
//! | publish message (correlated) | 12 | 11 | 11 | envelope 4; `message_correlation_lock` 1; `message_subscription_match` 1; `message_subscription_delete` 1; instance locked 1, updated 1, history 1; `job_cancel` (the interrupted task's) 1. The interrupted task has no timer and its only subscription is the one just correlated, so nothing more is deleted (before: `timer_delete_for_element` and `message_subscription_delete_for_element`) |
//! | broadcast signal (nothing waits) | — | 6 | 6 | envelope 4; `signal_subscription_match` 1; `process_definition_latest_signal_start` 1 (the processes a signal of the name starts); each subscription found adds its take and its instance's step, each process started its insert |
//! | cancel instance | 13 | 9 | 9 | envelope 4; instance locked 1 (under row-level security and checked against the caller's tenant, it answers 404 for another tenant's instance; before, the whole instance detail was read first only to answer that: 4 statements), updated 1, history 1; `job_cancel` 1; audit 1 |
//! | throw job error (caught) | 12 | 11 | 11 | `job_tenant` 1; envelope 4; job locked 1, `job_status_update` 1; instance locked 1, updated 1, history 1; the boundary path's job (`job_insert` with its `NOTIFY`) 1 |
//! | claim user task | 7 | 6 | 6 | envelope 4; `user_task_fetch_for_update` 1 (who may claim it, and the assignment's lock; before, locked twice); `user_task_assign` 1 |
//! | complete user task | 10 | 9 | 9 | envelope 4; `user_task_fetch_for_update` 1 (before, locked twice); `user_task_complete` 1; instance locked 1, updated 1, history 1 |
//!
//! The job commands count `job_tenant` as needed: a worker may serve several tenants, and the
//! transaction must be in the job's tenant before it can read the job.

use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{budget, isolated, post, put, Budget, Isolated, Report};
use crate::jobs::{platform_token, PROCESS as FULFIL, WITH_HEADERS};
use crate::user_tasks::PROCESS as REVIEW;

pub const BUDGETS: &[Budget] = &[
    budget("deploy process definition", 10, 10),
    budget("worker group heartbeat (PUT)", 3, 3),
    budget("replace routing rules (PUT)", 5, 5),
    budget("start instance", 8, 8),
    budget("activate jobs", 1, 1),
    budget("fail job (incident)", 8, 8),
    budget("resolve incident", 8, 8),
    budget("complete job", 14, 14),
    budget("publish message (correlated)", 11, 11),
    budget("broadcast signal (nothing waits)", 6, 6),
    budget("cancel instance", 9, 9),
    budget("throw job error (caught)", 11, 11),
    budget("claim user task", 6, 6),
    budget("complete user task", 9, 9),
];

/// Tokens of acme's operator, a worker and an approver.
struct People {
    operator: String,
    worker: String,
    approver: String,
}

/// Starts `process` with `variables`: the instance id.
async fn start(api: &Isolated, operator: &str, process: &str, variables: Value) -> String {
    let body = json!({ "bpmn_process_id": process, "variables": variables });
    let started = api
        .ok(post("/v1/process-instances", operator, None, body))
        .await;
    started.body["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn activation(job_type: &str) -> Value {
    json!({ "job_type": job_type, "worker": "w1", "timeout_ms": 30000, "max_jobs": 1 })
}

/// Activates the one ready job of `job_type`: its id.
async fn activate(api: &Isolated, worker: &str, job_type: &str) -> String {
    let a = api
        .ok(post(
            "/v1/jobs/activation",
            worker,
            None,
            activation(job_type),
        ))
        .await;
    job_id(&a.body)
}

fn job_id(activated: &Value) -> String {
    activated["jobs"][0]["job_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no job: {activated}"))
        .to_owned()
}

/// The open user task `token` sees: its id.
async fn user_task(api: &Isolated, token: &str) -> String {
    let tasks = api.ok(super::get("/v1/user-tasks", token)).await;
    tasks.body["items"][0]["user_task_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {}", tasks.body))
        .to_owned()
}

/// Each process once through (its definition cached): fulfil to its message, reserve to its
/// error, review to its completion.
async fn warm_up(api: &Isolated, p: &People) {
    for xml in [FULFIL, WITH_HEADERS, REVIEW] {
        let deployed = api.deploy(&p.operator, xml).await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    }
    start(api, &p.operator, "fulfil", json!({ "orderId": "W-1" })).await;
    let job = activate(api, &p.worker, "reserve-inventory").await;
    api.ok(post(
        format!("/v1/jobs/{job}/completion"),
        &p.worker,
        None,
        json!({}),
    ))
    .await;
    let message = json!({ "name": "order-cancelled", "correlation_key": "W-1" });
    api.ok(post("/v1/messages", &p.operator, None, message))
        .await;
    start(api, &p.operator, "reserve", json!({ "sku": "W-1" })).await;
    let job = activate(api, &p.worker, "reserve-stock").await;
    let error = json!({ "error_code": "OUT_OF_STOCK", "error_message": "none left" });
    api.ok(post(
        format!("/v1/jobs/{job}/error"),
        &p.worker,
        None,
        error,
    ))
    .await;
    let job = activate(api, &p.worker, "backorder").await;
    api.ok(post(
        format!("/v1/jobs/{job}/completion"),
        &p.worker,
        None,
        json!({}),
    ))
    .await;
    start(api, &p.operator, "review", json!({ "discount": 25 })).await;
    let task = user_task(api, &p.approver).await;
    let claim = json!({ "assignee": "mia" });
    api.ok(post(
        format!("/v1/user-tasks/{task}/assignment"),
        &p.approver,
        None,
        claim,
    ))
    .await;
    let done = json!({ "variables": { "approved": true } });
    api.ok(post(
        format!("/v1/user-tasks/{task}/completion"),
        &p.approver,
        None,
        done,
    ))
    .await;
}

#[tokio::test]
async fn each_workflow_command_stays_within_its_statement_budget() {
    let (app, api) = isolated().await;
    let p = People {
        operator: app.token("acme", &[Role::Operator]),
        worker: app.token_for("worker-1", "acme", &[Role::Worker]),
        approver: app.token_for("mia", "acme", &[Role::Approver]),
    };
    warm_up(&api, &p).await;
    let (operator, worker) = (p.operator.as_str(), p.worker.as_str());

    let mut r = Report::new(BUDGETS);
    // An instance through its job API: activated, failed into an incident, resolved, activated
    // again, completed; its provisioning interrupted by a message.
    let body = json!({ "bpmn_process_id": "fulfil", "variables": { "orderId": "O-1" } });
    let started = r
        .measure(
            &api,
            "start instance",
            post("/v1/process-instances", operator, None, body),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    let activate_reserve = post(
        "/v1/jobs/activation",
        worker,
        None,
        activation("reserve-inventory"),
    );
    let activated = r.measure(&api, "activate jobs", activate_reserve).await;
    let job = job_id(&activated.body);
    let fail = json!({ "retries": 0, "error_message": "inventory down" });
    let failure = post(format!("/v1/jobs/{job}/failure"), worker, None, fail);
    r.measure(&api, "fail job (incident)", failure).await;
    let incidents = api.ok(super::get("/v1/incidents", operator)).await;
    let incident = incidents.body["items"][0]["incident_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no incident: {}", incidents.body))
        .to_owned();
    let repair = json!({ "reason": "inventory back", "retries": 1 });
    let resolve = post(
        format!("/v1/incidents/{incident}/resolution"),
        operator,
        None,
        repair,
    );
    r.measure(&api, "resolve incident", resolve).await;
    let job = activate(&api, worker, "reserve-inventory").await;
    let complete = post(
        format!("/v1/jobs/{job}/completion"),
        worker,
        None,
        json!({}),
    );
    r.measure(&api, "complete job", complete).await;
    let message = json!({ "name": "order-cancelled", "correlation_key": "O-1" });
    let publish = post("/v1/messages", operator, None, message);
    let published = r
        .measure(&api, "publish message (correlated)", publish)
        .await;
    assert_eq!(
        published.body["outcome"], "correlated",
        "{}",
        published.body
    );

    let signal = json!({ "signal_name": "nobody-listens", "variables": { "a": 1 } });
    let broadcast = post("/v1/signals", operator, None, signal);
    let sent = r
        .measure(&api, "broadcast signal (nothing waits)", broadcast)
        .await;
    assert_eq!(sent.body["triggered"], 0, "{}", sent.body);

    let second = start(&api, operator, "fulfil", json!({ "orderId": "O-2" })).await;
    let cancel = post(
        format!("/v1/process-instances/{second}/cancellation"),
        operator,
        None,
        json!({ "reason": "customer withdrew" }),
    );
    r.measure(&api, "cancel instance", cancel).await;

    start(&api, operator, "reserve", json!({ "sku": "R-1" })).await;
    let job = activate(&api, worker, "reserve-stock").await;
    let error = json!({ "error_code": "OUT_OF_STOCK", "error_message": "none left" });
    let throw = post(format!("/v1/jobs/{job}/error"), worker, None, error);
    r.measure(&api, "throw job error (caught)", throw).await;

    start(&api, operator, "review", json!({ "discount": 25 })).await;
    let task = user_task(&api, &p.approver).await;
    let claim = json!({ "assignee": "mia" });
    let assign = post(
        format!("/v1/user-tasks/{task}/assignment"),
        &p.approver,
        None,
        claim,
    );
    r.measure(&api, "claim user task", assign).await;
    let done = json!({ "variables": { "approved": true } });
    let complete = post(
        format!("/v1/user-tasks/{task}/completion"),
        &p.approver,
        None,
        done,
    );
    r.measure(&api, "complete user task", complete).await;

    // The platform's writes: a new version, a worker group, the routing of new instances.
    let before = api.statements().await;
    let deployed = api
        .deploy(operator, &format!("{FULFIL}\n<!-- v2 -->\n"))
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    r.record(&api, "deploy process definition", before).await;
    let platform = platform_token(&app, &[Role::Operator]);
    let group = json!({ "job_types": ["reserve-inventory", "provision-service"], "worker_version": "1.0.0" });
    let heartbeat = put("/v1/worker-groups/fulfilment", &platform, group);
    r.measure(&api, "worker group heartbeat (PUT)", heartbeat)
        .await;
    let pin = json!({ "rules": [{ "tenant": "acme", "product_line": null, "release_flag": null, "version": 1, "priority": 0 }] });
    let routing = put("/v1/process-definitions/fulfil/routing", &platform, pin);
    r.measure(&api, "replace routing rules (PUT)", routing)
        .await;

    r.assert_within_budgets();
}
