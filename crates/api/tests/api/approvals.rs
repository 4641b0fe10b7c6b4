//! Submission, the approval process and its tasks, acceptance, revisions and expiry, black-box
//! over HTTP with the real approval process (`processes/quote-approval-v1.bpmn`) deployed.

use crate::support::TestApp;
use cpq_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::catalog::{demo, publish};
use crate::helpers::*;

/// Sends a quote command with `If-Match` for `version`.
pub async fn command(app: &TestApp, token: &str, path: &str, version: i64, body: Value) -> Answer {
    let req = app
        .client
        .request(Method::POST, app.url(path))
        .bearer_for(token)
        .header("If-Match", format!("\"{version}\""))
        .json(&body);
    Answer::from(req.send().await.unwrap()).await
}

/// Deploys the platform's BPMN processes, as `cpq-admin deploy-bpmn processes` does at release,
/// after the fulfillment worker group (`deploy/local/fulfillment-workers.toml`) has registered
/// its job types, as `cpq-worker` does when it starts (a process deploys only when a worker
/// group executes each of its job types).
pub async fn deploy_platform_processes(app: &TestApp) {
    let operator = app.token("acme", &[Role::Operator]);
    let workers = std::fs::read_to_string(
        cpq_testkit::repo_root().join("deploy/local/fulfillment-workers.toml"),
    )
    .unwrap();
    let job_types: Vec<&str> = workers
        .lines()
        .filter_map(|l| l.trim().strip_prefix("job_type = "))
        .map(|t| t.trim_matches('"'))
        .collect();
    let heartbeat = Answer::from(
        app.client
            .put(app.url("/v1/worker-groups/fulfillment-workers"))
            .bearer_for(&crate::jobs::platform_token(app, &[Role::Operator]))
            .json(&serde_json::json!({ "job_types": job_types, "worker_version": "test" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(heartbeat.status, StatusCode::OK, "{}", heartbeat.body);
    for file in ["quote-approval-v1.bpmn", "order-fulfillment-v2.bpmn"] {
        let xml =
            std::fs::read_to_string(cpq_testkit::repo_root().join("processes").join(file)).unwrap();
        let deployed = deploy_bpmn(app, &operator, "", &xml).await;
        assert_eq!(
            deployed.status,
            StatusCode::CREATED,
            "{file}: {}",
            deployed.body
        );
    }
}

/// A platform with the demo catalog in force and the processes deployed.
pub async fn sales_platform() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    deploy_platform_processes(&app).await;
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let sales = app.token("acme", SALES);
    (app, sales)
}

/// A priced one-line quote with `discount` percent off the line: (id, version).
pub async fn priced_quote(app: &TestApp, sales: &str, discount: &str) -> (String, i64) {
    let account = create_account(
        app,
        sales,
        "Initech",
        &format!("CRM-{}", uuid::Uuid::new_v4()),
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = post(
        app,
        sales,
        "/v1/quotes",
        &json!({ "customer_account_id": account }),
        None,
    )
    .await
    .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let line = json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }, "manual_discount_percent": discount });
    let added = command(app, sales, &format!("/v1/quotes/{id}/items"), 1, line).await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    let priced = command(app, sales, &format!("/v1/quotes/{id}/price"), 2, json!({})).await;
    assert_eq!(priced.status, StatusCode::OK, "{}", priced.body);
    (id, priced.body["version"].as_i64().unwrap())
}

pub fn approver(app: &TestApp, name: &str, groups: &[&str]) -> String {
    app.token_with_groups(&format!("{name}@acme"), "acme", &[Role::Approver], groups)
}

/// The open approval tasks `token` sees for `quote`.
async fn tasks_for(app: &TestApp, token: &str, quote: &str) -> Vec<Value> {
    let list = get(app, token, "/v1/approval-tasks").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["quote_id"] == quote)
        .cloned()
        .collect()
}

async fn decide(
    app: &TestApp,
    token: &str,
    task: &Value,
    verb: &str,
    comment: Option<&str>,
) -> Answer {
    let id = task["task_id"].as_str().unwrap();
    post(
        app,
        token,
        &format!("/v1/approval-tasks/{id}/{verb}"),
        &json!({ "comment": comment }),
        None,
    )
    .await
}

async fn events(app: &TestApp, quote: &str) -> Vec<String> {
    let pool = app.db.owner_pool().await;
    let rows: Vec<String> = sqlx::query_scalar("SELECT event_type FROM outbox_event WHERE aggregate_id = $1::uuid ORDER BY outbox_position")
        .bind(quote)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

#[tokio::test]
async fn an_approval_free_quote_is_submitted_and_accepted_at_once_and_a_tenant_policy_replaces_the_default(
) {
    let (app, sales) = sales_platform().await;
    let (free, v) = priced_quote(&app, &sales, "5").await;
    let submitted = command(
        &app,
        &sales,
        &format!("/v1/quotes/{free}/submit"),
        v,
        json!({}),
    )
    .await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    assert_eq!(submitted.body["approval_decision"]["levels"], json!([]));
    assert!(submitted.body["approval_instance_id"].is_null());
    let accepted = command(
        &app,
        &sales,
        &format!("/v1/quotes/{free}/accept"),
        v + 1,
        json!({}),
    )
    .await;
    assert_eq!(
        (
            accepted.body["status"].as_str(),
            accepted.body["accepted_by"].as_str()
        ),
        (Some("accepted"), Some("user@acme")),
        "{}",
        accepted.body
    );
    assert_eq!(
        events(&app, &free).await,
        [
            "quote.created",
            "quote.item-added",
            "quote.priced",
            "quote.submitted",
            "quote.accepted"
        ]
    );

    // A new policy version: now 5 % needs the manager; bad policies are refused whole.
    let manager = app.token("acme", &[Role::CatalogManager]);
    let put = |body: Value| {
        let (app, manager) = (&app, manager.clone());
        async move {
            Answer::from(
                app.client
                    .put(app.url("/v1/approval-policy"))
                    .bearer_for(&manager)
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let bad = put(json!({ "levels": ["manager"], "rules": [{ "code": "X", "level": "cfo", "condition": { "when": "deal_size_above", "value": "1" } }],
        "timers": { "reminder_after": "soon", "escalate_after": "P1D", "escalation_group": "vp" } }))
    .await;
    bad.assert_problem(422, "validation-failed");
    assert_eq!(
        bad.error_fields(),
        ["rules[0].level", "timers.reminder_after"]
    );
    let policy = put(json!({ "levels": ["manager"], "rules": [{ "code": "ANY", "level": "manager", "condition": { "when": "line_discount_above", "value": "1" } }] })).await;
    assert_eq!(
        (policy.status, policy.body["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{}",
        policy.body
    );
    let (small, v) = priced_quote(&app, &sales, "5").await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{small}/submit"),
        v,
        json!({}),
    )
    .await;
    assert_eq!(
        (
            pending.body["status"].as_str(),
            pending.body["approval_decision"]["policy_version"].as_i64()
        ),
        (Some("approval-pending"), Some(1))
    );
    assert_eq!(
        pending.body["approval_decision"]["reasons"][0]["rule"],
        "ANY"
    );
}

#[tokio::test]
async fn one_level_is_approved_by_someone_else_and_never_by_the_owner_or_another_level() {
    let (app, sales) = sales_platform().await;
    let (id, v) = priced_quote(&app, &sales, "20").await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    assert_eq!(
        pending.body["status"], "approval-pending",
        "{}",
        pending.body
    );
    assert_eq!(
        pending.body["approval_decision"]["levels"],
        json!(["manager"])
    );
    assert_eq!(
        pending.body["approval_decision"]["reasons"][0]["rule"],
        "LINE-DISCOUNT-15"
    );

    // Not accepted while pending: the refusal names the state and what is allowed.
    let refused = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/accept"),
        v + 1,
        json!({}),
    )
    .await;
    refused.assert_problem(409, "conflict");
    // In the API's names (status approval-pending, action accept), with what to do next.
    assert_eq!(
        refused.body["detail"],
        "a quote in status approval-pending cannot accept; allowed: approve, reject, return, \
         revise, cancel; next: wait for the approval decision (the approvers' tasks under \
         /v1/approval-tasks)",
        "{}",
        refused.body
    );

    let finance = approver(&app, "fin", &["finance"]);
    assert!(tasks_for(&app, &finance, &id).await.is_empty());
    let manager = approver(&app, "mgr", &["manager"]);
    let tasks = tasks_for(&app, &manager, &id).await;
    assert_eq!(tasks.len(), 1);
    assert_eq!(
        (tasks[0]["level"].as_str(), tasks[0]["escalated"].as_bool()),
        (Some("manager"), Some(false))
    );
    decide(&app, &finance, &tasks[0], "approve", None)
        .await
        .assert_problem(403, "forbidden");
    // The owner holds the manager group too, and still may not approve their own quote.
    let owner_as_approver = app.token_with_groups(
        "user@acme",
        "acme",
        &[Role::Sales, Role::Approver],
        &["manager"],
    );
    let own = decide(&app, &owner_as_approver, &tasks[0], "approve", None).await;
    own.assert_problem(403, "forbidden");
    assert!(own.body["detail"].as_str().unwrap().contains("own quotes"));
    assert_eq!(count(&app, "SELECT count(*) FROM quote_approval").await, 0);

    let approved = decide(
        &app,
        &manager,
        &tasks[0],
        "approve",
        Some("within the quarter's envelope"),
    )
    .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["quote"]["status"], "approved");
    decide(&app, &manager, &tasks[0], "approve", None)
        .await
        .assert_problem(409, "conflict");

    let detail = get(&app, &sales, &format!("/v1/quotes/{id}")).await;
    assert_eq!(detail.body["approvals"][0]["decided_by"], "mgr@acme");
    assert_eq!(
        detail.body["approvals"][0]["comment"],
        "within the quarter's envelope"
    );
    let accepted = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/accept"),
        detail.body["version"].as_i64().unwrap(),
        json!({}),
    )
    .await;
    assert_eq!(accepted.body["status"], "accepted", "{}", accepted.body);
    assert_eq!(
        events(&app, &id).await[3..],
        [
            "quote.submitted",
            "quote.approval-requested",
            "quote.approved",
            "quote.accepted"
        ]
    );
    let instance = pending.body["approval_instance_id"].as_str().unwrap();
    assert_eq!(count(&app, &format!("SELECT count(*) FROM process_instance WHERE process_instance_id = '{instance}' AND status = 'completed'")).await, 1);
}

#[tokio::test]
async fn two_levels_are_asked_in_the_policy_order() {
    let (app, sales) = sales_platform().await;
    let (id, v) = priced_quote(&app, &sales, "30").await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    assert_eq!(
        pending.body["approval_decision"]["levels"],
        json!(["manager", "finance"]),
        "{}",
        pending.body
    );
    let (manager, finance) = (
        approver(&app, "mgr", &["manager"]),
        approver(&app, "fin", &["finance"]),
    );
    assert!(
        tasks_for(&app, &finance, &id).await.is_empty(),
        "finance is asked after the manager"
    );
    let first = decide(
        &app,
        &manager,
        &tasks_for(&app, &manager, &id).await[0],
        "approve",
        None,
    )
    .await;
    assert_eq!(
        first.body["quote"]["status"], "approval-pending",
        "{}",
        first.body
    );
    assert!(tasks_for(&app, &manager, &id).await.is_empty());
    let finance_tasks = tasks_for(&app, &finance, &id).await;
    assert_eq!(finance_tasks[0]["level"], "finance");
    let last = decide(&app, &finance, &finance_tasks[0], "approve", None).await;
    assert_eq!(last.body["quote"]["status"], "approved", "{}", last.body);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_event WHERE event_type = 'quote.approved'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_rejection_needs_a_comment_ends_approval_and_the_quote_is_revised_with_its_items() {
    let (app, sales) = sales_platform().await;
    let (id, v) = priced_quote(&app, &sales, "20").await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    let manager = approver(&app, "mgr", &["manager"]);
    let task = tasks_for(&app, &manager, &id).await.remove(0);
    decide(&app, &manager, &task, "reject", Some("  "))
        .await
        .assert_problem(422, "validation-failed");
    let rejected = decide(&app, &manager, &task, "reject", Some("margin too thin")).await;
    assert_eq!(
        rejected.body["quote"]["status"], "rejected",
        "{}",
        rejected.body
    );
    let instance = pending.body["approval_instance_id"].as_str().unwrap();
    assert_eq!(count(&app, &format!("SELECT count(*) FROM process_instance WHERE process_instance_id = '{instance}' AND status = 'completed'")).await, 1);
    let version = rejected.body["quote"]["version"].as_i64().unwrap();
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/accept"),
        version,
        json!({}),
    )
    .await
    .assert_problem(409, "conflict");

    // Revise: revision 2 in draft with the same line, revision 1 frozen as it was.
    let old_hash = rejected.body["quote"]["snapshot_hash"].clone();
    let revised = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/revise"),
        version,
        json!({ "reason": "smaller discount" }),
    )
    .await;
    assert_eq!(revised.status, StatusCode::OK, "{}", revised.body);
    assert_eq!(
        (
            revised.body["revision_no"].as_i64(),
            revised.body["status"].as_str()
        ),
        (Some(2), Some("draft"))
    );
    assert!(
        revised.body["price_snapshot"].is_null() && revised.body["approval_decision"].is_null()
    );
    assert_eq!(
        revised.body["items"][0]["configuration"]["offering"],
        "CLOUD-BACKUP"
    );
    let list = get(&app, &sales, &format!("/v1/quotes/{id}/revisions")).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            list.body["items"][0]["revision_no"].as_i64(),
            list.body["items"][0]["status"].as_str()
        ),
        (Some(1), Some("rejected"))
    );
    let first = get(&app, &sales, &format!("/v1/quotes/{id}/revisions/1")).await;
    assert_eq!(
        (
            first.body["snapshot_hash"].clone(),
            first.body["items"][0]["manual_discount_percent"].clone()
        ),
        (old_hash, json!("20"))
    );
    get(&app, &sales, &format!("/v1/quotes/{id}/revisions/2"))
        .await
        .assert_problem(404, "not-found");
    // Revision 1 cannot change: the application role has no UPDATE on it.
    let app_pool = app.db.app_pool().await;
    let denied = sqlx::query("UPDATE quote_revision SET status = 'approved'")
        .execute(&app_pool)
        .await
        .unwrap_err();
    assert!(denied.to_string().contains("permission denied"), "{denied}");
    app_pool.close().await;

    // Editing revision 2 leaves revision 1's items alone.
    let v2 = revised.body["version"].as_i64().unwrap();
    let removed = Answer::from(
        app.client
            .delete(app.url(&format!("/v1/quotes/{id}/items/1")))
            .bearer_for(&sales)
            .header("If-Match", format!("\"{v2}\""))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(
        count(
            &app,
            &format!("SELECT count(*) FROM quote_item WHERE quote_id = '{id}' AND revision_no = 1")
        )
        .await,
        1
    );
    // A draft is not revised: the refusal names what is allowed.
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/revise"),
        v2 + 1,
        json!({}),
    )
    .await
    .assert_problem(409, "conflict");
    assert!(events(&app, &id)
        .await
        .contains(&"quote.revised".to_owned()));
}

#[tokio::test]
async fn a_returned_quote_is_repriced_and_resubmitted_into_a_fresh_approval() {
    let (app, sales) = sales_platform().await;
    let (id, v) = priced_quote(&app, &sales, "20").await;
    let first = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    let manager = approver(&app, "mgr", &["manager"]);
    let returned = decide(
        &app,
        &manager,
        &tasks_for(&app, &manager, &id).await[0],
        "return",
        Some("add the support option"),
    )
    .await;
    assert_eq!(
        (
            returned.body["quote"]["status"].as_str(),
            returned.body["quote"]["price_stale"].as_bool()
        ),
        (Some("draft"), Some(true)),
        "{}",
        returned.body
    );
    let v = returned.body["quote"]["version"].as_i64().unwrap();
    // Not resubmitted without a new price.
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await
    .assert_problem(409, "conflict");
    let repriced = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/price"),
        v,
        json!({}),
    )
    .await;
    let second = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        repriced.body["version"].as_i64().unwrap(),
        json!({}),
    )
    .await;
    assert_eq!(second.body["status"], "approval-pending", "{}", second.body);
    assert_ne!(
        second.body["approval_instance_id"],
        first.body["approval_instance_id"]
    );
    let approved = decide(
        &app,
        &manager,
        &tasks_for(&app, &manager, &id).await[0],
        "approve",
        None,
    )
    .await;
    assert_eq!(
        approved.body["quote"]["status"], "approved",
        "{}",
        approved.body
    );
    let detail = get(&app, &sales, &format!("/v1/quotes/{id}")).await;
    let decisions: Vec<&str> = detail.body["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions, ["returned", "approved"]);
    assert!(events(&app, &id)
        .await
        .contains(&"quote.returned".to_owned()));
}

#[tokio::test]
async fn the_reminder_timer_fires_and_the_escalation_timer_moves_the_task_to_the_escalation_group()
{
    let (app, sales) = sales_platform().await;
    let manager = app.token("acme", &[Role::CatalogManager]);
    let policy = json!({ "levels": ["manager"], "rules": [{ "code": "ANY", "level": "manager", "condition": { "when": "line_discount_above", "value": "1" } }],
        "timers": { "reminder_after": "PT0S", "escalate_after": "PT1H", "escalation_group": "sales-director" } });
    let put = Answer::from(
        app.client
            .put(app.url("/v1/approval-policy"))
            .bearer_for(&manager)
            .json(&policy)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    let (id, v) = priced_quote(&app, &sales, "5").await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    let instance = pending.body["approval_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = app.db.app_pool().await;

    // The reminder is due at once; the task stays with the manager.
    assert_eq!(
        cpq_workflow::instances::fire_due_timers(&pool, 100).await,
        1
    );
    let history = count(&app, &format!("SELECT count(*) FROM process_instance_history WHERE process_instance_id = '{instance}' AND command::text LIKE '%RemindApprover%'")).await;
    assert!(history >= 1, "the reminder path ran");
    let mgr = approver(&app, "mgr", &["manager"]);
    assert_eq!(tasks_for(&app, &mgr, &id).await.len(), 1);

    // An hour later (moved by the test), the escalation fires: the manager's task is withdrawn.
    let owner = app.db.owner_pool().await;
    sqlx::query("UPDATE timer SET due_at = now() - interval '1 second' WHERE process_instance_id = $1::uuid").bind(&instance).execute(&owner).await.unwrap();
    owner.close().await;
    assert_eq!(
        cpq_workflow::instances::fire_due_timers(&pool, 100).await,
        1
    );
    pool.close().await;
    assert!(tasks_for(&app, &mgr, &id).await.is_empty());
    let director = approver(&app, "dir", &["sales-director"]);
    let escalated = tasks_for(&app, &director, &id).await;
    assert_eq!(
        (
            escalated.len(),
            escalated[0]["escalated"].as_bool(),
            escalated[0]["level"].as_str()
        ),
        (1, Some(true), Some("manager"))
    );
    let approved = decide(&app, &director, &escalated[0], "approve", None).await;
    assert_eq!(
        approved.body["quote"]["status"], "approved",
        "{}",
        approved.body
    );
}

#[tokio::test]
async fn open_quotes_past_their_validity_expire_and_their_approval_ends() {
    let (app, sales) = sales_platform().await;
    let (id, v) = priced_quote(&app, &sales, "20").await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    let instance = pending.body["approval_instance_id"].as_str().unwrap();
    let pool = app.db.app_pool().await;
    let today = chrono::Utc::now().date_naive();
    assert_eq!(
        cpq_quote::expiry::expire_due(&pool, today, 100)
            .await
            .unwrap(),
        0,
        "nothing is past its validity yet"
    );
    assert_eq!(
        cpq_quote::expiry::expire_due(&pool, today + chrono::Duration::days(31), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        cpq_quote::expiry::expire_due(&pool, today + chrono::Duration::days(31), 100)
            .await
            .unwrap(),
        0,
        "once"
    );
    pool.close().await;
    let detail = get(&app, &sales, &format!("/v1/quotes/{id}")).await;
    assert_eq!(detail.body["status"], "expired");
    assert_eq!(count(&app, &format!("SELECT count(*) FROM process_instance WHERE process_instance_id = '{instance}' AND status = 'terminated'")).await, 1);
    let manager = approver(&app, "mgr", &["manager"]);
    assert!(tasks_for(&app, &manager, &id).await.is_empty());
    assert_eq!(
        events(&app, &id).await.last().map(String::as_str),
        Some("quote.expired")
    );
}

#[tokio::test]
async fn special_terms_need_the_deal_desk_and_a_changed_line_is_validated_and_makes_the_price_stale(
) {
    let (app, sales) = sales_platform().await;
    let (id, v) = priced_quote(&app, &sales, "5").await;
    let put = |path: String, version: i64, body: Value| {
        let (app, sales) = (&app, sales.clone());
        async move {
            Answer::from(
                app.client
                    .put(app.url(&path))
                    .bearer_for(&sales)
                    .header("If-Match", format!("\"{version}\""))
                    .json(&body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    // 20 TB without the 30-day retention breaks a rule: 422 naming it, nothing written.
    let invalid = put(format!("/v1/quotes/{id}/items/1"), v, json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "20TB", "retention_days": 7 } } })).await;
    invalid.assert_problem(422, "validation-failed");
    assert!(
        invalid.body["errors"]
            .to_string()
            .contains("BACKUP-20TB-RETENTION"),
        "{}",
        invalid.body
    );
    put(
        format!("/v1/quotes/{id}/items/9"),
        v,
        json!({ "configuration": { "offering": "CLOUD-BACKUP" } }),
    )
    .await
    .assert_problem(404, "not-found");
    let changed = put(format!("/v1/quotes/{id}/items/1"), v, json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "1TB" } }, "manual_discount_percent": "5" })).await;
    assert_eq!(
        (
            changed.body["status"].as_str(),
            changed.body["price_stale"].as_bool()
        ),
        (Some("draft"), Some(true)),
        "{}",
        changed.body
    );
    assert_eq!(
        changed.body["items"][0]["configuration"]["characteristics"]["storage"],
        "1TB"
    );

    let terms = put(
        format!("/v1/quotes/{id}/terms"),
        v + 1,
        json!({ "special_terms": "  net 90 payment  " }),
    )
    .await;
    assert_eq!(
        terms.body["special_terms"], "net 90 payment",
        "{}",
        terms.body
    );
    let priced = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/price"),
        v + 2,
        json!({}),
    )
    .await;
    let pending = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        priced.body["version"].as_i64().unwrap(),
        json!({}),
    )
    .await;
    assert_eq!(
        pending.body["approval_decision"]["levels"],
        json!(["deal-desk"]),
        "{}",
        pending.body
    );
    assert_eq!(
        pending.body["approval_decision"]["reasons"][0]["rule"],
        "NON-STANDARD-TERMS"
    );
}

#[tokio::test]
async fn submitting_without_the_approval_process_says_what_is_missing_and_changes_nothing() {
    let app = TestApp::spawn().await;
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let sales = app.token("acme", SALES);
    let (id, v) = priced_quote(&app, &sales, "20").await;
    let refused = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    refused.assert_problem(503, "not-deployed");
    assert_eq!(
        refused.body["detail"],
        "the process quote-approval is not deployed on this platform, so it cannot submit a quote \
         that needs approval; an operator must deploy processes/quote-approval-v1.bpmn (cpq-admin \
         deploy-bpmn processes); nothing was changed"
    );
    // Not a transient failure: no Retry-After.
    assert!(refused.headers.get("retry-after").is_none());
    let quote = get(&app, &sales, &format!("/v1/quotes/{id}")).await;
    assert_eq!(
        (
            quote.body["status"].as_str(),
            quote.body["version"].as_i64()
        ),
        (Some("priced"), Some(v))
    );

    // Deployed, the same request goes through.
    deploy_platform_processes(&app).await;
    let submitted = command(
        &app,
        &sales,
        &format!("/v1/quotes/{id}/submit"),
        v,
        json!({}),
    )
    .await;
    assert_eq!(submitted.status, StatusCode::OK, "{}", submitted.body);
    assert_eq!(submitted.body["status"], "approval-pending");
}
