//! Budgets of the fallout repairs (issue 15 item 5). Each is measured on the real path: the
//! retry and the skip on a case whose task's subprocess waits for its repair on the engine
//! (the message correlates and the process moves on), the cancellation on an order with two
//! open cases.
//!
//! | command | before | budget | needs | made of |
//! | --- | --- | --- | --- | --- |
//! | retry fallout case | — | 15 | 15 | envelope 4; `fallout_case_lock` (the order's row and the case's, with the task) 1; `fallout_case_resolve` (case, task ready, order back in fulfillment: one statement) 1; the message through the engine 8: `message_publication_claim` (the id `<case>/<action>`) 1, `message_correlation_lock` 1, `message_subscription_match` 1, `message_subscription_delete` 1, instance locked 1, updated 1, history 1, the task's job again (`job_insert`) 1; audit 1 |
//! | skip fallout case | — | 15 | 15 | as retry; the step's job is the task-done job |
//! | cancel order from fallout | — | 12 | 12 | envelope 4; `fallout_case_lock` 1; the engine's `cancel_instance` 5 (instance locked, updated, history, `job_cancel`, `message_subscription_delete_for_elements`: the other tasks' waits); `sales_order_cancel_from_fallout` (order, items, open cases, tasks: one statement) 1; audit (with `order.cancelled` and every closed case's `order.fallout-resolved`) 1 |

use cpq_core::Role;
use serde_json::json;

use super::{budget, isolated, post, Budget, Report};
use crate::approvals::deploy_platform_processes;
use crate::catalog::{demo, publish};
use crate::fallout::{converted_order, fall_out, open_case, task_keys, Opening};
use crate::helpers::SALES;

pub const BUDGETS: &[Budget] = &[
    budget("retry fallout case", 15, 15),
    budget("skip fallout case", 15, 15),
    budget("cancel order from fallout", 12, 12),
];

#[tokio::test]
async fn each_fallout_repair_stays_within_its_statement_budget() {
    let (app, api) = isolated().await;
    deploy_platform_processes(&app).await;
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let sales = app.token("acme", SALES);
    let ops = app.token_for("ops-1", "acme", &[Role::OrderOperations]);
    let worker = app.token_for("worker-1", "acme", &[Role::Worker]);
    let reason = json!({ "reason": "budget" });

    // Warm-up: one repair of each kind through the measured process.
    let mut cases = Vec::new();
    for _ in 0..3 {
        let (order, _, plan) = converted_order(&app, &sales).await;
        cases.push(fall_out(&app, &worker, &order, &plan).await.0);
    }
    for (case, action) in cases.iter().zip(["retry", "skip", "cancel-order"]) {
        let path = format!("/v1/fallout-cases/{case}/{action}");
        api.ok(post(path, &ops, None, reason.clone())).await;
    }

    let mut r = Report::new(BUDGETS);
    for (command, action) in [
        ("retry fallout case", "retry"),
        ("skip fallout case", "skip"),
    ] {
        let (order, _, plan) = converted_order(&app, &sales).await;
        let (case, _, _) = fall_out(&app, &worker, &order, &plan).await;
        let path = format!("/v1/fallout-cases/{case}/{action}");
        let repaired = r
            .measure(&api, command, post(path, &ops, None, reason.clone()))
            .await;
        assert_eq!(
            repaired.body["publication"]["outcome"], "correlated",
            "{}",
            repaired.body
        );
    }
    let (order, _, plan) = converted_order(&app, &sales).await;
    let (case, task, _) = fall_out(&app, &worker, &order, &plan).await;
    let other = task_keys(&plan).into_iter().find(|k| *k != task).unwrap();
    open_case(&app, &order, &other, Opening::default()).await;
    let path = format!("/v1/fallout-cases/{case}/cancel-order");
    let cancelled = r
        .measure(
            &api,
            "cancel order from fallout",
            post(path, &ops, None, reason),
        )
        .await;
    assert_eq!(cancelled.body["order_status"], "cancelled");

    r.assert_within_budgets();
}
