//! Budgets of the quote, approval and order commands.
//!
//! "Before" is the count on 2026-12-04 (morning), before the `order` crate and the cheaper
//! envelope (then five statements for a POST with a key, three for PUT and DELETE, and two per
//! audit record with one event). The quote commands now send what they need: the quote is read
//! with its lines in one locked statement (`quote_fetch_for_update`), each change of the quote is
//! one UPDATE (status, version and the command's fields) answering with the quote as written, and
//! the commands that validate or price take the quote's catalog version from that locked read
//! (the compiled catalog is cached). Conversion is held to the 14 whatever the number of
//! lines: decomposing the order into its fulfillment plan (issue 15) added no statement (the
//! lines' configurations come with the locked read, the plan's tasks with the order's insert,
//! the `order.decomposed` event with the order's audit record); starting the plan-driven
//! fulfillment process (one subprocess per task, each waiting task subscribed to its release)
//! adds its first jobs in one insert and its subscriptions in three (the correlation lock, the
//! buffered messages, the insert), whatever the number of tasks. The approval decisions sent 21 statements when their budgets were first set (the
//! "before" of reject and return): the task was locked twice, and the runtime deleted timers and
//! subscriptions one element at a time for every element with a boundary event. They now lock
//! the task once and delete the ended elements' timers in one statement, only for elements that
//! can have any (the same for subscriptions; the approval process has no message events). The
//! policy (6 before) takes its next version in its insert.
//!
//! | command | before | budget | needs | made of |
//! | --- | --- | --- | --- | --- |
//! | convert (1 line) | 26 | 14 | 14 | envelope 4; `quote_fetch_for_conversion` (locked, with the lines' configurations that decomposition reads) 1; `process_routing_fetch` 1 (the definition's model is cached); `process_instance_insert` (with its history) 1; the ready tasks' jobs (`job_insert`) 1; the waiting tasks' subscriptions (`message_correlation_lock`, `message_take_buffered`, `message_subscription_insert`) 3; `sales_order_insert_converting_quote` (order, items through `unnest`, the fulfillment plan through `jsonb_to_recordset`, quote converted) 1; two audit records (`quote.convert`; `order.create` with `order.created` and `order.decomposed`) 2. Decomposition itself is pure, on the compiled catalog (cached) |
//! | convert (10 lines) | 35 | 14 | 14 | the same: nothing grows with the lines (10 CLOUD-BACKUP lines make a plan of 22 tasks, written by the same statement, their jobs and subscriptions by the same four) |
//! | create quote | 12 | 8 | 8 | envelope 4; account (`customer_account_fetch_for_quote`) 1; catalog in force (`catalog_active_version`) 1; `quote_insert` (`RETURNING`) 1; audit 1 |
//! | add item | 17 | 8 | 8 | envelope 4; locked read 1 (it gives the catalog version); `quote_item_insert` 1; `quote_update_status` (`RETURNING`) 1; audit 1 |
//! | change item (PUT) | 15 | 6 | 6 | envelope 2; locked read 1; `quote_item_update` 1; `quote_update_status` 1; audit 1 |
//! | remove item (DELETE) | 11 | 6 | 6 | envelope 2; locked read 1; `quote_item_delete` 1; `quote_update_status` 1; audit 1 |
//! | set terms (PUT) | 11 | 5 | 5 | envelope 2; locked read 1; `quote_update_terms` (terms and status) 1; audit 1 |
//! | price | 17 | 7 | 7 | envelope 4; locked read 1; `quote_update_price` (snapshot and status) 1; audit 1 |
//! | submit (approval-free) | 14 | 8 | 8 | envelope 4; locked read 1; policy (`approval_policy_current`) 1; `quote_update_submission` (decision and status) 1; audit 1 |
//! | submit (approval needed) | 24 | 14 | 14 | as approval-free, and the approval process: `process_routing_fetch` 1, `process_instance_insert` (with history) 1, `user_task_insert` 1, `timer_insert` (reminder, escalation) 2; a second audit record (`quote.request-approval`) 1 |
//! | approve task | 27 | 15 | 15 | envelope 4; task locked once (`user_task_fetch_for_update`: for the decision and the completion) 1; instance locked 1; the runtime step 4 (`process_instance_update`, `process_instance_history_insert`, `user_task_complete`, `timer_delete_for_elements`: the task's two boundary timers in one statement; the level sub-process's error boundaries hold no timers or subscriptions, so nothing is deleted for it); decision (`quote_approval_count`, `quote_approval_insert`) 2; quote (`quote_fetch_for_update_by_approval_instance`, `quote_update_status`) 2; audit 1 |
//! | reject task | 21 | 15 | 15 | as approve (the level's error end event caught on the sub-process) |
//! | return task | 21 | 15 | 15 | as approve |
//! | accept | 13 | 7 | 7 | envelope 4; locked read 1; `quote_update_acceptance` (acceptance and status) 1; audit 1 |
//! | revise | 14 | 9 | 9 | envelope 4; locked read 1; frozen revision (`quote_revision_insert`) 1; items carried (`quote_item_carry_forward`) 1; `quote_open_revision` (`RETURNING`) 1; audit 1 |
//! | cancel | 12 | 7 | 7 | envelope 4; locked read 1; `quote_update_status` 1; audit 1 |
//! | put approval policy (PUT) | 6 | 5 | 5 | envelope 2; `approval_policy_lock` (advisory: one writer at a time per tenant) 1; `approval_policy_insert` (takes the next version under the lock and writes it into the stored policy, `RETURNING version`) 1; audit 1 |

use cpq_core::Role;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{budget, isolated, post, put, put_at, Budget, Call, Isolated, Report};
use crate::approvals::deploy_platform_processes;
use crate::catalog::{demo, publish, MANAGER};
use crate::helpers::{create_account, SALES};

pub const BUDGETS: &[Budget] = &[
    budget("convert (1 line)", 14, 14),
    budget("convert (10 lines)", 14, 14),
    budget("create quote", 8, 8),
    budget("add item", 8, 8),
    budget("change item", 6, 6),
    budget("remove item", 6, 6),
    budget("set terms", 5, 5),
    budget("price", 7, 7),
    budget("submit (approval-free)", 8, 8),
    budget("submit (approval needed)", 14, 14),
    budget("approve task", 15, 15),
    budget("reject task", 15, 15),
    budget("return task", 15, 15),
    budget("accept", 7, 7),
    budget("revise", 9, 9),
    budget("cancel", 7, 7),
    budget("put approval policy", 5, 5),
];

fn line(discount: &str) -> Value {
    json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }, "manual_discount_percent": discount })
}

/// A platform (both processes deployed, the demo catalog in force, a customer account) served by
/// a `cpq-api` process of its own: (that process, a sales token, the account id, the in-process
/// app that set it up and owns the database).
async fn platform() -> (Isolated, String, String, crate::support::TestApp) {
    let (app, api) = isolated().await;
    deploy_platform_processes(&app).await;
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let sales = app.token("acme", SALES);
    let account = create_account(&app, &sales, "Initech", "CRM-budgets").await;
    let account = account.body["id"].as_str().unwrap().to_owned();
    (api, sales, account, app)
}

/// A quote of `lines` lines at `discount` percent off, priced: (id, version).
async fn priced(
    api: &Isolated,
    sales: &str,
    account: &str,
    lines: i64,
    discount: &str,
) -> (String, i64) {
    let created = api
        .ok(post(
            "/v1/quotes",
            sales,
            None,
            json!({ "customer_account_id": account }),
        ))
        .await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    for v in 1..=lines {
        api.ok(post(
            format!("/v1/quotes/{id}/items"),
            sales,
            Some(v),
            line(discount),
        ))
        .await;
    }
    let price = format!("/v1/quotes/{id}/price");
    api.ok(post(price, sales, Some(lines + 1), json!({}))).await;
    (id, lines + 2)
}

/// A quote of `lines` lines, priced, submitted (approval-free) and accepted: (id, version).
async fn accepted(api: &Isolated, sales: &str, account: &str, lines: i64) -> (String, i64) {
    let (id, v) = priced(api, sales, account, lines, "5").await;
    let submitted = api
        .ok(post(
            format!("/v1/quotes/{id}/submit"),
            sales,
            Some(v),
            json!({}),
        ))
        .await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    api.ok(post(
        format!("/v1/quotes/{id}/accept"),
        sales,
        Some(v + 1),
        json!({}),
    ))
    .await;
    (id, v + 2)
}

#[tokio::test]
async fn conversion_stays_within_14_statements_for_1_and_10_lines() {
    let (api, sales, account, _app) = platform().await;
    let (id, v) = accepted(&api, &sales, &account, 1).await;
    api.ok(post(
        format!("/v1/quotes/{id}/convert"),
        &sales,
        Some(v),
        json!({}),
    ))
    .await;

    let mut report = Report::new(BUDGETS);
    for (command, lines) in [("convert (1 line)", 1), ("convert (10 lines)", 10)] {
        let (id, v) = accepted(&api, &sales, &account, lines).await;
        let convert = post(
            format!("/v1/quotes/{id}/convert"),
            &sales,
            Some(v),
            json!({}),
        );
        let order = report.measure(&api, command, convert).await;
        assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
        assert_eq!(order.body["items"].as_array().unwrap().len() as i64, lines);
    }
    report.assert_within_budgets();
    assert_eq!(
        report.total("convert (1 line)"),
        report.total("convert (10 lines)"),
        "conversion sends more statements for more lines"
    );
}

#[tokio::test]
async fn each_quote_command_stays_within_its_statement_budget() {
    let (api, sales, account, app) = platform().await;
    // Warm-up: both processes and the catalog get cached.
    accepted(&api, &sales, &account, 1).await;
    let (id, v) = priced(&api, &sales, &account, 1, "20").await;
    api.ok(post(
        format!("/v1/quotes/{id}/submit"),
        &sales,
        Some(v),
        json!({}),
    ))
    .await;

    let mut r = Report::new(BUDGETS);
    let new_quote = post(
        "/v1/quotes",
        &sales,
        None,
        json!({ "customer_account_id": account }),
    );
    let created = r.measure(&api, "create quote", new_quote).await;
    let q = format!("/v1/quotes/{}", created.body["id"].as_str().unwrap());
    let add = post(format!("{q}/items"), &sales, Some(1), line("5"));
    r.measure(&api, "add item", add).await;
    let change = put_at(format!("{q}/items/1"), &sales, 2, line("4"));
    r.measure(&api, "change item", change).await;
    api.ok(post(format!("{q}/items"), &sales, Some(3), line("5")))
        .await;
    let remove = Call(
        Method::DELETE,
        format!("{q}/items/2"),
        &sales,
        Some(4),
        None,
    );
    r.measure(&api, "remove item", remove).await;
    let terms = put_at(
        format!("{q}/terms"),
        &sales,
        5,
        json!({ "special_terms": "net 60" }),
    );
    r.measure(&api, "set terms", terms).await;
    api.ok(put_at(
        format!("{q}/terms"),
        &sales,
        6,
        json!({ "special_terms": null }),
    ))
    .await;
    let price = post(format!("{q}/price"), &sales, Some(7), json!({}));
    r.measure(&api, "price", price).await;
    let submit = post(format!("{q}/submit"), &sales, Some(8), json!({}));
    let submitted = r.measure(&api, "submit (approval-free)", submit).await;
    assert_eq!(submitted.body["status"], "submitted", "{}", submitted.body);
    let accept = post(format!("{q}/accept"), &sales, Some(9), json!({}));
    r.measure(&api, "accept", accept).await;

    // Approval: submission starts the process, a manager approves, the rep revises and cancels.
    let (id, v) = priced(&api, &sales, &account, 1, "20").await;
    let q = format!("/v1/quotes/{id}");
    let submit = post(format!("{q}/submit"), &sales, Some(v), json!({}));
    let pending = r.measure(&api, "submit (approval needed)", submit).await;
    assert_eq!(
        pending.body["status"], "approval-pending",
        "{}",
        pending.body
    );
    let manager = app.token_with_groups("mgr@acme", "acme", &[Role::Approver], &["manager"]);
    let task = task_of(&api, &manager, &id).await;
    let approve = post(
        format!("/v1/approval-tasks/{task}/approve"),
        &manager,
        None,
        json!({ "comment": "fine" }),
    );
    let approved = r.measure(&api, "approve task", approve).await;
    assert_eq!(
        approved.body["quote"]["status"], "approved",
        "{}",
        approved.body
    );
    let revise = post(
        format!("{q}/revise"),
        &sales,
        Some(v + 2),
        json!({ "reason": "terms" }),
    );
    r.measure(&api, "revise", revise).await;
    let cancel = post(
        format!("{q}/cancel"),
        &sales,
        Some(v + 3),
        json!({ "reason": "lost" }),
    );
    r.measure(&api, "cancel", cancel).await;

    // The other decisions: a manager rejects one pending quote and returns another.
    for (command, verb, status) in [
        ("reject task", "reject", "rejected"),
        ("return task", "return", "draft"),
    ] {
        let (id, v) = priced(&api, &sales, &account, 1, "20").await;
        let submit = post(
            format!("/v1/quotes/{id}/submit"),
            &sales,
            Some(v),
            json!({}),
        );
        api.ok(submit).await;
        let task = task_of(&api, &manager, &id).await;
        let decide = post(
            format!("/v1/approval-tasks/{task}/{verb}"),
            &manager,
            None,
            json!({ "comment": "margin too thin" }),
        );
        let decided = r.measure(&api, command, decide).await;
        assert_eq!(decided.body["quote"]["status"], status, "{}", decided.body);
    }

    // A new version of the tenant's approval policy.
    let catalog_manager = app.token("acme", MANAGER);
    let policy = json!({ "levels": ["manager"], "rules": [{ "code": "ANY", "level": "manager", "condition": { "when": "line_discount_above", "value": "1" } }] });
    let put_policy = put("/v1/approval-policy", &catalog_manager, policy);
    let policy = r.measure(&api, "put approval policy", put_policy).await;
    assert_eq!(policy.body["version"], 1, "{}", policy.body);

    r.assert_within_budgets();
}

/// The open approval task of quote `id` that `approver` sees.
async fn task_of(api: &Isolated, approver: &str, id: &str) -> String {
    let tasks = api
        .ok(Call(
            Method::GET,
            "/v1/approval-tasks".into(),
            approver,
            None,
            None,
        ))
        .await;
    tasks.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["quote_id"] == id)
        .unwrap_or_else(|| panic!("no task for {id}: {}", tasks.body))["task_id"]
        .as_str()
        .unwrap()
        .to_owned()
}
