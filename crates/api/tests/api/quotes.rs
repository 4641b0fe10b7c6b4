//! Quotes, first step: create against the catalog in force, add and remove lines (validated),
//! price (snapshot and hash), stale price after edits, lifecycle refusals, If-Match.

use crate::support::TestApp;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::catalog::{demo, publish};
use crate::helpers::*;

async fn send(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut req = app.client.request(method, app.url(path)).bearer_for(token);
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    Answer::from(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_quote_is_built_line_by_line_priced_and_its_price_goes_stale_on_edit() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", SALES);
    let account = create_account(&app, &sales, "Acme GmbH", "CRM-1")
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // No catalog in force yet.
    post(
        &app,
        &sales,
        "/v1/quotes",
        &json!({ "customer_account_id": account }),
        None,
    )
    .await
    .assert_problem(409, "conflict");
    let version = publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;

    let created = post(
        &app,
        &sales,
        "/v1/quotes",
        &json!({ "customer_account_id": account }),
        Some("q-1"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(
        (
            created.body["status"].as_str(),
            created.body["catalog_version_id"].as_str()
        ),
        (Some("draft"), Some(version.as_str()))
    );
    assert_eq!(
        (
            created.body["market"].as_str(),
            created.body["currency"].as_str(),
            created.body["segment"].as_str()
        ),
        (Some("DE"), Some("EUR"), Some("enterprise"))
    );
    let id = created.body["id"].as_str().unwrap().to_owned();

    // Nothing to price yet.
    send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/price"),
        Some("\"1\""),
        Some(&json!({})),
    )
    .await
    .assert_problem(422, "validation-failed");

    let bad = send(&app, &sales, reqwest::Method::POST, &format!("/v1/quotes/{id}/items"), Some("\"1\""),
        Some(&json!({ "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "sla": "platinum" } } }))).await;
    bad.assert_problem(422, "validation-failed");
    assert_eq!(bad.body["errors"][0]["code"], "BI-PLATINUM-BANDWIDTH");
    send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/items"),
        None,
        Some(&json!({ "configuration": { "offering": "CLOUD-BACKUP" } })),
    )
    .await
    .assert_problem(428, "precondition-required");

    let one = send(&app, &sales, reqwest::Method::POST, &format!("/v1/quotes/{id}/items"), Some("\"1\""),
        Some(&json!({ "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold" } } }))).await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let two = send(&app, &sales, reqwest::Method::POST, &format!("/v1/quotes/{id}/items"), Some("\"2\""),
        Some(&json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } }, "manual_discount_percent": "10" }))).await;
    assert_eq!(two.body["items"].as_array().unwrap().len(), 2);

    let priced = send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/price"),
        Some("\"3\""),
        Some(&json!({})),
    )
    .await;
    assert_eq!(priced.status, StatusCode::OK, "{}", priced.body);
    assert_eq!(
        (
            priced.body["status"].as_str(),
            priced.body["price_stale"].as_bool()
        ),
        (Some("priced"), Some(false))
    );
    let hash = priced.body["snapshot_hash"].as_str().unwrap().to_owned();
    assert_eq!(priced.body["price_snapshot"]["hash"], json!(hash));
    assert_eq!(
        priced.body["price_snapshot"]["lines"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Editing after pricing makes the price stale and the quote a draft again.
    let removed = send(
        &app,
        &sales,
        reqwest::Method::DELETE,
        &format!("/v1/quotes/{id}/items/2"),
        Some("\"4\""),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(
        (
            removed.body["status"].as_str(),
            removed.body["price_stale"].as_bool()
        ),
        (Some("draft"), Some(true))
    );
    // Submitting now is refused for the stale price, saying what to do.
    let stale = send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/submit"),
        Some("\"5\""),
        Some(&json!({})),
    )
    .await;
    stale.assert_problem(409, "conflict");
    assert_eq!(
        stale.body["detail"],
        format!(
            "the quote's price is stale: its items or terms changed after it was priced; price \
             it again (POST /v1/quotes/{id}/price), then submit"
        ),
        "{}",
        stale.body
    );
    send(
        &app,
        &sales,
        reqwest::Method::DELETE,
        &format!("/v1/quotes/{id}/items/9"),
        Some("\"5\""),
        None,
    )
    .await
    .assert_problem(404, "not-found");
    send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/price"),
        Some("\"4\""),
        Some(&json!({})),
    )
    .await
    .assert_problem(412, "precondition-failed");
    let repriced = send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/price"),
        Some("\"5\""),
        Some(&json!({})),
    )
    .await;
    assert_ne!(repriced.body["snapshot_hash"].as_str().unwrap(), hash);

    let read = get(
        &app,
        &app.token("acme", &[cpq_core::Role::Approver]),
        &format!("/v1/quotes/{id}"),
    )
    .await;
    assert_eq!(read.header("etag"), Some("\"6\""));
    get(
        &app,
        &app.token("globex", SALES),
        &format!("/v1/quotes/{id}"),
    )
    .await
    .assert_problem(404, "not-found");
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_event WHERE aggregate_type = 'quote'"
        )
        .await,
        6
    );

    let worklist = get(&app, &sales, "/v1/quotes?status=priced&owner=user@acme").await;
    assert_eq!(worklist.status, StatusCode::OK, "{}", worklist.body);
    assert_eq!(worklist.body["items"][0]["quote_id"], json!(id));
    assert!(
        get(&app, &sales, "/v1/quotes?status=draft").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    get(&app, &sales, "/v1/quotes?status=bogus")
        .await
        .assert_problem(400, "malformed-request");

    let cancelled = send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/cancel"),
        Some("\"6\""),
        Some(&json!({ "reason": "customer went elsewhere" })),
    )
    .await;
    assert_eq!(cancelled.body["status"], "cancelled", "{}", cancelled.body);
    let refused = send(
        &app,
        &sales,
        reqwest::Method::POST,
        &format!("/v1/quotes/{id}/items"),
        Some("\"7\""),
        Some(&json!({ "configuration": { "offering": "CLOUD-BACKUP" } })),
    )
    .await;
    refused.assert_problem(409, "conflict");
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("allowed: nothing"),
        "{}",
        refused.body
    );
}
