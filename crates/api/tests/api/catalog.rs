//! Catalog versions through the API: authoring, publish refusals, immutability, activation by
//! date, search, configuration validation and pricing.

use crate::support::TestApp;
use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

pub const MANAGER: &[Role] = &[Role::CatalogManager];

pub fn demo() -> Value {
    serde_json::from_str(include_str!("../../../../catalogs/demo-telecom.json")).unwrap()
}

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

/// Creates, publishes and activates `document` as `label` from `from`; returns the version id.
pub async fn publish(app: &TestApp, label: &str, document: Value, from: &str) -> String {
    let token = app.token("acme", MANAGER);
    let created = post(
        app,
        &token,
        "/v1/catalog/versions",
        &json!({ "label": label, "document": document }),
        None,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let published = send(
        app,
        &token,
        reqwest::Method::POST,
        &format!("/v1/catalog/versions/{id}/publish"),
        Some("\"1\""),
        Some(&json!({})),
    )
    .await;
    assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    let activated = post(
        app,
        &token,
        &format!("/v1/catalog/versions/{id}/activate"),
        &json!({ "effective_from": from }),
        None,
    )
    .await;
    assert_eq!(activated.status, StatusCode::OK, "{}", activated.body);
    id
}

#[tokio::test]
async fn drafts_are_authored_element_by_element_and_exported_as_imported() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", MANAGER);
    post(
        &app,
        &app.token("acme", SALES),
        "/v1/catalog/versions",
        &json!({ "label": "x" }),
        None,
    )
    .await
    .assert_problem(403, "forbidden");

    let created = post(
        &app,
        &token,
        "/v1/catalog/versions",
        &json!({ "label": "2026.11", "document": demo() }),
        Some("import-1"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "draft");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let exported = get(&app, &token, &format!("/v1/catalog/versions/{id}/document")).await;
    let reimported: cpq_catalog::CatalogDocument =
        serde_json::from_value(exported.body.clone()).unwrap();
    let original: cpq_catalog::CatalogDocument = serde_json::from_value(demo()).unwrap();
    assert_eq!(reimported, original);

    let promo = json!({ "code": "SPRING", "name": "Spring deal", "stacking_group": "seasonal", "priority": 3,
        "effect": { "kind": "percent", "value": "5", "applies_to": "recurring" } });
    let put = send(
        &app,
        &token,
        reqwest::Method::PUT,
        &format!("/v1/catalog/versions/{id}/promotions/SPRING"),
        Some("\"1\""),
        Some(&promo),
    )
    .await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(put.header("etag"), Some("\"2\""));
    let stale = send(
        &app,
        &token,
        reqwest::Method::PUT,
        &format!("/v1/catalog/versions/{id}/promotions/SPRING"),
        Some("\"1\""),
        Some(&promo),
    )
    .await;
    stale.assert_problem(412, "precondition-failed");
    let mismatch = send(
        &app,
        &token,
        reqwest::Method::PUT,
        &format!("/v1/catalog/versions/{id}/promotions/OTHER"),
        Some("\"2\""),
        Some(&promo),
    )
    .await;
    mismatch.assert_problem(422, "validation-failed");
    send(
        &app,
        &token,
        reqwest::Method::PUT,
        &format!("/v1/catalog/versions/{id}/colours/RED"),
        Some("\"2\""),
        Some(&promo),
    )
    .await
    .assert_problem(404, "not-found");
    let removed = send(
        &app,
        &token,
        reqwest::Method::DELETE,
        &format!("/v1/catalog/versions/{id}/rules/BI-COPPER-IPS"),
        Some("\"2\""),
        None,
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    let doc = get(&app, &token, &format!("/v1/catalog/versions/{id}/document"))
        .await
        .body;
    assert!(doc["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["code"] == "SPRING"));
    assert!(!doc["rules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["code"] == "BI-COPPER-IPS"));

    let dup = post(
        &app,
        &token,
        "/v1/catalog/versions",
        &json!({ "label": "2026.11" }),
        None,
    )
    .await;
    dup.assert_problem(409, "conflict");
}

#[tokio::test]
async fn publishing_refuses_with_every_problem_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", MANAGER);
    let mut doc = demo();
    doc["offerings"][4]["components"][0]["offering"] = json!("NO-ROUTER");
    doc["rules"][0]["when"] = json!("sla ==");
    doc["rules"].as_array_mut().unwrap().push(
        json!({ "code": "LOOP", "offering": "BIZ-INTERNET", "kind": "default", "message": "loop",
        "when": "static_ips > 0", "set": { "characteristic": "sla", "value": "gold" } }),
    );
    doc["price_lists"][0]["entries"]
        .as_array_mut()
        .unwrap()
        .retain(|e| e["offering"] != "CLOUD-BACKUP");
    doc["promotions"][1]["priority"] = json!(10);
    let created = post(
        &app,
        &token,
        "/v1/catalog/versions",
        &json!({ "label": "broken", "document": doc }),
        None,
    )
    .await;
    let id = created.body["id"].as_str().unwrap();
    let refused = send(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/v1/catalog/versions/{id}/publish"),
        Some("\"1\""),
        Some(&json!({})),
    )
    .await;
    refused.assert_problem(422, "validation-failed");
    let codes: Vec<&str> = refused.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    for kind in [
        "dangling-reference",
        "invalid-expression",
        "rule-cycle",
        "missing-price",
        "promotion-order",
    ] {
        assert!(codes.contains(&kind), "{kind} missing from {codes:?}");
    }
    let after = get(&app, &token, &format!("/v1/catalog/versions/{id}")).await;
    assert_eq!(
        (
            after.body["status"].as_str(),
            after.body["version"].as_i64()
        ),
        (Some("draft"), Some(1))
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM catalog_offering").await,
        0
    );
}

#[tokio::test]
async fn a_published_version_is_hashed_and_immutable() {
    let app = TestApp::spawn().await;
    let token = app.token("acme", MANAGER);
    let id = publish(&app, "2026.11", demo(), "2026-01-01T00:00:00Z").await;
    let v = get(&app, &token, &format!("/v1/catalog/versions/{id}")).await;
    assert_eq!(v.body["status"], "published");
    let doc: cpq_catalog::CatalogDocument = serde_json::from_value(demo()).unwrap();
    assert_eq!(
        v.body["content_hash"],
        json!(cpq_catalog::content_hash(&doc))
    );

    let etag = v.header("etag").unwrap().to_owned();
    send(
        &app,
        &token,
        reqwest::Method::PUT,
        &format!("/v1/catalog/versions/{id}/document"),
        Some(&etag),
        Some(&demo()),
    )
    .await
    .assert_problem(409, "conflict");
    send(
        &app,
        &token,
        reqwest::Method::DELETE,
        &format!("/v1/catalog/versions/{id}/rules/BI-COPPER-IPS"),
        Some(&etag),
        None,
    )
    .await
    .assert_problem(409, "conflict");
    send(
        &app,
        &token,
        reqwest::Method::POST,
        &format!("/v1/catalog/versions/{id}/publish"),
        Some(&etag),
        Some(&json!({})),
    )
    .await
    .assert_problem(409, "conflict");

    // Underneath the application, the database refuses too.
    let pool = app.db.app_pool().await;
    let mut tx = cpq_db::tenant::begin(&pool, &cpq_core::TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    let direct =
        sqlx::query("UPDATE catalog_version SET document = '{}' WHERE catalog_version_id = $1")
            .bind(Uuid::parse_str(&id).unwrap())
            .execute(&mut *tx)
            .await;
    assert!(direct.unwrap_err().to_string().contains("cannot change"));
    drop(tx);
    pool.close().await;
}

#[tokio::test]
async fn activation_by_date_decides_which_version_searches_and_prices_use() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", SALES);
    let first = publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let mut next = demo();
    next["price_lists"][0]["entries"][0]["recurring"] = json!("89.00");
    next["offerings"][0]["name"] = json!("Business Internet Pro");
    let second = publish(&app, "2027", next, "2027-01-01T00:00:00Z").await;

    let now = get(
        &app,
        &sales,
        "/v1/catalog/offerings?q=internet&date=2026-11-22",
    )
    .await;
    assert_eq!(now.body["catalog_version"], json!(first));
    assert_eq!(now.body["items"][0]["name"], "Business Internet");
    let later = get(
        &app,
        &sales,
        "/v1/catalog/offerings?q=internet&date=2027-02-01",
    )
    .await;
    assert_eq!(later.body["catalog_version"], json!(second));
    assert_eq!(later.body["items"][0]["name"], "Business Internet Pro");
    let before = get(&app, &sales, "/v1/catalog/offerings?date=2025-06-01").await;
    before.assert_problem(409, "conflict");

    let cart = |date: &str| {
        json!({ "context": { "market": "DE", "channel": "direct", "segment": "enterprise", "currency": "EUR", "date": date },
        "items": [{ "line_id": "1", "configuration": { "offering": "BIZ-INTERNET" } }] })
    };
    let p2026 = post(&app, &sales, "/v1/price", &cart("2026-11-22"), None).await;
    let p2027 = post(&app, &sales, "/v1/price", &cart("2027-02-01"), None).await;
    assert_eq!(p2026.body["lines"][0]["recurring"]["list"], "79.00");
    assert_eq!(p2027.body["lines"][0]["recurring"]["list"], "89.00");
    // Earlier versions stay readable and priceable by id.
    let mut pinned = cart("2027-02-01");
    pinned["catalog_version"] = json!(first);
    assert_eq!(
        post(&app, &sales, "/v1/price", &pinned, None).await.body["lines"][0]["recurring"]["list"],
        "79.00"
    );

    let manager = app.token("acme", MANAGER);
    let draft = post(
        &app,
        &manager,
        "/v1/catalog/versions",
        &json!({ "label": "draft" }),
        None,
    )
    .await;
    let d = draft.body["id"].as_str().unwrap();
    post(
        &app,
        &manager,
        &format!("/v1/catalog/versions/{d}/activate"),
        &json!({ "effective_from": "2028-01-01T00:00:00Z" }),
        None,
    )
    .await
    .assert_problem(409, "conflict");
}

#[tokio::test]
async fn search_filters_by_text_market_channel_segment_and_pages() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", SALES);
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let codes = |a: &Answer| {
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    assert_eq!(
        codes(&get(&app, &sales, "/v1/catalog/offerings?q=Internet").await),
        ["BIZ-INTERNET"]
    );
    assert_eq!(
        codes(&get(&app, &sales, "/v1/catalog/offerings?q=sd-wan%20mul").await),
        ["SDWAN-BUNDLE"]
    );
    assert_eq!(
        codes(&get(&app, &sales, "/v1/catalog/offerings?market=US").await),
        Vec::<String>::new()
    );
    assert_eq!(
        codes(&get(&app, &sales, "/v1/catalog/offerings?segment=small-business").await),
        ["BIZ-INTERNET", "CLOUD-BACKUP", "MOBILE-FLEET"]
    );
    assert_eq!(
        codes(
            &get(
                &app,
                &sales,
                "/v1/catalog/offerings?channel=partner&segment=enterprise"
            )
            .await
        ),
        [
            "BIZ-INTERNET",
            "CLOUD-BACKUP",
            "MOBILE-FLEET",
            "SDWAN-BUNDLE"
        ]
    );
    assert_eq!(
        codes(
            &get(
                &app,
                &sales,
                "/v1/catalog/offerings?include_components=true"
            )
            .await
        )
        .len(),
        7
    );

    let first = get(&app, &sales, "/v1/catalog/offerings?limit=3").await;
    assert_eq!(codes(&first).len(), 3);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = get(
        &app,
        &sales,
        &format!("/v1/catalog/offerings?limit=3&cursor={cursor}"),
    )
    .await;
    assert_eq!(codes(&second), ["SDWAN-BUNDLE"]);
    get(
        &app,
        &sales,
        &format!("/v1/catalog/offerings?limit=3&market=DE&cursor={cursor}"),
    )
    .await
    .assert_problem(400, "malformed-request");
}

#[tokio::test]
async fn configurations_validate_with_explanations_and_carts_price_deterministically() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", SALES);
    publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;

    let v = post(&app, &sales, "/v1/configurations/validate", &json!({ "context": { "market": "DE", "date": "2026-11-22" },
        "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "sla": "platinum" } } }), None).await;
    assert_eq!(v.status, StatusCode::OK, "{}", v.body);
    assert_eq!(v.body["valid"], false);
    assert_eq!(v.body["violations"][0]["rule"], "BI-PLATINUM-BANDWIDTH");
    assert_eq!(
        v.body["violations"][0]["chain"][1],
        json!({ "path": "characteristics.sla", "characteristic": "sla", "value": "platinum", "source": "chosen" })
    );
    assert_eq!(
        v.body["configuration"]["characteristics"]["static_ips"]["source"],
        "rule"
    );
    assert!(v.body["rules_evaluated"].as_u64().unwrap() >= 4);

    let cart = json!({ "context": { "market": "DE", "channel": "direct", "segment": "enterprise", "currency": "EUR", "date": "2026-12-05", "customer": { "new_customer": true } },
        "items": [
            { "line_id": "b", "configuration": { "offering": "MOBILE-FLEET", "quantity": 12, "characteristics": { "data": "50GB", "roaming": true } } },
            { "line_id": "a", "configuration": { "offering": "BIZ-INTERNET", "characteristics": { "bandwidth": "500", "sla": "gold" } }, "manual_discount_percent": "5" }
        ] });
    let first = post(&app, &sales, "/v1/price", &cart, None).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    // Lines come back in request order (b, then a).
    assert_eq!(first.body["lines"][0]["line_id"], "b");
    assert_eq!(first.body["lines"][1]["line_id"], "a");
    assert_eq!(first.body["lines"][0]["recurring"]["net"], "310.80");
    assert_eq!(first.body["totals"]["recurring"]["net"], "485.60");
    assert_eq!(first.body["hash"].as_str().unwrap().len(), 64);
    let again = post(&app, &sales, "/v1/price", &cart, None).await;
    assert_eq!(again.body, first.body, "same inputs, same snapshot");

    let mut invalid = cart.clone();
    invalid["items"][1]["configuration"]["characteristics"]["sla"] = json!("platinum");
    invalid["items"][1]["configuration"]["characteristics"]["bandwidth"] = json!("100");
    let refused = post(&app, &sales, "/v1/price", &invalid, None).await;
    refused.assert_problem(422, "validation-failed");
    assert_eq!(refused.body["errors"][0]["field"], "items[1].configuration");
    assert_eq!(refused.body["errors"][0]["code"], "BI-PLATINUM-BANDWIDTH");

    let mut usd = cart.clone();
    usd["context"]["currency"] = json!("USD");
    let unpriced = post(&app, &sales, "/v1/price", &usd, None).await;
    unpriced.assert_problem(422, "validation-failed");
    assert_eq!(unpriced.body["errors"][0]["code"], "no-price");
    // The error points at the line, not at the whole list.
    assert_eq!(
        unpriced.body["errors"][0]["field"],
        "items[0].configuration"
    );
    let mut bad_discount = cart.clone();
    bad_discount["items"][1]["manual_discount_percent"] = json!("120");
    let refused = post(&app, &sales, "/v1/price", &bad_discount, None).await;
    refused.assert_problem(422, "validation-failed");
    assert_eq!(
        refused.body["errors"][0]["field"],
        "items[1].manual_discount_percent"
    );

    // Like validate, price defaults the date to today (and the version in force today).
    let mut undated = cart.clone();
    undated["context"].as_object_mut().unwrap().remove("date");
    let today = post(&app, &sales, "/v1/price", &undated, None).await;
    assert_eq!(today.status, StatusCode::OK, "{}", today.body);
    assert_eq!(
        today.body["context"]["date"],
        chrono::Utc::now().date_naive().to_string()
    );
}

#[tokio::test]
async fn a_named_version_that_is_not_the_callers_is_not_found_everywhere() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", SALES);
    let other = app.token("globex", SALES);
    let version = publish(&app, "2026", demo(), "2026-01-01T00:00:00Z").await;
    let unknown = uuid::Uuid::now_v7();
    for (token, id) in [(&sales, unknown.to_string()), (&other, version.clone())] {
        get(&app, token, &format!("/v1/catalog/offerings?version={id}"))
            .await
            .assert_problem(404, "not-found");
        post(
            &app,
            token,
            "/v1/configurations/validate",
            &json!({ "catalog_version": id,
            "configuration": { "offering": "BIZ-INTERNET" } }),
            None,
        )
        .await
        .assert_problem(404, "not-found");
    }
    let own = get(
        &app,
        &sales,
        &format!("/v1/catalog/offerings?version={version}"),
    )
    .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["catalog_version"], json!(version));
}
