//! Fallout cases over HTTP: the worklist (filters, keyset pages newest first, tenants), a case's
//! page, and the three repairs with their audit records, events and order status transitions;
//! refusals (no reason, not open, unknown, another tenant's, not order operations) change
//! nothing.
//!
//! Orders come from a real conversion (the fulfillment process runs on the real engine). Until
//! the worker's `fulfillment-fallout` job opens cases end to end (the lead's test with `cpq-worker`
//! and `cpq-sim`), a case is written here as that job writes it, with the schema owner: the case
//! row, the task `failed`, the order `in-fallout`. The retry test drives the engine itself: the
//! task's job throws a BPMN error, the `fulfillment-fallout` job is completed, and the repair's
//! message reaches the subprocess waiting for it.

use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::approvals::{command, priced_quote, sales_platform};
use crate::helpers::*;
use crate::support::TestApp;

const OPS: &[Role] = &[Role::OrderOperations];

/// A converted order of tenant `acme`: (order id, fulfillment instance id, plan).
pub(crate) async fn converted_order(app: &TestApp, sales: &str) -> (String, String, Value) {
    let (id, v) = priced_quote(app, sales, "5").await;
    let q = format!("/v1/quotes/{id}");
    let submitted = command(app, sales, &format!("{q}/submit"), v, json!({})).await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    let accepted = command(app, sales, &format!("{q}/accept"), v + 1, json!({})).await;
    assert_eq!(accepted.body["status"], "accepted", "{}", accepted.body);
    let order = command(app, sales, &format!("{q}/convert"), v + 2, json!({})).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let order_id = order.body["order_id"].as_str().unwrap().to_owned();
    let instance = order.body["fulfillment_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan = get(
        app,
        sales,
        &format!("/v1/orders/{order_id}/fulfillment-plan"),
    )
    .await;
    assert_eq!(plan.status, StatusCode::OK, "{}", plan.body);
    (order_id, instance, plan.body)
}

/// The plan's task keys, in plan order.
pub(crate) fn task_keys(plan: &Value) -> Vec<String> {
    plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap().to_owned())
        .collect()
}

/// What a fallout case is opened with.
pub(crate) struct Opening<'a> {
    pub category: &'a str,
    pub status: &'a str,
    /// How long ago, in hours.
    pub age_hours: i64,
    /// The fallout job that opened it (any id when no engine job stands behind it).
    pub job: Uuid,
}

impl Default for Opening<'_> {
    fn default() -> Self {
        Opening {
            category: "business-failure",
            status: "open",
            age_hours: 0,
            job: Uuid::now_v7(),
        }
    }
}

/// Writes a fallout case of `order`'s task `task_key` as the `fulfillment-fallout` job does (an
/// open case also fails the task and puts the order in fallout): its id.
pub(crate) async fn open_case(
    app: &TestApp,
    order: &str,
    task_key: &str,
    o: Opening<'_>,
) -> String {
    let pool = app.db.owner_pool().await;
    let id = Uuid::now_v7();
    let order: Uuid = order.parse().unwrap();
    let error = json!({ "code": "PORT-UNAVAILABLE", "message": "no free port at the site" });
    let inserted = sqlx::query(
        "INSERT INTO fallout_case (fallout_case_id, tenant_id, order_id, task_key, job_type, system, category, status, \
         error_code, last_error, request, attempts, process_instance_id, opened_by_job, version, created_at, updated_at) \
         SELECT $1, t.tenant_id, t.order_id, t.task_key, t.job_type, t.system, $4, $5, 'PORT-UNAVAILABLE', $6, \
         jsonb_build_object('idempotency_key', 'task-' || t.task_key, 'body', jsonb_build_object('site', 'Berlin')), 3, \
         o.fulfillment_instance_id, $7, 1, now() - make_interval(hours => $8), now() - make_interval(hours => $8) \
         FROM fulfillment_task t JOIN sales_order o ON o.order_id = t.order_id WHERE t.order_id = $2 AND t.task_key = $3",
    )
    .bind(id)
    .bind(order)
    .bind(task_key)
    .bind(o.category)
    .bind(o.status)
    .bind(&error)
    .bind(o.job)
    .bind(o.age_hours as i32)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(inserted.rows_affected(), 1, "no task {task_key}");
    if o.status == "open" {
        sqlx::query("UPDATE fulfillment_task SET status = 'failed', last_error = $3 WHERE order_id = $1 AND task_key = $2")
            .bind(order)
            .bind(task_key)
            .bind(&error)
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("UPDATE sales_order SET status = 'in-fallout' WHERE order_id = $1")
            .bind(order)
            .execute(&pool)
            .await
            .unwrap();
    }
    pool.close().await;
    id.to_string()
}

/// One value as the schema owner.
async fn scalar<T>(app: &TestApp, sql: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    let pool = app.db.owner_pool().await;
    let v: T = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    v
}

/// Everything a refused repair must leave as it was: the case, its task, the order, its items,
/// the audit trail, the outbox, the messages, the instance.
async fn snapshot(app: &TestApp, order: &str) -> Value {
    scalar(
        app,
        &format!(
            "SELECT jsonb_build_object(\
               'cases', (SELECT jsonb_agg(to_jsonb(c) ORDER BY fallout_case_id) FROM fallout_case c WHERE order_id = '{order}'), \
               'tasks', (SELECT jsonb_agg(jsonb_build_object('k', task_key, 's', status) ORDER BY position) FROM fulfillment_task WHERE order_id = '{order}'), \
               'order', (SELECT jsonb_build_object('s', status, 'v', version) FROM sales_order WHERE order_id = '{order}'), \
               'items', (SELECT jsonb_agg(status ORDER BY line_no) FROM order_item WHERE order_id = '{order}'), \
               'audit', (SELECT count(*) FROM audit_record), \
               'outbox', (SELECT count(*) FROM outbox_event), \
               'messages', (SELECT count(*) FROM message) + (SELECT count(*) FROM message_publication), \
               'instance', (SELECT p.status FROM process_instance p JOIN sales_order o ON o.fulfillment_instance_id = p.process_instance_id WHERE o.order_id = '{order}'))"
        ),
    )
    .await
}

fn case_path(id: &str, action: &str) -> String {
    format!("/v1/fallout-cases/{id}/{action}")
}

/// The order's status as the API shows it.
async fn order_status(app: &TestApp, token: &str, order: &str) -> String {
    let o = get(app, token, &format!("/v1/orders/{order}")).await;
    assert_eq!(o.status, StatusCode::OK, "{}", o.body);
    o.body["status"].as_str().unwrap().to_owned()
}

/// Audit records of `order` with `action`, as (actor, reason).
async fn audits(app: &TestApp, order: &str, action: &str) -> Vec<(String, Option<String>)> {
    let pool = app.db.owner_pool().await;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT actor_subject, reason FROM audit_record WHERE aggregate_type = 'order' AND aggregate_id = $1 AND action = $2 \
         ORDER BY occurred_at",
    )
    .bind(order.parse::<Uuid>().unwrap())
    .bind(action)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

/// Payloads of `order`'s outbox events of `event_type`.
async fn events(app: &TestApp, order: &str, event_type: &str) -> Vec<Value> {
    let pool = app.db.owner_pool().await;
    let rows: Vec<Value> = sqlx::query_scalar(
        "SELECT payload FROM outbox_event WHERE aggregate_id = $1 AND event_type = $2 ORDER BY event_id",
    )
    .bind(order.parse::<Uuid>().unwrap())
    .bind(event_type)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn refused_repairs_answer_problems_and_change_nothing() {
    let (app, sales) = sales_platform().await;
    let ops = app.token_for("ops-1", "acme", OPS);
    let (order, _, plan) = converted_order(&app, &sales).await;
    let task = task_keys(&plan)[0].clone();
    let case = open_case(&app, &order, &task, Opening::default()).await;
    let before = snapshot(&app, &order).await;

    // Sellers do not work fallout.
    get(&app, &sales, "/v1/fallout-cases")
        .await
        .assert_problem(403, "forbidden");
    let r = json!({ "reason": "port freed" });
    post(&app, &sales, &case_path(&case, "retry"), &r, None)
        .await
        .assert_problem(403, "forbidden");

    for action in ["retry", "skip", "cancel-order"] {
        // No reason, a blank one, one too long: 422 naming the field.
        for body in [
            json!({}),
            json!({ "reason": "   " }),
            json!({ "reason": "x".repeat(501) }),
        ] {
            let a = post(&app, &ops, &case_path(&case, action), &body, None).await;
            a.assert_problem(422, "validation-failed");
            assert_eq!(a.error_fields(), vec!["reason"], "{action}: {}", a.body);
        }
        // Unknown fields are refused; only a retry takes input.
        let extra = json!({ "reason": "r", "force": true });
        post(&app, &ops, &case_path(&case, action), &extra, None)
            .await
            .assert_problem(400, "malformed-request");
        // An unknown case.
        let unknown = case_path(&Uuid::now_v7().to_string(), action);
        post(&app, &ops, &unknown, &r, None)
            .await
            .assert_problem(404, "not-found");
    }
    let bad_input = json!({ "reason": "corrected", "input": [1, 2] });
    let a = post(&app, &ops, &case_path(&case, "retry"), &bad_input, None).await;
    a.assert_problem(422, "validation-failed");
    assert_eq!(a.error_fields(), vec!["input"], "{}", a.body);
    let skip_input = json!({ "reason": "r", "input": { "site": "Hamburg" } });
    post(&app, &ops, &case_path(&case, "skip"), &skip_input, None)
        .await
        .assert_problem(400, "malformed-request");

    // Another tenant's order operations see no such case.
    let other = app.token_for("ops-9", "globex", OPS);
    get(&app, &other, &format!("/v1/fallout-cases/{case}"))
        .await
        .assert_problem(404, "not-found");
    for action in ["retry", "skip", "cancel-order"] {
        post(&app, &other, &case_path(&case, action), &r, None)
            .await
            .assert_problem(404, "not-found");
    }
    let listed = get(&app, &other, "/v1/fallout-cases").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.body);
    assert_eq!(listed.body["items"], json!([]));

    assert_eq!(snapshot(&app, &order).await, before);
    let shown = get(&app, &ops, &format!("/v1/fallout-cases/{case}")).await;
    assert_eq!(shown.body["status"], "open", "{}", shown.body);
    assert_eq!(shown.header("etag"), Some("\"1\""));
}

/// Jobs of `job_type` activated by `worker`.
pub(crate) async fn activate(app: &TestApp, worker: &str, job_type: &str) -> Vec<Value> {
    let body = json!({ "job_type": job_type, "worker": "w1", "timeout_ms": 30000, "max_jobs": 10 });
    let a = post(app, worker, "/v1/jobs/activation", &body, None).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body["jobs"].as_array().unwrap().clone()
}

/// Drives the fulfillment process of `order` into fallout on the real engine: the job of its
/// first task that waits for nothing throws a business failure, the `fulfillment-fallout` job
/// runs (the case written as it writes it) and the task's subprocess waits for its repair.
/// (case id, task key, job type).
pub(crate) async fn fall_out(
    app: &TestApp,
    worker: &str,
    order: &str,
    plan: &Value,
) -> (String, String, String) {
    // A task that starts at once: its job is there to be activated.
    let first = plan["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["depends_on"] == json!([]))
        .unwrap()
        .clone();
    let (task, job_type) = (
        first["key"].as_str().unwrap().to_owned(),
        first["job_type"].as_str().unwrap().to_owned(),
    );
    let jobs = activate(app, worker, &job_type).await;
    let job = jobs
        .iter()
        .find(|j| {
            j["variables"]["task"]["key"] == task.as_str() && j["variables"]["order_id"] == order
        })
        .unwrap_or_else(|| panic!("no job of {task}: {jobs:?}"));
    // The system refuses the request: a business failure.
    let thrown = post(
        app,
        worker,
        &format!("/v1/jobs/{}/error", job["job_id"].as_str().unwrap()),
        &json!({ "error_code": "business-failure", "error_message": "no free port", "variables": { "business_error": { "code": "PORT-UNAVAILABLE" } } }),
        None,
    )
    .await;
    assert_eq!(thrown.status, StatusCode::OK, "{}", thrown.body);
    // The fallout job runs (the case is written as it writes it) and the subprocess waits.
    let fallout_jobs = activate(app, worker, "fulfillment-fallout").await;
    assert_eq!(fallout_jobs.len(), 1, "{fallout_jobs:?}");
    let fallout_job = fallout_jobs[0]["job_id"].as_str().unwrap().to_owned();
    let case = open_case(
        app,
        order,
        &task,
        Opening {
            job: fallout_job.parse().unwrap(),
            ..Opening::default()
        },
    )
    .await;
    let completed = post(
        app,
        worker,
        &format!("/v1/jobs/{fallout_job}/completion"),
        &json!({ "variables": {} }),
        None,
    )
    .await;
    assert_eq!(completed.status, StatusCode::OK, "{}", completed.body);
    (case, task, job_type)
}

#[tokio::test]
async fn a_retry_with_corrected_input_reaches_the_waiting_task_and_the_order_returns_to_fulfillment(
) {
    let (app, sales) = sales_platform().await;
    let ops = app.token_for("ops-1", "acme", OPS);
    let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
    let (order, instance, plan) = converted_order(&app, &sales).await;
    let (case, task, job_type) = fall_out(&app, &worker, &order, &plan).await;
    assert_eq!(order_status(&app, &sales, &order).await, "in-fallout");

    let shown = get(&app, &ops, &format!("/v1/fallout-cases/{case}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["order_id"], order.as_str());
    assert_eq!(shown.body["task_key"], task.as_str());
    assert_eq!(shown.body["task_status"], "failed");
    assert_eq!(shown.body["order_status"], "in-fallout");
    assert_eq!(shown.body["job_type"], job_type.as_str());
    assert_eq!(shown.body["attempts"], 3);
    assert_eq!(shown.body["error_code"], "PORT-UNAVAILABLE");
    assert_eq!(shown.body["request"]["body"]["site"], "Berlin");
    assert_eq!(shown.body["process_instance_id"], instance.as_str());
    assert_eq!(shown.body["resolution"], Value::Null);

    let input = json!({ "site": "Hamburg", "port": 7 });
    let body = json!({ "reason": "  port 7 freed at Hamburg  ", "input": input });
    let retried = post(
        &app,
        &ops,
        &case_path(&case, "retry"),
        &body,
        Some("retry-1"),
    )
    .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.body);
    assert_eq!(retried.header("etag"), Some("\"2\""));
    let c = &retried.body;
    assert_eq!(c["status"], "retried");
    assert_eq!(c["version"], 2);
    assert_eq!(c["task_status"], "ready");
    assert_eq!(c["order_status"], "in-fulfillment");
    assert_eq!(
        c["resolution"],
        json!({ "action": "retry", "reason": "port 7 freed at Hamburg", "actor": "ops-1", "input": input })
    );
    assert!(c["resolved_at"].is_string(), "{c}");
    assert_eq!(c["publication"]["outcome"], "correlated", "{c}");
    assert_eq!(c["publication"]["process_instance_id"], instance.as_str());

    // The task's job runs again, with the task's corrected input.
    let again = activate(&app, &worker, &job_type).await;
    let rerun = again
        .iter()
        .find(|j| j["variables"]["task"]["key"] == task.as_str())
        .unwrap_or_else(|| panic!("the retried task's job is not there: {again:?}"));
    assert_eq!(rerun["variables"]["task"]["input"], input);
    assert_eq!(rerun["variables"]["repair"]["action"], "retry");

    // The same key replays the answer; nothing runs twice.
    let replay = post(
        &app,
        &ops,
        &case_path(&case, "retry"),
        &body,
        Some("retry-1"),
    )
    .await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, retried.body);
    // Another request: the case is not open any more.
    let second = post(
        &app,
        &ops,
        &case_path(&case, "retry"),
        &body,
        Some("retry-2"),
    )
    .await;
    second.assert_problem(409, "conflict");
    post(
        &app,
        &ops,
        &case_path(&case, "skip"),
        &json!({ "reason": "r" }),
        None,
    )
    .await
    .assert_problem(409, "conflict");

    assert_eq!(order_status(&app, &sales, &order).await, "in-fulfillment");
    assert_eq!(
        audits(&app, &order, "order.fallout-retry").await,
        vec![(
            "ops-1".to_owned(),
            Some("port 7 freed at Hamburg".to_owned())
        )]
    );
    let resolved = events(&app, &order, "order.fallout-resolved").await;
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["fallout_case_id"], case.as_str());
    assert_eq!(resolved[0]["action"], "retry");
    assert_eq!(resolved[0]["task_key"], task.as_str());
    let shown = get(&app, &ops, &format!("/v1/fallout-cases/{case}")).await;
    assert_eq!(shown.body["status"], "retried");
    assert_eq!(shown.header("etag"), Some("\"2\""));
}

#[tokio::test]
async fn a_skip_resolves_its_case_and_the_order_leaves_fallout_with_its_last_open_case() {
    let (app, sales) = sales_platform().await;
    let ops = app.token_for("ops-1", "acme", OPS);
    let (order, _, plan) = converted_order(&app, &sales).await;
    let keys = task_keys(&plan);
    assert!(keys.len() >= 2, "{plan}");
    let first = open_case(&app, &order, &keys[0], Opening::default()).await;
    let second = open_case(&app, &order, &keys[1], Opening::default()).await;
    assert_eq!(order_status(&app, &sales, &order).await, "in-fallout");

    let skipped = post(
        &app,
        &ops,
        &case_path(&first, "skip"),
        &json!({ "reason": "reserved by hand in the inventory" }),
        None,
    )
    .await;
    assert_eq!(skipped.status, StatusCode::OK, "{}", skipped.body);
    assert_eq!(skipped.body["status"], "skipped");
    assert_eq!(skipped.body["resolution"]["action"], "skip");
    // The task is the process's to finish (its task-done job marks it skipped).
    assert_eq!(skipped.body["task_status"], "failed");
    // Another case of the order is still open.
    assert_eq!(skipped.body["order_status"], "in-fallout");
    assert_eq!(order_status(&app, &sales, &order).await, "in-fallout");
    // No subprocess waits for it here (the cases were written without the engine): the repair
    // message waits for its subscription.
    assert_eq!(skipped.body["publication"]["outcome"], "buffered");
    let buffered: i64 = scalar(
        &app,
        &format!("SELECT count(*) FROM message WHERE message_name = 'fallout-resolved' AND correlation_key = '{order}/{}' AND message_id = '{first}/skip' AND variables->'repair'->>'action' = 'skip'", keys[0]),
    )
    .await;
    assert_eq!(buffered, 1);

    let version = get(&app, &sales, &format!("/v1/orders/{order}")).await.body["version"]
        .as_i64()
        .unwrap();
    let skipped = post(
        &app,
        &ops,
        &case_path(&second, "skip"),
        &json!({ "reason": "billing activated by hand" }),
        None,
    )
    .await;
    assert_eq!(skipped.status, StatusCode::OK, "{}", skipped.body);
    assert_eq!(skipped.body["order_status"], "in-fulfillment");
    let o = get(&app, &sales, &format!("/v1/orders/{order}")).await;
    assert_eq!(o.body["status"], "in-fulfillment");
    assert_eq!(o.body["version"].as_i64().unwrap(), version + 1);

    // Skipped is final.
    for action in ["retry", "skip", "cancel-order"] {
        let a = post(
            &app,
            &ops,
            &case_path(&first, action),
            &json!({ "reason": "again" }),
            None,
        )
        .await;
        a.assert_problem(409, "conflict");
        assert!(
            a.body["detail"].as_str().unwrap().contains("skipped"),
            "{}",
            a.body
        );
    }
    let audited = audits(&app, &order, "order.fallout-skip").await;
    assert_eq!(
        audited,
        vec![
            (
                "ops-1".to_owned(),
                Some("reserved by hand in the inventory".to_owned())
            ),
            (
                "ops-1".to_owned(),
                Some("billing activated by hand".to_owned())
            ),
        ]
    );
    let resolved = events(&app, &order, "order.fallout-resolved").await;
    assert_eq!(resolved.len(), 2);
    assert!(
        resolved.iter().all(|e| e["action"] == "skip"),
        "{resolved:?}"
    );
}

#[tokio::test]
async fn cancel_order_cancels_the_order_its_items_tasks_open_cases_and_fulfillment_process() {
    let (app, sales) = sales_platform().await;
    let ops = app.token_for("ops-1", "acme", OPS);
    let operator = app.token("acme", &[Role::Operator]);
    let (order, instance, plan) = converted_order(&app, &sales).await;
    let keys = task_keys(&plan);
    let first = open_case(&app, &order, &keys[0], Opening::default()).await;
    let second = open_case(&app, &order, &keys[1], Opening::default()).await;
    // An earlier case of the same task, repaired already, stays as it was.
    let earlier = open_case(
        &app,
        &order,
        &keys[1],
        Opening {
            status: "retried",
            age_hours: 2,
            ..Opening::default()
        },
    )
    .await;

    let reason = "customer withdrew the order";
    let cancelled = post(
        &app,
        &ops,
        &case_path(&first, "cancel-order"),
        &json!({ "reason": reason }),
        Some("cancel-1"),
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    let c = &cancelled.body;
    assert_eq!(c["status"], "cancelled");
    assert_eq!(c["order_status"], "cancelled");
    assert_eq!(c["task_status"], "cancelled");
    assert_eq!(
        c["resolution"],
        json!({ "action": "cancel-order", "reason": reason, "actor": "ops-1" })
    );
    assert_eq!(c["publication"], Value::Null);
    assert_eq!(cancelled.header("etag"), Some("\"2\""));
    // What the answer says is what a read says.
    let shown = get(&app, &ops, &format!("/v1/fallout-cases/{first}")).await;
    assert_eq!(&shown.body, c);

    let o = get(&app, &sales, &format!("/v1/orders/{order}")).await;
    assert_eq!(o.body["status"], "cancelled");
    let items: Vec<String> = scalar(
        &app,
        &format!("SELECT array_agg(status) FROM order_item WHERE order_id = '{order}'"),
    )
    .await;
    assert!(
        !items.is_empty() && items.iter().all(|s| s == "cancelled"),
        "{items:?}"
    );
    let tasks: Vec<String> = scalar(
        &app,
        &format!("SELECT array_agg(status) FROM fulfillment_task WHERE order_id = '{order}'"),
    )
    .await;
    assert!(tasks.iter().all(|s| s == "cancelled"), "{tasks:?}");
    let other = get(&app, &ops, &format!("/v1/fallout-cases/{second}")).await;
    assert_eq!(other.body["status"], "cancelled");
    assert_eq!(other.body["resolution"]["by_fallout_case"], first.as_str());
    let untouched = get(&app, &ops, &format!("/v1/fallout-cases/{earlier}")).await;
    assert_eq!(untouched.body["status"], "retried");
    assert_eq!(untouched.body["version"], 1);
    let process = get(
        &app,
        &operator,
        &format!("/v1/process-instances/{instance}"),
    )
    .await;
    assert_eq!(process.body["status"], "terminated", "{}", process.body);

    let audited = audits(&app, &order, "order.cancel").await;
    assert_eq!(audited, vec![("ops-1".to_owned(), Some(reason.to_owned()))]);
    let cancelled_events = events(&app, &order, "order.cancelled").await;
    assert_eq!(cancelled_events.len(), 1);
    assert_eq!(cancelled_events[0]["reason"], reason);
    let mut closed: Vec<String> = events(&app, &order, "order.fallout-resolved")
        .await
        .iter()
        .inspect(|e| assert_eq!(e["action"], "cancel-order"))
        .map(|e| e["fallout_case_id"].as_str().unwrap().to_owned())
        .collect();
    closed.sort();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(closed, expected);

    // Nothing of the order can be repaired any more; the replay answers as before.
    let replay = post(
        &app,
        &ops,
        &case_path(&first, "cancel-order"),
        &json!({ "reason": reason }),
        Some("cancel-1"),
    )
    .await;
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, cancelled.body);
    let before = snapshot(&app, &order).await;
    for case in [&first, &second] {
        for action in ["retry", "skip", "cancel-order"] {
            post(
                &app,
                &ops,
                &case_path(case, action),
                &json!({ "reason": "again" }),
                None,
            )
            .await
            .assert_problem(409, "conflict");
        }
    }
    assert_eq!(snapshot(&app, &order).await, before);
}

/// Every page of `path` (with `limit=2`), following the cursors: the case ids in order.
async fn all_pages(app: &TestApp, token: &str, path: &str) -> Vec<String> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit=2&cursor={c}"),
            None => format!("{path}{sep}limit=2"),
        };
        let p = get(app, token, &url).await;
        assert_eq!(p.status, StatusCode::OK, "{url}: {}", p.body);
        let items = p.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        ids.extend(items.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match p.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    ids
}

#[tokio::test]
async fn the_worklist_filters_and_pages_newest_first() {
    let (app, sales) = sales_platform().await;
    let ops = app.token_for("ops-1", "acme", OPS);
    let (a, _, plan_a) = converted_order(&app, &sales).await;
    let (b, _, plan_b) = converted_order(&app, &sales).await;
    let (ka, kb) = (task_keys(&plan_a), task_keys(&plan_b));
    // Newest first: listed in this order (ages 0 to 80 hours).
    let cases = vec![
        open_case(
            &app,
            &a,
            &ka[0],
            Opening {
                age_hours: 0,
                ..Opening::default()
            },
        )
        .await,
        open_case(
            &app,
            &b,
            &kb[0],
            Opening {
                category: "technical-failure",
                age_hours: 1,
                ..Opening::default()
            },
        )
        .await,
        open_case(
            &app,
            &a,
            &ka[1],
            Opening {
                category: "callback-timeout",
                age_hours: 5,
                ..Opening::default()
            },
        )
        .await,
        open_case(
            &app,
            &a,
            &ka[0],
            Opening {
                status: "retried",
                age_hours: 30,
                ..Opening::default()
            },
        )
        .await,
        open_case(
            &app,
            &b,
            &kb[0],
            Opening {
                status: "skipped",
                category: "callback-failed",
                age_hours: 80,
                ..Opening::default()
            },
        )
        .await,
    ];
    let all = all_pages(&app, &ops, "/v1/fallout-cases").await;
    assert_eq!(all, cases);
    let one = get(&app, &ops, "/v1/fallout-cases?limit=1").await;
    assert_eq!(one.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(one.body["items"][0]["id"], cases[0].as_str());
    assert_eq!(
        one.body["items"][0]["last_error"]["code"],
        "PORT-UNAVAILABLE"
    );
    assert!(one.body["next_cursor"].is_string());

    let pick = |idx: &[usize]| idx.iter().map(|i| cases[*i].clone()).collect::<Vec<_>>();
    assert_eq!(
        all_pages(&app, &ops, "/v1/fallout-cases?status=open").await,
        pick(&[0, 1, 2])
    );
    assert_eq!(
        all_pages(&app, &ops, "/v1/fallout-cases?status=skipped").await,
        pick(&[4])
    );
    assert_eq!(
        all_pages(&app, &ops, "/v1/fallout-cases?category=technical-failure").await,
        pick(&[1])
    );
    assert_eq!(
        all_pages(&app, &ops, &format!("/v1/fallout-cases?order_id={a}")).await,
        pick(&[0, 2, 3])
    );
    assert_eq!(
        all_pages(&app, &ops, "/v1/fallout-cases?older_than=PT4H").await,
        pick(&[2, 3, 4])
    );
    assert_eq!(
        all_pages(
            &app,
            &ops,
            "/v1/fallout-cases?older_than=P1D&status=retried"
        )
        .await,
        pick(&[3])
    );
    // Every case's system is its task's.
    let system = get(&app, &ops, &format!("/v1/fallout-cases/{}", cases[0]))
        .await
        .body["system"]
        .clone();
    if let Some(s) = system.as_str() {
        let with = all_pages(&app, &ops, &format!("/v1/fallout-cases?system={s}")).await;
        assert!(with.contains(&cases[0]), "{with:?}");
        for id in &with {
            let c = get(&app, &ops, &format!("/v1/fallout-cases/{id}")).await;
            assert_eq!(c.body["system"], s);
        }
    }

    // Bad filters and cursors: 400 naming the parameter.
    for (query, field) in [
        ("status=closed", "status"),
        ("system=mainframe", "system"),
        ("category=oops", "category"),
        ("older_than=4h", "older_than"),
        ("older_than=P1M", "older_than"),
        ("older_than=-PT1H", "older_than"),
        ("limit=0", "limit"),
        ("cursor=bogus", "cursor"),
    ] {
        let a = get(&app, &ops, &format!("/v1/fallout-cases?{query}")).await;
        a.assert_problem(400, "malformed-request");
        assert_eq!(a.error_fields(), vec![field], "{query}: {}", a.body);
    }
    // A cursor is only good for the filters it was made for.
    let first = get(&app, &ops, "/v1/fallout-cases?limit=1").await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let a = get(
        &app,
        &ops,
        &format!("/v1/fallout-cases?limit=1&status=open&cursor={cursor}"),
    )
    .await;
    a.assert_problem(400, "malformed-request");
    get(&app, &ops, "/v1/fallout-cases?colour=red")
        .await
        .assert_problem(400, "malformed-request");
}
