#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The activation schedule held in process, in a test binary of its own so that the process-wide
//! metrics count only what this test does: two API instances on one database; the second holds
//! the tenant's schedule (its reads hit the cache), an activation through the first is seen by
//! the second at once, through PostgreSQL's notification, not after the schedule's maximum age.

mod support;

use std::time::{Duration, Instant};

use crate::support::TestApp;
use cpq_core::Role;
use cpq_testkit::TestDb;
use serde_json::{json, Value};

fn hits(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("catalog_cache_requests_total{")
                && l.contains("layer=\"activation\"")
                && l.contains("outcome=\"hit\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn call(
    app: &TestApp,
    token: &str,
    method: reqwest::Method,
    path: &str,
    if_match: Option<&str>,
    body: Option<Value>,
) -> Value {
    let mut req = app
        .client
        .request(method, app.url(path))
        .header("Authorization", format!("Bearer {token}"));
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let body: Value = resp.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// Creates, publishes and activates a version from `from` through `app`; returns its id.
async fn publish(app: &TestApp, label: &str, document: Value, from: &str) -> Value {
    let token = app.token("acme", &[Role::CatalogManager]);
    let post = reqwest::Method::POST;
    let created = call(
        app,
        &token,
        post.clone(),
        "/v1/catalog/versions",
        None,
        Some(json!({ "label": label, "document": document })),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    call(
        app,
        &token,
        post.clone(),
        &format!("/v1/catalog/versions/{id}/publish"),
        Some("\"1\""),
        Some(json!({})),
    )
    .await;
    call(
        app,
        &token,
        post,
        &format!("/v1/catalog/versions/{id}/activate"),
        None,
        Some(json!({ "effective_from": from })),
    )
    .await;
    json!(id)
}

async fn version_in_force(app: &TestApp, token: &str) -> Value {
    call(
        app,
        token,
        reqwest::Method::GET,
        "/v1/catalog/offerings?q=internet",
        None,
        None,
    )
    .await["catalog_version"]
        .clone()
}

#[tokio::test]
async fn an_activation_through_one_instance_is_seen_at_once_by_another_holding_the_schedule() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(TestDb::existing(&a.db.name)).await;
    let sales = a.token("acme", &[Role::Sales]);
    let demo: Value =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    let first = publish(&a, "2026", demo.clone(), "2026-01-01T00:00:00Z").await;

    // b reads the schedule once, then answers from memory (once its listener is up).
    let started = Instant::now();
    loop {
        let before = hits(&b.metrics().await);
        assert_eq!(version_in_force(&b, &sales).await, first);
        if hits(&b.metrics().await) > before {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "instance b never answered from its held schedule"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut next = demo;
    next["offerings"][0]["name"] = json!("Business Internet Pro");
    let now = chrono::Utc::now().to_rfc3339();
    let second = publish(&a, "now", next, &now).await;

    let started = Instant::now();
    loop {
        let seen = version_in_force(&b, &sales).await;
        if seen == second {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "instance b still answers {seen} ten seconds after the activation"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
