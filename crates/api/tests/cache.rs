#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The compiled-catalog cache, in a test binary of its own so that its process-wide metrics count
//! only what this test does: single-flight rebuilds, and pricing while Redis is stopped.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::support::TestApp;
use cpq_core::Role;
use cpq_testkit::TestDb;
use serde_json::{json, Value};

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Redis server of this test's own; killed when dropped, so that a failing test leaves no
/// server behind holding the test runner's output open.
struct OwnRedis(Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A Redis server of this test's own, on a free port, that the test can stop.
fn own_redis() -> (OwnRedis, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (scripts/test.sh installs it)");
    for _ in 0..250 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (OwnRedis(child), port)
}

fn cart() -> Value {
    json!({ "context": { "market": "DE", "channel": "direct", "segment": "enterprise", "currency": "EUR", "date": "2026-11-22" },
        "items": [{ "line_id": "1", "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "sla": "gold" } } }] })
}

async fn price(app: &TestApp, token: &str) -> (u16, Value) {
    let r = app
        .client
        .post(app.url("/v1/price"))
        .bearer_auth(token)
        .json(&cart())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn concurrent_misses_share_one_rebuild_and_pricing_survives_redis_stopping() {
    let (redis, port) = own_redis();
    let db = TestDb::fresh().await;
    let db_name = db.name.clone();
    let redis_url = format!("redis://127.0.0.1:{port}/0");
    // This test is about single flight, not pool capacity: let 200 requests queue for connections.
    let first = TestApp::spawn_with(db, |c| {
        c.redis.url = redis_url.parse().unwrap();
        c.database.acquire_timeout_ms = 30_000;
        c.http.request_timeout_ms = 60_000;
    })
    .await;

    // Publish and activate the demo catalog.
    let manager = first.token("acme", &[Role::CatalogManager]);
    let doc: Value =
        serde_json::from_str(include_str!("../../../catalogs/demo-telecom.json")).unwrap();
    let created: Value = first
        .client
        .post(first.url("/v1/catalog/versions"))
        .bearer_auth(&manager)
        .json(&json!({ "label": "2026", "document": doc }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let r = first
        .client
        .post(first.url(&format!("/v1/catalog/versions/{id}/publish")))
        .bearer_auth(&manager)
        .header("If-Match", "\"1\"")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = first
        .client
        .post(first.url(&format!("/v1/catalog/versions/{id}/activate")))
        .bearer_auth(&manager)
        .json(&json!({ "effective_from": "2026-01-01T00:00:00Z" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // 200 concurrent requests on a cold cache: one rebuild from PostgreSQL.
    let sales = first.token("acme", &[Role::Sales]);
    let before = metric(&first.metrics().await, "catalog_cache_rebuilds_total");
    let app = Arc::new(first);
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (app, sales) = (app.clone(), sales.clone());
        tasks.push(tokio::spawn(async move { price(&app, &sales).await }));
    }
    let mut hashes = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        hashes.push(body["hash"].as_str().unwrap().to_owned());
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]));
    // All 200 may have joined the one rebuild; the next request is served from the process.
    let (status, _) = price(&app, &sales).await;
    assert_eq!(status, 200);
    let text = app.metrics().await;
    assert_eq!(
        metric(&text, "catalog_cache_rebuilds_total") - before,
        1.0,
        "200 concurrent misses, one rebuild"
    );
    assert!(
        metric(
            &text,
            "catalog_cache_requests_total{layer=\"process\",outcome=\"hit\"}"
        ) >= 1.0
    );

    // A second instance finds the compiled version in Redis: no rebuild.
    let second = TestApp::spawn_with(reuse_db(&db_name), |c| {
        c.redis.url = redis_url.parse().unwrap()
    })
    .await;
    let rebuilds = metric(&second.metrics().await, "catalog_cache_rebuilds_total");
    assert_eq!(price(&second, &sales).await.0, 200);
    let text = second.metrics().await;
    assert_eq!(
        metric(&text, "catalog_cache_rebuilds_total"),
        rebuilds,
        "served from Redis"
    );
    assert!(
        metric(
            &text,
            "catalog_cache_requests_total{layer=\"redis\",outcome=\"hit\"}"
        ) >= 1.0
    );

    // Redis stops. A third instance, cache cold, still prices: from PostgreSQL, with a metric.
    drop(redis);
    let third = TestApp::spawn_with(reuse_db(&db_name), |c| {
        c.redis.url = redis_url.parse().unwrap()
    })
    .await;
    let errors = metric(&third.metrics().await, "catalog_cache_redis_errors_total");
    let (status, body) = price(&third, &sales).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hash"].as_str().unwrap(), hashes[0]);
    let text = third.metrics().await;
    assert!(
        metric(&text, "catalog_cache_redis_errors_total") > errors,
        "the fallback is counted"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("redis_up") && l.ends_with(" 0")));
    let ready: Value = third
        .client
        .get(third.url("/health/ready"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "degraded");
}

/// Another handle on the same database (the first `TestDb` drops it at the end of the test).
fn reuse_db(name: &str) -> TestDb {
    TestDb::existing(name)
}
