#![allow(clippy::unwrap_used, clippy::expect_used)]
//! End to end through the real components: commands over HTTP write their events to the outbox,
//! the relay publishes them to the broker, the consumers apply them, and the API answers a query
//! from the projection. In the API's tests (not `cpq-events`') because it drives the API through
//! its in-process harness.

mod support;

use std::sync::Arc;
use std::time::Duration;

use cpq_core::{Role, TenantId};
use cpq_events::catalogue::Catalogue;
use cpq_events::consumer::{ConsumerOptions, Consumers};
use cpq_events::projections::Projection;
use cpq_events::relay::{Relay, RelayOptions};
use cpq_events::topics::Cluster;
use serde_json::{json, Value};
use support::TestApp;

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    if_match: Option<i64>,
    body: Value,
) -> Value {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {token}"))
        .json(&body);
    if let Some(v) = if_match {
        req = req.header("If-Match", format!("\"{v}\""));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

#[tokio::test]
async fn a_quotes_events_reach_the_projection_and_the_api_answers_from_it() {
    let app = TestApp::spawn().await;
    let kafka = cpq_testkit::kafka();
    let catalogue = Arc::new(Catalogue::shipped().unwrap());
    Cluster::connect(&kafka)
        .unwrap()
        .apply(&catalogue)
        .await
        .unwrap();
    let pool = app.db.app_pool().await;
    let tenant = TenantId::parse("acme").unwrap();
    let doc = serde_json::from_str(cpq_catalog::seed::DEMO_TELECOM).unwrap();
    cpq_catalog::seed::seed(
        &pool,
        &tenant,
        "demo",
        &doc,
        "2026-01-01T00:00:00Z".parse().unwrap(),
        "test",
    )
    .await
    .unwrap();

    let sales = app.token("acme", &[Role::Sales]);
    let post = reqwest::Method::POST;
    let account = call(
        &app,
        &sales,
        post.clone(),
        "/v1/customer-accounts",
        None,
        json!({ "name": "Acme", "segment": "enterprise", "market": "DE", "currency": "EUR" }),
    )
    .await;
    let q = call(
        &app,
        &sales,
        post.clone(),
        "/v1/quotes",
        None,
        json!({ "customer_account_id": account["id"] }),
    )
    .await;
    let id = q["id"].as_str().unwrap().to_owned();
    let line = json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "5TB" } } });
    let q = call(
        &app,
        &sales,
        post.clone(),
        &format!("/v1/quotes/{id}/items"),
        Some(1),
        line,
    )
    .await;
    let q = call(
        &app,
        &sales,
        post.clone(),
        &format!("/v1/quotes/{id}/price"),
        q["version"].as_i64(),
        json!({}),
    )
    .await;
    let hash = q["snapshot_hash"].clone();

    let relay = Relay::new(
        pool.clone(),
        kafka.clone(),
        catalogue.clone(),
        RelayOptions::new("relay-e2e"),
    )
    .unwrap();
    let published = relay.publish_pending().await.unwrap();
    assert!(
        published >= 5,
        "catalog, account and quote events: {published}"
    );
    let consumers = Consumers::start(
        &pool,
        &kafka,
        &catalogue,
        &[Projection::QuoteSearch],
        &ConsumerOptions::default(),
    )
    .unwrap();

    let mut found = Value::Null;
    for _ in 0..200 {
        let r = call(
            &app,
            &sales,
            reqwest::Method::GET,
            "/v1/quote-search?status=priced",
            None,
            Value::Null,
        )
        .await;
        if let Some(hit) = r["items"]
            .as_array()
            .and_then(|i| i.iter().find(|x| x["quote_id"] == id.as_str()))
        {
            found = hit.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(found["snapshot_hash"], hash, "{found}");
    assert_eq!(found["customer_account_id"], account["id"]);
    assert_eq!(
        found["events_applied"], 3,
        "created, item added, priced: {found}"
    );
    // Another tenant sees nothing of it.
    let other = app.token("globex", &[Role::Sales]);
    let theirs = call(
        &app,
        &other,
        reqwest::Method::GET,
        "/v1/quote-search",
        None,
        Value::Null,
    )
    .await;
    assert_eq!(theirs["items"], json!([]));

    consumers.stop().await;
    pool.close().await;
}
