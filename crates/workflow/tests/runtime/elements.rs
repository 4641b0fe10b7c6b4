//! Golden tests of the elements added for Camunda 8 compatibility (issue 16): pass-through tasks,
//! script and business rule tasks, link events, inclusive and event-based gateways, escalations,
//! call activities, and job properties written as FEEL.

use super::*;

/// A process whose definitions also hold `root` (escalations, messages).
fn process_with(root: &str, body: &str) -> Process {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  {root}
  <bpmn:process id="p" isExecutable="true">{body}</bpmn:process>
</bpmn:definitions>"#
    );
    read(&xml)
        .unwrap_or_else(|e| panic!("{e}"))
        .processes
        .remove(0)
}

fn seq(parts: &[String]) -> String {
    parts.concat()
}

fn start_end() -> (String, String) {
    (
        r#"<bpmn:startEvent id="s" />"#.to_owned(),
        r#"<bpmn:endEvent id="e" />"#.to_owned(),
    )
}

fn cond_flow(id: &str, from: &str, to: &str, condition: &str) -> String {
    format!(
        r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}"><bpmn:conditionExpression>{condition}</bpmn:conditionExpression></bpmn:sequenceFlow>"#
    )
}

#[test]
fn manual_and_plain_tasks_pass_through_with_their_mappings() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:manualTask id="m"><bpmn:extensionElements><zeebe:ioMapping><zeebe:output source="=count + 1" target="count" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:manualTask>"#.into(),
        r#"<bpmn:task id="t" />"#.into(),
        task("a", "after"),
        e,
        flow("f1", "s", "m"),
        flow("f2", "m", "t"),
        flow("f3", "t", "a"),
        flow("f4", "a", "e"),
    ]));
    let mut d = Driver::start(&p, json!({ "count": 1 }));
    assert_eq!(d.open(), ["a"]);
    assert_eq!(d.job_vars("a")["count"], 2);
    d.complete("a", json!({}));
    assert_eq!(d.state.status, InstanceStatus::Completed);
}

#[test]
fn a_feel_script_task_sets_its_result_variable_and_a_failing_one_raises_an_incident() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:scriptTask id="sum"><bpmn:extensionElements><zeebe:script expression="=assert(price, price &gt; 0) * qty + fee" resultVariable="total" /></bpmn:extensionElements></bpmn:scriptTask>"#.into(),
        task("a", "invoice"),
        e,
        flow("f1", "s", "sum"),
        flow("f2", "sum", "a"),
        flow("f3", "a", "e"),
    ]));
    let d = Driver::start(&p, json!({ "price": 10, "qty": 2, "fee": 5 }));
    assert_eq!(d.open(), ["a"]);
    assert_eq!(d.job_vars("a")["total"], 25);
    assert_eq!(d.state.variables["total"], 25, "set in the process scope");

    let broken = Driver::start(&p, json!({ "price": -1, "qty": 2, "fee": 5 }));
    assert_eq!(broken.open(), Vec::<&str>::new());
    assert_eq!(broken.incidents.len(), 1, "{:?}", broken.incidents);
    assert!(
        broken.incidents[0].starts_with("sum: script"),
        "{:?}",
        broken.incidents
    );
}

#[test]
fn job_based_script_and_business_rule_tasks_create_jobs_and_a_called_decision_without_dmn_is_an_incident(
) {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:scriptTask id="js"><bpmn:extensionElements><zeebe:taskDefinition type="run-script" /><zeebe:taskHeaders><zeebe:header key="language" value="javascript" /></zeebe:taskHeaders></bpmn:extensionElements></bpmn:scriptTask>"#.into(),
        r#"<bpmn:businessRuleTask id="rules"><bpmn:extensionElements><zeebe:taskDefinition type="evaluate-rules" retries="2" /></bpmn:extensionElements></bpmn:businessRuleTask>"#.into(),
        r#"<bpmn:businessRuleTask id="dmn"><bpmn:extensionElements><zeebe:calledDecision decisionId="discount" resultVariable="discount" /></bpmn:extensionElements></bpmn:businessRuleTask>"#.into(),
        e,
        flow("f1", "s", "js"),
        flow("f2", "js", "rules"),
        flow("f3", "rules", "dmn"),
        flow("f4", "dmn", "e"),
    ]));
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.jobs[0].2, "run-script");
    d.complete("js", json!({ "scripted": true }));
    assert_eq!(d.jobs[0].2, "evaluate-rules");
    assert_eq!(d.job_vars("rules")["scripted"], true);
    d.complete("rules", json!({}));
    assert_eq!(
        d.incidents,
        ["dmn: decision 'discount': no decision with id 'discount' is deployed"]
    );
}

#[test]
fn a_link_throw_continues_at_the_catch_of_its_name() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:intermediateThrowEvent id="go"><bpmn:linkEventDefinition name="later" /></bpmn:intermediateThrowEvent>"#.into(),
        r#"<bpmn:intermediateCatchEvent id="land"><bpmn:linkEventDefinition name="later" /></bpmn:intermediateCatchEvent>"#.into(),
        task("a", "after-link"),
        e,
        flow("f1", "s", "go"),
        flow("f2", "land", "a"),
        flow("f3", "a", "e"),
    ]));
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["a"]);
    d.complete("a", json!({}));
    assert_eq!(d.state.status, InstanceStatus::Completed);
}

/// s → fork (inclusive) → a [x > 1], b [x > 5], c (default) → join (inclusive) → after → e
fn inclusive() -> Process {
    let (s, e) = start_end();
    process(&seq(&[
        s,
        r#"<bpmn:inclusiveGateway id="fork" default="fc" />"#.into(),
        task("a", "a"),
        task("b", "b"),
        task("c", "c"),
        r#"<bpmn:inclusiveGateway id="join" />"#.into(),
        task("after", "after"),
        e,
        flow("f0", "s", "fork"),
        cond_flow("fa", "fork", "a", "=x &gt; 1"),
        cond_flow("fb", "fork", "b", "=x &gt; 5"),
        flow("fc", "fork", "c"),
        flow("ja", "a", "join"),
        flow("jb", "b", "join"),
        flow("jc", "c", "join"),
        flow("j", "join", "after"),
        flow("fe", "after", "e"),
    ]))
}

#[test]
fn an_inclusive_gateway_takes_every_true_flow_and_joins_only_the_tokens_that_were_sent() {
    let p = inclusive();
    let mut both = Driver::start(&p, json!({ "x": 10 }));
    assert_eq!(both.open(), ["a", "b"]);
    both.complete("b", json!({}));
    assert_eq!(
        both.open(),
        ["a"],
        "the join waits for a, which can still come"
    );
    both.complete("a", json!({}));
    assert_eq!(both.open(), ["after"], "joined once");
    both.complete("after", json!({}));
    assert_eq!(both.state.status, InstanceStatus::Completed);

    let mut one = Driver::start(&p, json!({ "x": 3 }));
    assert_eq!(one.open(), ["a"]);
    one.complete("a", json!({}));
    assert_eq!(one.open(), ["after"], "nothing else can reach the join");

    let mut none = Driver::start(&p, json!({ "x": 0 }));
    assert_eq!(none.open(), ["c"], "no condition holds: the default flow");
    none.complete("c", json!({}));
    assert_eq!(none.open(), ["after"]);
}

#[test]
fn an_inclusive_gateway_without_a_true_condition_or_default_raises_an_incident() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:inclusiveGateway id="fork" />"#.into(),
        task("a", "a"),
        e,
        flow("f0", "s", "fork"),
        cond_flow("fa", "fork", "a", "=x &gt; 1"),
        flow("fe", "a", "e"),
    ]));
    let d = Driver::start(&p, json!({ "x": 0 }));
    assert_eq!(d.incidents.len(), 1, "{:?}", d.incidents);
    assert!(d.incidents[0].contains("no outgoing flow's condition is true"));
}

fn event_based() -> Process {
    let (s, e) = start_end();
    process_with(
        r#"<bpmn:message id="M_Paid" name="paid"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>"#,
        &seq(&[
            s,
            r#"<bpmn:eventBasedGateway id="g" />"#.into(),
            r#"<bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="M_Paid" /></bpmn:intermediateCatchEvent>"#.into(),
            r#"<bpmn:intermediateCatchEvent id="late"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1H</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"#.into(),
            task("ship", "ship"),
            task("remind", "remind"),
            e,
            flow("f0", "s", "g"),
            flow("fp", "g", "paid"),
            flow("fl", "g", "late"),
            flow("f1", "paid", "ship"),
            flow("f2", "late", "remind"),
            flow("f3", "ship", "e"),
            r#"<bpmn:endEvent id="e2" />"#.into(),
            flow("f4", "remind", "e2"),
        ]),
    )
}

#[test]
fn an_event_based_gateway_follows_the_first_event_and_drops_the_other_wait() {
    let p = event_based();
    let mut d = Driver::start(&p, json!({ "orderId": "O-7" }));
    assert_eq!((d.timers.len(), d.subscriptions.len()), (1, 1));
    d.correlate("paid", "O-7", json!({ "amount": 99 }));
    assert_eq!(d.open(), ["ship"]);
    assert_eq!(d.job_vars("ship")["amount"], 99);
    assert_eq!(
        (d.timers.len(), d.subscriptions.len()),
        (0, 0),
        "the timer is cancelled"
    );

    let mut t = Driver::start(&p, json!({ "orderId": "O-8" }));
    t.fire("late");
    assert_eq!(t.open(), ["remind"]);
    assert_eq!(t.subscriptions.len(), 0, "the message wait is closed");
}

fn escalating(interrupting: bool, code: &str) -> Process {
    let (s, e) = start_end();
    process_with(
        r#"<bpmn:escalation id="Esc_Late" name="late" escalationCode="LATE" />
           <bpmn:escalation id="Esc_Other" name="other" escalationCode="OTHER" />"#,
        &seq(&[
            s,
            format!(
                r#"<bpmn:subProcess id="sub">
                  <bpmn:startEvent id="ss" />
                  <bpmn:intermediateThrowEvent id="raise"><bpmn:escalationEventDefinition escalationRef="{code}" /></bpmn:intermediateThrowEvent>
                  {}
                  <bpmn:endEvent id="se" />
                  {}{}{}
                </bpmn:subProcess>"#,
                task("inner", "inner"),
                flow("s1", "ss", "raise"),
                flow("s2", "raise", "inner"),
                flow("s3", "inner", "se"),
            ),
            format!(
                r#"<bpmn:boundaryEvent id="caught" attachedToRef="sub" cancelActivity="{interrupting}"><bpmn:escalationEventDefinition escalationRef="Esc_Late" /></bpmn:boundaryEvent>"#
            ),
            task("handle", "handle"),
            e,
            r#"<bpmn:endEvent id="e2" />"#.into(),
            flow("f0", "s", "sub"),
            flow("f1", "sub", "e"),
            flow("f2", "caught", "handle"),
            flow("f3", "handle", "e2"),
        ]),
    )
}

#[test]
fn an_escalation_is_caught_by_the_subprocess_boundary_interrupting_or_not_and_ignored_uncaught() {
    let p = escalating(true, "Esc_Late");
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["handle"], "interrupting: the subprocess ended");
    d.complete("handle", json!({}));
    assert_eq!(d.state.status, InstanceStatus::Completed);

    let p = escalating(false, "Esc_Late");
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(
        d.open(),
        ["handle", "inner"],
        "non-interrupting: both go on"
    );
    d.complete("inner", json!({}));
    d.complete("handle", json!({}));
    assert_eq!(d.state.status, InstanceStatus::Completed);

    let p = escalating(true, "Esc_Other");
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(
        d.open(),
        ["inner"],
        "no catch for OTHER: the thrower continues"
    );
    assert!(d.incidents.is_empty(), "{:?}", d.incidents);
    d.complete("inner", json!({}));
    assert_eq!(d.state.status, InstanceStatus::Completed);
}

#[test]
fn job_type_and_retries_written_as_feel_are_evaluated_when_the_job_is_created() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:serviceTask id="a"><bpmn:extensionElements><zeebe:taskDefinition type="=&quot;responseFor_&quot; + requestId" retries="=tries * 2" /></bpmn:extensionElements></bpmn:serviceTask>"#.into(),
        e,
        flow("f1", "s", "a"),
        flow("f2", "a", "e"),
    ]));
    let (_, effects) = apply(
        &p,
        &InstanceState::new(),
        &Command::Start {
            variables: vars(json!({ "requestId": "R1", "tries": 4 })),
        },
        Utc::now(),
    )
    .unwrap();
    let job = effects
        .iter()
        .find_map(|e| match e {
            Effect::CreateJob {
                job_type, retries, ..
            } => Some((job_type.clone(), *retries)),
            _ => None,
        })
        .unwrap();
    assert_eq!(job, ("responseFor_R1".to_owned(), 8));

    let d = Driver::start(&p, json!({ "tries": 1 }));
    assert_eq!(d.incidents.len(), 1, "{:?}", d.incidents);
    assert!(d.incidents[0].contains("job type"), "{:?}", d.incidents);
}

fn calling(propagate_child: bool, outputs: &str) -> Process {
    let (s, e) = start_end();
    process(&seq(&[
        s,
        format!(
            r#"<bpmn:callActivity id="call"><bpmn:extensionElements><zeebe:calledElement processId="=child" propagateAllChildVariables="{propagate_child}" />
               <zeebe:ioMapping><zeebe:input source="=1" target="depth" />{outputs}</zeebe:ioMapping></bpmn:extensionElements></bpmn:callActivity>"#
        ),
        r#"<bpmn:boundaryEvent id="slow" attachedToRef="call"><bpmn:timerEventDefinition><bpmn:timeDuration>PT1M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>"#.into(),
        task("after", "after"),
        e,
        r#"<bpmn:endEvent id="e2" />"#.into(),
        flow("f1", "s", "call"),
        flow("f2", "call", "after"),
        flow("f3", "after", "e"),
        flow("f4", "slow", "e2"),
    ]))
}

#[test]
fn a_call_activity_starts_its_child_with_the_callers_variables_and_continues_on_its_completion() {
    let p = calling(true, "");
    let mut d = Driver::start(&p, json!({ "child": "billing", "order": "O-1" }));
    assert_eq!(d.jobs[0].2, "child:billing", "the called id is FEEL");
    let passed = d.job_vars("call");
    assert_eq!(
        (passed["order"].clone(), passed["depth"].clone()),
        (json!("O-1"), json!(1))
    );
    let key = d.jobs[0].0;
    d.jobs.clear();
    d.send(Command::CompleteChild {
        element: key,
        variables: vars(json!({ "invoice": "INV-1" })),
    });
    assert_eq!(d.open(), ["after"]);
    assert_eq!(
        d.job_vars("after")["invoice"],
        "INV-1",
        "all child variables come back"
    );

    // Without propagation, only the output mappings (which see the child's variables) do.
    let p = calling(
        false,
        r#"<zeebe:output source="=invoice" target="billed" />"#,
    );
    let mut d = Driver::start(&p, json!({ "child": "billing" }));
    let key = d.jobs[0].0;
    d.jobs.clear();
    d.send(Command::CompleteChild {
        element: key,
        variables: vars(json!({ "invoice": "INV-2", "noise": 1 })),
    });
    let after = d.job_vars("after");
    assert_eq!(after["billed"], "INV-2");
    assert!(
        !after.contains_key("noise") && !after.contains_key("invoice"),
        "{after:?}"
    );
}

#[test]
fn an_interrupted_or_cancelled_call_activity_cancels_its_child_and_a_missing_callee_is_an_incident()
{
    let p = calling(true, "");
    let mut d = Driver::start(&p, json!({ "child": "billing" }));
    let key = d.jobs[0].0;
    d.fire("slow");
    assert_eq!(
        d.cancelled_children,
        [key],
        "the boundary timer ended the call"
    );
    assert_eq!(d.state.status, InstanceStatus::Completed);

    let mut d = Driver::start(&p, json!({ "child": "billing" }));
    let key = d.jobs[0].0;
    d.send(Command::Cancel);
    assert_eq!(d.cancelled_children, [key]);

    let mut d = Driver::start(&p, json!({ "child": "nowhere" }));
    let key = d.jobs[0].0;
    d.send(Command::ChildNotStarted {
        element: key,
        message: "no process with BPMN id 'nowhere' is deployed".into(),
    });
    assert_eq!(
        d.incidents,
        ["call: no process with BPMN id 'nowhere' is deployed"]
    );
}

#[test]
fn retrying_an_element_enters_it_again_or_completes_it_again_when_its_output_mapping_failed() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:scriptTask id="sum"><bpmn:extensionElements><zeebe:script expression="=assert(price, price &gt; 0) * 2" resultVariable="total" /></bpmn:extensionElements></bpmn:scriptTask>"#.into(),
        r#"<bpmn:serviceTask id="bill"><bpmn:extensionElements><zeebe:taskDefinition type="bill" /><zeebe:ioMapping><zeebe:output source="=assert(invoice, invoice != null)" target="invoiceId" /></zeebe:ioMapping></bpmn:extensionElements></bpmn:serviceTask>"#.into(),
        e,
        flow("f1", "s", "sum"),
        flow("f2", "sum", "bill"),
        flow("f3", "bill", "e"),
    ]));
    let mut d = Driver::start(&p, json!({ "price": -1 }));
    assert_eq!(d.incidents.len(), 1, "{:?}", d.incidents);
    let sum = *d.state.incidents.keys().next().unwrap();
    // The variable is fixed (as an operator would), then the incident resolved: entered again.
    d.state.variables.insert("price".into(), json!(5));
    d.send(Command::RetryElement { element: sum });
    assert_eq!(d.open(), ["bill"]);
    assert_eq!(d.state.variables["total"], 10);

    // The job completes without the variable its output mapping needs: an incident while
    // completing; the retry completes it again (no second job).
    d.complete("bill", json!({}));
    assert_eq!(d.incidents.len(), 2, "{:?}", d.incidents);
    let bill = *d.state.incidents.keys().next().unwrap();
    d.state
        .active
        .get_mut(&bill)
        .unwrap()
        .variables
        .insert("invoice".into(), json!("INV-1"));
    d.send(Command::RetryElement { element: bill });
    assert_eq!(d.open(), Vec::<&str>::new(), "no new job");
    assert_eq!(d.completed, 1);
    assert_eq!(d.state.variables["invoiceId"], "INV-1");

    // Nothing to retry without an incident.
    let fresh = Driver::start(&p, json!({ "price": 1 }));
    let key = fresh.jobs[0].0;
    let refused = apply(
        &p,
        &fresh.state,
        &Command::RetryElement { element: key },
        Utc::now(),
    );
    assert!(refused.is_err());
}

#[test]
fn execution_listeners_run_as_jobs_before_and_after_the_element_one_at_a_time() {
    let (s, e) = start_end();
    let p = process(&seq(&[
        s,
        r#"<bpmn:serviceTask id="ship"><bpmn:extensionElements><zeebe:taskDefinition type="ship" /><zeebe:executionListeners><zeebe:executionListener eventType="start" type="audit" /><zeebe:executionListener eventType="start" type="=&quot;check-&quot; + region" /><zeebe:executionListener eventType="end" type="notify" /></zeebe:executionListeners></bpmn:extensionElements></bpmn:serviceTask>"#.into(),
        r#"<bpmn:exclusiveGateway id="g" default="f3"><bpmn:extensionElements><zeebe:executionListeners><zeebe:executionListener eventType="start" type="route-audit" /></zeebe:executionListeners></bpmn:extensionElements></bpmn:exclusiveGateway>"#.into(),
        e,
        flow("f1", "s", "ship"),
        flow("f2", "ship", "g"),
        flow("f3", "g", "e"),
    ]));
    let mut d = Driver::start(&p, json!({ "region": "eu" }));
    let types = |d: &Driver| d.jobs.iter().map(|j| j.2.clone()).collect::<Vec<_>>();
    assert_eq!(
        types(&d),
        ["audit"],
        "the task's own job waits for its start listeners"
    );
    // A listener's job cannot throw a BPMN error (Zeebe rejects the command).
    let refused = apply(
        &p,
        &d.state,
        &Command::ThrowError {
            element: d.jobs[0].0,
            code: "AUDIT_DOWN".into(),
            message: "no audit".into(),
            variables: Map::new(),
        },
        Utc::now(),
    );
    assert!(
        matches!(refused, Err(RuntimeError::ListenerJobError(ref id)) if id == "ship"),
        "{refused:?}"
    );
    d.complete("ship", json!({ "audited": true }));
    assert_eq!(types(&d), ["check-eu"], "one at a time; the type is FEEL");
    d.complete("ship", json!({}));
    assert_eq!(types(&d), ["ship"]);
    assert_eq!(d.job_vars("ship")["audited"], true);
    d.complete("ship", json!({}));
    assert_eq!(
        types(&d),
        ["notify"],
        "the end listener before the flow is taken"
    );
    d.complete("ship", json!({}));
    assert_eq!(types(&d), ["route-audit"], "a gateway's start listener");
    assert_eq!(d.completed, 0);
    d.complete("g", json!({}));
    assert_eq!(d.completed, 1);

    // Cancelling while a listener runs cancels its job.
    let mut c = Driver::start(&p, json!({ "region": "us" }));
    c.send(Command::Cancel);
    assert!(c.jobs.is_empty(), "{:?}", c.jobs);
}
