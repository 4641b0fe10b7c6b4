#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every Camunda Modeler file in `shared/fixtures/bpmn-modeler/` either reads into the model or is
//! refused with one error naming each unsupported element by id and type.

use std::collections::BTreeMap;
use std::path::PathBuf;

use cpq_workflow::bpmn::{read, DeployError, ElementKind, Timer, Trigger};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/bpmn-modeler")
}

fn load(name: &str) -> String {
    std::fs::read_to_string(fixtures().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_fixture_deploys_or_is_refused_naming_each_unsupported_element() {
    let expected: BTreeMap<&str, Option<Vec<(&str, &str)>>> = BTreeMap::from([
        ("c8ex--payment_process.bpmn", None),
        ("c8ex--migratedProcess.bpmn", None),
        ("c8ex--twitter.bpmn", None),
        ("flowing-retail--payment.bpmn", None),
        ("ticket-booking--ticket-booking.bpmn", None),
        ("c8ex--multi-instance-simple-example.bpmn", None),
        ("c8ex--get-up.bpmn", None),
    ]);
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("bpmn") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let result = read(&std::fs::read_to_string(&path).unwrap());
        match (expected.get(name.as_str()), &result) {
            (Some(None), Ok(defs)) => {
                assert!(!defs.processes.is_empty(), "{name}");
                assert_eq!(defs.checksum.len(), 64);
            }
            (Some(Some(listed)), Err(DeployError::Unsupported(found))) => {
                let types: Vec<&str> = found.iter().map(|(_, t)| t.as_str()).collect();
                assert!(
                    found.iter().all(|(id, t)| !id.is_empty() && !t.is_empty()),
                    "{name}: {found:?}"
                );
                for (id, t) in listed {
                    assert!(
                        found.iter().any(|(i, x)| i == id && x == t),
                        "{name}: {id} ({t}) not in {found:?}"
                    );
                }
                let message = result.as_ref().unwrap_err().to_string();
                assert!(
                    message.starts_with("unsupported BPMN elements: "),
                    "{message}"
                );
                assert!(!types.is_empty());
            }
            (None, _) => {
                panic!("{name} is a new fixture: add its expected outcome here ({result:?})")
            }
            (Some(e), r) => panic!("{name}: expected {e:?}, got {r:?}"),
        }
        seen.push(name);
    }
    assert_eq!(seen.len(), expected.len());
}

#[test]
fn get_up_reads_its_plain_tasks_and_feel_script_task() {
    let defs = read(&load("c8ex--get-up.bpmn")).unwrap();
    let p = &defs.processes[0];
    let plain = p
        .elements
        .iter()
        .filter(|e| matches!(&e.kind, ElementKind::PassThroughTask { tag } if tag == "task"))
        .count();
    assert_eq!(plain, 4);
    assert!(p.elements.iter().any(|e| matches!(
        &e.kind,
        ElementKind::ScriptTask { script: Some(s), job: None }
            if s.expression == "=true" && s.result_variable == "breakfastPrepared"
    )));
}

#[test]
fn the_multi_instance_example_reads_a_multi_instance_call_activity_and_its_callee() {
    let defs = read(&load("c8ex--multi-instance-simple-example.bpmn")).unwrap();
    let ids: Vec<&str> = defs.processes.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["MICallActivityProcess", "ElementCreationProcess"]);
    let call = defs.processes[0].element("Activity_1l743sj").unwrap();
    let ElementKind::CallActivity { called } = &call.kind else {
        panic!("{call:?}")
    };
    assert_eq!(called.process_id, "ElementCreationProcess");
    assert!(!called.propagate_all_child_variables);
    assert!(called.propagate_all_parent_variables);
    assert_eq!(call.outputs.len(), 1);
    assert!(call.multi_instance.is_some());
}

#[test]
fn the_payment_process_reads_jobs_conditions_errors_and_user_tasks() {
    let defs = read(&load("c8ex--payment_process.bpmn")).unwrap();
    let p = &defs.processes[0];
    assert!(!p.job_types().is_empty());
    let gateways = p
        .elements
        .iter()
        .filter(|e| matches!(e.kind, ElementKind::ExclusiveGateway { .. }))
        .count();
    assert_eq!(gateways, 3);
    assert!(p.flows.iter().filter(|f| f.condition.is_some()).count() >= 4);
    assert!(p
        .elements
        .iter()
        .any(|e| matches!(e.kind, ElementKind::UserTask { .. })));
    assert!(p.elements.iter().any(|e| matches!(
        &e.kind,
        ElementKind::BoundaryEvent {
            trigger: Trigger::Error { .. },
            ..
        }
    )));
}

#[test]
fn flowing_retail_reads_messages_timers_and_receive_tasks() {
    let defs = read(&load("flowing-retail--payment.bpmn")).unwrap();
    let p = &defs.processes[0];
    assert!(p.elements.iter().any(|e| matches!(
        &e.kind,
        ElementKind::ReceiveTask {
            correlation_key: Some(_),
            ..
        }
    )));
    assert!(p.elements.iter().any(|e| matches!(
        &e.kind,
        ElementKind::BoundaryEvent {
            trigger: Trigger::Timer(Timer::Duration(_)),
            ..
        }
    )));
    assert!(p.elements.iter().any(|e| matches!(
        &e.kind,
        ElementKind::IntermediateThrowEvent {
            trigger: Trigger::Message { .. },
            job: Some(_)
        }
    )));
}

#[test]
fn structural_problems_are_listed() {
    let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="d">
  <bpmn:process id="p" isExecutable="true">
    <bpmn:serviceTask id="t" />
    <bpmn:exclusiveGateway id="g" default="nowhere" />
    <bpmn:receiveTask id="r" messageRef="m" />
    <bpmn:sequenceFlow id="f1" sourceRef="t" targetRef="ghost" />
  </bpmn:process>
  <bpmn:message id="m" name="paid" />
</bpmn:definitions>"#;
    let DeployError::Invalid(problems) = read(xml).unwrap_err() else {
        panic!()
    };
    let text = problems.join("\n");
    for needle in [
        "needs a zeebe:taskDefinition",
        "\"ghost\"",
        "no start event",
        "default flow nowhere",
        "without a zeebe:subscription",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}

#[test]
fn every_expression_in_the_deployable_fixtures_parses_as_feel() {
    use cpq_workflow::feel::Expression;
    let mut parsed = 0;
    for name in [
        "c8ex--payment_process.bpmn",
        "c8ex--migratedProcess.bpmn",
        "c8ex--twitter.bpmn",
        "flowing-retail--payment.bpmn",
        "ticket-booking--ticket-booking.bpmn",
    ] {
        let defs = read(&load(name)).unwrap();
        let mut sources: Vec<String> = Vec::new();
        for p in &defs.processes {
            sources.extend(p.flows.iter().filter_map(|f| f.condition.clone()));
            for e in &p.elements {
                sources.extend(e.inputs.iter().chain(&e.outputs).map(|m| m.source.clone()));
                if let ElementKind::BoundaryEvent {
                    trigger: Trigger::Timer(t),
                    ..
                }
                | ElementKind::IntermediateCatchEvent {
                    trigger: Trigger::Timer(t),
                } = &e.kind
                {
                    sources.push(match t {
                        Timer::Date(s) | Timer::Duration(s) | Timer::Cycle(s) => s.clone(),
                    });
                }
            }
        }
        sources.extend(
            defs.messages
                .iter()
                .filter_map(|m| m.correlation_key.clone()),
        );
        for s in sources {
            Expression::parse(&s).unwrap_or_else(|e| panic!("{name}: '{s}' does not parse: {e}"));
            parsed += 1;
        }
    }
    assert!(parsed >= 15, "only {parsed} expressions found");
}
