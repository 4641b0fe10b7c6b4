//! Golden tests of event subprocesses (issue 16): timer, message, error, escalation and signal starts,
//! interrupting and not, in the process and in an embedded subprocess; and signal events.

use super::*;

fn process_with(root: &str, body: &str) -> Process {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:error id="Err_Bad" name="bad" errorCode="BAD" />
  <bpmn:escalation id="Esc_Late" name="late" escalationCode="LATE" />
  <bpmn:message id="M_Note" name="note"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  {root}
  <bpmn:process id="p" isExecutable="true">{body}</bpmn:process>
</bpmn:definitions>"#
    );
    read(&xml)
        .unwrap_or_else(|e| panic!("{e}"))
        .processes
        .remove(0)
}

/// An event subprocess `id` whose start event `start` holds `definition`, then runs a task.
fn event_sub(id: &str, start: &str, interrupting: bool, definition: &str, job: &str) -> String {
    format!(
        r#"<bpmn:subProcess id="{id}" triggeredByEvent="true">
          <bpmn:startEvent id="{start}" isInterrupting="{interrupting}">{definition}</bpmn:startEvent>
          {}
          <bpmn:endEvent id="{id}_end" />
          {}{}
        </bpmn:subProcess>"#,
        task(&format!("{id}_task"), job),
        flow(&format!("{id}_f1"), start, &format!("{id}_task")),
        flow(
            &format!("{id}_f2"),
            &format!("{id}_task"),
            &format!("{id}_end")
        ),
    )
}

const TIMER: &str = r#"<bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition>"#;
const NOTE: &str = r#"<bpmn:messageEventDefinition messageRef="M_Note" />"#;

fn main_flow(extra: &str) -> Process {
    process_with(
        "",
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            task("work", "work"),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "work"),
            flow("f2", "work", "e"),
            extra.to_owned(),
        ]
        .concat(),
    )
}

#[test]
fn an_interrupting_timer_event_subprocess_ends_the_process_scope_and_runs_instead() {
    let p = main_flow(&event_sub("late", "late_start", true, TIMER, "chase"));
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["work"]);
    assert_eq!(d.timers.len(), 1, "the process scope's timer waits");
    assert_eq!(d.timers[0].0, ROOT);
    d.fire("late_start");
    assert_eq!(d.open(), ["late_task"], "the work's job was cancelled");
    d.complete("late_task", json!({ "chased": true }));
    assert_eq!(d.completed, 1);
    assert_eq!(d.state.variables["chased"], true);

    // Done in time: the process completes and its event subprocess stops waiting.
    let mut t = Driver::start(&p, json!({}));
    t.complete("work", json!({}));
    assert_eq!(t.completed, 1);
    assert!(t.timers.is_empty(), "{:?}", t.timers);
}

#[test]
fn a_non_interrupting_message_event_subprocess_runs_beside_the_flow_each_time_and_keeps_it_open() {
    let p = main_flow(&event_sub("noted", "noted_start", false, NOTE, "log"));
    let mut d = Driver::start(&p, json!({ "orderId": "O-1" }));
    assert_eq!(d.subscriptions.len(), 1);
    d.correlate("note", "O-1", json!({ "text": "first" }));
    assert_eq!(d.open(), ["noted_task", "work"]);
    assert_eq!(d.state.variables["text"], "first");
    assert_eq!(d.subscriptions.len(), 1, "it waits for the next note");
    d.correlate("note", "O-1", json!({ "text": "second" }));
    assert_eq!(d.open(), ["noted_task", "noted_task", "work"]);
    d.complete("work", json!({}));
    assert_eq!(d.completed, 0, "the scope waits for its event subprocesses");
    d.complete("noted_task", json!({}));
    d.complete("noted_task", json!({}));
    assert_eq!(d.completed, 1);
    assert!(d.subscriptions.is_empty(), "{:?}", d.subscriptions);
}

fn with_risky_subprocess(inside: &str, boundary: &str) -> Process {
    process_with(
        "",
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            format!(
                r#"<bpmn:subProcess id="sub"><bpmn:startEvent id="ss" />{}<bpmn:endEvent id="se" />{}{}{inside}</bpmn:subProcess>"#,
                task("risky", "risky"),
                flow("sf1", "ss", "risky"),
                flow("sf2", "risky", "se"),
            ),
            boundary.to_owned(),
            task("next", "next"),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "sub"),
            flow("f2", "sub", "next"),
            flow("f3", "next", "e"),
        ]
        .concat(),
    )
}

fn throw_from(d: &mut Driver, element_id: &str, code: &str, variables: Value) {
    // The job that throws is done (the store closes it): no cancel effect comes for it.
    let i = d.jobs.iter().position(|j| j.1 == element_id).unwrap();
    let (key, ..) = d.jobs.remove(i);
    d.send(Command::ThrowError {
        element: key,
        code: code.into(),
        message: "it broke".into(),
        variables: vars(variables),
    });
}

#[test]
fn an_error_event_subprocess_catches_an_error_of_its_scope_and_the_scope_then_completes() {
    let error = r#"<bpmn:errorEventDefinition errorRef="Err_Bad" />"#;
    let p = with_risky_subprocess(&event_sub("fix", "fix_start", true, error, "repair"), "");
    let mut d = Driver::start(&p, json!({}));
    throw_from(&mut d, "risky", "BAD", json!({ "reason": "stock" }));
    assert_eq!(d.open(), ["fix_task"]);
    assert!(d.incidents.is_empty(), "{:?}", d.incidents);
    assert_eq!(d.job_vars("fix_task")["reason"], "stock");
    d.complete("fix_task", json!({}));
    assert_eq!(
        d.open(),
        ["next"],
        "the subprocess completed through its event subprocess"
    );

    // Another code is not caught: an incident, as in Zeebe.
    let mut other = Driver::start(&p, json!({}));
    throw_from(&mut other, "risky", "ELSE", json!({}));
    assert_eq!(other.incidents.len(), 1, "{:?}", other.incidents);
    assert_eq!(other.open(), Vec::<&str>::new());
}

#[test]
fn an_error_event_subprocess_inside_the_scope_wins_over_a_boundary_event_on_it() {
    let error = r#"<bpmn:errorEventDefinition errorRef="Err_Bad" />"#;
    let boundary = format!(
        r#"<bpmn:boundaryEvent id="caught" attachedToRef="sub">{error}</bpmn:boundaryEvent>{}<bpmn:endEvent id="e2" />{}{}"#,
        task("outside", "outside"),
        flow("fb1", "caught", "outside"),
        flow("fb2", "outside", "e2"),
    );
    let p = with_risky_subprocess(
        &event_sub("fix", "fix_start", true, error, "repair"),
        &boundary,
    );
    let mut d = Driver::start(&p, json!({}));
    throw_from(&mut d, "risky", "BAD", json!({}));
    assert_eq!(d.open(), ["fix_task"]);

    // Without the event subprocess the boundary event catches it.
    let q = with_risky_subprocess("", &boundary);
    let mut b = Driver::start(&q, json!({}));
    throw_from(&mut b, "risky", "BAD", json!({}));
    assert_eq!(b.open(), ["outside"]);
}

#[test]
fn an_escalation_uncaught_in_a_subprocess_starts_the_process_scopes_non_interrupting_event_subprocess(
) {
    let raise = format!(
        r#"<bpmn:intermediateThrowEvent id="raise"><bpmn:escalationEventDefinition escalationRef="Esc_Late" /></bpmn:intermediateThrowEvent>{}"#,
        flow("sf0", "ss", "raise"),
    );
    // The subprocess: ss -> raise -> risky -> se (the flows from `with_risky_subprocess` are
    // replaced by those of this body).
    let p = process_with(
        "",
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            format!(
                r#"<bpmn:subProcess id="sub"><bpmn:startEvent id="ss" />{raise}{}<bpmn:endEvent id="se" />{}{}</bpmn:subProcess>"#,
                task("risky", "risky"),
                flow("sf1", "raise", "risky"),
                flow("sf2", "risky", "se"),
            ),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "sub"),
            flow("f2", "sub", "e"),
            event_sub(
                "told",
                "told_start",
                false,
                r#"<bpmn:escalationEventDefinition escalationRef="Esc_Late" />"#,
                "tell",
            ),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["risky", "told_task"], "the throw event went on");
    d.complete("told_task", json!({}));
    d.complete("risky", json!({}));
    assert_eq!(d.completed, 1);
}

#[test]
fn a_timer_event_subprocess_of_a_subprocess_waits_only_while_the_subprocess_runs() {
    let p = with_risky_subprocess(&event_sub("slow", "slow_start", true, TIMER, "hurry"), "");
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.timers.len(), 1);
    let sub_key = d.timers[0].0;
    assert_ne!(sub_key, ROOT, "the subprocess instance owns it");
    d.complete("risky", json!({}));
    assert!(d.timers.is_empty(), "closed with the subprocess");
    assert_eq!(d.open(), ["next"]);

    let mut late = Driver::start(&p, json!({}));
    late.fire("slow_start");
    assert_eq!(late.open(), ["slow_task"]);
    late.complete("slow_task", json!({}));
    assert_eq!(late.open(), ["next"]);
}

#[test]
fn an_interrupting_event_subprocess_of_a_subprocess_closes_its_siblings_waits_but_not_the_boundarys(
) {
    let late = r#"<bpmn:timerEventDefinition><bpmn:timeDuration>PT2H</bpmn:timeDuration></bpmn:timerEventDefinition>"#;
    let boundary = format!(
        r#"<bpmn:boundaryEvent id="too_late" attachedToRef="sub">{late}</bpmn:boundaryEvent>{}<bpmn:endEvent id="e2" />{}{}"#,
        task("give_up", "give_up"),
        flow("fb1", "too_late", "give_up"),
        flow("fb2", "give_up", "e2"),
    );
    let p = with_risky_subprocess(
        &[
            event_sub("slow", "slow_start", true, TIMER, "hurry"),
            event_sub("noted", "noted_start", false, NOTE, "log"),
        ]
        .concat(),
        &boundary,
    );
    let mut d = Driver::start(&p, json!({ "orderId": "O-1" }));
    let mut timers: Vec<&str> = d.timers.iter().map(|t| t.1.as_str()).collect();
    timers.sort_unstable();
    assert_eq!(timers, ["slow_start", "too_late"]);
    assert_eq!(
        d.subscriptions.len(),
        1,
        "the message event subprocess waits"
    );
    d.fire("slow_start");
    assert_eq!(d.open(), ["slow_task"]);
    assert!(
        d.subscriptions.is_empty(),
        "the interrupted scope's other event subprocess no longer waits: {:?}",
        d.subscriptions
    );
    let timers: Vec<&str> = d.timers.iter().map(|t| t.1.as_str()).collect();
    assert_eq!(
        timers,
        ["too_late"],
        "the subprocess's boundary timer still waits"
    );
    d.fire("too_late");
    assert_eq!(
        d.open(),
        ["give_up"],
        "the boundary event interrupted the subprocess"
    );
}

#[test]
fn signals_are_caught_by_catch_boundary_and_event_subprocess_starts_and_thrown_with_the_events_variables(
) {
    let p = process_with(
        r#"<bpmn:signal id="Sig_Stop" name="stop" /><bpmn:signal id="Sig_Go" name="go" /><bpmn:signal id="Sig_Done" name="done" />"#,
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            r#"<bpmn:intermediateCatchEvent id="go"><bpmn:signalEventDefinition signalRef="Sig_Go" /></bpmn:intermediateCatchEvent>"#.to_owned(),
            task("work", "work"),
            r#"<bpmn:boundaryEvent id="stopped" attachedToRef="work"><bpmn:signalEventDefinition signalRef="Sig_Stop" /></bpmn:boundaryEvent>"#.to_owned(),
            r#"<bpmn:endEvent id="e"><bpmn:extensionElements><zeebe:ioMapping><zeebe:input source="=count" target="total" /></zeebe:ioMapping></bpmn:extensionElements><bpmn:signalEventDefinition signalRef="Sig_Done" /></bpmn:endEvent>"#.to_owned(),
            r#"<bpmn:endEvent id="halted" />"#.to_owned(),
            flow("f1", "s", "go"),
            flow("f2", "go", "work"),
            flow("f3", "work", "e"),
            flow("f4", "stopped", "halted"),
            event_sub(
                "ping",
                "ping_start",
                false,
                r#"<bpmn:signalEventDefinition signalRef="Sig_Go" />"#,
                "pong",
            ),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({ "count": 3 }));
    assert_eq!(
        d.signal_subscriptions.len(),
        2,
        "{:?}",
        d.signal_subscriptions
    );
    assert_eq!(d.signal("go", json!({ "by": "ops" })), 2);
    assert_eq!(d.open(), ["ping_task", "work"]);
    assert_eq!(d.state.variables["by"], "ops");
    let mut names: Vec<&str> = d
        .signal_subscriptions
        .iter()
        .map(|s| s.2.as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["go", "stop"],
        "the boundary waits; the event subprocess waits again"
    );
    d.complete("ping_task", json!({}));
    d.complete("work", json!({}));
    assert_eq!(d.completed, 1);
    assert_eq!(d.broadcasts.len(), 1);
    assert_eq!(d.broadcasts[0].0, "done");
    assert_eq!(
        d.broadcasts[0].1["total"], 3,
        "the end event's own variables"
    );
    assert!(
        d.signal_subscriptions.is_empty(),
        "{:?}",
        d.signal_subscriptions
    );

    let mut stop = Driver::start(&p, json!({}));
    stop.signal("go", json!({}));
    assert_eq!(stop.signal("stop", json!({})), 1);
    assert_eq!(stop.open(), ["ping_task"], "the boundary ended the work");
    stop.complete("ping_task", json!({}));
    assert_eq!(stop.completed, 1);
    assert!(
        stop.broadcasts.is_empty(),
        "ended at 'halted', no signal thrown"
    );
}

#[test]
fn signal_names_given_by_expressions_are_evaluated_where_the_event_is_entered() {
    let p = process_with(
        r#"<bpmn:signal id="Sig_Wait" name="=&quot;ready-&quot; + orderId" /><bpmn:signal id="Sig_Tell" name="=&quot;done-&quot; + orderId" />"#,
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            r#"<bpmn:intermediateCatchEvent id="wait"><bpmn:signalEventDefinition signalRef="Sig_Wait" /></bpmn:intermediateCatchEvent>"#.to_owned(),
            r#"<bpmn:endEvent id="e"><bpmn:signalEventDefinition signalRef="Sig_Tell" /></bpmn:endEvent>"#.to_owned(),
            flow("f1", "s", "wait"),
            flow("f2", "wait", "e"),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({ "orderId": "O-7" }));
    let names: Vec<&str> = d
        .signal_subscriptions
        .iter()
        .map(|s| s.2.as_str())
        .collect();
    assert_eq!(names, ["ready-O-7"]);
    assert_eq!(
        d.signal("ready-O-8", json!({})),
        0,
        "another order's signal"
    );
    assert_eq!(d.signal("ready-O-7", json!({})), 1);
    assert_eq!(d.completed, 1);
    assert_eq!(d.broadcasts.len(), 1);
    assert_eq!(d.broadcasts[0].0, "done-O-7");

    // Null is no name: an incident on the catch event.
    let d = Driver::start(&p, json!({}));
    assert!(d.signal_subscriptions.is_empty());
    assert_eq!(d.state.incidents.len(), 1, "{:?}", d.state.incidents);
    assert!(
        d.state
            .incidents
            .values()
            .all(|m| m.contains("signal name '=\"ready-\" + orderId' of wait")),
        "{:?}",
        d.state.incidents
    );
}
