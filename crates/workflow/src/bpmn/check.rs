//! Deploy-time checks on a read process, as Zeebe 8's deployment validation makes them: every
//! expression parses as FEEL, attributes that must be expressions are not static values, mapping
//! targets are variable paths, embedded subprocesses have exactly one none start event.
//!
//! Each problem names the element id, its type and the attribute, so that a refused file can be
//! fixed in one pass. Pure: reads the model, returns messages, never evaluates an expression.

use chrono::DateTime;

use crate::feel::{parse_duration, Expression};

use super::model::*;
use super::MessageDef;

/// How an attribute's text is read.
#[derive(Clone, Copy)]
enum Form {
    /// Must be FEEL (`=...`): Zeebe refuses a static value (conditions, output sources,
    /// correlation keys, multi-instance collections and elements).
    Expression,
    /// FEEL when it starts with `=`, otherwise a static value taken as written.
    ExpressionOrStatic,
}

/// The BPMN element type of a model element, as the XML names it.
pub fn element_type(kind: &ElementKind) -> &'static str {
    match kind {
        ElementKind::StartEvent { .. } => "startEvent",
        ElementKind::EndEvent { .. } => "endEvent",
        ElementKind::IntermediateCatchEvent { .. } => "intermediateCatchEvent",
        ElementKind::IntermediateThrowEvent { .. } => "intermediateThrowEvent",
        ElementKind::BoundaryEvent { .. } => "boundaryEvent",
        ElementKind::ServiceTask { .. } => "serviceTask",
        ElementKind::SendTask { .. } => "sendTask",
        ElementKind::UserTask { .. } => "userTask",
        ElementKind::ReceiveTask { .. } => "receiveTask",
        ElementKind::ExclusiveGateway { .. } => "exclusiveGateway",
        ElementKind::ParallelGateway => "parallelGateway",
        ElementKind::InclusiveGateway { .. } => "inclusiveGateway",
        ElementKind::EventBasedGateway => "eventBasedGateway",
        ElementKind::SubProcess | ElementKind::EventSubProcess { .. } => "subProcess",
        ElementKind::PassThroughTask { tag } if tag == "manualTask" => "manualTask",
        ElementKind::PassThroughTask { .. } => "task",
        ElementKind::ScriptTask { .. } => "scriptTask",
        ElementKind::BusinessRuleTask { .. } => "businessRuleTask",
        ElementKind::CallActivity { .. } => "callActivity",
    }
}

/// `R/PT10M`, `R3/PT10M`: what the runtime's timer reads.
fn static_cycle(text: &str) -> bool {
    let Some((reps, interval)) = text.split_once('/') else {
        return false;
    };
    let count = reps
        .strip_prefix('R')
        .is_some_and(|n| n.is_empty() || n.parse::<u32>().is_ok());
    count && parse_duration(interval).is_ok()
}

struct Problems<'a> {
    out: &'a mut Vec<String>,
}

impl Problems<'_> {
    /// A static id or an expression for one (`decisionId`, `processId`) that must not be empty:
    /// `what` names it in Zeebe's message.
    fn required_id(&mut self, id: &str, kind: &str, attribute: &str, text: &str, what: &str) {
        self.expression(id, kind, attribute, text, Form::ExpressionOrStatic);
        if text.trim().is_empty() {
            self.out.push(format!(
                "{id} ({kind}) {attribute}: Expected a {what} id but not found."
            ));
        }
    }

    fn expression(&mut self, id: &str, kind: &str, attribute: &str, text: &str, form: Form) {
        let trimmed = text.trim();
        let what = format!("{id} ({kind}) {attribute}");
        if trimmed.is_empty() {
            if matches!(form, Form::Expression) {
                self.out
                    .push(format!("{what}: Expected expression but not found."));
            }
            return;
        }
        if !trimmed.starts_with('=') {
            if matches!(form, Form::Expression) {
                self.out.push(format!(
                    "{what}: Expected expression but found static value '{trimmed}'. \
                     An expression must start with '=' (e.g. '={trimmed}')."
                ));
            }
            return;
        }
        if let Err(e) = Expression::parse(trimmed) {
            self.out.push(format!(
                "{what}: failed to parse expression '{trimmed}': {e}"
            ));
        }
    }

    /// Zeebe's mapping targets: a variable name or a dotted path of names.
    fn path(&mut self, id: &str, kind: &str, attribute: &str, text: &str) {
        let what = format!("{id} ({kind}) {attribute}");
        if text.trim().is_empty() {
            self.out
                .push(format!("{what}: Expected path expression but not found."));
            return;
        }
        let name = |s: &str| {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !text.split('.').all(name) {
            self.out.push(format!(
                "{what}: Expected path expression '{text}' but doesn't match the pattern \
                 '[a-zA-Z_][a-zA-Z0-9_]*(\\.[a-zA-Z_][a-zA-Z0-9_]*)*'."
            ));
        }
    }

    fn job(&mut self, id: &str, kind: &str, job: &JobDefinition) {
        use Form::ExpressionOrStatic as S;
        self.expression(id, kind, "zeebe:taskDefinition type", &job.job_type, S);
        self.expression(id, kind, "zeebe:taskDefinition retries", &job.retries, S);
    }

    fn timer(&mut self, id: &str, kind: &str, timer: &Timer) {
        let (attribute, text) = match timer {
            Timer::Date(t) => ("timeDate", t),
            Timer::Duration(t) => ("timeDuration", t),
            Timer::Cycle(t) => ("timeCycle", t),
        };
        self.expression(id, kind, attribute, text, Form::ExpressionOrStatic);
        let text = text.trim();
        if text.starts_with('=') || text.is_empty() {
            return;
        }
        // A static timer is checked now, as Zeebe does, rather than raising an incident later.
        let problem = match timer {
            Timer::Duration(_) => parse_duration(text)
                .err()
                .map(|_| "a duration (ISO 8601, e.g. 'PT15M')"),
            Timer::Date(_) => DateTime::parse_from_rfc3339(text)
                .err()
                .map(|_| "a date-time (ISO 8601 with offset, e.g. '2026-12-24T18:00:00Z')"),
            Timer::Cycle(_) => {
                (!static_cycle(text)).then_some("a cycle (ISO 8601, e.g. 'R3/PT10M')")
            }
        };
        if let Some(expected) = problem {
            self.out.push(format!(
                "{id} ({kind}) {attribute}: Expected static value to be {expected}, but found '{text}'"
            ));
        }
    }

    fn trigger(&mut self, id: &str, kind: &str, trigger: &Trigger) {
        match trigger {
            Trigger::Timer(t) => self.timer(id, kind, t),
            Trigger::Signal { name } => {
                self.expression(id, kind, "signal name", name, Form::ExpressionOrStatic)
            }
            _ => {}
        }
    }

    fn element(&mut self, e: &Element) {
        use Form::{Expression as X, ExpressionOrStatic as S};
        let (id, kind) = (e.id.as_str(), element_type(&e.kind));
        for m in &e.inputs {
            self.expression(id, kind, "zeebe:input source", &m.source, S);
            self.path(id, kind, "zeebe:input target", &m.target);
        }
        for m in &e.outputs {
            self.expression(id, kind, "zeebe:output source", &m.source, X);
            self.path(id, kind, "zeebe:output target", &m.target);
        }
        if let Some(mi) = &e.multi_instance {
            let at = "zeebe:loopCharacteristics";
            // An empty inputCollection is reported by the structural checks.
            if !mi.input_collection.trim().is_empty() {
                self.expression(
                    id,
                    kind,
                    &format!("{at} inputCollection"),
                    &mi.input_collection,
                    X,
                );
            }
            if let Some(o) = &mi.output_element {
                self.expression(id, kind, &format!("{at} outputElement"), o, X);
            }
            for (attribute, path) in [
                ("inputElement", &mi.input_element),
                ("outputCollection", &mi.output_collection),
            ] {
                if let Some(p) = path {
                    self.path(id, kind, &format!("{at} {attribute}"), p);
                }
            }
        }
        if let Some(job) = e.kind.job() {
            self.job(id, kind, job);
        }
        match &e.kind {
            ElementKind::StartEvent { trigger }
            | ElementKind::IntermediateCatchEvent { trigger }
            | ElementKind::BoundaryEvent { trigger, .. } => self.trigger(id, kind, trigger),
            ElementKind::UserTask {
                assignee,
                candidate_groups,
                due_date,
                ..
            } => {
                for (attribute, value) in [
                    ("zeebe:assignmentDefinition assignee", assignee),
                    (
                        "zeebe:assignmentDefinition candidateGroups",
                        candidate_groups,
                    ),
                    ("zeebe:taskSchedule dueDate", due_date),
                ] {
                    if let Some(v) = value {
                        self.expression(id, kind, attribute, v, S);
                    }
                }
            }
            ElementKind::ScriptTask {
                script: Some(script),
                ..
            } => {
                self.expression(id, kind, "zeebe:script expression", &script.expression, X);
                self.path(
                    id,
                    kind,
                    "zeebe:script resultVariable",
                    &script.result_variable,
                );
            }
            ElementKind::BusinessRuleTask {
                decision: Some(d), ..
            } => {
                self.required_id(
                    id,
                    kind,
                    "zeebe:calledDecision decisionId",
                    &d.decision_id,
                    "decision",
                );
                self.path(
                    id,
                    kind,
                    "zeebe:calledDecision resultVariable",
                    &d.result_variable,
                );
                self.binding(
                    id,
                    kind,
                    "zeebe:calledDecision",
                    &d.binding,
                    d.version_tag.as_deref(),
                );
            }
            ElementKind::CallActivity { called } => {
                self.required_id(
                    id,
                    kind,
                    "zeebe:calledElement processId",
                    &called.process_id,
                    "process",
                );
                self.binding(
                    id,
                    kind,
                    "zeebe:calledElement",
                    &called.binding,
                    called.version_tag.as_deref(),
                );
            }
            _ => {}
        }
    }

    /// A call's `bindingType` is latest, deployment or versionTag, the last with a tag.
    fn binding(
        &mut self,
        id: &str,
        kind: &str,
        extension: &str,
        binding: &str,
        version_tag: Option<&str>,
    ) {
        match binding {
            "latest" | "deployment" => {}
            "versionTag" => {
                if version_tag.is_none_or(|t| t.trim().is_empty()) {
                    self.out.push(format!(
                        "{id} ({kind}) {extension} versionTag: binding type versionTag needs a versionTag"
                    ));
                }
            }
            other => self.out.push(format!(
                "{id} ({kind}) {extension} bindingType: '{other}' is not one of latest, deployment, versionTag"
            )),
        }
    }
}

/// Event-based gateways lead only to message and timer catch events (two or more); every link
/// throw has exactly one catch of its name in its scope.
pub fn gateways_and_links(process: &Process, out: &mut Vec<String>) {
    for g in process
        .elements
        .iter()
        .filter(|e| matches!(e.kind, ElementKind::EventBasedGateway))
    {
        let targets: Vec<&str> = process
            .flows
            .iter()
            .filter(|f| f.source == g.id)
            .map(|f| f.target.as_str())
            .collect();
        if targets.len() < 2 {
            out.push(format!(
                "{} (eventBasedGateway): Event-based gateway must have at least 2 outgoing sequence flows, found {}",
                g.id,
                targets.len()
            ));
        }
        for t in targets {
            let ok = process.element(t).is_some_and(|e| {
                matches!(
                    e.kind,
                    ElementKind::IntermediateCatchEvent {
                        trigger: Trigger::Message { .. }
                            | Trigger::Timer(_)
                            | Trigger::Signal { .. }
                    }
                )
            });
            if !ok {
                out.push(format!(
                    "{} (eventBasedGateway): Event-based gateway must not have an outgoing sequence flow to other elements than message, timer or signal intermediate catch events: {t}",
                    g.id
                ));
            }
        }
    }
    let link = |e: &Element, catch: bool| -> Option<String> {
        match &e.kind {
            ElementKind::IntermediateCatchEvent {
                trigger: Trigger::Link { name },
            } if catch => Some(name.clone()),
            ElementKind::IntermediateThrowEvent {
                trigger: Trigger::Link { name },
                ..
            } if !catch => Some(name.clone()),
            _ => None,
        }
    };
    for throw in &process.elements {
        let Some(name) = link(throw, false) else {
            continue;
        };
        let catches = process
            .elements
            .iter()
            .filter(|c| c.parent == throw.parent && link(c, true).as_deref() == Some(&name))
            .count();
        if catches != 1 {
            out.push(format!(
                "{} (intermediateThrowEvent): link '{name}' needs exactly one link catch event of that name in its scope, found {catches}",
                throw.id
            ));
        }
    }
    for catch in &process.elements {
        let Some(name) = link(catch, true) else {
            continue;
        };
        let same = process
            .elements
            .iter()
            .filter(|c| c.parent == catch.parent && link(c, true).as_deref() == Some(&name))
            .count();
        if same > 1 {
            out.push(format!(
                "{} (intermediateCatchEvent): Multiple intermediate catch link event definitions with the same name '{name}' are not allowed",
                catch.id
            ));
        }
    }
}

/// The expression problems of a message definition (its `zeebe:subscription` correlation key).
pub fn message_expressions(m: &MessageDef, out: &mut Vec<String>) {
    if let Some(key) = &m.correlation_key {
        Problems { out }.expression(
            &m.id,
            "message",
            "zeebe:subscription correlationKey",
            key,
            Form::Expression,
        );
    }
}

/// The expression problems of every element and sequence flow of an executable process.
pub fn process_expressions(process: &Process, out: &mut Vec<String>) {
    let mut problems = Problems { out };
    for f in &process.flows {
        if let Some(c) = &f.condition {
            problems.expression(
                &f.id,
                "sequenceFlow",
                "conditionExpression",
                c,
                Form::Expression,
            );
        }
    }
    for e in &process.elements {
        problems.element(e);
    }
}

/// Zeebe: an event subprocess has exactly one start event (message, timer, error or escalation;
/// `isInterrupting="false"` only for message, timer and escalation) and no flows in or out; a
/// scope has at most one error event subprocess per error code.
pub fn event_subprocesses(process: &Process, out: &mut Vec<String>) {
    let mut error_codes: Vec<(Option<&str>, Option<&str>)> = Vec::new();
    for sub in &process.elements {
        let ElementKind::EventSubProcess { interrupting } = sub.kind else {
            continue;
        };
        if process
            .flows
            .iter()
            .any(|f| f.source == sub.id || f.target == sub.id)
        {
            out.push(format!(
                "{} (subProcess): An event subprocess must not have incoming or outgoing sequence \
                 flows",
                sub.id
            ));
        }
        let starts: Vec<&Element> = process
            .elements
            .iter()
            .filter(|e| e.parent.as_deref() == Some(sub.id.as_str()))
            .filter(|e| matches!(e.kind, ElementKind::StartEvent { .. }))
            .collect();
        let [start] = starts.as_slice() else {
            out.push(format!(
                "{} (subProcess): An event subprocess must have exactly one start event, found {}",
                sub.id,
                starts.len()
            ));
            continue;
        };
        match &start.kind {
            ElementKind::StartEvent {
                trigger: Trigger::Error { code, .. },
            } => {
                if !interrupting {
                    out.push(format!(
                        "{} (startEvent): An error start event of an event subprocess must be \
                         interrupting",
                        start.id
                    ));
                }
                let key = (sub.parent.as_deref(), code.as_deref());
                if error_codes.contains(&key) {
                    out.push(format!(
                        "{} (subProcess): Another error event subprocess of the same scope \
                         catches the same error code",
                        sub.id
                    ));
                }
                error_codes.push(key);
            }
            ElementKind::StartEvent {
                trigger:
                    Trigger::Message {
                        correlation_key: None,
                        ..
                    },
            } => out.push(format!(
                "{} (startEvent): A message start event of an event subprocess needs a \
                 correlation key (zeebe:subscription)",
                start.id
            )),
            _ => {}
        }
    }
}

/// Links each compensation boundary event's activity to its handler (the activity the event's
/// association points to) in `process.compensation_handlers`, checking as Zeebe does: the
/// boundary event has an association to an activity marked `isForCompensation`, a handler has
/// no sequence flows, and a compensation throw's `activityRef` names an activity of the process.
pub fn compensation(
    process: &mut Process,
    associations: &[(String, String)],
    for_compensation: &[String],
    out: &mut Vec<String>,
) {
    let mut handlers = std::collections::BTreeMap::new();
    for b in &process.elements {
        let ElementKind::BoundaryEvent {
            attached_to,
            trigger: Trigger::Compensation { .. },
            ..
        } = &b.kind
        else {
            continue;
        };
        let handler = associations
            .iter()
            .find(|(from, _)| *from == b.id)
            .map(|(_, to)| to.clone());
        match handler {
            Some(h) if for_compensation.contains(&h) => {
                handlers.insert(attached_to.clone(), h);
            }
            Some(h) => out.push(format!(
                "{} (boundaryEvent): The compensation handler '{h}' must be an activity with \
                 isForCompensation=\"true\"",
                b.id
            )),
            None => out.push(format!(
                "{} (boundaryEvent): A compensation boundary event must have an association to \
                 a compensation handler",
                b.id
            )),
        }
    }
    for h in for_compensation {
        if process
            .flows
            .iter()
            .any(|f| f.source == *h || f.target == *h)
        {
            out.push(format!(
                "{h} ({}): A compensation handler must not have incoming or outgoing sequence flows",
                process.element(h).map_or("activity", |e| element_type(&e.kind))
            ));
        }
    }
    for e in &process.elements {
        if let ElementKind::IntermediateThrowEvent {
            trigger: Trigger::Compensation {
                activity: Some(a), ..
            },
            ..
        }
        | ElementKind::EndEvent {
            trigger: Trigger::Compensation {
                activity: Some(a), ..
            },
            ..
        } = &e.kind
        {
            if process.element(a).is_none() {
                out.push(format!(
                    "{} ({}): The compensation activityRef '{a}' is not an activity of the process",
                    e.id,
                    element_type(&e.kind)
                ));
            }
        }
    }
    process.compensation_handlers = handlers;
}

/// Zeebe: an embedded subprocess has exactly one start event, and it is a none start event.
pub fn subprocess_starts(process: &Process, out: &mut Vec<String>) {
    for sub in process
        .elements
        .iter()
        .filter(|e| matches!(e.kind, ElementKind::SubProcess))
    {
        let starts: Vec<&Element> = process
            .elements
            .iter()
            .filter(|e| e.parent.as_deref() == Some(sub.id.as_str()))
            .filter(|e| matches!(e.kind, ElementKind::StartEvent { .. }))
            .collect();
        let none = starts
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    ElementKind::StartEvent {
                        trigger: Trigger::None
                    }
                )
            })
            .count();
        if starts.len() != 1 || none != 1 {
            out.push(format!(
                "{} (subProcess): Must have exactly one none start event, found {} start event(s) \
                 of which {none} none",
                sub.id,
                starts.len()
            ));
        }
    }
}
