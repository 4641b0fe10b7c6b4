//! Event contracts: every event type the platform writes to the outbox has a checked-in JSON
//! Schema per version (`schemas/events/<type>.v<version>.json`), and every event a full sales
//! flow writes validates against its schema.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::approvals::{approver, command, priced_quote, sales_platform};
use crate::helpers::*;

fn schema_dir() -> std::path::PathBuf {
    cpq_testkit::repo_root().join("schemas").join("events")
}

fn schema(event_type: &str, version: i32) -> Option<jsonschema::Validator> {
    let path = schema_dir().join(format!("{event_type}.v{version}.json"));
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).unwrap();
    Some(
        jsonschema::options()
            .should_validate_formats(true)
            .build(&doc)
            .unwrap(),
    )
}

#[test]
fn every_checked_in_schema_is_a_json_schema_named_for_its_event_type_and_version() {
    let mut seen = 0;
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name == "published.lock.json" {
            continue;
        }
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        jsonschema::meta::validate(&doc).unwrap_or_else(|e| panic!("{name}: {e}"));
        let stem = name.strip_suffix(".json").unwrap();
        let (event_type, version) = stem.rsplit_once(".v").unwrap();
        assert_eq!(
            doc["$id"],
            format!("urn:cpq:event:{event_type}:v{version}"),
            "{name}"
        );
        assert_eq!(doc["type"], "object", "{name}");
        seen += 1;
    }
    assert!(seen >= 25, "{seen} schemas");
}

#[tokio::test]
async fn every_event_of_the_sales_flow_matches_its_checked_in_schema() {
    let (app, sales) = sales_platform().await;
    let manager = approver(&app, "mgr", &["manager"]);
    let approve_first = |verb: &'static str, quote: String| {
        let (app, manager) = (&app, manager.clone());
        async move {
            let tasks = get(app, &manager, "/v1/approval-tasks").await;
            let task = tasks.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["quote_id"] == quote.as_str())
                .unwrap()["task_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let d = post(
                app,
                &manager,
                &format!("/v1/approval-tasks/{task}/{verb}"),
                &json!({ "comment": "see notes" }),
                None,
            )
            .await;
            assert_eq!(d.status, StatusCode::OK, "{}", d.body);
            d.body["quote"]["version"].as_i64().unwrap()
        }
    };

    // Approved, accepted, converted.
    let (a, v) = priced_quote(&app, &sales, "20").await;
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{a}/submit"),
        v,
        json!({}),
    )
    .await;
    let v = approve_first("approve", a.clone()).await;
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{a}/accept"),
        v,
        json!({}),
    )
    .await;
    let order = command(
        &app,
        &sales,
        &format!("/v1/quotes/{a}/convert"),
        v + 1,
        json!({}),
    )
    .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    // Rejected, then revised; the new revision loses a line and is cancelled.
    let (b, v) = priced_quote(&app, &sales, "20").await;
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{b}/submit"),
        v,
        json!({}),
    )
    .await;
    let v = approve_first("reject", b.clone()).await;
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{b}/revise"),
        v,
        json!({ "reason": "new terms" }),
    )
    .await;
    let removed = Answer::from(
        app.client
            .delete(app.url(&format!("/v1/quotes/{b}/items/1")))
            .bearer_for(&sales)
            .header("If-Match", format!("\"{}\"", v + 1))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{b}/cancel"),
        v + 2,
        json!({ "reason": "lost" }),
    )
    .await;
    // Special terms and a changed line; the deal desk is asked, then the quote is cancelled.
    let (d, v) = priced_quote(&app, &sales, "5").await;
    let changed = Answer::from(
        app.client
            .put(app.url(&format!("/v1/quotes/{d}/items/1")))
            .bearer_for(&sales)
            .header("If-Match", format!("\"{v}\""))
            .json(&json!({ "configuration": { "offering": "CLOUD-BACKUP", "characteristics": { "storage": "1TB" } } }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let terms = Answer::from(
        app.client
            .put(app.url(&format!("/v1/quotes/{d}/terms")))
            .bearer_for(&sales)
            .header("If-Match", format!("\"{}\"", v + 1))
            .json(&json!({ "special_terms": "net 90 payment" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(terms.status, StatusCode::OK, "{}", terms.body);
    // Returned; then it expires.
    let (c, v) = priced_quote(&app, &sales, "20").await;
    command(
        &app,
        &sales,
        &format!("/v1/quotes/{c}/submit"),
        v,
        json!({}),
    )
    .await;
    approve_first("return", c.clone()).await;
    let pool = app.db.app_pool().await;
    cpq_quote::expiry::expire_due(
        &pool,
        chrono::Utc::now().date_naive() + chrono::Duration::days(40),
        10,
    )
    .await
    .unwrap();
    pool.close().await;
    // A customer account's whole life.
    let account = create_account(&app, &sales, "Globex", "CRM-EV").await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let patched = Answer::from(
        app.client
            .patch(app.url(&format!("/v1/customer-accounts/{account}")))
            .bearer_for(&sales)
            .header("If-Match", "\"1\"")
            .json(&json!({ "name": "Globex AG" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let closed = command(
        &app,
        &sales,
        &format!("/v1/customer-accounts/{account}/close"),
        2,
        json!({ "reason": "merged" }),
    )
    .await;
    assert_eq!(closed.status, StatusCode::OK, "{}", closed.body);

    let owner = app.db.owner_pool().await;
    let rows: Vec<(String, i32, Value)> = sqlx::query_as(
        "SELECT event_type, schema_version, payload FROM outbox_event ORDER BY outbox_position",
    )
    .fetch_all(&owner)
    .await
    .unwrap();
    owner.close().await;
    let mut types = BTreeSet::new();
    for (event_type, version, payload) in &rows {
        let validator = schema(event_type, *version)
            .unwrap_or_else(|| panic!("no schema checked in for {event_type} v{version}"));
        let problems: Vec<String> = validator
            .iter_errors(payload)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            problems.is_empty(),
            "{event_type} v{version} does not match its schema: {problems:?}\n{payload}"
        );
        types.insert(event_type.as_str());
    }
    let expected = [
        "quote.created",
        "quote.item-added",
        "quote.item-removed",
        "quote.item-changed",
        "quote.terms-changed",
        "quote.priced",
        "quote.submitted",
        "quote.approval-requested",
        "quote.approved",
        "quote.rejected",
        "quote.returned",
        "quote.accepted",
        "quote.converted",
        "quote.revised",
        "quote.cancelled",
        "quote.expired",
        "order.created",
        "order.decomposed",
        "customer-account.created",
        "customer-account.updated",
        "customer-account.closed",
        "process-definition.deployed",
        "catalog-version.created",
        "catalog-version.published",
        "catalog-version.activated",
    ];
    assert_eq!(types, expected.into_iter().collect::<BTreeSet<_>>());
}

/// What consumers rely on in a published schema: its required fields and each property's shape.
fn contract(doc: &Value) -> Value {
    let shape = |p: &Value| json!({ "type": p.get("type"), "format": p.get("format"), "enum": p.get("enum") });
    let properties: serde_json::Map<String, Value> = doc["properties"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        .unwrap_or_default();
    json!({ "required": doc["required"], "properties": properties })
}

/// Why `current` breaks consumers of `published`: a field removed or retyped, a required field
/// added, or a required field made optional.
fn incompatibilities(published: &Value, current: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let names = |v: &Value| -> BTreeSet<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (was_required, now_required) = (names(&published["required"]), names(&current["required"]));
    for f in now_required.difference(&was_required) {
        out.push(format!("required field \"{f}\" added"));
    }
    for f in was_required.difference(&now_required) {
        out.push(format!("required field \"{f}\" no longer required"));
    }
    for (name, shape) in published["properties"].as_object().into_iter().flatten() {
        match current["properties"].get(name) {
            None => out.push(format!("field \"{name}\" removed")),
            Some(now) if now != shape => {
                out.push(format!("field \"{name}\" retyped from {shape} to {now}"))
            }
            Some(_) => {}
        }
    }
    out
}

/// `schemas/events/published.lock.json` records the contract of every published schema version.
/// A change that breaks it fails here; a new event version or new optional fields are recorded
/// by running this test with `SCHEMA_LOCK_UPDATE=1`.
#[test]
fn checked_in_schemas_stay_backward_compatible_with_their_published_contracts() {
    let lock_path = schema_dir().join("published.lock.json");
    let mut lock: serde_json::Map<String, Value> =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    let update = std::env::var("SCHEMA_LOCK_UPDATE").is_ok_and(|v| v == "1");
    let mut problems = Vec::new();
    let mut current_names = BTreeSet::new();
    for entry in std::fs::read_dir(schema_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let Some(stem) = name.strip_suffix(".json").filter(|s| s.contains(".v")) else {
            continue;
        };
        current_names.insert(stem.to_owned());
        let now =
            contract(&serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap());
        match lock.get(stem) {
            Some(published) => {
                let broken = incompatibilities(published, &now);
                if broken.is_empty() {
                    if update {
                        lock.insert(stem.to_owned(), now);
                    }
                } else {
                    problems.push(format!(
                        "{stem}: {} (publish a new version instead)",
                        broken.join("; ")
                    ));
                }
            }
            None if update => {
                lock.insert(stem.to_owned(), now);
            }
            None => problems.push(format!(
                "{stem} is not in published.lock.json: run this test with SCHEMA_LOCK_UPDATE=1"
            )),
        }
    }
    for published in lock.keys().filter(|k| !current_names.contains(*k)) {
        problems.push(format!(
            "{published} was published and its schema file is gone"
        ));
    }
    if update {
        std::fs::write(
            &lock_path,
            serde_json::to_string_pretty(&lock).unwrap() + "\n",
        )
        .unwrap();
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn the_compatibility_check_names_each_kind_of_breaking_change() {
    let published = contract(
        &json!({ "required": ["id", "total"], "properties": { "id": { "type": "string", "format": "uuid" }, "total": { "type": "string" }, "note": { "type": "string" } } }),
    );
    let same_plus_optional = contract(
        &json!({ "required": ["id", "total"], "properties": { "id": { "type": "string", "format": "uuid" }, "total": { "type": "string" }, "note": { "type": "string" }, "extra": { "type": "integer" } } }),
    );
    assert!(incompatibilities(&published, &same_plus_optional).is_empty());
    let broken = contract(
        &json!({ "required": ["id", "currency"], "properties": { "id": { "type": "string", "format": "uuid" }, "total": { "type": "number" }, "currency": { "type": "string" } } }),
    );
    assert_eq!(
        incompatibilities(&published, &broken),
        [
            "required field \"currency\" added",
            "required field \"total\" no longer required",
            "field \"note\" removed",
            "field \"total\" retyped from {\"enum\":null,\"format\":null,\"type\":\"string\"} to {\"enum\":null,\"format\":null,\"type\":\"number\"}"
        ]
    );
}
