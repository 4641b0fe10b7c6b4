//! Golden tests of compensation (issue 16): a throw compensates the completed activities of its
//! scope that have a handler, latest first, one handler at a time, and then goes on; activities
//! still running are not compensated; a multi-instance activity's handler runs once per completed
//! instance; a completed subprocess stands for the activities completed inside it; `activityRef`
//! picks one activity.

use super::*;

/// A service task `id` with a compensation boundary event associated with its handler
/// `undo_<id>` (a service task of job type `undo-<id>`).
fn compensable(id: &str, extra: &str) -> String {
    format!(
        r#"<bpmn:serviceTask id="{id}">{extra}<bpmn:extensionElements><zeebe:taskDefinition type="{id}" /></bpmn:extensionElements></bpmn:serviceTask>
        <bpmn:boundaryEvent id="{id}_comp" attachedToRef="{id}"><bpmn:compensateEventDefinition /></bpmn:boundaryEvent>
        <bpmn:serviceTask id="undo_{id}" isForCompensation="true"><bpmn:extensionElements><zeebe:taskDefinition type="undo-{id}" /></bpmn:extensionElements></bpmn:serviceTask>
        <bpmn:association id="{id}_assoc" associationDirection="One" sourceRef="{id}_comp" targetRef="undo_{id}" />"#
    )
}

const THROW: &str = r#"<bpmn:intermediateThrowEvent id="undo"><bpmn:compensateEventDefinition /></bpmn:intermediateThrowEvent>"#;

#[test]
fn a_throw_compensates_completed_activities_latest_first_one_at_a_time_then_goes_on() {
    let p = process(
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            compensable("reserve", ""),
            compensable("charge", ""),
            task("notify", "notify"),
            THROW.to_owned(),
            task("after", "after"),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "reserve"),
            flow("f2", "reserve", "charge"),
            flow("f3", "charge", "notify"),
            flow("f4", "notify", "undo"),
            flow("f5", "undo", "after"),
            flow("f6", "after", "e"),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({}));
    for t in ["reserve", "charge", "notify"] {
        d.complete(t, json!({}));
    }
    assert_eq!(d.open(), ["undo_charge"], "the latest first, one at a time");
    d.complete("undo_charge", json!({}));
    assert_eq!(d.open(), ["undo_reserve"]);
    d.complete("undo_reserve", json!({}));
    assert_eq!(
        d.open(),
        ["after"],
        "the throw went on once every handler was done"
    );
    d.complete("after", json!({}));
    assert_eq!(d.completed, 1);
    assert!(d.state.completed.is_empty(), "each is compensated once");
}

#[test]
fn an_activity_still_running_is_not_compensated() {
    let p = process(
        &[
            r#"<bpmn:startEvent id="s" /><bpmn:parallelGateway id="fork" />"#.to_owned(),
            compensable("reserve", ""),
            compensable("ship", ""),
            r#"<bpmn:endEvent id="undoEnd"><bpmn:compensateEventDefinition /></bpmn:endEvent><bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "fork"),
            flow("f2", "fork", "reserve"),
            flow("f3", "fork", "ship"),
            flow("f4", "reserve", "undoEnd"),
            flow("f5", "ship", "e"),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({}));
    d.complete("reserve", json!({}));
    assert_eq!(
        d.open(),
        ["ship", "undo_reserve"],
        "ship is running: not compensated"
    );
    d.complete("undo_reserve", json!({}));
    assert_eq!(d.open(), ["ship"]);
    assert_eq!(d.completed, 0);
    d.complete("ship", json!({}));
    assert_eq!(d.completed, 1);
}

#[test]
fn a_multi_instance_activity_is_compensated_once_per_completed_instance() {
    let mi = r#"<bpmn:multiInstanceLoopCharacteristics><bpmn:extensionElements><zeebe:loopCharacteristics inputCollection="=items" inputElement="item" /></bpmn:extensionElements></bpmn:multiInstanceLoopCharacteristics>"#;
    let p = process(
        &[
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            compensable("book", mi),
            THROW.to_owned(),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "book"),
            flow("f2", "book", "undo"),
            flow("f3", "undo", "e"),
        ]
        .concat(),
    );
    let mut d = Driver::start(&p, json!({ "items": [1, 2, 3] }));
    for _ in 0..3 {
        d.complete("book", json!({}));
    }
    for waiting in [2, 1, 0] {
        assert_eq!(d.open(), ["undo_book"], "one handler at a time");
        assert_eq!(
            d.state.compensating.values().map(Vec::len).sum::<usize>(),
            waiting,
            "handlers still to run"
        );
        d.complete("undo_book", json!({}));
    }
    assert_eq!(d.open(), Vec::<&str>::new());
    assert_eq!(d.completed, 1, "three handlers, then the process ended");
}

#[test]
fn a_completed_subprocess_stands_for_the_activities_completed_inside_it_and_activity_ref_picks_one()
{
    let body = |throw: &str| {
        [
            r#"<bpmn:startEvent id="s" />"#.to_owned(),
            format!(
                r#"<bpmn:subProcess id="sub"><bpmn:startEvent id="ss" />{}<bpmn:endEvent id="se" />{}{}</bpmn:subProcess>"#,
                compensable("inner", ""),
                flow("sf1", "ss", "inner"),
                flow("sf2", "inner", "se"),
            ),
            compensable("outer", ""),
            throw.to_owned(),
            r#"<bpmn:endEvent id="e" />"#.to_owned(),
            flow("f1", "s", "sub"),
            flow("f2", "sub", "outer"),
            flow("f3", "outer", "undo"),
            flow("f4", "undo", "e"),
        ]
        .concat()
    };
    let p = process(&body(THROW));
    let mut d = Driver::start(&p, json!({}));
    d.complete("inner", json!({}));
    d.complete("outer", json!({}));
    assert_eq!(d.open(), ["undo_outer"]);
    d.complete("undo_outer", json!({}));
    assert_eq!(d.open(), ["undo_inner"], "through the completed subprocess");
    d.complete("undo_inner", json!({}));
    assert_eq!(d.completed, 1);

    let only = process(&body(
        r#"<bpmn:intermediateThrowEvent id="undo"><bpmn:compensateEventDefinition activityRef="outer" /></bpmn:intermediateThrowEvent>"#,
    ));
    let mut o = Driver::start(&only, json!({}));
    o.complete("inner", json!({}));
    o.complete("outer", json!({}));
    assert_eq!(o.open(), ["undo_outer"]);
    o.complete("undo_outer", json!({}));
    assert_eq!(o.completed, 1, "only the activity named");
}
