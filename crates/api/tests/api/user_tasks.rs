//! Native user tasks over HTTP: offered to roles, claimed, completed by the right person only.

use crate::support::TestApp;
use cpq_core::Role;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

pub(crate) const PROCESS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="review" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:userTask id="approve" name="Approve the discount"><bpmn:extensionElements><zeebe:userTask />
      <zeebe:assignmentDefinition candidateGroups="approver" /></bpmn:extensionElements></bpmn:userTask>
    <bpmn:exclusiveGateway id="g" default="no" />
    <bpmn:endEvent id="yes_end" /><bpmn:endEvent id="no_end" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="approve" />
    <bpmn:sequenceFlow id="f2" sourceRef="approve" targetRef="g" />
    <bpmn:sequenceFlow id="yes" sourceRef="g" targetRef="yes_end"><bpmn:conditionExpression>=approved = true</bpmn:conditionExpression></bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="no" sourceRef="g" targetRef="no_end" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn a_task_offered_to_a_role_is_claimed_and_completed_by_its_candidate() {
    let app = TestApp::spawn().await;
    let operator = app.token("acme", &[Role::Operator]);
    let deployed = deploy_bpmn(&app, &operator, "", PROCESS).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    let started = post(
        &app,
        &operator,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": "review", "variables": { "discount": 25 } }),
        None,
    )
    .await;
    let instance = started.body["process_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();

    let mia = app.token_for("mia", "acme", &[Role::Approver]);
    let sam = app.token_for("sam", "acme", &[Role::Sales]);
    let ann = app.token_for("ann", "acme", &[Role::Approver]);
    assert!(get(&app, &sam, "/v1/user-tasks").await.body["items"]
        .as_array()
        .unwrap()
        .is_empty());
    let mine = get(&app, &mia, "/v1/user-tasks").await;
    let task = &mine.body["items"][0];
    assert_eq!(
        (
            task["name"].as_str(),
            task["variables"]["discount"].as_i64()
        ),
        (Some("Approve the discount"), Some(25))
    );
    let id = task["user_task_id"].as_str().unwrap().to_owned();

    post(
        &app,
        &sam,
        &format!("/v1/user-tasks/{id}/completion"),
        &json!({ "variables": { "approved": true } }),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    let claimed = post(
        &app,
        &mia,
        &format!("/v1/user-tasks/{id}/assignment"),
        &json!({ "assignee": "mia" }),
        None,
    )
    .await;
    assert_eq!(claimed.status, StatusCode::OK, "{}", claimed.body);
    post(
        &app,
        &ann,
        &format!("/v1/user-tasks/{id}/completion"),
        &json!({}),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    assert!(
        get(&app, &ann, "/v1/user-tasks").await.body["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a claimed task leaves the group's list"
    );

    let done = post(
        &app,
        &mia,
        &format!("/v1/user-tasks/{id}/completion"),
        &json!({ "variables": { "approved": true } }),
        None,
    )
    .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let detail = get(
        &app,
        &operator,
        &format!("/v1/process-instances/{instance}"),
    )
    .await;
    assert_eq!(detail.body["status"], "completed");
    assert_eq!(detail.body["variables"]["approved"], true);
    post(
        &app,
        &mia,
        &format!("/v1/user-tasks/{id}/completion"),
        &json!({}),
        None,
    )
    .await
    .assert_problem(409, "conflict");
}

#[tokio::test]
async fn another_tenants_user_task_is_not_found_whatever_the_callers_grant() {
    let app = TestApp::spawn().await;
    let operator = app.token("acme", &[Role::Operator]);
    let deployed = deploy_bpmn(&app, &operator, "", PROCESS).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);
    post(
        &app,
        &operator,
        "/v1/process-instances",
        &json!({ "bpmn_process_id": "review" }),
        None,
    )
    .await;
    let mia = app.token_for("mia", "acme", &[Role::Approver]);
    let id = get(&app, &mia, "/v1/user-tasks").await.body["items"][0]["user_task_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Same subject and group in another tenant, or a worker/operator credential of another
    // tenant, even one granted every tenant: the task is not theirs to see or touch.
    let strangers = [
        app.token_for("mia", "globex", &[Role::Approver]),
        app.token("globex", &[Role::Operator]),
        crate::jobs::token_with_tenants(
            &app,
            "globex",
            &[Role::Operator, Role::Approver],
            &["acme"],
        ),
        crate::jobs::platform_token(&app, &[Role::Operator, Role::Approver, Role::Worker]),
    ];
    for stranger in &strangers {
        assert_eq!(
            get(&app, stranger, "/v1/user-tasks").await.body["items"],
            json!([])
        );
        post(
            &app,
            stranger,
            &format!("/v1/user-tasks/{id}/assignment"),
            &json!({ "assignee": "mia" }),
            None,
        )
        .await
        .assert_problem(404, "not-found");
        post(
            &app,
            stranger,
            &format!("/v1/user-tasks/{id}/completion"),
            &json!({ "variables": { "approved": true } }),
            None,
        )
        .await
        .assert_problem(404, "not-found");
    }
    let done = post(
        &app,
        &mia,
        &format!("/v1/user-tasks/{id}/completion"),
        &json!({ "variables": { "approved": false } }),
        None,
    )
    .await;
    assert_eq!(
        done.status,
        StatusCode::OK,
        "untouched by the others: {}",
        done.body
    );
}
