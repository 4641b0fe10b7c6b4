//! `POST /v1/deployments` (issue 16): BPMN and DMN files deployed together as one deployment, as
//! Camunda's `POST /v2/deployments` takes them (multipart, one `resources` part per file). A
//! calledDecision or calledElement with `bindingType="deployment"` runs what was deployed with
//! its process; a deployment is all or nothing; the same files again are the same deployment.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::process_run::{assert_completed_cleanly, Run};

const CALLER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Definitions_caller" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="bundleCaller" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="Task_tier" />
    <bpmn:businessRuleTask id="Task_tier"><bpmn:extensionElements><zeebe:calledDecision decisionId="bundleTier" bindingType="deployment" resultVariable="tier" /></bpmn:extensionElements></bpmn:businessRuleTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Task_tier" targetRef="Call_callee" />
    <bpmn:callActivity id="Call_callee"><bpmn:extensionElements><zeebe:calledElement processId="bundleCallee" bindingType="deployment" /></bpmn:extensionElements></bpmn:callActivity>
    <bpmn:sequenceFlow id="f3" sourceRef="Call_callee" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>"#;

fn callee(says: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Definitions_callee" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:process id="bundleCallee" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="Task_say" />
    <bpmn:scriptTask id="Task_say"><bpmn:extensionElements><zeebe:script expression="=&quot;{says}&quot;" resultVariable="calleeSays" /></bpmn:extensionElements></bpmn:scriptTask>
    <bpmn:sequenceFlow id="f2" sourceRef="Task_say" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>"#
    )
}

fn tier(answer: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="bundleTiers" name="Bundle tiers" namespace="http://cpq/bundle">
  <decision id="bundleTier" name="bundle tier">
    <variable name="bundleTier" typeRef="string" />
    <literalExpression><text>"{answer}"</text></literalExpression>
  </decision>
</definitions>"#
    )
}

fn ids(body: &Value, list: &str, field: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            format!(
                "{}@{}",
                d["definition"][field].as_str().unwrap(),
                d["definition"]["version"]
            )
        })
        .collect()
}

async fn run_once(run: &Run) -> Value {
    let instance = run.start("bundleCaller", json!({})).await;
    let detail = run.instance(&instance).await;
    assert_completed_cleanly(&detail);
    detail["variables"].clone()
}

#[tokio::test]
async fn files_deployed_together_run_together_and_version_together() {
    let (callee_v1, tier_v1) = (callee("first"), tier("gold"));
    let first_files = [
        ("caller.bpmn", CALLER),
        ("callee.bpmn", callee_v1.as_str()),
        ("tiers.dmn", tier_v1.as_str()),
    ];
    let run = Run::deploy_together(&first_files).await;
    let first = deploy_together(&run.app, &run.operator, "", &first_files).await;
    assert_eq!(
        first.status,
        StatusCode::OK,
        "the same files again: {}",
        first.body
    );
    assert_eq!(first.body["created"], false);
    let deployment = first.body["deployment_id"].clone();
    assert_eq!(
        ids(&first.body, "processes", "bpmn_process_id"),
        ["bundleCaller@1", "bundleCallee@1"]
    );
    assert_eq!(
        ids(&first.body, "decisions", "decision_id"),
        ["bundleTier@1"]
    );
    for d in first.body["processes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(first.body["decisions"].as_array().unwrap())
    {
        assert_eq!(d["definition"]["deployment_id"], deployment, "{d}");
    }
    let v1 = run_once(&run).await;
    assert_eq!(
        (v1["tier"].as_str(), v1["calleeSays"].as_str()),
        (Some("gold"), Some("first")),
        "{v1}"
    );

    // A newer callee and decision deployed on their own: the caller's deployment still runs
    // the versions deployed with it.
    let (callee_v2, tier_v2) = (callee("second"), tier("silver"));
    let alone = deploy_together(
        &run.app,
        &run.operator,
        "",
        &[
            ("callee.bpmn", callee_v2.as_str()),
            ("tiers.dmn", tier_v2.as_str()),
        ],
    )
    .await;
    assert_eq!(alone.status, StatusCode::CREATED, "{}", alone.body);
    assert_ne!(alone.body["deployment_id"], deployment);
    let still = run_once(&run).await;
    assert_eq!(
        (still["tier"].as_str(), still["calleeSays"].as_str()),
        (Some("gold"), Some("first")),
        "{still}"
    );

    // The caller unchanged, deployed with the new files: one changed, so every file gets a new
    // version, and the new caller runs the new ones.
    let third = deploy_together(
        &run.app,
        &run.operator,
        "",
        &[
            ("caller.bpmn", CALLER),
            ("callee.bpmn", callee_v2.as_str()),
            ("tiers.dmn", tier_v2.as_str()),
        ],
    )
    .await;
    assert_eq!(third.status, StatusCode::CREATED, "{}", third.body);
    assert_eq!(
        ids(&third.body, "processes", "bpmn_process_id"),
        ["bundleCaller@2", "bundleCallee@3"]
    );
    assert_eq!(
        ids(&third.body, "decisions", "decision_id"),
        ["bundleTier@3"]
    );
    let v2 = run_once(&run).await;
    assert_eq!(
        (v2["tier"].as_str(), v2["calleeSays"].as_str()),
        (Some("silver"), Some("second")),
        "{v2}"
    );

    // Each new version is audited with its event, the decisions' carrying the deployment.
    let events = count(
        &run.app,
        "SELECT count(*) FROM outbox_event WHERE event_type = 'decision-definition.deployed' \
         AND payload->>'decision_id' = 'bundleTier' AND payload ? 'deployment_id'",
    )
    .await;
    assert_eq!(events, 3);
    let audited = count(
        &run.app,
        "SELECT count(*) FROM audit_record WHERE action IN ('decision-definition.deploy', 'process-definition.deploy')",
    )
    .await;
    assert_eq!(
        audited,
        3 + 5,
        "three decision versions, five process versions"
    );
}

#[tokio::test]
async fn a_deployment_is_refused_whole_naming_each_file_and_element() {
    let run = Run::deploy(&callee("seed")).await;
    let (app, operator) = (&run.app, &run.operator);
    let before = count(app, "SELECT count(*) FROM process_definition").await;

    // A deployment binding to what the deployment does not hold.
    let alone = deploy_together(app, operator, "", &[("caller.bpmn", CALLER)]).await;
    assert_eq!(
        alone.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        alone.body
    );
    let problems = alone.body["errors"].as_array().unwrap();
    let fields: Vec<(&str, &str)> = problems
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        fields,
        [
            ("Task_tier", "binding-not-in-deployment"),
            ("Call_callee", "binding-not-in-deployment")
        ],
        "{}",
        alone.body
    );
    assert!(
        alone
            .body
            .to_string()
            .contains("businessRuleTask 'Task_tier' calls the decision 'bundleTier'"),
        "{}",
        alone.body
    );
    // The same through the one-file endpoint.
    let one = deploy_bpmn(app, operator, "", CALLER).await;
    assert_eq!(one.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", one.body);

    // One broken file refuses the others, naming it.
    let tier_ok = tier("gold");
    let broken = deploy_together(
        app,
        operator,
        "",
        &[
            ("tiers.dmn", tier_ok.as_str()),
            ("broken.bpmn", "<bpmn:definitions"),
        ],
    )
    .await;
    assert_eq!(
        broken.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        broken.body
    );
    assert!(
        broken.body.to_string().contains("'broken.bpmn': "),
        "{}",
        broken.body
    );

    // The same decision id in two files.
    let twice = deploy_together(
        app,
        operator,
        "",
        &[
            ("a.dmn", tier_ok.as_str()),
            ("b.dmn", tier("silver").as_str()),
        ],
    )
    .await;
    assert_eq!(
        twice.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        twice.body
    );
    assert_eq!(
        twice.body["errors"][0]["code"], "duplicate-id",
        "{}",
        twice.body
    );
    assert!(
        twice.body.to_string().contains("'a.dmn' and 'b.dmn'"),
        "{}",
        twice.body
    );

    // No file at all.
    let none = deploy_together(app, operator, "", &[]).await;
    assert!(
        matches!(
            none.status,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST
        ),
        "{}",
        none.body
    );

    // Not multipart, or a part of another name: malformed.
    let plain = post_raw(app, operator, "/v1/deployments", "text/plain", CALLER).await;
    assert_eq!(plain.status, StatusCode::BAD_REQUEST, "{}", plain.body);
    let other = post_raw(
        app,
        operator,
        "/v1/deployments",
        "multipart/form-data; boundary=XyZ",
        "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bpmn\"\r\n\r\n<x/>\r\n--XyZ--\r\n",
    )
    .await;
    assert_eq!(other.status, StatusCode::BAD_REQUEST, "{}", other.body);
    assert!(
        other.body["detail"]
            .as_str()
            .unwrap()
            .contains("unexpected part \"file\""),
        "{}",
        other.body
    );

    let binary = post_raw(
        app,
        operator,
        "/v1/deployments",
        "multipart/form-data; boundary=XyZ",
        [
            &b"--XyZ\r\nContent-Disposition: form-data; name=\"resources\"; filename=\"a.png\"\r\n\r\n"[..],
            &[0x89, 0xff, 0xfe],
            b"\r\n--XyZ--\r\n",
        ]
        .concat(),
    )
    .await;
    assert_eq!(
        binary.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        binary.body
    );
    assert_eq!(
        binary.body["errors"][0]["code"], "not-xml",
        "{}",
        binary.body
    );

    assert_eq!(
        count(app, "SELECT count(*) FROM process_definition").await,
        before,
        "nothing deployed"
    );
    assert_eq!(
        count(app, "SELECT count(*) FROM decision_definition").await,
        0
    );

    // Only operators deploy.
    let tenant_only = app.token("acme", &[cpq_core::Role::Sales]);
    let refused = deploy_together(app, &tenant_only, "", &[("tiers.dmn", tier_ok.as_str())]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}
