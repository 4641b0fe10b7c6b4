//! Health endpoints, degraded Redis, old schema, diagnostics and metrics.

use crate::support::TestApp;
use cpq_core::Role;
use cpq_db::migrations::MIGRATOR;
use cpq_testkit::TestDb;
use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn live_startup_and_ready_answer_on_a_migrated_database() {
    let app = TestApp::spawn().await;
    for path in ["/health/live", "/health/startup"] {
        let a = Answer::from(app.client.get(app.url(path)).send().await.unwrap()).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.body);
    }
    let ready = Answer::from(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(
        ready.body["checks"]["postgresql"]["schema_version"],
        ready.body["checks"]["postgresql"]["required_schema_version"]
    );
    assert_eq!(ready.body["checks"]["redis"]["status"], "up");
    // No process deployed yet: serving, but degraded, naming what is missing and its remedy.
    assert_eq!(ready.body["status"], "degraded", "{}", ready.body);
    let missing = &ready.body["checks"]["processes"]["missing"];
    assert_eq!(missing[0]["bpmn_process_id"], "quote-approval");
    assert_eq!(missing[1]["bpmn_process_id"], "order-fulfillment");
    assert!(missing[0]["remedy"]
        .as_str()
        .unwrap()
        .contains("cpq-admin deploy-bpmn processes"));

    crate::approvals::deploy_platform_processes(&app).await;
    let ready = Answer::from(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready.body["status"], "ready", "{}", ready.body);
    assert_eq!(ready.body["checks"]["processes"]["status"], "up");
}

#[tokio::test]
async fn readiness_fails_with_a_reason_when_the_schema_is_older_than_the_binary() {
    let db = TestDb::migrated_to(MIGRATOR.iter().count() - 1).await;
    let app = TestApp::spawn_on(db).await;
    let live = Answer::from(
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        live.status,
        StatusCode::OK,
        "liveness does not depend on the schema"
    );
    let ready = Answer::from(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    ready.assert_problem(503, "not-ready");
    let detail = ready.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("older than version") && detail.contains("cpq-admin migrate"),
        "{detail}"
    );
}

#[tokio::test]
async fn readiness_fails_when_nothing_is_migrated() {
    let app = TestApp::spawn_on(TestDb::empty().await).await;
    let ready = Answer::from(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    ready.assert_problem(503, "not-ready");
    assert!(ready.body["detail"]
        .as_str()
        .unwrap()
        .contains("no migrations applied"));
}

#[tokio::test]
async fn redis_down_degrades_but_stays_ready_and_serving() {
    let db = TestDb::fresh().await;
    // Nothing listens on port 1.
    let app = TestApp::spawn_with(db, |c| {
        c.redis.url = "redis://127.0.0.1:1/0".parse().unwrap()
    })
    .await;
    let ready = Answer::from(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.body);
    assert_eq!(ready.body["status"], "degraded");
    assert_eq!(ready.body["checks"]["redis"]["status"], "down");

    let token = app.token("acme", SALES);
    create_account(&app, &token, "Acme", "CRM-1").await;

    let diag = get(
        &app,
        &app.token("acme", &[Role::Operator]),
        "/health/diagnostics",
    )
    .await;
    let redis = diag.body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "redis")
        .unwrap()
        .clone();
    assert_eq!(redis["status"], "down");
    assert!(redis["error"].is_string());

    let metrics = app.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("redis_up") && l.ends_with(" 0")),
        "{metrics}"
    );
}

#[tokio::test]
async fn diagnostics_need_an_operator_and_list_each_dependency() {
    let app = TestApp::spawn().await;
    let anonymous = Answer::from(
        app.client
            .get(app.url("/health/diagnostics"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    anonymous.assert_problem(401, "unauthenticated");
    get(&app, &app.token("acme", SALES), "/health/diagnostics")
        .await
        .assert_problem(403, "forbidden");

    let diag = get(
        &app,
        &app.token("acme", &[Role::Operator]),
        "/health/diagnostics",
    )
    .await;
    assert_eq!(diag.status, StatusCode::OK, "{}", diag.body);
    let names: Vec<&str> = diag.body["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["postgresql", "redis", "jwks"]);
    assert!(
        diag.body["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "up"),
        "{}",
        diag.body
    );
    assert_eq!(diag.body["environment"], "local");
    assert!(!diag
        .body
        .to_string()
        .contains(app.config.database.app_password.expose().as_str()));
}

#[tokio::test]
async fn metrics_expose_request_durations_by_route_and_query_durations_by_name() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    create_account(&app, &token, "Acme", "CRM-1").await;
    get(&app, &token, "/v1/customer-accounts").await;

    let resp = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = resp.text().await.unwrap();
    let has = |needle: &[&str]| text.lines().any(|l| needle.iter().all(|n| l.contains(n)));
    assert!(
        has(&[
            "http_request_duration_seconds_bucket",
            "route=\"/v1/customer-accounts\"",
            "status=\"201\"",
            "method=\"POST\""
        ]),
        "{text}"
    );
    assert!(
        has(&[
            "http_request_duration_seconds_count",
            "route=\"/v1/customer-accounts\"",
            "status=\"200\""
        ]),
        "{text}"
    );
    for query in [
        "customer_account_insert",
        "customer_account_list",
        "audit_record_insert",
        "transaction_begin",
    ] {
        assert!(
            has(&[
                "db_query_duration_seconds_bucket",
                &format!("query=\"{query}\"")
            ]),
            "no histogram for {query}"
        );
    }
}
