//! BPMN deployment over HTTP: refusals, job-type checks against worker groups, versions and
//! re-deploys of the same file; worker groups and version routing belong to the platform.

use crate::support::TestApp;
use cpq_core::Role;
use cpq_testkit::repo_root;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::jobs::platform_token;

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
            .bearer_for(&platform_token(&app, &[Role::Operator]))
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
    // Elements Zeebe does not execute either: a complex gateway, a transaction.
    let unsupported = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:complexGateway id="cx" />
    <bpmn:transaction id="tx" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="cx" />
    <bpmn:sequenceFlow id="f2" sourceRef="cx" targetRef="tx" />
  </bpmn:process>
</bpmn:definitions>"#;
    let refused = deploy(
        &app,
        &operator,
        unsupported,
        "?allow_unsupported_job_types=true",
    )
    .await;
    refused.assert_problem(422, "validation-failed");
    let errors = refused.body["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{}", refused.body);
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
    let platform = platform_token(&app, &[Role::Operator]);
    let put = Answer::from(app.client.put(app.url(&format!("/v1/process-definitions/{process}/routing"))).bearer_for(&platform)
        .json(&json!({ "rules": [{ "tenant": "acme", "product_line": null, "release_flag": null, "version": 1, "priority": 0 }] })).send().await.unwrap()).await;
    assert_eq!(put.status, StatusCode::OK, "{}", put.body);
    assert_eq!(start("acme").await, 1, "acme is pinned to version 1");
    assert_eq!(start("globex").await, 2);
    let bad = Answer::from(app.client.put(app.url(&format!("/v1/process-definitions/{process}/routing"))).bearer_for(&platform)
        .json(&json!({ "rules": [{ "tenant": null, "product_line": null, "release_flag": null, "version": 9, "priority": 0 }] })).send().await.unwrap()).await;
    bad.assert_problem(422, "validation-failed");
}

async fn put(app: &TestApp, token: &str, path: &str, body: serde_json::Value) -> Answer {
    Answer::from(
        app.client
            .put(app.url(path))
            .bearer_for(token)
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn one_tenants_operator_cannot_change_what_other_tenants_run() {
    let app = TestApp::spawn().await;
    let acme = app.token("acme", &[Role::Operator]);
    let globex = app.token("globex", &[Role::Operator]);
    let platform = platform_token(&app, &[Role::Operator]);
    let xml = fixture("c8ex--payment_process.bpmn");
    let process = cpq_workflow::bpmn::read(&xml).unwrap().processes[0]
        .id
        .clone();
    let needed: Vec<String> = cpq_workflow::bpmn::read(&xml).unwrap().processes[0].job_types();

    // Worker groups serve every tenant: only a platform credential registers or changes one.
    let registered = put(
        &app,
        &platform,
        "/v1/worker-groups/payments",
        json!({ "job_types": needed, "worker_version": "1.0.0" }),
    )
    .await;
    assert_eq!(registered.status, StatusCode::OK, "{}", registered.body);
    for token in [&globex, &app.token("platform", &[Role::Operator])] {
        let hijack = put(
            &app,
            token,
            "/v1/worker-groups/payments",
            json!({ "job_types": ["mine"], "worker_version": "6.6.6" }),
        )
        .await;
        hijack.assert_problem(403, "forbidden");
        put(
            &app,
            token,
            "/v1/worker-groups/junk",
            json!({ "job_types": ["x"], "worker_version": "1" }),
        )
        .await
        .assert_problem(403, "forbidden");
    }
    assert_eq!(
        count(&app, "SELECT count(*) FROM worker_group WHERE group_name = 'payments' AND worker_version = '1.0.0' \
                     AND NOT 'mine' = ANY (job_types)").await,
        1,
        "the group is as the platform registered it"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM worker_group").await,
        1,
        "no junk groups"
    );

    // Version routing of a platform process: the platform pins acme to version 1.
    deploy(&app, &acme, &xml, "").await;
    deploy(&app, &acme, &format!("{xml}\n<!-- v2 -->\n"), "").await;
    let pin = json!({ "rules": [{ "tenant": "acme", "product_line": null, "release_flag": null, "version": 1, "priority": 0 }] });
    let pinned = put(
        &app,
        &platform,
        &format!("/v1/process-definitions/{process}/routing"),
        pin,
    )
    .await;
    assert_eq!(pinned.status, StatusCode::OK, "{}", pinned.body);
    // Globex's operator can neither replace nor clear the rules (nor can acme's own operator:
    // the rules are the platform's, whichever tenant they name).
    for token in [&globex, &acme] {
        let everyone_on_2 = json!({ "rules": [{ "tenant": null, "product_line": null, "release_flag": null, "version": 2, "priority": 9 }] });
        put(
            &app,
            token,
            &format!("/v1/process-definitions/{process}/routing"),
            everyone_on_2,
        )
        .await
        .assert_problem(403, "forbidden");
        put(
            &app,
            token,
            &format!("/v1/process-definitions/{process}/routing"),
            json!({ "rules": [] }),
        )
        .await
        .assert_problem(403, "forbidden");
    }
    let started = post(
        &app,
        &acme,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": process }),
        None,
    )
    .await;
    assert_eq!(
        started.body["version"], 1,
        "acme still runs what the platform chose: {}",
        started.body
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM process_version_rule").await,
        1
    );
}
