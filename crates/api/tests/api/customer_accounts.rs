//! Customer accounts end to end: create, read, change with If-Match, close, list, and the audit
//! records and events every change writes.

use crate::support::TestApp;
use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn create_then_read_returns_the_account_with_its_etag_and_location() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let created = create_account(&app, &token, "Acme GmbH", "CRM-1").await;
    let id = created.body["id"].as_str().unwrap();
    assert_eq!(created.header("etag"), Some("\"1\""));
    assert_eq!(
        created.header("location"),
        Some(format!("/v1/customer-accounts/{id}").as_str())
    );
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["version"], 1);
    assert_eq!(created.body["created_by"], "user@acme");
    assert_eq!(Uuid::parse_str(id).unwrap().get_version_num(), 7);

    let read = get(&app, &token, &format!("/v1/customer-accounts/{id}")).await;
    assert_eq!(read.status, StatusCode::OK);
    assert_eq!(read.header("etag"), Some("\"1\""));
    assert_eq!(read.body, created.body);
}

#[tokio::test]
async fn invalid_input_lists_every_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let bad = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &json!({ "name": " ", "currency": "EURO", "market": "de" }),
        Some("k1"),
    )
    .await;
    bad.assert_problem(422, "validation-failed");
    assert_eq!(
        bad.error_fields(),
        ["name", "segment", "market", "currency"]
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        0
    );
    assert_eq!(count(&app, "SELECT count(*) FROM audit_record").await, 0);
    assert_eq!(count(&app, "SELECT count(*) FROM outbox_event").await, 0);
    assert_eq!(
        count(&app, "SELECT count(*) FROM idempotency_record").await,
        0
    );
}

#[tokio::test]
async fn malformed_bodies_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);

    let mut with_unknown = account("Acme", "CRM-1");
    with_unknown["nickname"] = json!("acme");
    let a = post(&app, &token, "/v1/customer-accounts", &with_unknown, None).await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.body["errors"][0]["field"], "nickname");
    assert_eq!(a.body["errors"][0]["code"], "unknown-field");

    let mut wrong_type = account("Acme", "CRM-1");
    wrong_type["name"] = json!(42);
    let a = post(&app, &token, "/v1/customer-accounts", &wrong_type, None).await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.body["errors"][0]["field"], "name");
    assert_eq!(a.body["errors"][0]["code"], "invalid-type");

    let not_json = Answer::from(
        app.client
            .post(app.url("/v1/customer-accounts"))
            .bearer_for(&token)
            .header("content-type", "application/json")
            .body("{\"name\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    not_json.assert_problem(400, "malformed-request");

    let text = Answer::from(
        app.client
            .post(app.url("/v1/customer-accounts"))
            .bearer_for(&token)
            .header("content-type", "text/plain")
            .body("hello")
            .send()
            .await
            .unwrap(),
    )
    .await;
    text.assert_problem(400, "malformed-request");

    let huge = json!({ "name": "x".repeat(app.config.http.body_limit_bytes + 1) });
    post(&app, &token, "/v1/customer-accounts", &huge, None)
        .await
        .assert_problem(413, "payload-too-large");

    let bad_id = get(&app, &token, "/v1/customer-accounts/not-a-uuid").await;
    bad_id.assert_problem(400, "malformed-request");
    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        0
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_get_problems() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    get(&app, &token, "/v1/nothing-here")
        .await
        .assert_problem(404, "not-found");
    let a = Answer::from(
        app.client
            .delete(app.url("/v1/customer-accounts"))
            .bearer_for(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    a.assert_problem(405, "method-not-allowed");
    let missing = get(
        &app,
        &token,
        &format!("/v1/customer-accounts/{}", Uuid::now_v7()),
    )
    .await;
    missing.assert_problem(404, "not-found");
}

#[tokio::test]
async fn duplicate_external_ref_is_a_conflict() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    create_account(&app, &token, "Acme", "CRM-1").await;
    let dup = post(
        &app,
        &token,
        "/v1/customer-accounts",
        &account("Other", "CRM-1"),
        None,
    )
    .await;
    dup.assert_problem(409, "conflict");
    assert!(dup.body["detail"].as_str().unwrap().contains("CRM-1"));
    // A different tenant may use the same reference.
    create_account(&app, &app.token("globex", SALES), "Globex", "CRM-1").await;
}

async fn patch(
    app: &TestApp,
    token: &str,
    id: &str,
    if_match: Option<&str>,
    body: Value,
) -> Answer {
    let mut req = app
        .client
        .patch(app.url(&format!("/v1/customer-accounts/{id}")))
        .bearer_for(token)
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string());
    if let Some(tag) = if_match {
        req = req.header("If-Match", tag);
    }
    Answer::from(req.send().await.unwrap()).await
}

async fn close(app: &TestApp, token: &str, id: &str, if_match: &str, reason: &str) -> Answer {
    Answer::from(
        app.client
            .post(app.url(&format!("/v1/customer-accounts/{id}/close")))
            .bearer_for(token)
            .header("If-Match", if_match)
            .json(&json!({ "reason": reason }))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn changes_need_the_current_etag() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let created = create_account(&app, &token, "Acme", "CRM-1").await;
    let id = created.body["id"].as_str().unwrap();

    patch(&app, &token, id, None, json!({ "name": "Acme AG" }))
        .await
        .assert_problem(428, "precondition-required");
    patch(&app, &token, id, Some("*"), json!({ "name": "Acme AG" }))
        .await
        .assert_problem(428, "precondition-required");

    let changed = patch(
        &app,
        &token,
        id,
        Some("\"1\""),
        json!({ "name": "Acme AG", "external_ref": null }),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.header("etag"), Some("\"2\""));
    assert_eq!(changed.body["name"], "Acme AG");
    assert_eq!(changed.body["external_ref"], Value::Null);
    assert_eq!(changed.body["segment"], "enterprise");

    let stale = patch(
        &app,
        &token,
        id,
        Some("\"1\""),
        json!({ "name": "Lost update" }),
    )
    .await;
    stale.assert_problem(412, "precondition-failed");
    assert_eq!(stale.body["current_etag"], "\"2\"");
    assert_eq!(
        get(&app, &token, &format!("/v1/customer-accounts/{id}"))
            .await
            .body["name"],
        "Acme AG"
    );

    patch(
        &app,
        &token,
        id,
        Some("\"2\""),
        json!({ "currency": "XYZ" }),
    )
    .await
    .assert_problem(422, "validation-failed");
    patch(&app, &token, id, Some("\"2\""), json!({}))
        .await
        .assert_problem(422, "validation-failed");
    patch(
        &app,
        &token,
        id,
        Some("\"2\""),
        json!({ "tenant": "globex" }),
    )
    .await
    .assert_problem(400, "malformed-request");

    let closed = close(&app, &token, id, "\"2\"", "customer churned").await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);
    assert_eq!(closed.body["status"], "closed");
    assert_eq!(closed.body["close_reason"], "customer churned");
    assert_eq!(closed.header("etag"), Some("\"3\""));

    close(&app, &token, id, "\"3\"", "again")
        .await
        .assert_problem(409, "conflict");
    patch(&app, &token, id, Some("\"3\""), json!({ "name": "Zombie" }))
        .await
        .assert_problem(409, "conflict");
}

#[tokio::test]
async fn an_if_match_that_names_none_of_our_etags_is_a_failed_precondition() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let created = create_account(&app, &token, "Acme", "CRM-1").await;
    let id = created.body["id"].as_str().unwrap();

    // ETags are opaque to clients: whatever a tag looks like, one that does not match is 412
    // with the current ETag, never 400.
    for other in [
        "\"stale\"",
        "W/\"1\"",
        "\"0\"",
        "\"-1\"",
        "\"\"",
        "\"99999999999999999999999\"",
        "\"2\", \"stale\"",
    ] {
        let a = patch(&app, &token, id, Some(other), json!({ "name": "Nope" })).await;
        a.assert_problem(412, "precondition-failed");
        assert_eq!(a.body["current_etag"], "\"1\"", "{other}");
        let a = close(&app, &token, id, other, "nope").await;
        a.assert_problem(412, "precondition-failed");
        assert_eq!(a.body["current_etag"], "\"1\"", "{other}");
    }
    // A list is matched if any of its tags matches.
    let changed = patch(
        &app,
        &token,
        id,
        Some("\"stale\", \"1\""),
        json!({ "name": "Acme AG" }),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.header("etag"), Some("\"2\""));

    // Not an entity-tag list at all: malformed. `*` and an empty list: required.
    for bad in ["stale", "2", "\"2", "\"2\" \"3\""] {
        let a = patch(&app, &token, id, Some(bad), json!({ "name": "Nope" })).await;
        a.assert_problem(400, "malformed-request");
        assert_eq!(a.error_fields(), vec!["If-Match"], "{bad}");
    }
    for required in ["*", "", " , "] {
        patch(&app, &token, id, Some(required), json!({ "name": "Nope" }))
            .await
            .assert_problem(428, "precondition-required");
    }
    // A resource that does not exist stays 404 whatever the tag.
    patch(
        &app,
        &token,
        &Uuid::now_v7().to_string(),
        Some("\"stale\""),
        json!({ "name": "Nope" }),
    )
    .await
    .assert_problem(404, "not-found");
}

/// action, tenant, actor, before digest, after digest, reason
type AuditRow = (
    String,
    String,
    String,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
);
/// event id, type, schema version, tenant, correlation id, causation id, payload
type EventRow = (Uuid, String, i32, String, String, Option<String>, Value);

#[tokio::test]
async fn every_change_writes_one_audit_record_and_one_versioned_event() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let created = Answer::from(
        app.client
            .post(app.url("/v1/customer-accounts"))
            .bearer_for(&token)
            .header("x-correlation-id", "flow-42")
            .header("x-request-id", "req-create-1")
            .json(&account("Acme", "CRM-1"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(created.header("x-request-id"), Some("req-create-1"));
    let id = created.body["id"].as_str().unwrap().to_owned();
    patch(
        &app,
        &token,
        &id,
        Some("\"1\""),
        json!({ "segment": "small-business" }),
    )
    .await;
    close(&app, &token, &id, "\"2\"", "merged into another account").await;

    let pool = app.db.owner_pool().await;
    let audit: Vec<AuditRow> = sqlx::query_as(
        "SELECT action, tenant_id, actor_subject, before_digest, after_digest, reason FROM audit_record \
         WHERE aggregate_id = $1 ORDER BY occurred_at, audit_id",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    assert_eq!(
        actions,
        [
            "customer-account.create",
            "customer-account.update",
            "customer-account.close"
        ]
    );
    assert!(audit.iter().all(|a| a.1 == "acme" && a.2 == "user@acme"));
    assert!(audit[0].3.is_none() && audit[0].4.as_ref().map(Vec::len) == Some(32));
    assert_eq!(
        audit[1].3, audit[0].4,
        "the update's before is the create's after"
    );
    assert_eq!(audit[2].5.as_deref(), Some("merged into another account"));

    let events: Vec<EventRow> = sqlx::query_as(
        "SELECT event_id, event_type, schema_version, tenant_id, correlation_id, causation_id, payload \
         FROM outbox_event WHERE aggregate_id = $1 ORDER BY outbox_position",
    )
    .bind(Uuid::parse_str(&id).unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(
        types,
        [
            "customer-account.created",
            "customer-account.updated",
            "customer-account.closed"
        ]
    );
    assert!(events
        .iter()
        .all(|e| e.0.get_version_num() == 7 && e.2 == 1 && e.3 == "acme"));
    assert_eq!(events[0].4, "flow-42");
    assert_eq!(events[0].5.as_deref(), Some("req-create-1"));
    assert_eq!(events[0].6["customer_account"]["name"], "Acme");
    assert_eq!(events[1].6["changed_fields"], json!(["segment"]));
    assert_eq!(events[2].6["reason"], "merged into another account");
    pool.close().await;
}

#[tokio::test]
async fn roles_decide_who_may_change_accounts() {
    let app = TestApp::spawn().await;
    let created = create_account(&app, &app.token("acme", SALES), "Acme", "CRM-1").await;
    let approver = app.token("acme", &[Role::Approver]);
    post(
        &app,
        &approver,
        "/v1/customer-accounts",
        &account("Other", "CRM-2"),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    let read = get(
        &app,
        &approver,
        &format!(
            "/v1/customer-accounts/{}",
            created.body["id"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(read.status, StatusCode::OK);
    get(&app, &app.token("acme", &[]), "/v1/customer-accounts")
        .await
        .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn lists_page_with_cursors_and_filter_on_indexed_fields() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", SALES);
    let mut ids = Vec::new();
    for i in 0..7 {
        let name = if i % 2 == 0 {
            format!("Alpha {i}")
        } else {
            format!("Beta {i}")
        };
        ids.push(
            create_account(&app, &token, &name, &format!("CRM-{i}"))
                .await
                .body["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let first = &ids[0];
    close(&app, &token, first, "\"1\"", "test").await;

    let mut seen = Vec::new();
    let mut path = "/v1/customer-accounts?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let page = get(&app, &token, &path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        let items = page.body["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/customer-accounts?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids, "pages must hold every account once, in id order");

    let active = get(&app, &token, "/v1/customer-accounts?status=active").await;
    assert_eq!(active.body["items"].as_array().unwrap().len(), 6);
    let alphas = get(&app, &token, "/v1/customer-accounts?name_prefix=alpha").await;
    assert_eq!(alphas.body["items"].as_array().unwrap().len(), 4);
    let by_ref = get(&app, &token, "/v1/customer-accounts?external_ref=CRM-3").await;
    assert_eq!(by_ref.body["items"][0]["id"], json!(ids[3]));
    let wildcard = get(&app, &token, "/v1/customer-accounts?name_prefix=%25").await;
    assert_eq!(
        wildcard.body["items"].as_array().unwrap().len(),
        0,
        "% is literal, not a wildcard"
    );

    let page = get(&app, &token, "/v1/customer-accounts?limit=2&status=active").await;
    let cursor = page.body["next_cursor"].as_str().unwrap();
    get(
        &app,
        &token,
        &format!("/v1/customer-accounts?limit=2&status=closed&cursor={cursor}"),
    )
    .await
    .assert_problem(400, "malformed-request");
    get(&app, &token, "/v1/customer-accounts?cursor=garbage")
        .await
        .assert_problem(400, "malformed-request");
    let too_big = get(&app, &token, "/v1/customer-accounts?limit=201").await;
    too_big.assert_problem(400, "malformed-request");
    assert_eq!(too_big.error_fields(), ["limit"]);
    get(&app, &token, "/v1/customer-accounts?colour=red")
        .await
        .assert_problem(400, "malformed-request");
    get(&app, &token, "/v1/customer-accounts?status=gone")
        .await
        .assert_problem(400, "malformed-request");
}

#[tokio::test]
async fn a_request_over_its_time_limit_is_abandoned_and_leaves_nothing_behind() {
    let db = cpq_testkit::TestDb::fresh().await;
    let app = TestApp::spawn_with(db, |c| c.http.request_timeout_ms = 300).await;
    let token = app.token("acme", SALES);
    let id = create_account(&app, &token, "Acme", "CRM-1").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Another session holds the row lock, so the change cannot finish in time.
    let owner = app.db.owner_pool().await;
    let mut blocker = owner.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM customer_account WHERE customer_account_id = $1 FOR UPDATE")
        .bind(Uuid::parse_str(&id).unwrap())
        .execute(&mut *blocker)
        .await
        .unwrap();
    let slow = patch(
        &app,
        &token,
        &id,
        Some("\"1\""),
        json!({ "name": "Too slow" }),
    )
    .await;
    slow.assert_problem(503, "request-timeout");
    assert_eq!(slow.header("retry-after"), Some("1"));
    blocker.rollback().await.unwrap();

    let after = get(&app, &token, &format!("/v1/customer-accounts/{id}")).await;
    assert_eq!(
        (after.body["name"].as_str(), after.body["version"].as_i64()),
        (Some("Acme"), Some(1))
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM outbox_event").await,
        1,
        "only the create's event"
    );
    owner.close().await;
}
