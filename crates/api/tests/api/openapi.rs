//! The served OpenAPI document is the checked-in one. Regenerate with
//! `cargo run -p cpq-api -- --print-openapi > openapi/openapi.json`.

use crate::support::TestApp;
use cpq_testkit::repo_root;
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
    // What a generated client needs: problems as application/problem+json, the headers it is
    // sent and must send, paging parameters, typed success bodies.
    let op = |path: &str, method: &str| served["paths"][path][method].clone();
    let submit = op("/v1/quotes/{id}/submit", "post");
    for status in [
        "400", "401", "403", "404", "412", "422", "428", "500", "503",
    ] {
        assert!(
            submit["responses"][status]["content"]["application/problem+json"].is_object(),
            "submit {status}"
        );
    }
    let if_match = submit["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "If-Match")
        .unwrap();
    assert_eq!(if_match["required"], true);
    assert!(if_match["schema"]["pattern"].is_string());
    assert!(submit["responses"]["200"]["headers"]["ETag"].is_object());
    let create = op("/v1/customer-accounts", "post");
    let key = create["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert_eq!(key["schema"]["type"], "string");
    for header in ["ETag", "Location", "idempotent-replayed", "x-request-id"] {
        assert!(
            create["responses"]["201"]["headers"][header].is_object(),
            "{header}"
        );
    }
    for path in [
        "/v1/quotes",
        "/v1/quote-search",
        "/v1/user-tasks",
        "/v1/incidents",
    ] {
        let names: Vec<&str> = served["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert!(
            names.contains(&"limit") && names.contains(&"cursor"),
            "{path}"
        );
    }
    assert_eq!(
        served["paths"]["/v1/price"]["post"]["responses"]["200"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/PriceResult"
    );
    assert_eq!(
        served["components"]["schemas"]["CatalogDocument"]["additionalProperties"],
        false
    );
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
