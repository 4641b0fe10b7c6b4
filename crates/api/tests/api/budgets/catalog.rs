//! Budgets of the catalog version commands.
//!
//! | command | before | budget | needs | made of |
//! | --- | --- | --- | --- | --- |
//! | create version | — | 6 | 6 | envelope 4; `catalog_version_insert` (with its document) 1; audit 1 |
//! | import document (PUT) | — | 5 | 5 | envelope 2; `catalog_version_fetch_document_for_update` 1; `catalog_version_update_draft` 1; audit 1 |
//! | put element (PUT) | — | 5 | 5 | the same: the draft's document locked, changed, written back |
//! | delete element (DELETE) | — | 5 | 5 | the same |
//! | publish | 8 | 9 | 9 | envelope 4; `process_definition_job_types` (what the deployed fulfillment process handles: the technical catalog's job types must be handled; issue 15) 1; `catalog_version_fetch_document_for_update` 1; `catalog_version_publish` (status, hash, compiled form) 1; `catalog_offering_insert_all` (the search projection through `unnest`) 1; audit 1 |
//! | activate | — | 7 | 7 | envelope 4; `catalog_version_fetch` 1 (a published version is immutable: not locked); `catalog_activation_insert` 1; audit 1 |

use serde_json::json;

use super::{budget, delete_at, isolated, post, put_at, Budget, Isolated, Report};
use crate::catalog::{demo, MANAGER};

pub const BUDGETS: &[Budget] = &[
    budget("create version", 6, 6),
    budget("import document (PUT)", 5, 5),
    budget("put element (PUT)", 5, 5),
    budget("delete element (DELETE)", 5, 5),
    budget("publish", 9, 9),
    budget("activate", 7, 7),
];

/// Creates a draft of `label` with the demo document: its id.
async fn draft(api: &Isolated, token: &str, label: &str) -> String {
    let body = json!({ "label": label, "document": demo() });
    let created = api
        .ok(post("/v1/catalog/versions", token, None, body))
        .await;
    created.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn each_catalog_command_stays_within_its_statement_budget() {
    let (app, api) = isolated().await;
    let manager = app.token("acme", MANAGER);
    // Warm-up: a version created, published and activated.
    let warm = draft(&api, &manager, "warm").await;
    let v = format!("/v1/catalog/versions/{warm}");
    api.ok(post(format!("{v}/publish"), &manager, Some(1), json!({})))
        .await;
    let from = json!({ "effective_from": "2026-01-01T00:00:00Z" });
    api.ok(post(format!("{v}/activate"), &manager, None, from))
        .await;

    let mut r = Report::new(BUDGETS);
    let body = json!({ "label": "2027", "document": demo() });
    let create = post("/v1/catalog/versions", &manager, None, body);
    let created = r.measure(&api, "create version", create).await;
    let v = format!(
        "/v1/catalog/versions/{}",
        created.body["id"].as_str().unwrap()
    );
    let import = put_at(format!("{v}/document"), &manager, 1, demo());
    r.measure(&api, "import document (PUT)", import).await;
    let promo = json!({ "code": "SPRING", "name": "Spring deal", "stacking_group": "seasonal", "priority": 3,
        "effect": { "kind": "percent", "value": "5", "applies_to": "recurring" } });
    let put = put_at(format!("{v}/promotions/SPRING"), &manager, 2, promo);
    r.measure(&api, "put element (PUT)", put).await;
    let delete = delete_at(format!("{v}/rules/BI-COPPER-IPS"), &manager, 3);
    r.measure(&api, "delete element (DELETE)", delete).await;
    let publish = post(format!("{v}/publish"), &manager, Some(4), json!({}));
    let published = r.measure(&api, "publish", publish).await;
    assert_eq!(published.body["status"], "published", "{}", published.body);
    let from = json!({ "effective_from": "2027-01-01T00:00:00Z" });
    let activate = post(format!("{v}/activate"), &manager, None, from);
    r.measure(&api, "activate", activate).await;

    r.assert_within_budgets();
}
