//! Camunda Modeler files run to their end through the job API (issue 16): the shared fixtures
//! that use plain and script tasks, timers in subprocesses, and a multi-instance call activity;
//! call activities' cancellation both ways and their incident when the callee is missing; and a
//! tour of the other elements (business rule task, inclusive gateways, link, escalation,
//! event-based gateway) in `tests/fixtures/elements-tour.bpmn`.

use cpq_testkit::repo_root;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;
use crate::process_run::{assert_completed_cleanly, commands, fixture, Run};

#[tokio::test]
async fn the_get_up_fixture_runs_its_plain_and_script_tasks_and_timers_to_the_end() {
    let run = Run::deploy(&fixture("c8ex--get-up.bpmn")).await;
    let instance = run.start("GetUpProcess", json!({})).await;
    let done = run
        .drive(
            &instance,
            &["callKids", "checkProgress"],
            |t, vars| match t {
                "callKids" => {
                    assert_eq!(vars["message"], "Please get up", "{vars}");
                    json!({})
                }
                _ => {
                    assert_eq!(vars["breakfastPrepared"], true, "the script ran: {vars}");
                    assert_eq!(vars["options"].as_array().map(Vec::len), Some(4));
                    json!({ "progress": "ready" })
                }
            },
        )
        .await;
    assert_eq!(done, ["callKids", "checkProgress"]);
    let detail = run.instance(&instance).await;
    let fired: Vec<&str> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["command"]["command"] == "timer_fired")
        .map(|h| h["command"]["timer_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        fired,
        [
            "Wait15MinutesEvent",
            "Wait15MinutesEvent1",
            "Wait5MinutesEvent1"
        ],
        "on time: the running-late boundary (PT1H) never fired"
    );
    assert_eq!(detail["variables"]["breakfastPrepared"], true, "{detail}");
    assert!(
        detail["incidents"].as_array().unwrap().is_empty(),
        "{detail}"
    );
}

#[tokio::test]
async fn the_multi_instance_call_activity_fixture_runs_a_child_per_item_and_gathers_their_results()
{
    let run = Run::deploy(&fixture("c8ex--multi-instance-simple-example.bpmn")).await;
    let instance = run.start("MICallActivityProcess", json!({})).await;
    let done = run
        .drive(
            &instance,
            &["sequenceCreation", "elementCreation", "resultLogging"],
            |t, vars| match t {
                "sequenceCreation" => json!({ "sequence": [1, 2, 3] }),
                "elementCreation" => {
                    json!({ "result": vars["element"].as_i64().unwrap() * 10, "noise": true })
                }
                _ => {
                    assert_eq!(vars["resultList"], json!([10, 20, 30]), "{vars}");
                    json!({})
                }
            },
        )
        .await;
    assert_eq!(
        done,
        [
            "sequenceCreation",
            "elementCreation",
            "elementCreation",
            "elementCreation",
            "resultLogging"
        ]
    );
    let detail = run.instance(&instance).await;
    assert!(
        detail["variables"].get("noise").is_none(),
        "propagateAllChildVariables=false: only the output mapping comes back: {detail}"
    );
    let children = count(
        &run.app,
        &format!(
            "SELECT count(*) FROM process_instance WHERE parent_process_instance_id = '{instance}' \
             AND bpmn_process_id = 'ElementCreationProcess' AND status = 'completed'"
        ),
    )
    .await;
    assert_eq!(children, 3);
}

const CALLER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="caller" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="=callee" /></bpmn:extensionElements></bpmn:callActivity>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e" />
  </bpmn:process>
  <bpmn:process id="callee" isExecutable="true">
    <bpmn:startEvent id="cs" />
    <bpmn:serviceTask id="work"><bpmn:extensionElements><zeebe:taskDefinition type="callee-work" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="ce" />
    <bpmn:sequenceFlow id="c1" sourceRef="cs" targetRef="work" />
    <bpmn:sequenceFlow id="c2" sourceRef="work" targetRef="ce" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn a_call_activity_is_cancelled_with_its_caller_refuses_a_direct_cancel_and_a_missing_callee_is_an_incident(
) {
    let run = Run::deploy(CALLER).await;
    let parent = run.start("caller", json!({ "callee": "callee" })).await;
    let jobs = run.jobs("callee-work").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0]["variables"]["callee"], "callee",
        "parent variables go in"
    );
    let child = run
        .instance(jobs[0]["process_instance_id"].as_str().unwrap())
        .await;
    let child_id = child["process_instance_id"].as_str().unwrap().to_owned();
    assert_ne!(child_id, parent);

    // A child is cancelled with its caller, not on its own.
    let refused = post(
        &run.app,
        &run.operator,
        &format!("/v1/process-instances/{child_id}/cancellation"),
        &json!({ "reason": "not on its own" }),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(run.instance(&child_id).await["status"], "active");
    let cancelled = post(
        &run.app,
        &run.operator,
        &format!("/v1/process-instances/{parent}/cancellation"),
        &json!({ "reason": "customer withdrew" }),
        None,
    )
    .await;
    assert!(cancelled.status.is_success(), "{}", cancelled.body);
    assert_eq!(run.instance(&parent).await["status"], "terminated");
    assert_eq!(run.instance(&child_id).await["status"], "terminated");
    assert!(
        run.jobs("callee-work").await.is_empty(),
        "the child's job went with it"
    );

    // An unknown callee: an incident on the call activity, nothing started.
    let lost = run.start("caller", json!({ "callee": "nowhere" })).await;
    let detail = run.instance(&lost).await;
    let incidents = detail["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{detail}");
    assert_eq!(incidents[0]["element_id"], "call");
    assert!(
        incidents[0]["message"]
            .as_str()
            .unwrap()
            .contains("no process with BPMN id 'nowhere'"),
        "{detail}"
    );
    assert_eq!(
        count(
            &run.app,
            &format!(
                "SELECT count(*) FROM process_instance WHERE parent_process_instance_id = '{lost}'"
            )
        )
        .await,
        0
    );

    // And a completed child continues its caller.
    let ok = run.start("caller", json!({ "callee": "callee" })).await;
    let job = run.jobs("callee-work").await.remove(0);
    run.complete(&job, json!({ "answer": 42 })).await;
    let done = run.instance(&ok).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["variables"]["answer"], 42,
        "child variables come back by default"
    );
}

fn test_fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("crates/api/tests/fixtures").join(name)).unwrap()
}

#[tokio::test]
async fn the_elements_tour_runs_a_decision_an_inclusive_fork_and_join_a_link_an_escalation_and_an_event_based_gateway(
) {
    let run = Run::deploy(&test_fixture("elements-tour.bpmn")).await;

    // No decision deployed yet: the business rule task raises an incident naming it.
    let early = run
        .start(
            "elementsTour",
            json!({ "segment": "enterprise", "orderValue": 12000, "quoteId": "Q-0" }),
        )
        .await;
    let detail = run.instance(&early).await;
    let incidents = detail["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{detail}");
    assert_eq!(incidents[0]["element_id"], "Task_discount");
    assert!(
        incidents[0]["message"]
            .as_str()
            .unwrap()
            .contains("no decision with id 'segmentDiscount' is deployed"),
        "{detail}"
    );

    let dmn = test_fixture("quote-pricing-decisions.dmn");
    let deployed = deploy_bpmn(&run.app, &run.operator, "?resource_name=pricing.dmn", &dmn).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.body);

    // A big enterprise discount: finance and the account team are told (not legal), the
    // subprocess escalates to the director, and the approval message ends it.
    let big = run
        .start(
            "elementsTour",
            json!({ "segment": "enterprise", "orderValue": 12000, "quoteId": "Q-1" }),
        )
        .await;
    assert!(run.jobs("tour-tell-legal").await.is_empty());
    let finance = run.jobs("tour-tell-finance").await;
    assert_eq!(finance.len(), 1);
    assert_eq!(
        finance[0]["variables"]["discount"],
        json!(0.15),
        "{}",
        finance[0]
    );
    assert_eq!(finance[0]["variables"]["discountPercent"], json!(15));
    run.complete(&finance[0], json!({})).await;
    assert!(
        run.jobs("tour-ask-director").await.is_empty(),
        "the inclusive join waits for the account team's token"
    );
    let account = run.jobs("tour-tell-account").await;
    assert_eq!(account.len(), 1);
    run.complete(&account[0], json!({})).await;
    let director = run.jobs("tour-ask-director").await;
    assert_eq!(
        director.len(),
        1,
        "the escalation was caught on the subprocess"
    );
    run.complete(&director[0], json!({ "approver": "director" }))
        .await;
    assert_eq!(
        count(&run.app, "SELECT count(*) FROM timer").await,
        1,
        "the event-based gateway waits for the message or three days"
    );
    let published = run
        .publish("tour-approved", "Q-1", 0, json!({ "approved": true }))
        .await;
    assert_eq!(published["outcome"], "correlated", "{published}");
    let detail = run.instance(&big).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert_eq!(detail["variables"]["approved"], true);
    assert_eq!(
        commands(&detail),
        [
            "start",
            "complete_job",
            "complete_job",
            "complete_job",
            "correlate_message"
        ],
        "{detail}"
    );
    assert_eq!(
        count(&run.app, "SELECT count(*) FROM timer").await,
        0,
        "the message won: the timer went with the gateway"
    );

    // A small discount: nobody is told (the default flow), the subprocess ends normally and,
    // with no approval, the timer does.
    let small = run
        .start(
            "elementsTour",
            json!({ "segment": "small-business", "orderValue": 5000, "quoteId": "Q-2" }),
        )
        .await;
    assert!(run.jobs("tour-tell-finance").await.is_empty());
    assert!(run.jobs("tour-tell-account").await.is_empty());
    assert_eq!(run.fire_timers().await, 1);
    let detail = run.instance(&small).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert_eq!(detail["variables"]["discountPercent"], json!(5), "{detail}");
    assert_eq!(
        commands(&detail),
        ["start", "timer_fired:Event_timeout"],
        "{detail}"
    );

    // The first instance's incident, resolved now that the decision is deployed: the business
    // rule task runs again and the instance goes on.
    let detail = run.instance(&early).await;
    let incident = detail["incidents"][0]["incident_id"].as_str().unwrap();
    let resolved = post(
        &run.app,
        &run.operator,
        &format!("/v1/incidents/{incident}/resolution"),
        &json!({ "reason": "segmentDiscount deployed" }),
        None,
    )
    .await;
    assert_eq!(resolved.status, StatusCode::OK, "{}", resolved.body);
    let finance = run.jobs("tour-tell-finance").await;
    assert_eq!(finance.len(), 1, "the retried task decided 0.15 again");
    assert_eq!(finance[0]["process_instance_id"], early.as_str());
    let detail = run.instance(&early).await;
    assert_eq!(detail["incidents"][0]["status"], "resolved", "{detail}");
    assert_eq!(detail["variables"]["discount"], json!(0.15), "{detail}");
    let again = post(
        &run.app,
        &run.operator,
        &format!("/v1/incidents/{incident}/resolution"),
        &json!({ "reason": "twice" }),
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
}

const LISTENED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="listened" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="ship">
      <bpmn:extensionElements>
        <zeebe:taskDefinition type="lis-ship" />
        <zeebe:executionListeners>
          <zeebe:executionListener eventType="start" type="lis-audit" />
          <zeebe:executionListener eventType="end" type="lis-notify" retries="5" />
        </zeebe:executionListeners>
      </bpmn:extensionElements>
    </bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="ship" />
    <bpmn:sequenceFlow id="f2" sourceRef="ship" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn execution_listeners_run_as_jobs_around_the_task_through_the_job_api() {
    let run = Run::deploy(LISTENED).await;
    let instance = run.start("listened", json!({ "orderId": "O-9" })).await;
    assert!(
        run.jobs("lis-ship").await.is_empty(),
        "the task waits for its start listener"
    );
    let audit = run.job("lis-audit").await;
    assert_eq!(audit["variables"]["orderId"], "O-9");
    // Zeebe refuses a BPMN error from a listener's job; the job stays activated.
    let refused = post(
        &run.app,
        &run.worker,
        &format!("/v1/jobs/{}/error", audit["job_id"].as_str().unwrap()),
        &json!({ "error_code": "AUDIT_DOWN", "error_message": "no audit" }),
        None,
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("execution listener of ship"),
        "{}",
        refused.body
    );
    run.complete(&audit, json!({ "auditId": "A-1" })).await;
    let ship = run.job("lis-ship").await;
    assert_eq!(ship["variables"]["auditId"], "A-1");
    run.complete(&ship, json!({})).await;
    let notify = run.job("lis-notify").await;
    assert_eq!(notify["retries"], 5);
    assert_eq!(run.instance(&instance).await["status"], "active");
    run.complete(&notify, json!({})).await;
    assert_completed_cleanly(&run.instance(&instance).await);
}

fn tagged_callee(tag: &str, job_type: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="tagged" isExecutable="true">
    <bpmn:extensionElements><zeebe:versionTag value="{tag}" /></bpmn:extensionElements>
    <bpmn:startEvent id="s" />
    <bpmn:serviceTask id="work"><bpmn:extensionElements><zeebe:taskDefinition type="{job_type}" /></bpmn:extensionElements></bpmn:serviceTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="work" />
    <bpmn:sequenceFlow id="f2" sourceRef="work" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#
    )
}

const TAG_CALLER: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="tagCaller" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="tagged" bindingType="versionTag" versionTag="=tag" /></bpmn:extensionElements></bpmn:callActivity>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="call" />
    <bpmn:sequenceFlow id="f2" sourceRef="call" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn a_call_activity_bound_by_version_tag_starts_the_version_carrying_that_tag() {
    let run = Run::deploy(&tagged_callee("v1", "tag-work-1")).await;
    for xml in [tagged_callee("v2", "tag-work-2"), TAG_CALLER.to_owned()] {
        let d = deploy_bpmn(
            &run.app,
            &run.operator,
            "?allow_unsupported_job_types=true",
            &xml,
        )
        .await;
        assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
    }
    let caller = run.start("tagCaller", json!({ "tag": "v1" })).await;
    assert!(run.jobs("tag-work-2").await.is_empty(), "not the latest");
    let job = run.job("tag-work-1").await;
    run.complete(&job, json!({})).await;
    assert_completed_cleanly(&run.instance(&caller).await);

    let unknown = run.start("tagCaller", json!({ "tag": "v9" })).await;
    let detail = run.instance(&unknown).await;
    assert!(
        detail["incidents"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no process 'tagged' with version tag 'v9' is deployed"),
        "{detail}"
    );
}

fn tiers(tag: &str, answer: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="tiers" name="Tiers" namespace="http://cpq/tiers">
  <decision id="tier" name="tier">
    <extensionElements><zeebe:versionTag value="{tag}" /></extensionElements>
    <variable name="tier" typeRef="string" />
    <literalExpression><text>"{answer}"</text></literalExpression>
  </decision>
</definitions>"#
    )
}

const DECISION_BINDINGS: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="decisionBindings" isExecutable="true">
    <bpmn:startEvent id="s" />
    <bpmn:businessRuleTask id="byExpression"><bpmn:extensionElements><zeebe:calledDecision decisionId="=which" resultVariable="byExpression" /></bpmn:extensionElements></bpmn:businessRuleTask>
    <bpmn:businessRuleTask id="byDeployment"><bpmn:extensionElements><zeebe:calledDecision decisionId="tier" bindingType="deployment" resultVariable="byDeployment" /></bpmn:extensionElements></bpmn:businessRuleTask>
    <bpmn:businessRuleTask id="byTag"><bpmn:extensionElements><zeebe:calledDecision decisionId="tier" bindingType="versionTag" versionTag="=tag" resultVariable="byTag" /></bpmn:extensionElements></bpmn:businessRuleTask>
    <bpmn:endEvent id="e" />
    <bpmn:sequenceFlow id="f1" sourceRef="s" targetRef="byExpression" />
    <bpmn:sequenceFlow id="f2" sourceRef="byExpression" targetRef="byDeployment" />
    <bpmn:sequenceFlow id="f3" sourceRef="byDeployment" targetRef="byTag" />
    <bpmn:sequenceFlow id="f4" sourceRef="byTag" targetRef="e" />
  </bpmn:process>
</bpmn:definitions>"#;

/// Business rule tasks pick a decision's version as Zeebe's calledDecision does: the latest by
/// default (with the id an expression here, loaded when the run first evaluates it), binding
/// `deployment` the version deployed together with the process (`POST /v1/deployments`), binding
/// `versionTag` the latest carrying the decision's zeebe:versionTag.
#[tokio::test]
async fn a_business_rule_task_picks_its_decision_by_expression_deployment_or_version_tag() {
    let v1 = tiers("v1", "one");
    let run = Run::deploy_together(&[
        ("tiers.dmn", v1.as_str()),
        ("bindings.bpmn", DECISION_BINDINGS),
    ])
    .await;
    let second = deploy_bpmn(
        &run.app,
        &run.operator,
        "?resource_name=tiers.dmn",
        &tiers("v2", "two"),
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.body);
    assert_eq!(second.body["decisions"][0]["definition"]["version"], 2);
    assert_eq!(
        second.body["decisions"][0]["definition"]["version_tag"],
        "v2"
    );

    for (tag, by_tag) in [("v1", "one"), ("v2", "two")] {
        let instance = run
            .start("decisionBindings", json!({ "which": "tier", "tag": tag }))
            .await;
        let detail = run.instance(&instance).await;
        assert_completed_cleanly(&detail);
        assert_eq!(
            detail["variables"]["byExpression"], "two",
            "latest: {detail}"
        );
        assert_eq!(
            detail["variables"]["byDeployment"], "one",
            "deployed with the process: {detail}"
        );
        assert_eq!(detail["variables"]["byTag"], by_tag, "{detail}");
    }

    let unknown = run
        .start("decisionBindings", json!({ "which": "nope", "tag": "v1" }))
        .await;
    let detail = run.instance(&unknown).await;
    assert_eq!(
        detail["incidents"][0]["element_id"], "byExpression",
        "{detail}"
    );
    assert!(
        detail["incidents"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no decision with id 'nope' is deployed"),
        "{detail}"
    );
    let untagged = run
        .start("decisionBindings", json!({ "which": "tier", "tag": "v9" }))
        .await;
    let detail = run.instance(&untagged).await;
    assert_eq!(detail["incidents"][0]["element_id"], "byTag", "{detail}");
    assert!(
        detail["incidents"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no version of decision 'tier' carries the version tag 'v9'"),
        "{detail}"
    );
}
