//! Event subprocesses over HTTP (issue 16), on a Modeler-style file
//! (`tests/fixtures/order-handling-event-subprocesses.bpmn`): a non-interrupting message start in
//! the process runs beside the flow each time a note comes; an error from a task is caught by the
//! subprocess's error event subprocess and the process goes on; an interrupting timer start ends
//! everything else; the waits close with their scope.

use serde_json::json;

use crate::helpers::*;
use crate::process_run::{job_trail, Run};

fn file() -> String {
    std::fs::read_to_string(
        cpq_testkit::repo_root()
            .join("crates/api/tests/fixtures/order-handling-event-subprocesses.bpmn"),
    )
    .unwrap()
}

async fn waits(run: &Run, instance: &str) -> (i64, i64) {
    let timers = count(
        &run.app,
        &format!("SELECT count(*) FROM timer WHERE process_instance_id = '{instance}'"),
    )
    .await;
    let subscriptions = count(
        &run.app,
        &format!(
            "SELECT count(*) FROM message_subscription WHERE process_instance_id = '{instance}'"
        ),
    )
    .await;
    (timers, subscriptions)
}

#[tokio::test]
async fn notes_run_beside_the_order_an_error_is_caught_inside_and_the_waits_close_with_the_process()
{
    let run = Run::deploy(&file()).await;
    let order = run
        .start("orderHandling", json!({ "orderId": "O-1" }))
        .await;
    assert_eq!(
        waits(&run, &order).await,
        (1, 1),
        "the day timer and the note"
    );

    // Two notes: each is logged beside the order, which goes on.
    for text in ["leave it at the door", "ring twice"] {
        let note = run
            .publish("customer-note", "O-1", 0, json!({ "note": text }))
            .await;
        assert_eq!(note["outcome"], "correlated", "{note}");
        let log = run.job("esp-log-note").await;
        assert_eq!(log["variables"]["note"], text);
        run.complete(&log, json!({})).await;
    }
    assert_eq!(waits(&run, &order).await, (1, 1), "the note waits again");

    // Out of stock: the subprocess's error event subprocess back-orders, then the order goes on.
    let pick = run.job("esp-pick").await;
    run.throw_error(
        &pick,
        "OUT_OF_STOCK",
        "shelf empty",
        json!({ "missing": 3 }),
    )
    .await;
    let backorder = run.job("esp-backorder").await;
    assert_eq!(backorder["variables"]["missing"], 3);
    run.complete(&backorder, json!({})).await;
    let confirm = run.job("esp-confirm").await;
    run.complete(&confirm, json!({})).await;

    let detail = run.instance(&order).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert!(
        detail["incidents"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    let mut expected = [
        "esp-backorder@Task_backorder: completed",
        "esp-confirm@Task_confirm: completed",
        "esp-log-note@Task_logNote: completed",
        "esp-log-note@Task_logNote: completed",
        "esp-pick@Task_pick: error-thrown",
    ];
    expected.sort();
    assert_eq!(sorted_trail(&detail), expected, "{detail}");
    assert_eq!(waits(&run, &order).await, (0, 0), "closed with the process");
    let late = run.publish("customer-note", "O-1", 0, json!({})).await;
    assert_eq!(late["outcome"], "dropped", "{late}");
}

/// The job trail, sorted: the order of creation between the notes' jobs and the others is not
/// what is asserted.
fn sorted_trail(detail: &serde_json::Value) -> Vec<String> {
    let mut trail = job_trail(detail);
    trail.sort();
    trail
}

#[tokio::test]
async fn a_day_without_handling_escalates_and_ends_the_order_handling() {
    let run = Run::deploy(&file()).await;
    let order = run
        .start("orderHandling", json!({ "orderId": "O-2" }))
        .await;
    assert_eq!(run.fire_timers().await, 1);
    assert!(
        run.jobs("esp-pick").await.is_empty(),
        "the interrupting event subprocess ended the handling"
    );
    let escalate = run.job("esp-escalate").await;
    assert_eq!(
        waits(&run, &order).await,
        (0, 0),
        "the note no longer starts anything"
    );
    let note = run.publish("customer-note", "O-2", 0, json!({})).await;
    assert_eq!(note["outcome"], "dropped", "{note}");
    run.complete(&escalate, json!({})).await;
    let detail = run.instance(&order).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert!(run.jobs("esp-confirm").await.is_empty());
    let cancelled = count(
        &run.app,
        &format!("SELECT count(*) FROM job WHERE process_instance_id = '{order}' AND job_type = 'esp-pick' AND status = 'cancelled'"),
    )
    .await;
    assert_eq!(cancelled, 1, "{detail}");
}

/// A subprocess with two message event subprocesses and a timer boundary event.
const NESTED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="Definitions_nested" targetNamespace="http://bpmn.io/schema/bpmn">
  <bpmn:message id="Message_chase" name="nw-chase"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:message id="Message_note" name="nw-note"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:process id="nestedWaits" isExecutable="true">
    <bpmn:startEvent id="start" />
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="handling" />
    <bpmn:subProcess id="handling">
      <bpmn:startEvent id="handling_start" />
      <bpmn:sequenceFlow id="h1" sourceRef="handling_start" targetRef="work" />
      <bpmn:serviceTask id="work"><bpmn:extensionElements><zeebe:taskDefinition type="nw-work" /></bpmn:extensionElements></bpmn:serviceTask>
      <bpmn:sequenceFlow id="h2" sourceRef="work" targetRef="handling_end" />
      <bpmn:endEvent id="handling_end" />
      <bpmn:subProcess id="chase" triggeredByEvent="true">
        <bpmn:startEvent id="chase_start"><bpmn:messageEventDefinition messageRef="Message_chase" /></bpmn:startEvent>
        <bpmn:sequenceFlow id="c1" sourceRef="chase_start" targetRef="chase_task" />
        <bpmn:serviceTask id="chase_task"><bpmn:extensionElements><zeebe:taskDefinition type="nw-chase" /></bpmn:extensionElements></bpmn:serviceTask>
        <bpmn:sequenceFlow id="c2" sourceRef="chase_task" targetRef="chase_end" />
        <bpmn:endEvent id="chase_end" />
      </bpmn:subProcess>
      <bpmn:subProcess id="note" triggeredByEvent="true">
        <bpmn:startEvent id="note_start" isInterrupting="false"><bpmn:messageEventDefinition messageRef="Message_note" /></bpmn:startEvent>
        <bpmn:sequenceFlow id="n1" sourceRef="note_start" targetRef="note_end" />
        <bpmn:endEvent id="note_end" />
      </bpmn:subProcess>
    </bpmn:subProcess>
    <bpmn:boundaryEvent id="too_late" attachedToRef="handling"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>
    <bpmn:sequenceFlow id="f3" sourceRef="too_late" targetRef="late_end" />
    <bpmn:endEvent id="late_end" />
    <bpmn:sequenceFlow id="f2" sourceRef="handling" targetRef="end" />
    <bpmn:endEvent id="end" />
  </bpmn:process>
</bpmn:definitions>"#;

#[tokio::test]
async fn an_interrupting_event_subprocess_in_a_subprocess_closes_the_other_ones_waits_only() {
    let run = Run::deploy(NESTED).await;
    let order = run.start("nestedWaits", json!({ "orderId": "O-3" })).await;
    assert_eq!(
        waits(&run, &order).await,
        (1, 2),
        "the boundary timer, two messages"
    );
    let chase = run.publish("nw-chase", "O-3", 0, json!({})).await;
    assert_eq!(chase["outcome"], "correlated", "{chase}");
    assert!(
        run.jobs("nw-work").await.is_empty(),
        "the work was interrupted"
    );
    assert_eq!(
        waits(&run, &order).await,
        (1, 0),
        "the note no longer waits; the subprocess's boundary timer does"
    );
    let note = run.publish("nw-note", "O-3", 0, json!({})).await;
    assert_eq!(note["outcome"], "dropped", "{note}");
    let chasing = run.job("nw-chase").await;
    run.complete(&chasing, json!({})).await;
    let detail = run.instance(&order).await;
    assert_eq!(detail["status"], "completed", "{detail}");
    assert_eq!(
        waits(&run, &order).await,
        (0, 0),
        "closed with the subprocess"
    );
}
