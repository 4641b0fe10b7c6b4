#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Golden execution tests of the runtime core, driven through `runtime::apply`.

use chrono::Utc;
use cpq_workflow::bpmn::{read, Process};
use cpq_workflow::runtime::{
    apply, Command, Effect, InstanceState, InstanceStatus, Key, Repeat, RuntimeError, ROOT,
};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

#[path = "runtime/compensation.rs"]
mod compensation;
#[path = "runtime/elements.rs"]
mod elements;
#[path = "runtime/event_subprocesses.rs"]
mod event_subprocesses;

fn process(body: &str) -> Process {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:error id="Err_Declined" name="declined" errorCode="DECLINED" />
  <bpmn:process id="p" isExecutable="true">{body}</bpmn:process>
</bpmn:definitions>"#
    );
    read(&xml)
        .unwrap_or_else(|e| panic!("{e}"))
        .processes
        .remove(0)
}

fn task(id: &str, job: &str) -> String {
    format!(
        r#"<bpmn:serviceTask id="{id}"><bpmn:extensionElements><zeebe:taskDefinition type="{job}" retries="5" /></bpmn:extensionElements></bpmn:serviceTask>"#
    )
}

fn flow(id: &str, from: &str, to: &str) -> String {
    format!(r#"<bpmn:sequenceFlow id="{id}" sourceRef="{from}" targetRef="{to}" />"#)
}

fn vars(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

struct Driver<'p> {
    process: &'p Process,
    state: InstanceState,
    /// Open jobs: element key → (element id, job type, variables).
    jobs: Vec<(Key, String, String, Map<String, Value>)>,
    incidents: Vec<String>,
    completed: usize,
    timers: Vec<(Key, String, chrono::DateTime<Utc>, Option<Repeat>)>,
    subscriptions: Vec<(Key, String, String, String)>,
    /// Call activities whose child instance was cancelled.
    cancelled_children: Vec<Key>,
    /// Signal subscriptions: (element key, catch id, signal name).
    signal_subscriptions: Vec<(Key, String, String)>,
    /// Signals thrown: (name, variables).
    broadcasts: Vec<(String, Map<String, Value>)>,
}

impl<'p> Driver<'p> {
    fn start(process: &'p Process, variables: Value) -> Driver<'p> {
        let mut d = Driver {
            process,
            state: InstanceState::new(),
            jobs: vec![],
            incidents: vec![],
            completed: 0,
            timers: vec![],
            subscriptions: vec![],
            cancelled_children: vec![],
            signal_subscriptions: vec![],
            broadcasts: vec![],
        };
        d.send(Command::Start {
            variables: vars(variables),
        });
        d
    }

    fn send(&mut self, command: Command) {
        let (state, effects) = apply(self.process, &self.state, &command, Utc::now()).unwrap();
        self.state = state;
        for e in effects {
            match e {
                Effect::CreateJob {
                    element,
                    element_id,
                    job_type,
                    variables,
                    ..
                } => self.jobs.push((element, element_id, job_type, variables)),
                Effect::CancelJob { element } => self.jobs.retain(|j| j.0 != element),
                Effect::Incident {
                    element_id,
                    message,
                    ..
                } => self.incidents.push(format!("{element_id}: {message}")),
                Effect::InstanceCompleted => self.completed += 1,
                Effect::InstanceTerminated => {}
                Effect::ScheduleTimer {
                    element,
                    timer_id,
                    due,
                    repeat,
                } => self.timers.push((element, timer_id, due, repeat)),
                Effect::CancelTimers { element } => self.timers.retain(|t| t.0 != element),
                Effect::OpenSubscription {
                    element,
                    catch_id,
                    message_name,
                    correlation_key,
                } => self
                    .subscriptions
                    .push((element, catch_id, message_name, correlation_key)),
                Effect::CloseSubscriptions { element } => {
                    self.subscriptions.retain(|t| t.0 != element);
                    self.signal_subscriptions.retain(|t| t.0 != element);
                }
                Effect::CloseWaits { element, catch_ids } => {
                    self.timers
                        .retain(|t| t.0 != element || !catch_ids.contains(&t.1));
                    self.subscriptions
                        .retain(|t| t.0 != element || !catch_ids.contains(&t.1));
                    self.signal_subscriptions
                        .retain(|t| t.0 != element || !catch_ids.contains(&t.1));
                }
                Effect::OpenSignalSubscription {
                    element,
                    catch_id,
                    signal_name,
                } => self
                    .signal_subscriptions
                    .push((element, catch_id, signal_name)),
                Effect::BroadcastSignal {
                    signal_name,
                    variables,
                } => self.broadcasts.push((signal_name, variables)),
                Effect::CreateUserTask {
                    element,
                    element_id,
                    assignee,
                    candidate_groups,
                    variables,
                    ..
                } => {
                    let label = format!(
                        "user-task:{}:{}",
                        assignee.unwrap_or_default(),
                        candidate_groups.join("|")
                    );
                    self.jobs.push((element, element_id, label, variables))
                }
                Effect::CancelUserTask { element } => self.jobs.retain(|j| j.0 != element),
                Effect::StartChildInstance {
                    element,
                    element_id,
                    process_id,
                    variables,
                    ..
                } => self.jobs.push((
                    element,
                    element_id,
                    format!("child:{process_id}"),
                    variables,
                )),
                Effect::CancelChildInstance { element } => {
                    self.jobs.retain(|j| j.0 != element);
                    self.cancelled_children.push(element);
                }
            }
        }
    }

    fn open(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.jobs.iter().map(|j| j.1.as_str()).collect();
        ids.sort();
        ids
    }

    fn complete(&mut self, element_id: &str, variables: Value) {
        let i = self
            .jobs
            .iter()
            .position(|j| j.1 == element_id)
            .unwrap_or_else(|| panic!("no job for {element_id}: {:?}", self.open()));
        let (key, ..) = self.jobs.remove(i);
        self.send(Command::CompleteJob {
            element: key,
            variables: vars(variables),
        });
    }

    fn fire(&mut self, timer_id: &str) {
        let i = self
            .timers
            .iter()
            .position(|t| t.1 == timer_id)
            .unwrap_or_else(|| panic!("no timer {timer_id}"));
        let (element, timer_id, _, repeat) = self.timers.remove(i);
        self.send(Command::TimerFired {
            element,
            timer_id,
            repeat,
        });
    }

    fn correlate(&mut self, name: &str, key: &str, variables: Value) {
        let i = self
            .subscriptions
            .iter()
            .position(|s| s.2 == name && s.3 == key)
            .unwrap_or_else(|| panic!("no subscription {name}/{key}: {:?}", self.subscriptions));
        let (element, catch_id, ..) = self.subscriptions.remove(i);
        self.send(Command::CorrelateMessage {
            element,
            catch_id,
            variables: vars(variables),
        });
    }

    /// A signal broadcast reaches every subscription of its name open now, as the store does.
    fn signal(&mut self, name: &str, variables: Value) -> usize {
        let (now, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut self.signal_subscriptions)
            .into_iter()
            .partition(|s| s.2 == name);
        self.signal_subscriptions = rest;
        let triggered = now.len();
        for (element, catch_id, _) in now {
            if self.state.status == InstanceStatus::Active {
                self.send(Command::TriggerSignal {
                    element,
                    catch_id,
                    variables: vars(variables.clone()),
                });
            }
        }
        triggered
    }

    fn job_vars(&self, element_id: &str) -> &Map<String, Value> {
        &self.jobs.iter().find(|j| j.1 == element_id).unwrap().3
    }
}

#[test]
fn a_sequence_of_service_tasks_runs_job_by_job_and_completes() {
    let p = process(
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            task("a", "reserve"),
            task("b", "provision"),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "a"),
            flow("f2", "a", "b"),
            flow("f3", "b", "e"),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({ "orderId": "O-1" }));
    assert_eq!(d.open(), ["a"]);
    assert_eq!(d.jobs[0].2, "reserve");
    assert_eq!(d.job_vars("a")["orderId"], "O-1");
    d.complete("a", json!({ "reservation": "R-9" }));
    assert_eq!(d.open(), ["b"]);
    assert_eq!(d.job_vars("b")["reservation"], "R-9");
    d.complete("b", json!({}));
    assert_eq!(
        (d.completed, d.state.status),
        (1, InstanceStatus::Completed)
    );
    assert!(d.state.active.is_empty());
    assert!(
        apply(&p, &d.state, &Command::Cancel, Utc::now()).is_err(),
        "a completed instance takes no commands"
    );
}

#[test]
fn an_exclusive_gateway_takes_the_first_true_condition_else_the_default_else_raises_an_incident() {
    let body = |default: bool| {
        [
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            format!(r#"<bpmn:exclusiveGateway id="g" {} />"#, if default { r#"default="f_low""# } else { "" }),
            task("big", "approve"), task("small", "auto"), r#"<bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />"#.to_owned(),
            flow("f0", "s", "g"),
            r#"<bpmn:sequenceFlow id="f_big" sourceRef="g" targetRef="big"><bpmn:conditionExpression>=total &gt; 1000</bpmn:conditionExpression></bpmn:sequenceFlow>"#.to_owned(),
            if default { flow("f_low", "g", "small") } else {
                r#"<bpmn:sequenceFlow id="f_low" sourceRef="g" targetRef="small"><bpmn:conditionExpression>=total &lt; 100</bpmn:conditionExpression></bpmn:sequenceFlow>"#.to_owned()
            },
            flow("f3", "big", "e1"), flow("f4", "small", "e2"),
        ]
        .concat()
    };
    let with_default = process(&body(true));
    assert_eq!(
        Driver::start(&with_default, json!({ "total": 5000 })).open(),
        ["big"]
    );
    assert_eq!(
        Driver::start(&with_default, json!({ "total": 500 })).open(),
        ["small"]
    );
    let no_default = process(&body(false));
    assert_eq!(
        Driver::start(&no_default, json!({ "total": 50 })).open(),
        ["small"]
    );
    let stuck = Driver::start(&no_default, json!({ "total": 500 }));
    assert!(stuck.open().is_empty());
    assert_eq!(stuck.incidents.len(), 1, "{:?}", stuck.incidents);
    assert!(stuck.incidents[0].starts_with("g: no outgoing flow"));
    assert_eq!(stuck.state.status, InstanceStatus::Active);
}

fn fork_join() -> Process {
    process(&[
        r#"<bpmn:startEvent id="s" /><bpmn:parallelGateway id="fork" /><bpmn:parallelGateway id="join" /><bpmn:endEvent id="e" />"#.to_owned(),
        task("a", "reserve"), task("b", "credit-check"), task("c", "notify"), task("after", "bill"),
        flow("f0", "s", "fork"), flow("f1", "fork", "a"), flow("f2", "fork", "b"), flow("f3", "fork", "c"),
        flow("f4", "a", "join"), flow("f5", "b", "join"), flow("f6", "c", "join"), flow("f7", "join", "after"), flow("f8", "after", "e"),
    ].concat())
}

#[test]
fn a_parallel_gateway_forks_and_joins_one_token_per_incoming_flow() {
    let p = fork_join();
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["a", "b", "c"]);
    d.complete("b", json!({ "score": 7 }));
    d.complete("a", json!({}));
    assert_eq!(d.open(), ["c"], "the join waits for the third branch");
    d.complete("c", json!({}));
    assert_eq!(d.open(), ["after"]);
    assert_eq!(d.job_vars("after")["score"], 7);
    d.complete("after", json!({}));
    assert_eq!(d.completed, 1);
}

proptest! {
    /// Whatever order the branches finish in, every job is created once and the instance
    /// completes exactly once.
    #[test]
    fn branches_may_finish_in_any_order(order in Just(vec!["a", "b", "c"]).prop_shuffle()) {
        let p = fork_join();
        let mut d = Driver::start(&p, json!({}));
        for id in order {
            d.complete(id, json!({ id: true }));
        }
        prop_assert_eq!(d.open(), vec!["after"]);
        let v = d.job_vars("after").clone();
        prop_assert!(v.contains_key("a") && v.contains_key("b") && v.contains_key("c"));
        d.complete("after", json!({}));
        prop_assert_eq!(d.completed, 1);
        prop_assert!(d.state.active.is_empty() && d.state.joins.is_empty());
    }
}

#[test]
fn an_embedded_subprocess_completes_when_its_inside_is_done() {
    let p = process(
        &[
            r#"<bpmn:startEvent id="s" /><bpmn:subProcess id="sub"><bpmn:startEvent id="s2" />"#
                .to_owned(),
            task("inner", "provision"),
            r#"<bpmn:endEvent id="e2" />"#.to_owned(),
            flow("g1", "s2", "inner"),
            flow("g2", "inner", "e2"),
            r#"</bpmn:subProcess>"#.to_owned(),
            task("after", "bill"),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "sub"),
            flow("f2", "sub", "after"),
            flow("f3", "after", "e"),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["inner"]);
    d.complete("inner", json!({ "serviceId": "S-1" }));
    assert_eq!(d.open(), ["after"]);
    assert_eq!(d.job_vars("after")["serviceId"], "S-1");
    d.complete("after", json!({}));
    assert_eq!(d.completed, 1);
}

#[test]
fn a_bpmn_error_is_caught_by_the_nearest_matching_boundary_else_it_is_an_incident() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" />"#.to_owned(), task("charge", "charge-card"), task("ok", "confirm"), task("handle", "fallout"),
        r#"<bpmn:boundaryEvent id="declined" attachedToRef="charge"><bpmn:errorEventDefinition errorRef="Err_Declined" /></bpmn:boundaryEvent>"#.to_owned(),
        r#"<bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />"#.to_owned(),
        flow("f1", "s", "charge"), flow("f2", "charge", "ok"), flow("f3", "ok", "e1"), flow("f4", "declined", "handle"), flow("f5", "handle", "e2"),
    ].concat());
    let mut d = Driver::start(&p, json!({}));
    let key = d.jobs[0].0;
    d.jobs.clear();
    d.send(Command::ThrowError {
        element: key,
        code: "DECLINED".into(),
        message: "card declined".into(),
        variables: Map::new(),
    });
    assert_eq!(d.open(), ["handle"]);
    d.complete("handle", json!({}));
    assert_eq!(d.completed, 1);

    let mut other = Driver::start(&p, json!({}));
    let key = other.jobs[0].0;
    other.send(Command::ThrowError {
        element: key,
        code: "TIMEOUT".into(),
        message: "gateway timeout".into(),
        variables: Map::new(),
    });
    assert_eq!(other.incidents.len(), 1);
    assert!(other.incidents[0].contains("unhandled BPMN error 'TIMEOUT'"));
    assert_eq!(other.state.status, InstanceStatus::Active);
}

#[test]
fn an_errors_variables_are_set_at_its_catch_event_as_zeebe_does() {
    // Without output mappings on the catch event they propagate like a job's result.
    let plain = process(&[
        r#"<bpmn:startEvent id="s" />"#.to_owned(), task("charge", "charge-card"), task("handle", "fallout"),
        r#"<bpmn:boundaryEvent id="declined" attachedToRef="charge"><bpmn:errorEventDefinition errorRef="Err_Declined" /></bpmn:boundaryEvent>"#.to_owned(),
        r#"<bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />"#.to_owned(),
        flow("f1", "s", "charge"), flow("f2", "charge", "e1"), flow("f4", "declined", "handle"), flow("f5", "handle", "e2"),
    ].concat());
    let mut d = Driver::start(&plain, json!({ "attempts": 1 }));
    let key = d.jobs[0].0;
    d.jobs.clear();
    d.send(Command::ThrowError {
        element: key,
        code: "DECLINED".into(),
        message: "card declined".into(),
        variables: vars(json!({ "reason": "insufficient funds", "attempts": 2 })),
    });
    assert_eq!(d.job_vars("handle")["reason"], "insufficient funds");
    assert_eq!(d.job_vars("handle")["attempts"], 2);
    assert_eq!(d.state.variables["reason"], "insufficient funds");

    // With output mappings the variables are local to the catch event: only the mappings leave.
    let mapped = process(&[
        r#"<bpmn:startEvent id="s" />"#.to_owned(), task("charge", "charge-card"), task("handle", "fallout"),
        r#"<bpmn:boundaryEvent id="declined" attachedToRef="charge"><bpmn:extensionElements><zeebe:ioMapping>
          <zeebe:output source="=&quot;declined: &quot; + reason" target="declineNote" /></zeebe:ioMapping></bpmn:extensionElements>
          <bpmn:errorEventDefinition errorRef="Err_Declined" /></bpmn:boundaryEvent>"#.to_owned(),
        r#"<bpmn:endEvent id="e1" /><bpmn:endEvent id="e2" />"#.to_owned(),
        flow("f1", "s", "charge"), flow("f2", "charge", "e1"), flow("f4", "declined", "handle"), flow("f5", "handle", "e2"),
    ].concat());
    let mut d = Driver::start(&mapped, json!({}));
    let key = d.jobs[0].0;
    d.jobs.clear();
    d.send(Command::ThrowError {
        element: key,
        code: "DECLINED".into(),
        message: "card declined".into(),
        variables: vars(json!({ "reason": "expired card" })),
    });
    let seen = d.job_vars("handle").clone();
    assert_eq!(seen["declineNote"], "declined: expired card");
    assert!(!seen.contains_key("reason"), "{seen:?}");

    // Uncaught: an incident, and the variables go nowhere.
    let mut d = Driver::start(&plain, json!({}));
    let key = d.jobs[0].0;
    d.send(Command::ThrowError {
        element: key,
        code: "TIMEOUT".into(),
        message: "gateway timeout".into(),
        variables: vars(json!({ "reason": "slow" })),
    });
    assert_eq!(d.incidents.len(), 1);
    assert!(!d.state.variables.contains_key("reason"));
}

#[test]
fn a_terminate_end_event_cancels_the_other_branches() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" /><bpmn:parallelGateway id="fork" />"#.to_owned(), task("slow", "provision"),
        r#"<bpmn:endEvent id="stop"><bpmn:terminateEventDefinition /></bpmn:endEvent><bpmn:endEvent id="e" />"#.to_owned(),
        flow("f0", "s", "fork"), flow("f1", "fork", "slow"), flow("f2", "fork", "stop"), flow("f3", "slow", "e"),
    ].concat());
    let d = Driver::start(&p, json!({}));
    assert!(
        d.open().is_empty(),
        "the job created for 'slow' was cancelled"
    );
    assert_eq!(
        (d.completed, d.state.status),
        (1, InstanceStatus::Completed)
    );
}

#[test]
fn input_and_output_mappings_scope_variables_as_zeebe_does() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" />
        <bpmn:serviceTask id="a"><bpmn:extensionElements><zeebe:taskDefinition type="price" />
          <zeebe:ioMapping><zeebe:input source="=order.total * 2" target="doubled" /><zeebe:output source="=result + 1" target="priced" /></zeebe:ioMapping>
        </bpmn:extensionElements></bpmn:serviceTask>"#.to_owned(),
        task("b", "next"), r#"<bpmn:endEvent id="e" />"#.to_owned(), flow("f1", "s", "a"), flow("f2", "a", "b"), flow("f3", "b", "e"),
    ].concat());
    let mut d = Driver::start(&p, json!({ "order": { "total": 21 } }));
    assert_eq!(d.job_vars("a")["doubled"], 42);
    d.complete("a", json!({ "result": 41 }));
    let seen = d.job_vars("b").clone();
    assert_eq!(seen["priced"], 42);
    assert!(
        !seen.contains_key("result"),
        "with output mappings only mapped values leave the task"
    );
    assert!(!seen.contains_key("doubled"), "input mappings stay local");
}

#[test]
fn cancel_ends_the_instance_and_its_jobs() {
    let p = fork_join();
    let mut d = Driver::start(&p, json!({}));
    d.send(Command::Cancel);
    assert!(d.open().is_empty());
    assert_eq!(d.state.status, InstanceStatus::Terminated);
}

#[test]
fn the_payment_fixture_runs_through_its_happy_path() {
    let xml = std::fs::read_to_string(
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/bpmn-modeler/c8ex--payment_process.bpmn"),
    )
    .unwrap();
    let p = read(&xml).unwrap().processes.remove(0);
    let mut d = Driver::start(&p, json!({ "customerCredit": 100, "orderTotal": 40 }));
    let mut steps = 0;
    while d.completed == 0 && !d.jobs.is_empty() && steps < 10 {
        let id = d.jobs[0].1.clone();
        d.complete(&id, json!({ "creditCardChargeSuccessful": true, "customerCredit": 100, "remainingAmount": 0 }));
        steps += 1;
    }
    assert!(d.incidents.is_empty(), "{:?}", d.incidents);
    assert_eq!(d.completed, 1, "open jobs {:?}", d.open());
}

#[test]
fn an_error_inside_a_subprocess_reaches_the_boundary_on_the_subprocess_and_ends_its_other_work() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" /><bpmn:subProcess id="sub"><bpmn:startEvent id="s2" /><bpmn:parallelGateway id="fork" />"#.to_owned(),
        task("inner", "provision"), task("sibling", "reserve"),
        r#"<bpmn:endEvent id="e2" /><bpmn:endEvent id="e3" />"#.to_owned(),
        flow("g0", "s2", "fork"), flow("g1", "fork", "inner"), flow("g2", "fork", "sibling"), flow("g3", "inner", "e2"), flow("g4", "sibling", "e3"),
        r#"</bpmn:subProcess>"#.to_owned(),
        r#"<bpmn:boundaryEvent id="caught" attachedToRef="sub"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>"#.to_owned(),
        task("fallout", "open-fallout"), r#"<bpmn:endEvent id="e" /><bpmn:endEvent id="e4" />"#.to_owned(),
        flow("f1", "s", "sub"), flow("f2", "sub", "e"), flow("f3", "caught", "fallout"), flow("f4", "fallout", "e4"),
    ].concat());
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(d.open(), ["inner", "sibling"]);
    let key = d.jobs.iter().find(|j| j.1 == "inner").unwrap().0;
    d.jobs.retain(|j| j.0 != key);
    d.send(Command::ThrowError {
        element: key,
        code: "ANY".into(),
        message: "provisioning failed".into(),
        variables: Map::new(),
    });
    assert_eq!(
        d.open(),
        ["fallout"],
        "the sibling's job was cancelled with the subprocess"
    );
    d.complete("fallout", json!({}));
    assert_eq!(d.completed, 1);
    assert!(d.state.active.is_empty());
}

fn with_message(body: &str) -> Process {
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:message id="M" name="payment-received"><bpmn:extensionElements><zeebe:subscription correlationKey="=orderId" /></bpmn:extensionElements></bpmn:message>
  <bpmn:process id="p" isExecutable="true">{body}</bpmn:process>
</bpmn:definitions>"#
    );
    read(&xml)
        .unwrap_or_else(|e| panic!("{e}"))
        .processes
        .remove(0)
}

#[test]
fn a_timer_catch_event_waits_for_its_timer() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" /><bpmn:intermediateCatchEvent id="wait"><bpmn:timerEventDefinition><bpmn:timeDuration>PT15M</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:intermediateCatchEvent>"#.to_owned(),
        task("a", "after-wait"), r#"<bpmn:endEvent id="e" />"#.to_owned(), flow("f1", "s", "wait"), flow("f2", "wait", "a"), flow("f3", "a", "e"),
    ].concat());
    let before = Utc::now();
    let mut d = Driver::start(&p, json!({}));
    assert!(d.open().is_empty());
    assert_eq!(d.timers.len(), 1);
    let due = d.timers[0].2;
    assert!(
        due >= before + chrono::Duration::minutes(15)
            && due <= Utc::now() + chrono::Duration::minutes(15)
    );
    d.fire("wait");
    assert_eq!(d.open(), ["a"]);
}

fn with_boundary(boundary: &str) -> Process {
    process(
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            task("approve", "approval"),
            task("escalate", "escalation"),
            boundary.to_owned(),
            r#"<bpmn:endEvent id="e" /><bpmn:endEvent id="e2" />"#.to_owned(),
            flow("f1", "s", "approve"),
            flow("f2", "approve", "e"),
            flow("f3", "b", "escalate"),
            flow("f4", "escalate", "e2"),
        ]
        .concat(),
    )
}

#[test]
fn an_interrupting_timer_boundary_ends_the_task_and_a_completed_task_cancels_its_timer() {
    let p = with_boundary(
        r#"<bpmn:boundaryEvent id="b" attachedToRef="approve"><bpmn:timerEventDefinition><bpmn:timeDuration>=duration("P2D")</bpmn:timeDuration></bpmn:timerEventDefinition></bpmn:boundaryEvent>"#,
    );
    let mut d = Driver::start(&p, json!({}));
    assert_eq!((d.open(), d.timers.len()), (vec!["approve"], 1));
    d.fire("b");
    assert_eq!(d.open(), ["escalate"], "the approval job was cancelled");

    let mut on_time = Driver::start(&p, json!({}));
    on_time.complete("approve", json!({}));
    assert!(
        on_time.timers.is_empty(),
        "completing the task cancels its timer"
    );
    assert_eq!(on_time.completed, 1);
}

#[test]
fn a_non_interrupting_cycle_reminds_and_leaves_the_task_running() {
    let p = with_boundary(
        r#"<bpmn:boundaryEvent id="b" attachedToRef="approve" cancelActivity="false"><bpmn:timerEventDefinition><bpmn:timeCycle>R2/PT1H</bpmn:timeCycle></bpmn:timerEventDefinition></bpmn:boundaryEvent>"#,
    );
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(
        d.timers[0].3,
        Some(Repeat {
            remaining: Some(1),
            interval_ms: 3_600_000
        })
    );
    d.fire("b");
    assert_eq!(d.open(), ["approve", "escalate"]);
    assert_eq!(d.timers.len(), 1, "the second reminder is scheduled");
    assert_eq!(
        d.timers[0].3,
        Some(Repeat {
            remaining: Some(0),
            interval_ms: 3_600_000
        })
    );
    d.fire("b");
    assert!(d.timers.is_empty(), "two reminders and no more");
    d.complete("escalate", json!({}));
    d.complete("escalate", json!({}));
    d.complete("approve", json!({}));
    assert_eq!(d.completed, 1);
}

#[test]
fn message_catch_events_and_receive_tasks_wait_for_their_correlated_message() {
    let p = with_message(&[
        r#"<bpmn:startEvent id="s" /><bpmn:intermediateCatchEvent id="paid"><bpmn:messageEventDefinition messageRef="M" /></bpmn:intermediateCatchEvent>"#.to_owned(),
        r#"<bpmn:receiveTask id="again" messageRef="M" />"#.to_owned(), task("ship", "ship"), r#"<bpmn:endEvent id="e" />"#.to_owned(),
        flow("f1", "s", "paid"), flow("f2", "paid", "again"), flow("f3", "again", "ship"), flow("f4", "ship", "e"),
    ].concat());
    let mut d = Driver::start(&p, json!({ "orderId": "O-7" }));
    assert_eq!(d.subscriptions.len(), 1);
    assert_eq!(
        (d.subscriptions[0].2.as_str(), d.subscriptions[0].3.as_str()),
        ("payment-received", "O-7")
    );
    d.correlate("payment-received", "O-7", json!({ "amount": 99 }));
    assert_eq!(d.subscriptions.len(), 1, "the receive task subscribes next");
    d.correlate("payment-received", "O-7", json!({}));
    assert_eq!(d.open(), ["ship"]);
    assert_eq!(d.job_vars("ship")["amount"], 99);
}

#[test]
fn a_message_boundary_interrupts_its_task() {
    let p = with_message(&[
        r#"<bpmn:startEvent id="s" />"#.to_owned(), task("wait_for_ops", "ops"), task("cancelled", "undo"),
        r#"<bpmn:boundaryEvent id="b" attachedToRef="wait_for_ops"><bpmn:messageEventDefinition messageRef="M" /></bpmn:boundaryEvent>"#.to_owned(),
        r#"<bpmn:endEvent id="e" /><bpmn:endEvent id="e2" />"#.to_owned(),
        flow("f1", "s", "wait_for_ops"), flow("f2", "wait_for_ops", "e"), flow("f3", "b", "cancelled"), flow("f4", "cancelled", "e2"),
    ].concat());
    let mut d = Driver::start(&p, json!({ "orderId": "O-8" }));
    d.correlate("payment-received", "O-8", json!({}));
    assert_eq!(d.open(), ["cancelled"]);
}

fn multi(sequential: bool) -> Process {
    process(&[
        r#"<bpmn:startEvent id="s" />"#.to_owned(),
        format!(r#"<bpmn:serviceTask id="check"><bpmn:extensionElements><zeebe:taskDefinition type="credit-check" /></bpmn:extensionElements>
          <bpmn:multiInstanceLoopCharacteristics isSequential="{sequential}"><bpmn:extensionElements>
            <zeebe:loopCharacteristics inputCollection="=sites" inputElement="site" outputCollection="results" outputElement="=score" />
          </bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics></bpmn:serviceTask>"#),
        task("after", "summary"), r#"<bpmn:endEvent id="e" />"#.to_owned(),
        flow("f1", "s", "check"), flow("f2", "check", "after"), flow("f3", "after", "e"),
    ].concat())
}

#[test]
fn a_parallel_multi_instance_task_runs_one_job_per_item_and_collects_outputs_in_order() {
    let p = multi(false);
    let mut d = Driver::start(&p, json!({ "sites": ["berlin", "paris", "rome"] }));
    assert_eq!(d.open(), ["check", "check", "check"]);
    let items: Vec<(Value, Value)> = d
        .jobs
        .iter()
        .map(|j| (j.3["site"].clone(), j.3["loopCounter"].clone()))
        .collect();
    assert_eq!(
        items,
        [
            (json!("berlin"), json!(1)),
            (json!("paris"), json!(2)),
            (json!("rome"), json!(3))
        ]
    );
    // Finish out of order; outputs keep the collection's order.
    let keys: Vec<Key> = d.jobs.iter().map(|j| j.0).collect();
    for (k, score) in [(keys[2], 30), (keys[0], 10), (keys[1], 20)] {
        d.jobs.retain(|j| j.0 != k);
        d.send(Command::CompleteJob {
            element: k,
            variables: vars(json!({ "score": score })),
        });
    }
    assert_eq!(d.open(), ["after"]);
    assert_eq!(d.job_vars("after")["results"], json!([10, 20, 30]));
    d.complete("after", json!({}));
    assert_eq!(d.completed, 1);
}

#[test]
fn a_sequential_multi_instance_task_runs_one_item_at_a_time_and_an_empty_collection_passes() {
    let p = multi(true);
    let mut d = Driver::start(&p, json!({ "sites": ["a", "b"] }));
    assert_eq!(d.open(), ["check"]);
    assert_eq!(d.job_vars("check")["site"], "a");
    d.complete("check", json!({ "score": 1 }));
    assert_eq!(d.open(), ["check"]);
    assert_eq!(d.job_vars("check")["site"], "b");
    d.complete("check", json!({ "score": 2 }));
    assert_eq!(d.job_vars("after")["results"], json!([1, 2]));

    let empty = Driver::start(&p, json!({ "sites": [] }));
    assert_eq!(empty.open(), ["after"]);
    let broken = Driver::start(&p, json!({ "sites": "not a list" }));
    assert!(
        broken.incidents[0].contains("not a list"),
        "{:?}",
        broken.incidents
    );
}

#[test]
fn a_multi_instance_subprocess_and_an_error_caught_at_the_body() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" /><bpmn:subProcess id="per_site">
          <bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=sites" inputElement="site" /></bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics>
          <bpmn:startEvent id="s2" />"#.to_owned(),
        task("install", "install"), r#"<bpmn:endEvent id="e2" />"#.to_owned(), flow("g1", "s2", "install"), flow("g2", "install", "e2"),
        r#"</bpmn:subProcess>"#.to_owned(),
        r#"<bpmn:boundaryEvent id="failed" attachedToRef="per_site"><bpmn:errorEventDefinition /></bpmn:boundaryEvent>"#.to_owned(),
        task("fallout", "fallout"), r#"<bpmn:endEvent id="e" /><bpmn:endEvent id="e3" />"#.to_owned(),
        flow("f1", "s", "per_site"), flow("f2", "per_site", "e"), flow("f3", "failed", "fallout"), flow("f4", "fallout", "e3"),
    ].concat());
    let mut d = Driver::start(&p, json!({ "sites": ["x", "y"] }));
    assert_eq!(d.open(), ["install", "install"]);
    d.complete("install", json!({}));
    d.complete("install", json!({}));
    assert_eq!(d.completed, 1);

    let mut failing = Driver::start(&p, json!({ "sites": ["x", "y"] }));
    let first = failing.jobs[0].0;
    failing.jobs.retain(|j| j.0 != first);
    failing.send(Command::ThrowError {
        element: first,
        code: "BROKEN".into(),
        message: "install failed".into(),
        variables: Map::new(),
    });
    assert_eq!(
        failing.open(),
        ["fallout"],
        "the other site's job was cancelled with the body"
    );
    assert!(failing.incidents.is_empty());
}

#[test]
fn a_native_user_task_waits_for_a_person_with_evaluated_assignment() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" /><bpmn:userTask id="approve"><bpmn:extensionElements><zeebe:userTask />
           <zeebe:assignmentDefinition assignee="=manager" candidateGroups="approver, finance" /></bpmn:extensionElements></bpmn:userTask>"#.to_owned(),
        task("after", "notify"), r#"<bpmn:endEvent id="e" />"#.to_owned(), flow("f1", "s", "approve"), flow("f2", "approve", "after"), flow("f3", "after", "e"),
    ].concat());
    let mut d = Driver::start(&p, json!({ "manager": "mia" }));
    assert_eq!(d.jobs[0].2, "user-task:mia:approver|finance");
    let key = d.jobs.remove(0).0;
    assert!(
        apply(
            &p,
            &d.state,
            &Command::CompleteJob {
                element: key,
                variables: Map::new()
            },
            Utc::now()
        )
        .is_err(),
        "a user task is not a job"
    );
    d.send(Command::CompleteUserTask {
        element: key,
        variables: vars(json!({ "approved": true })),
    });
    assert_eq!(d.open(), ["after"]);
    assert_eq!(d.job_vars("after")["approved"], true);
}

#[test]
fn send_tasks_and_message_end_events_run_as_jobs_and_an_error_end_event_throws() {
    let p = process(&[
        r#"<bpmn:startEvent id="s" />
        <bpmn:sendTask id="notify"><bpmn:extensionElements><zeebe:taskDefinition type="send-email" /></bpmn:extensionElements></bpmn:sendTask>
        <bpmn:subProcess id="sub"><bpmn:startEvent id="s2" />
          <bpmn:endEvent id="fail"><bpmn:errorEventDefinition errorRef="Err_Declined" /></bpmn:endEvent>
          <bpmn:sequenceFlow id="g1" sourceRef="s2" targetRef="fail" /></bpmn:subProcess>
        <bpmn:boundaryEvent id="declined" attachedToRef="sub"><bpmn:errorEventDefinition errorRef="Err_Declined" /></bpmn:boundaryEvent>
        <bpmn:endEvent id="done"><bpmn:extensionElements><zeebe:taskDefinition type="publish-result" /></bpmn:extensionElements><bpmn:messageEventDefinition /></bpmn:endEvent>
        <bpmn:endEvent id="e" />"#.to_owned(),
        flow("f1", "s", "notify"), flow("f2", "notify", "sub"), flow("f3", "sub", "e"), flow("f4", "declined", "done"),
    ].concat());
    let mut d = Driver::start(&p, json!({}));
    assert_eq!(
        (d.open(), d.jobs[0].2.as_str()),
        (vec!["notify"], "send-email")
    );
    d.complete("notify", json!({}));
    // The subprocess ends in an error end event; its boundary takes the message end event (a job).
    assert_eq!(
        (d.open(), d.jobs[0].2.as_str()),
        (vec!["done"], "publish-result")
    );
    d.complete("done", json!({}));
    assert_eq!(d.completed, 1);
}

// The plan-driven fulfillment process (issue 15): processes/order-fulfillment-v2.bpmn.

fn fulfillment_v2() -> Process {
    let xml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../processes/order-fulfillment-v2.bpmn"),
    )
    .unwrap();
    read(&xml)
        .unwrap_or_else(|e| panic!("{e}"))
        .processes
        .remove(0)
}

fn plan_task(key: &str, job_type: &str, depends_on: &[&str]) -> Value {
    json!({"key": key, "job_type": job_type, "depends_on": depends_on, "ready_key": format!("order-1/{key}")})
}

impl Driver<'_> {
    /// The open job of `element_id` that serves plan task `task`.
    fn job_of(&self, element_id: &str, task: &str) -> Key {
        self.jobs
            .iter()
            .find(|j| j.1 == element_id && j.3["task"]["key"] == task)
            .unwrap_or_else(|| panic!("no {element_id} job for {task}: {:?}", self.open()))
            .0
    }

    fn complete_task(&mut self, element_id: &str, task: &str, variables: Value) {
        let key = self.job_of(element_id, task);
        self.jobs.retain(|j| j.0 != key);
        self.send(Command::CompleteJob {
            element: key,
            variables: vars(variables),
        });
    }

    fn fail_task(&mut self, element_id: &str, task: &str, code: &str) {
        let key = self.job_of(element_id, task);
        self.jobs.retain(|j| j.0 != key);
        self.send(Command::ThrowError {
            element: key,
            code: code.into(),
            message: format!("{code} from the system"),
            variables: Map::new(),
        });
    }

    fn waiting(&self, name: &str) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .subscriptions
            .iter()
            .filter(|s| s.2 == name)
            .map(|s| s.3.as_str())
            .collect();
        keys.sort();
        keys
    }
}

#[test]
fn the_fulfillment_process_runs_independent_tasks_in_parallel_and_dependants_when_released() {
    let p = fulfillment_v2();
    let mut d = Driver::start(
        &p,
        json!({"order_id": "order-1", "plan_tasks": [
            plan_task("L1/reserve-port", "reserve-inventory", &[]),
            plan_task("L1/provision-access", "provision-service", &["L1/reserve-port"]),
            plan_task("L2/reserve-router", "reserve-inventory", &[]),
            plan_task("order/notify-customer", "send-notification", &["L1/provision-access", "L2/reserve-router"]),
        ]}),
    );
    // The two tasks without dependencies run at once; the others wait for their release.
    assert_eq!(d.open(), ["ReserveInventory", "ReserveInventory"]);
    assert_eq!(
        d.waiting("fulfillment-task-ready"),
        [
            "order-1/L1/provision-access",
            "order-1/order/notify-customer"
        ]
    );

    d.complete_task(
        "ReserveInventory",
        "L1/reserve-port",
        json!({"result": {"reservation_id": "r-1"}}),
    );
    assert_eq!(d.open(), ["ReserveInventory", "TaskDone"]);
    d.complete_task("TaskDone", "L1/reserve-port", json!({}));
    // fulfillment-task-done publishes the release of a task whose dependencies are all done.
    d.correlate(
        "fulfillment-task-ready",
        "order-1/L1/provision-access",
        json!({}),
    );
    assert_eq!(d.open(), ["ProvisionService", "ReserveInventory"]);

    // Provisioning answers asynchronously: the task waits for the callback, in its own scope.
    d.complete_task(
        "ProvisionService",
        "L1/provision-access",
        json!({"callback_expected": true, "external_idempotency_key": "job-7"}),
    );
    assert_eq!(d.waiting("external-callback"), ["job-7"]);
    d.complete_task(
        "ReserveInventory",
        "L2/reserve-router",
        json!({"result": {"reservation_id": "r-2"}}),
    );
    assert_eq!(
        d.open(),
        ["TaskDone"],
        "the other task's callback_expected is its own: it goes straight to done"
    );
    d.complete_task("TaskDone", "L2/reserve-router", json!({}));
    d.correlate(
        "external-callback",
        "job-7",
        json!({"callback": {"outcome": "succeeded"}}),
    );
    d.complete_task("TaskDone", "L1/provision-access", json!({}));
    d.correlate(
        "fulfillment-task-ready",
        "order-1/order/notify-customer",
        json!({}),
    );
    d.complete_task("NotifyCustomer", "order/notify-customer", json!({}));
    d.complete_task("TaskDone", "order/notify-customer", json!({}));

    assert_eq!(d.open(), ["CompleteOrder"]);
    d.complete("CompleteOrder", json!({}));
    assert_eq!(d.completed, 1);
    assert!(d.incidents.is_empty(), "{:?}", d.incidents);
    assert!(
        d.state.variables.get("callback_expected").is_none(),
        "task variables stay in their task's scope"
    );
}

#[test]
fn the_fulfillment_process_opens_fallout_on_a_business_error_a_failed_or_missing_callback_and_retries_or_skips_on_repair(
) {
    let p = fulfillment_v2();
    let mut d = Driver::start(
        &p,
        json!({"order_id": "order-1", "plan_tasks": [
            plan_task("L1/provision-access", "provision-service", &[]),
            plan_task("L2/activate-billing", "activate-billing", &[]),
        ]}),
    );
    // A permanent business failure: fallout, then a retry runs the same job type again.
    d.fail_task("ActivateBilling", "L2/activate-billing", "business-failure");
    assert_eq!(d.open(), ["OpenFallout", "ProvisionService"]);
    d.complete_task("OpenFallout", "L2/activate-billing", json!({}));
    assert_eq!(
        d.waiting("fallout-resolved"),
        ["order-1/L2/activate-billing"]
    );
    d.correlate(
        "fallout-resolved",
        "order-1/L2/activate-billing",
        json!({"repair": {"action": "retry"}}),
    );
    assert_eq!(d.open(), ["ActivateBilling", "ProvisionService"]);
    d.complete_task("ActivateBilling", "L2/activate-billing", json!({}));
    d.complete_task("TaskDone", "L2/activate-billing", json!({}));

    // A callback that never comes: the timeout is a fallout too; skipping it goes on as done.
    d.complete_task(
        "ProvisionService",
        "L1/provision-access",
        json!({"callback_expected": true, "external_idempotency_key": "job-9"}),
    );
    d.fire("CallbackTimeout");
    assert_eq!(d.waiting("external-callback"), Vec::<&str>::new());
    d.complete_task("OpenFallout", "L1/provision-access", json!({}));
    d.correlate(
        "fallout-resolved",
        "order-1/L1/provision-access",
        json!({"repair": {"action": "retry"}}),
    );
    // The retry calls again; this time the system calls back with a failure: fallout again.
    d.complete_task(
        "ProvisionService",
        "L1/provision-access",
        json!({"callback_expected": true, "external_idempotency_key": "job-10"}),
    );
    d.correlate(
        "external-callback",
        "job-10",
        json!({"callback": {"outcome": "failed", "error": {"code": "NO_CAPACITY"}}}),
    );
    d.complete_task("OpenFallout", "L1/provision-access", json!({}));
    d.correlate(
        "fallout-resolved",
        "order-1/L1/provision-access",
        json!({"repair": {"action": "skip"}}),
    );
    d.complete_task("TaskDone", "L1/provision-access", json!({}));

    d.complete("CompleteOrder", json!({}));
    assert_eq!(d.completed, 1);
    assert!(d.incidents.is_empty(), "{:?}", d.incidents);
}
