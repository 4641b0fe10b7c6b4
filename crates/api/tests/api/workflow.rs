//! BPMN deployment over HTTP: refusals, job-type checks against worker groups, versions and
//! re-deploys of the same file.

use cpq_core::Role;
use cpq_testkit::{repo_root, TestApp};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        repo_root()
            .join("../shared/fixtures/bpmn-modeler")
            .join(name),
    )
    .unwrap()
}

async fn deploy(app: &TestApp, token: &str, xml: &str, query: &str) -> Answer {
    Answer::from(
        app.client
            .post(app.url(&format!("/v1/process-definitions{query}")))
            .bearer_for(token)
            .header("content-type", "application/xml")
            .body(xml.to_owned())
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn deployments_are_versioned_checked_against_workers_and_deduplicated() {
    let app = TestApp::spawn().await;
    let operator = app.token("platform", &[Role::Operator]);
    let xml = fixture("c8ex--payment_process.bpmn");

    deploy(&app, &app.token("platform", SALES), &xml, "")
        .await
        .assert_problem(403, "forbidden");

    // No worker executes its job types yet.
    let refused = deploy(&app, &operator, &xml, "").await;
    refused.assert_problem(422, "validation-failed");
    assert!(
        refused.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["code"] == "job-type-unsupported"),
        "{}",
        refused.body
    );
    let needed: Vec<String> = cpq_workflow::bpmn::read(&xml).unwrap().processes[0].job_types();
    assert_eq!(
        count(&app, "SELECT count(*) FROM process_definition").await,
        0
    );

    let hb = Answer::from(
        app.client
            .put(app.url("/v1/worker-groups/payments"))
            .bearer_for(&operator)
            .json(&json!({ "job_types": needed, "worker_version": "1.0.0" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(hb.status, StatusCode::OK, "{}", hb.body);

    let first = deploy(
        &app,
        &operator,
        &xml,
        "?release_id=r-2026.11&source_commit=abc123&resource_name=payment_process.bpmn",
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let d = &first.body["deployments"][0];
    assert_eq!(
        (d["created"].as_bool(), d["definition"]["version"].as_i64()),
        (Some(true), Some(1))
    );
    assert_eq!(d["definition"]["release_id"], "r-2026.11");
    assert_eq!(d["definition"]["checksum"].as_str().unwrap().len(), 64);

    let again = deploy(&app, &operator, &xml, "").await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        (
            again.body["deployments"][0]["created"].as_bool(),
            again.body["deployments"][0]["definition"]["version"].as_i64()
        ),
        (Some(false), Some(1))
    );

    let changed = format!("{xml}\n<!-- revised -->\n");
    let second = deploy(&app, &operator, &changed, "").await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["deployments"][0]["definition"]["version"], 2);

    let list = get(&app, &operator, "/v1/process-definitions").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        count(
            &app,
            "SELECT count(*) FROM outbox_event WHERE event_type = 'process-definition.deployed'"
        )
        .await,
        2
    );
}

#[tokio::test]
async fn unsupported_elements_are_refused_each_by_id() {
    let app = TestApp::spawn().await;
    let operator = app.token("platform", &[Role::Operator]);
    let refused = deploy(
        &app,
        &operator,
        &fixture("c8ex--get-up.bpmn"),
        "?allow_unsupported_job_types=true",
    )
    .await;
    refused.assert_problem(422, "validation-failed");
    let errors = refused.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 5, "{}", refused.body);
    assert!(errors
        .iter()
        .all(|e| e["code"] == "unsupported-element" && !e["field"].as_str().unwrap().is_empty()));
    let not_xml = Answer::from(
        app.client
            .post(app.url("/v1/process-definitions"))
            .bearer_for(&operator)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    not_xml.assert_problem(400, "malformed-request");
    assert_eq!(
        count(&app, "SELECT count(*) FROM process_definition").await,
        0
    );

    // The local override deploys a process whose job types nobody executes yet.
    let forced = deploy(
        &app,
        &operator,
        &fixture("c8ex--twitter.bpmn"),
        "?allow_unsupported_job_types=true",
    )
    .await;
    assert_eq!(forced.status, StatusCode::CREATED, "{}", forced.body);
}

#[tokio::test]
async fn routing_rules_pick_the_version_of_new_instances() {
    let app = TestApp::spawn().await;
    let operator = app.token("acme", &[Role::Operator]);
    let xml = fixture("c8ex--payment_process.bpmn");
    deploy(&app, &operator, &xml, "?allow_unsupported_job_types=true").await;
    deploy(
        &app,
        &operator,
        &format!("{xml}\n<!-- v2 -->\n"),
        "?allow_unsupported_job_types=true",
    )
    .await;
    let process = cpq_workflow::bpmn::read(&xml).unwrap().processes[0]
        .id
        .clone();
    let start = |tenant: &'static str| {
        let (app, token) = (&app, app.token(tenant, &[Role::Operator]));
        let process = process.clone();
        async move {
            post(
                app,
                &token,
                "/v1/process-instances",
                &json!({ "bpmn_process_id": process }),
                None,
            )
            .await
            .body["version"]
                .clone()
        }
    };
    assert_eq!(start("acme").await, 2, "no rule: the latest");
    let put = Answer::from(app.client.put(app.url(&format!("/v1/process-definitions/{process}/routing"))).bearer_for(&operator)
        .json(&json!({ "rules": [{ "tenant": "acme", "product_line": null, "release_flag": null, "version": 1, "priority": 0 }] })).send().await.unwrap()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(start("acme").await, 1, "acme is pinned to version 1");
    assert_eq!(start("globex").await, 2);
    let bad = Answer::from(app.client.put(app.url(&format!("/v1/process-definitions/{process}/routing"))).bearer_for(&operator)
        .json(&json!({ "rules": [{ "tenant": null, "product_line": null, "release_flag": null, "version": 9, "priority": 0 }] })).send().await.unwrap()).await;
    bad.assert_problem(422, "validation-failed");
}
