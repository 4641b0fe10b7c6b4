//! The served OpenAPI document is the checked-in one. Regenerate with
//! `cargo run -p cpq-api -- --print-openapi > openapi/openapi.json`.

use cpq_testkit::{repo_root, TestApp};
use serde_json::Value;

#[tokio::test]
async fn the_served_openapi_document_matches_the_checked_in_one() {
    let app = TestApp::spawn().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/customer-accounts",
        "/v1/customer-accounts/{id}",
        "/v1/customer-accounts/{id}/close",
        "/health/ready",
        "/metrics",
    ] {
        assert!(
            served["paths"].get(path).is_some(),
            "{path} is not documented"
        );
    }
    let file = repo_root().join("openapi/openapi.json");
    let checked_in: Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap_or_default())
            .unwrap_or(Value::Null);
    assert!(
        served == checked_in,
        "{} is out of date: run `cargo run -p cpq-api -- --print-openapi > openapi/openapi.json`",
        file.display()
    );
}
