//! Tenant isolation: the tenant comes only from the token; another tenant's resources are "not
//! found"; row-level security holds even for a query without a tenant filter.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::TestApp;
use cpq_auth::Claims;
use cpq_db::tenant;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn another_tenants_account_is_not_found() {
    let app = TestApp::spawn().await;
    let acme = app.token("acme", SALES);
    let globex = app.token("globex", SALES);
    let id = create_account(&app, &acme, "Acme", "CRM-1").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    get(&app, &globex, &format!("/v1/customer-accounts/{id}"))
        .await
        .assert_problem(404, "not-found");
    let patch = Answer::from(
        app.client
            .patch(app.url(&format!("/v1/customer-accounts/{id}")))
            .bearer_for(&globex)
            .header("If-Match", "\"1\"")
            .json(&json!({ "name": "Hijacked" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    patch.assert_problem(404, "not-found");
    let list = get(&app, &globex, "/v1/customer-accounts").await;
    assert_eq!(list.body["items"], json!([]));
    assert_eq!(
        get(&app, &acme, &format!("/v1/customer-accounts/{id}"))
            .await
            .body["name"],
        "Acme"
    );
}

#[tokio::test]
async fn row_level_security_filters_a_query_that_names_no_tenant() {
    let app = TestApp::spawn().await;
    for (tenant, n) in [("acme", 3), ("globex", 2)] {
        let token = app.token(tenant, SALES);
        for i in 0..n {
            create_account(
                &app,
                &token,
                &format!("{tenant} {i}"),
                &format!("{tenant}-{i}"),
            )
            .await;
        }
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        5,
        "the owner sees all rows"
    );

    let pool = app.db.app_pool().await;
    let acme = cpq_core::TenantId::parse("acme").unwrap();
    let mut tx = tenant::begin(&pool, &acme).await.unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_account")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(
        seen, 3,
        "an unfiltered query sees only the transaction's tenant"
    );
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox_event")
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    assert_eq!(events, 3);
    let foreign_write = sqlx::query(
        "INSERT INTO customer_account (customer_account_id, tenant_id, name, segment, market, currency, status, \
         version, created_at, created_by, updated_at, updated_by) \
         VALUES ($1, 'globex', 'Sneaky', 'consumer', 'DE', 'EUR', 'active', 1, now(), 'x', now(), 'x')",
    )
    .bind(Uuid::now_v7())
    .execute(&mut *tx)
    .await;
    let err = foreign_write.unwrap_err().to_string();
    assert!(err.contains("row-level security"), "{err}");
    drop(tx);

    // Without the tenant setting, nothing is visible at all.
    let none: i64 = sqlx::query_scalar("SELECT count(*) FROM customer_account")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(none, 0);
    pool.close().await;
}

#[tokio::test]
async fn the_tenant_cannot_come_from_the_body() {
    let app = TestApp::spawn().await;
    let mut body = account("Acme", "CRM-1");
    body["tenant_id"] = json!("globex");
    let a = post(
        &app,
        &app.token("acme", SALES),
        "/v1/customer-accounts",
        &body,
        None,
    )
    .await;
    a.assert_problem(400, "malformed-request");
    assert_eq!(a.error_fields(), ["tenant_id"]);
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthenticated() {
    let app = TestApp::spawn().await;
    let none = Answer::from(
        app.client
            .get(app.url("/v1/customer-accounts"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    none.assert_problem(401, "unauthenticated");
    assert_eq!(none.header("www-authenticate"), Some("Bearer"));

    get(&app, "garbage", "/v1/customer-accounts")
        .await
        .assert_problem(401, "unauthenticated");

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = app
        .signer()
        .sign(&Claims {
            sub: "rep".into(),
            tenant: "acme".into(),
            roles: vec!["sales".into()],
            groups: vec![],
            tenants: vec![],
            iss: app.config.auth.issuer.clone(),
            aud: app.config.auth.audience.clone(),
            exp: now - 3600,
            iat: now - 7200,
            nbf: None,
        })
        .unwrap();
    let a = get(&app, &expired, "/v1/customer-accounts").await;
    a.assert_problem(401, "unauthenticated");
    assert!(a.body["detail"].as_str().unwrap().contains("expired"));
    assert_eq!(
        post(
            &app,
            &expired,
            "/v1/customer-accounts",
            &account("A", "B"),
            None
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_tenants_claim_grants_nothing_to_a_person_and_a_bad_one_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let acme = app.token("acme", SALES);
    let id = create_account(&app, &acme, "Acme", "CRM-1").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |roles: &[&str], tenants: &[&str]| Claims {
        sub: "someone".into(),
        tenant: "globex".into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
        groups: vec![],
        tenants: tenants.iter().map(|t| (*t).to_owned()).collect(),
        iss: app.config.auth.issuer.clone(),
        aud: app.config.auth.audience.clone(),
        exp: now + 600,
        iat: now,
        nbf: None,
    };
    // A sales token claiming every tenant is still globex's, and only globex's.
    let everywhere = app
        .signer()
        .sign(&claims(&["sales"], &["*", "acme"]))
        .unwrap();
    get(&app, &everywhere, &format!("/v1/customer-accounts/{id}"))
        .await
        .assert_problem(404, "not-found");
    assert_eq!(
        get(&app, &everywhere, "/v1/customer-accounts").await.body["items"],
        json!([])
    );
    // A malformed tenant in the claim of a worker token: the token is refused.
    let bad = app.signer().sign(&claims(&["worker"], &["ACME"])).unwrap();
    get(&app, &bad, "/v1/user-tasks")
        .await
        .assert_problem(401, "unauthenticated");
}
