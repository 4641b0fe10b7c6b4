//! DMN over HTTP: a Camunda Modeler file deployed through `POST /v1/process-definitions`
//! (versioned per decision, deduplicated by checksum), refused files that write nothing, the
//! decision list, and evaluating decision tables (UNIQUE, FIRST, COLLECT SUM), a literal
//! expression and a decision requiring others; unknown decisions, failed evaluations and roles.

use crate::support::TestApp;
use cpq_core::Role;
use cpq_testkit::repo_root;
use serde_json::{json, Value};

use crate::helpers::*;

fn fixture() -> String {
    std::fs::read_to_string(
        repo_root().join("crates/api/tests/fixtures/quote-pricing-decisions.dmn"),
    )
    .unwrap()
}

async fn evaluate(app: &TestApp, token: &str, id: &str, body: Value) -> Answer {
    post(
        app,
        token,
        &format!("/v1/decision-definitions/{id}/evaluation"),
        &body,
        None,
    )
    .await
}

#[tokio::test]
async fn a_dmn_file_deploys_versioned_and_deduplicated_and_nothing_for_a_refused_one() {
    let app = TestApp::spawn().await;
    let operator = app.token("platform", &[Role::Operator]);
    let xml = fixture();

    deploy_bpmn(&app, &app.token("platform", SALES), "", &xml)
        .await
        .assert_problem(403, "forbidden");

    // A file the DMN reader refuses: the problem names the element, nothing is written.
    let broken = xml.replace("<text>0.1</text>", "<text>0.1 +* (</text>");
    let refused = deploy_bpmn(&app, &operator, "?resource_name=broken.dmn", &broken).await;
    refused.assert_problem(422, "validation-failed");
    assert_eq!(
        refused.body["errors"][0]["code"], "invalid-dmn",
        "{}",
        refused.body
    );
    let message = refused.body["errors"][0]["detail"].as_str().unwrap();
    assert!(
        message.starts_with("decision 'segmentDiscount'"),
        "{message}"
    );
    let not_xml = deploy_bpmn(&app, &operator, "?resource_name=x.dmn", "<definitions").await;
    not_xml.assert_problem(422, "validation-failed");
    assert_eq!(
        count(&app, "SELECT count(*) FROM decision_definition").await,
        0
    );

    let first = deploy_bpmn(&app, &operator, "?resource_name=quote-pricing.dmn", &xml).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["deployments"], json!([]));
    let decisions = first.body["decisions"].as_array().unwrap();
    let ids: Vec<&str> = decisions
        .iter()
        .map(|d| d["definition"]["decision_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "segmentDiscount",
            "approvalLevel",
            "surcharges",
            "contractEnd",
            "quoteTotal"
        ]
    );
    for d in decisions {
        assert_eq!(d["created"], true);
        assert_eq!(d["definition"]["version"], 1);
        assert_eq!(
            d["definition"]["decision_requirements_id"],
            "quote_pricing_decisions"
        );
        assert_eq!(
            d["definition"]["decision_requirements_name"],
            "Quote pricing decisions"
        );
        assert_eq!(d["definition"]["resource_name"], "quote-pricing.dmn");
    }

    // The same file again: no new version.
    let again = deploy_bpmn(&app, &operator, "", &xml).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert!(again.body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["created"] == false && d["definition"]["version"] == 1));
    assert_eq!(
        count(&app, "SELECT count(*) FROM decision_definition").await,
        5
    );

    // A changed file: a new version of each decision, and the latest evaluates.
    let changed = xml.replace("<text>0.15</text>", "<text>0.16</text>");
    let second = deploy_bpmn(&app, &operator, "", &changed).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert!(second.body["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["created"] == true && d["definition"]["version"] == 2));
    assert_eq!(
        count(&app, "SELECT count(*) FROM decision_definition").await,
        10
    );
    let input = json!({ "variables": { "segment": "enterprise", "orderValue": 12000 } });
    let latest = evaluate(&app, &operator, "segmentDiscount", input.clone()).await;
    assert_eq!(latest.status, 200, "{}", latest.body);
    assert_eq!(latest.body["version"], 2);
    assert_eq!(latest.body["output"], json!(0.16));
    let mut v1 = input;
    v1["version"] = json!(1);
    let older = evaluate(&app, &operator, "segmentDiscount", v1).await;
    assert_eq!(
        (older.body["version"].clone(), older.body["output"].clone()),
        (json!(1), json!(0.15))
    );

    // The list pages by key; one version by its key.
    let page = get(&app, &operator, "/v1/decision-definitions?limit=4").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 4);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    let rest = get(
        &app,
        &operator,
        &format!("/v1/decision-definitions?limit=50&cursor={cursor}"),
    )
    .await;
    assert_eq!(
        rest.body["items"].as_array().unwrap().len(),
        6,
        "{}",
        rest.body
    );
    let key = latest.body["decision_definition_id"].as_str().unwrap();
    let one = get(&app, &operator, &format!("/v1/decision-definitions/{key}")).await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(
        (one.body["decision_id"].clone(), one.body["version"].clone()),
        (json!("segmentDiscount"), json!(2))
    );
    get(
        &app,
        &operator,
        "/v1/decision-definitions/0190c6a0-0000-7000-8000-000000000000",
    )
    .await
    .assert_problem(404, "not-found");
    get(
        &app,
        &app.token("platform", SALES),
        "/v1/decision-definitions",
    )
    .await
    .assert_problem(403, "forbidden");
}

#[tokio::test]
async fn decisions_evaluate_with_every_kind_and_their_requirements() {
    let app = TestApp::spawn().await;
    let operator = app.token("platform", &[Role::Operator]);
    let deployed = deploy_bpmn(&app, &operator, "", &fixture()).await;
    assert_eq!(deployed.status, 201, "{}", deployed.body);
    // Any signed-in role evaluates.
    let sales = app.token("demo", SALES);

    // UNIQUE: one rule matches; none matches is null; two matching is a 422 naming the decision.
    let unique = evaluate(
        &app,
        &sales,
        "segmentDiscount",
        json!({"variables": {"segment": "small-business", "orderValue": 5000}}),
    )
    .await;
    assert_eq!(unique.status, 200, "{}", unique.body);
    assert_eq!(unique.body["output"], json!(0.05));
    assert_eq!(unique.body["decision_name"], "segmentDiscount");
    assert_eq!(unique.body["version"], 1);
    let none = evaluate(
        &app,
        &sales,
        "segmentDiscount",
        json!({"variables": {"segment": "consumer", "orderValue": 10}}),
    )
    .await;
    assert_eq!(
        (none.status.as_u16(), none.body["output"].clone()),
        (200, Value::Null)
    );
    let overlap = evaluate(
        &app,
        &sales,
        "segmentDiscount",
        json!({"variables": {"segment": "enterprise", "orderValue": 600000}}),
    )
    .await;
    overlap.assert_problem(422, "validation-failed");
    assert_eq!(
        overlap.body["errors"][0]["field"], "segmentDiscount",
        "{}",
        overlap.body
    );
    assert_eq!(
        overlap.body["errors"][0]["code"],
        "decision-evaluation-failed"
    );
    assert_eq!(
        overlap.body["errors"][0]["detail"],
        "multiple rules match in unique hit policy"
    );

    // FIRST: the first matching rule in rule order.
    let first = evaluate(
        &app,
        &sales,
        "approvalLevel",
        json!({"variables": {"discountPercent": 30}}),
    )
    .await;
    assert_eq!(first.body["output"], json!("director"), "{}", first.body);
    let first = evaluate(
        &app,
        &sales,
        "approvalLevel",
        json!({"variables": {"discountPercent": 12}}),
    )
    .await;
    assert_eq!(first.body["output"], json!("manager"));

    // COLLECT SUM: every matching rule's output added, in decimal arithmetic.
    let sum = evaluate(
        &app,
        &sales,
        "surcharges",
        json!({"variables": {"market": "NO", "expressDelivery": true}}),
    )
    .await;
    assert_eq!(sum.body["output"], json!(75.75), "{}", sum.body);
    let sum = evaluate(
        &app,
        &sales,
        "surcharges",
        json!({"variables": {"market": "DE", "expressDelivery": false}}),
    )
    .await;
    assert_eq!(sum.body["output"], json!(10.5));

    // A literal expression: a date as ISO text.
    let end = evaluate(
        &app,
        &sales,
        "contractEnd",
        json!({"variables": {"startDate": "2026-12-05", "termMonths": 14}}),
    )
    .await;
    assert_eq!(end.body["output"], json!("2028-02-05"), "{}", end.body);

    // A decision requiring two others: each evaluated decision with its output, required first.
    let total = evaluate(
        &app,
        &sales,
        "quoteTotal",
        json!({"variables": {"segment": "enterprise", "orderValue": 12000, "market": "NO", "expressDelivery": true}}),
    )
    .await;
    assert_eq!(total.status, 200, "{}", total.body);
    assert_eq!(total.body["output"], json!(10275.75));
    assert_eq!(
        total.body["decision_requirements_id"],
        "quote_pricing_decisions"
    );
    let evaluated: Vec<(Value, Value)> = total.body["evaluated_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["decision_id"].clone(), d["output"].clone()))
        .collect();
    assert_eq!(
        evaluated,
        vec![
            (json!("segmentDiscount"), json!(0.15)),
            (json!("surcharges"), json!(75.75)),
            (json!("quoteTotal"), json!(10275.75)),
        ]
    );
    assert!(total.body["evaluated_decisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["version"] == 1 && d["decision_definition_id"].is_string()));

    // Unknown decision or version: 404; a body that is not the documented one: 400.
    evaluate(&app, &sales, "noSuchDecision", json!({"variables": {}}))
        .await
        .assert_problem(404, "not-found");
    evaluate(
        &app,
        &sales,
        "segmentDiscount",
        json!({"variables": {}, "version": 9}),
    )
    .await
    .assert_problem(404, "not-found");
    evaluate(&app, &sales, "segmentDiscount", json!({"variables": [1]}))
        .await
        .assert_problem(400, "malformed-request");
}
