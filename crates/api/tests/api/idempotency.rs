//! Idempotency-Key: replays, mismatches, concurrency, scope.

use std::sync::Arc;

use crate::support::TestApp;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn a_replay_returns_the_first_response_and_creates_one_row() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let body = account("Acme", "CRM-1");
    let first = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &body,
        Some("create-acme-1"),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);

    // Same JSON, different formatting and key order: the same request.
    let reordered = Answer::from(
        app.client.post(app.url("/v1/customer-accounts")).bearer_for(&token)
            .header("Idempotency-Key", "create-acme-1").header("content-type", "application/json")
            .body(r#"{ "currency":"EUR", "market":"DE", "segment":"enterprise", "external_ref":"CRM-1", "name":"Acme" }"#)
            .send().await.unwrap(),
    )
    .await;
    assert_eq!(reordered.status, StatusCode::CREATED);
    assert_eq!(reordered.body, first.body);
    assert_eq!(reordered.header("etag"), first.header("etag"));
    assert_eq!(reordered.header("location"), first.header("location"));
    assert_eq!(reordered.header("idempotent-replayed"), Some("true"));

    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_event").await, 1);
    assert_eq!(count(&app, "SELECT count(*) FROM audit_record").await, 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    post(
        &app,
        &token,
        "/v1/customer-accounts",
        &account("Acme", "CRM-1"),
        Some("k"),
    )
    .await;
    let other = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &account("Globex", "CRM-2"),
        Some("k"),
    )
    .await;
    other.assert_problem(422, "idempotency-key-reused");
    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        1
    );
}

#[tokio::test]
async fn fifty_concurrent_requests_with_one_key_create_one_row() {
    let app = Arc::new(TestApp::spawn().await);
    let token = app.token("acme", SALES);
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            post(
                &app,
                &token,
                "/v1/customer-accounts",
                &account("Acme", "CRM-1"),
                Some("burst-key"),
            )
            .await
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
        bodies.push(a.body);
    }
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every response must be the first one"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        1
    );
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_event").await, 1);
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_record").await,
        1
    );
}

#[tokio::test]
async fn a_refused_request_does_not_use_up_its_key() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let bad = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &json!({ "name": "Acme" }),
        Some("k2"),
    )
    .await;
    bad.assert_problem(422, "validation-failed");
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_record").await,
        0
    );
    // The corrected request under the same key runs.
    let good = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &account("Acme", "CRM-1"),
        Some("k2"),
    )
    .await;
    assert_eq!(good.status, StatusCode::CREATED, "{}", good.body);
}

#[tokio::test]
async fn keys_are_scoped_to_the_tenant() {
    let app = TestApp::spawn().await;
    let a = post(
        &app,
        &app.token("acme", SALES),
        "/v1/customer-accounts",
        &account("Acme", "CRM-1"),
        Some("shared"),
    )
    .await;
    let b = post(
        &app,
        &app.token("globex", SALES),
        "/v1/customer-accounts",
        &account("Acme", "CRM-1"),
        Some("shared"),
    )
    .await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_ne!(a.body["id"], b.body["id"]);
    assert_eq!(b.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn malformed_keys_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let a = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &account("Acme", "CRM-1"),
        Some(&"k".repeat(300)),
    )
    .await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.error_fields(), ["Idempotency-Key"]);
}
