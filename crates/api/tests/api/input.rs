//! Every input string is checked at the edge: a NUL character (which PostgreSQL refuses in text
//! and jsonb) anywhere in a body, a query or a path is a 400 naming the field, never a 500, and
//! nothing is written.

use crate::support::TestApp;
use cpq_core::Role;
use cpq_testkit::repo_root;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

async fn send(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let mut req = app
        .client
        .request(method, app.url(path))
        .bearer_for(token)
        .header("If-Match", "\"1\"");
    if let Some(b) = body {
        req = req.json(b);
    }
    Answer::from(req.send().await.unwrap()).await
}

fn assert_nul_refused(a: &Answer, fields: &[&str]) {
    a.assert_problem(400, "malformed-request");
    let mut got = a.error_fields();
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "{}", a.body);
    for e in a.body["errors"].as_array().unwrap() {
        assert_eq!(e["code"], "invalid-character", "{}", a.body);
    }
}

#[tokio::test]
async fn a_nul_character_anywhere_in_a_body_is_a_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let manager = app.token("acme", &[Role::CatalogManager]);
    let sales = app.token("acme", &[Role::Sales]);
    let operator = app.token("acme", &[Role::Operator, Role::OrderOperations]);

    let a = post(
        &app,
        &manager,
        "/v1/catalog/versions",
        &json!({ "label": "m\u{0}" }),
        None,
    )
    .await;
    assert_nul_refused(&a, &["label"]);

    // At any depth, in keys too, every field at once; unknown fields are no way around it.
    let a = post(
        &app,
        &sales,
        "/v1/customer-accounts",
        &json!({ "name": "Acme\u{0}", "segment": "enterprise", "market": "DE", "currency": "EUR",
                 "external_ref": "\u{0}" }),
        Some("nul-1"),
    )
    .await;
    assert_nul_refused(&a, &["name", "external_ref"]);
    let a = post(
        &app,
        &sales,
        "/v1/price",
        &json!({ "context": { "market": "DE", "channel": "direct", "segment": "enterprise", "currency": "EUR" },
                 "items": [{ "line_id": "1", "configuration": { "offering": "X" } },
                           { "line_id": "2", "configuration": { "offering": "CLOUD\u{0}", "characteristics": { "k\u{0}": "v" } } }] }),
        None,
    )
    .await;
    assert_nul_refused(
        &a,
        &[
            "items[1].configuration.offering",
            "items[1].configuration.characteristics.k\\u{0}",
        ],
    );
    let a = post(
        &app,
        &operator,
        "/v1/messages",
        &json!({ "name": "m", "correlation_key": "c", "variables": { "deep": [{ "x\u{0}y": 1 }] } }),
        None,
    )
    .await;
    assert_nul_refused(&a, &["variables.deep[0].x\\u{0}y"]);
    let a = post(
        &app,
        &operator,
        "/v1/messages",
        &json!({ "nonsense\u{0}": 1 }),
        None,
    )
    .await;
    assert_nul_refused(&a, &["nonsense\\u{0}"]);

    // Documents and elements of a draft.
    let draft = post(
        &app,
        &manager,
        "/v1/catalog/versions",
        &json!({ "label": "draft" }),
        None,
    )
    .await;
    assert_eq!(draft.status, 201, "{}", draft.body);
    let id = draft.body["id"].as_str().unwrap();
    let a = send(
        &app,
        &manager,
        Method::PUT,
        &format!("/v1/catalog/versions/{id}/offerings/X"),
        Some(&json!({ "code": "X", "name": "n\u{0}" })),
    )
    .await;
    assert_nul_refused(&a, &["name"]);
    let a = send(
        &app,
        &manager,
        Method::PUT,
        &format!("/v1/catalog/versions/{id}/document"),
        Some(&json!({ "offerings": [{ "code": "\u{0}" }] })),
    )
    .await;
    assert_nul_refused(&a, &["offerings[0].code"]);

    // Nothing was written by any of them.
    assert_eq!(
        count(&app, "SELECT count(*) FROM customer_account").await,
        0
    );
    assert_eq!(count(&app, "SELECT count(*) FROM catalog_version").await, 1);
}

#[tokio::test]
async fn a_nul_character_in_a_query_or_path_is_a_400_naming_the_parameter() {
    let app = TestApp::spawn().await;
    let sales = app.token("acme", &[Role::Sales]);
    let operator = app.token("acme", &[Role::Operator, Role::OrderOperations]);
    let manager = app.token("acme", &[Role::CatalogManager]);

    for (path, field) in [
        ("/v1/customer-accounts?external_ref=%00abc", "external_ref"),
        ("/v1/customer-accounts?name_prefix=ac%00", "name_prefix"),
        ("/v1/catalog/offerings?market=%00DE", "market"),
        ("/v1/catalog/offerings?q=sd%00wan", "q"),
        ("/v1/quotes?owner=%00", "owner"),
        ("/v1/quote-search?status=%00", "status"),
        ("/v1/customer-accounts?x%00=1", "x\\u{0}"),
    ] {
        let a = get(&app, &sales, path).await;
        assert_nul_refused(&a, &[field]);
    }
    let a = get(&app, &operator, "/v1/process-instances?status=active%00").await;
    assert_nul_refused(&a, &["status"]);

    let a = send(
        &app,
        &operator,
        Method::PUT,
        "/v1/worker-groups/billing%00",
        Some(&json!({ "job_types": ["x"], "worker_version": "1" })),
    )
    .await;
    assert_nul_refused(&a, &["name"]);
    let a = send(
        &app,
        &manager,
        Method::PUT,
        &format!(
            "/v1/catalog/versions/{}/offerings/X%00",
            uuid::Uuid::now_v7()
        ),
        Some(&json!({ "code": "X" })),
    )
    .await;
    assert_nul_refused(&a, &["key"]);

    // A deployment's query parameters; and a BPMN body holding NUL is refused, not a 500.
    let xml =
        std::fs::read_to_string(repo_root().join("processes/quote-approval-v1.bpmn")).unwrap();
    let deploy = |query: &'static str, body: String| {
        let app = &app;
        let operator = operator.clone();
        async move {
            Answer::from(
                app.client
                    .post(app.url(&format!("/v1/process-definitions{query}")))
                    .bearer_for(&operator)
                    .header("content-type", "application/xml")
                    .body(body)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    let a = deploy("?resource_name=a%00.bpmn", xml.clone()).await;
    assert_nul_refused(&a, &["resource_name"]);
    let a = deploy(
        "?allow_unsupported_job_types=true",
        xml.replacen("name=\"Quote approval\"", "name=\"Quote\u{0}approval\"", 1),
    )
    .await;
    assert!(a.status.is_client_error(), "{} {}", a.status, a.body);
    assert_eq!(
        count(&app, "SELECT count(*) FROM process_definition").await,
        0
    );
}

#[tokio::test]
async fn lengths_count_characters_and_integers_may_be_written_with_a_zero_fraction() {
    let app = TestApp::spawn().await;
    let manager = app.token("acme", &[Role::CatalogManager]);
    let sixty_four = "é".repeat(64);
    let a = post(
        &app,
        &manager,
        "/v1/catalog/versions",
        &json!({ "label": sixty_four }),
        None,
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.body);
    let a = post(
        &app,
        &manager,
        "/v1/catalog/versions",
        &json!({ "label": "é".repeat(65) }),
        None,
    )
    .await;
    a.assert_problem(422, "validation-failed");
    // JSON has one number type: 60.0 is the integer 60, as the document's `integer` says.
    let worker = app.token("acme", &[Role::Worker]);
    let a = post(
        &app,
        &worker,
        "/v1/jobs/activation",
        &json!({ "job_type": "x", "worker": "w", "timeout_ms": 1000.0, "max_jobs": 1e1 }),
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(
        &app,
        &worker,
        "/v1/jobs/activation",
        &json!({ "job_type": "x", "worker": "w", "timeout_ms": 1000.5, "max_jobs": 1 }),
        None,
    )
    .await;
    a.assert_problem(400, "malformed-request");
}
