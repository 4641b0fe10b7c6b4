//! Budgets of the customer account commands.
//!
//! | command | before | budget | needs | made of |
//! | --- | --- | --- | --- | --- |
//! | create account | — | 6 | 6 | envelope 4; `customer_account_insert` 1; audit 1 |
//! | update account (PATCH) | — | 5 | 5 | envelope 2; `customer_account_fetch_for_update` 1; `customer_account_update` 1; audit 1 |
//! | close account | — | 7 | 7 | envelope 4; `customer_account_fetch_for_update` 1; `customer_account_update` 1; audit 1 |

use reqwest::Method;
use serde_json::json;

use super::{budget, isolated, post, Budget, Call, Report};
use crate::helpers::{account, SALES};

pub const BUDGETS: &[Budget] = &[
    budget("create account", 6, 6),
    budget("update account", 5, 5),
    budget("close account", 7, 7),
];

#[tokio::test]
async fn each_customer_account_command_stays_within_its_statement_budget() {
    let (app, api) = isolated().await;
    let sales = app.token("acme", SALES);
    // Warm-up: the pool's connections are open.
    api.ok(post(
        "/v1/customer-accounts",
        &sales,
        None,
        account("Warm", "CRM-warm"),
    ))
    .await;

    let mut r = Report::new(BUDGETS);
    let create = post(
        "/v1/customer-accounts",
        &sales,
        None,
        account("Initech", "CRM-1"),
    );
    let created = r.measure(&api, "create account", create).await;
    let a = format!(
        "/v1/customer-accounts/{}",
        created.body["id"].as_str().unwrap()
    );
    let patch = Call(
        Method::PATCH,
        a.clone(),
        &sales,
        Some(1),
        Some(json!({ "name": "Initech AG" })),
    );
    let updated = r.measure(&api, "update account", patch).await;
    assert_eq!(updated.body["name"], "Initech AG", "{}", updated.body);
    let close = post(
        format!("{a}/close"),
        &sales,
        Some(2),
        json!({ "reason": "customer churned" }),
    );
    let closed = r.measure(&api, "close account", close).await;
    assert_eq!(closed.body["status"], "closed", "{}", closed.body);

    r.assert_within_budgets();
}
