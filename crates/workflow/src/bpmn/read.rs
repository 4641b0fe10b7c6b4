use roxmltree::{Document, Node};
use sha2::{Digest, Sha256};

use super::check;
use super::model::*;

pub const BPMN: &str = "http://www.omg.org/spec/BPMN/20100524/MODEL";
pub const ZEEBE: &str = "http://camunda.org/schema/zeebe/1.0";
/// Camunda 7's extension namespace: a file using it and not `zeebe:` was modelled for Camunda 7.
pub const CAMUNDA7: &str = "http://camunda.org/schema/1.0/bpmn";
/// The job type Zeebe gives job-based user tasks.
pub const USER_TASK_JOB_TYPE: &str = "io.camunda.zeebe:userTask";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeployError {
    #[error("not BPMN XML: {0}")]
    Xml(String),
    /// Every element the engine does not support: (id, type).
    #[error("unsupported BPMN elements: {}", .0.iter().map(|(id, t)| format!("{id} ({t})")).collect::<Vec<_>>().join(", "))]
    Unsupported(Vec<(String, String)>),
    /// Supported elements used inconsistently: each problem.
    #[error("invalid process: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Elements with no execution semantics: skipped wherever they appear, as Zeebe does.
/// (Loop characteristics belong to their activity and are read with it.)
const IGNORED: &[&str] = &[
    "multiInstanceLoopCharacteristics",
    "standardLoopCharacteristics",
    "extensionElements",
    "documentation",
    "incoming",
    "outgoing",
    "laneSet",
    "textAnnotation",
    "association",
    "group",
    "dataObject",
    "dataObjectReference",
    "dataStore",
    "dataStoreReference",
    "dataInputAssociation",
    "dataOutputAssociation",
    "category",
    "property",
    "ioSpecification",
];

struct Reader {
    unsupported: Vec<(String, String)>,
    invalid: Vec<String>,
    messages: Vec<MessageDef>,
    errors: Vec<ErrorDef>,
    /// Escalation definitions: (id, escalationCode).
    escalations: Vec<(String, Option<String>)>,
    /// Signal definitions: (id, name).
    signals: Vec<(String, Option<String>)>,
    /// Associations of the process being read: (source, target).
    associations: Vec<(String, String)>,
}

fn bpmn(node: &Node, name: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(BPMN) && node.tag_name().name() == name
}

fn zeebe<'a>(node: Node<'a, 'a>, name: &str) -> Option<Node<'a, 'a>> {
    node.children()
        .find(|c| bpmn(c, "extensionElements"))?
        .children()
        .find(|c| {
            c.is_element() && c.tag_name().namespace() == Some(ZEEBE) && c.tag_name().name() == name
        })
}

fn attr(node: Node, name: &str) -> Option<String> {
    node.attribute(name).map(str::to_owned)
}

/// A FEEL expression evaluated at deploy, without variables, to a non-empty string.
fn static_text(source: &str) -> Result<String, String> {
    let expression = crate::feel::Expression::parse(source).map_err(|e| e.to_string())?;
    let env = crate::feel::Env {
        variables: &serde_json::Map::new(),
        outer: &[],
        now: chrono::DateTime::UNIX_EPOCH,
    };
    match expression.evaluate_json(&env).map_err(|e| e.to_string())? {
        serde_json::Value::String(s) if !s.trim().is_empty() => Ok(s),
        other => Err(format!("it gave {other}, not a name")),
    }
}

fn id_of(node: Node) -> String {
    node.attribute("id").unwrap_or("(no id)").to_owned()
}

fn mappings(node: Node, kind: &str) -> Vec<Mapping> {
    zeebe(node, "ioMapping")
        .map(|io| {
            io.children()
                .filter(|c| c.is_element() && c.tag_name().name() == kind)
                .map(|c| Mapping {
                    source: attr(c, "source").unwrap_or_default(),
                    target: attr(c, "target").unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `zeebe:taskHeaders`: (key, value) in document order.
fn task_headers(node: Node) -> Vec<(String, String)> {
    zeebe(node, "taskHeaders")
        .map(|h| {
            h.children()
                .filter(|c| c.is_element())
                .map(|c| {
                    (
                        attr(c, "key").unwrap_or_default(),
                        attr(c, "value").unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn text_of(node: Node) -> Option<String> {
    node.text()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

impl Reader {
    fn job(&mut self, node: Node) -> Option<JobDefinition> {
        let def = zeebe(node, "taskDefinition")?;
        let job_type = attr(def, "type").unwrap_or_default();
        if job_type.trim().is_empty() {
            self.invalid.push(format!(
                "{} has a taskDefinition without a type",
                id_of(node)
            ));
        }
        Some(JobDefinition {
            job_type,
            retries: attr(def, "retries").unwrap_or_else(|| "3".into()),
            headers: task_headers(node),
        })
    }

    fn required_job(&mut self, node: Node) -> JobDefinition {
        self.job(node).unwrap_or_else(|| {
            self.invalid.push(format!(
                "{} ({}) needs a zeebe:taskDefinition with a job type",
                id_of(node),
                node.tag_name().name()
            ));
            JobDefinition {
                job_type: String::new(),
                retries: "3".into(),
                headers: vec![],
            }
        })
    }

    fn message(
        &mut self,
        owner: Node,
        message_ref: Option<&str>,
    ) -> (String, String, Option<String>) {
        let r = message_ref.unwrap_or_default().to_owned();
        match self.messages.iter().find(|m| m.id == r) {
            Some(m) => (r, m.name.clone(), m.correlation_key.clone()),
            None => {
                self.invalid.push(format!(
                    "{} refers to message \"{r}\", which is not defined",
                    id_of(owner)
                ));
                (r, String::new(), None)
            }
        }
    }

    /// The event's trigger from its event definition; unsupported definitions are recorded.
    fn trigger(&mut self, node: Node, allowed: &[&str]) -> Trigger {
        let defs: Vec<Node> = node
            .children()
            .filter(|c| {
                c.is_element()
                    && c.tag_name().namespace() == Some(BPMN)
                    && c.tag_name().name().ends_with("EventDefinition")
            })
            .collect();
        let Some(def) = defs.first() else {
            return if allowed.contains(&"none") {
                Trigger::None
            } else {
                self.unsupported.push((
                    id_of(node),
                    format!("{} without an event definition", node.tag_name().name()),
                ));
                Trigger::None
            };
        };
        let kind = def.tag_name().name().trim_end_matches("EventDefinition");
        if defs.len() > 1 || !allowed.contains(&kind) {
            self.unsupported.push((
                id_of(node),
                format!("{} with {}", node.tag_name().name(), def.tag_name().name()),
            ));
            return Trigger::None;
        }
        match kind {
            // A throwing message event is executed as a job (Zeebe): it needs no message definition.
            "message"
                if def.attribute("messageRef").is_none()
                    && matches!(
                        node.tag_name().name(),
                        "endEvent" | "intermediateThrowEvent"
                    ) =>
            {
                Trigger::Message {
                    message_ref: String::new(),
                    name: String::new(),
                    correlation_key: None,
                }
            }
            "message" => {
                let (message_ref, name, correlation_key) =
                    self.message(node, def.attribute("messageRef"));
                Trigger::Message {
                    message_ref,
                    name,
                    correlation_key,
                }
            }
            "timer" => {
                let find = |n: &str| def.children().find(|c| bpmn(c, n)).and_then(text_of);
                match (find("timeDate"), find("timeDuration"), find("timeCycle")) {
                    (Some(d), None, None) => Trigger::Timer(Timer::Date(d)),
                    (None, Some(d), None) => Trigger::Timer(Timer::Duration(d)),
                    (None, None, Some(c)) => Trigger::Timer(Timer::Cycle(c)),
                    _ => {
                        self.invalid.push(format!(
                            "{} needs exactly one of timeDate, timeDuration, timeCycle",
                            id_of(node)
                        ));
                        Trigger::None
                    }
                }
            }
            "error" => {
                let error_ref = attr(*def, "errorRef");
                let code = error_ref
                    .as_ref()
                    .and_then(|r| self.errors.iter().find(|e| &e.id == r))
                    .and_then(|e| e.code.clone());
                if let Some(r) = &error_ref {
                    if !self.errors.iter().any(|e| &e.id == r) {
                        self.invalid.push(format!(
                            "{} refers to error \"{r}\", which is not defined",
                            id_of(node)
                        ));
                    }
                }
                Trigger::Error { error_ref, code }
            }
            "terminate" => Trigger::Terminate,
            "link" => {
                let name = attr(*def, "name").unwrap_or_default();
                if name.trim().is_empty() {
                    self.invalid.push(format!(
                        "{} ({}): a link event needs a name",
                        id_of(node),
                        node.tag_name().name()
                    ));
                }
                Trigger::Link { name }
            }
            "escalation" => {
                let escalation_ref = attr(*def, "escalationRef");
                let code = match &escalation_ref {
                    Some(r) => match self.escalations.iter().find(|(id, _)| id == r) {
                        Some((_, code)) => code.clone(),
                        None => {
                            self.invalid.push(format!(
                                "{} refers to escalation \"{r}\", which is not defined",
                                id_of(node)
                            ));
                            None
                        }
                    },
                    None => None,
                };
                if code.is_none() && node.tag_name().name() != "boundaryEvent" {
                    self.invalid.push(format!(
                        "{} ({}): a thrown escalation needs an escalation with an escalationCode",
                        id_of(node),
                        node.tag_name().name()
                    ));
                }
                Trigger::Escalation { code }
            }
            "compensate" => Trigger::Compensation {
                activity: attr(*def, "activityRef"),
            },
            "signal" => {
                let name = attr(*def, "signalRef")
                    .and_then(|r| self.signals.iter().find(|(id, _)| *id == r))
                    .and_then(|(_, name)| name.clone())
                    .filter(|n| !n.trim().is_empty());
                let process_start = node.tag_name().name() == "startEvent"
                    && node.parent_element().is_some_and(|p| bpmn(&p, "process"));
                match name {
                    // A process's signal start event is found by its name when a signal is
                    // broadcast: as in Zeebe, its expression is evaluated at deploy, without
                    // variables. Elsewhere the name is evaluated when the element is entered.
                    Some(name) if name.starts_with('=') && process_start => {
                        match static_text(&name) {
                            Ok(name) => Trigger::Signal { name },
                            Err(e) => {
                                self.invalid.push(format!(
                                    "{} (startEvent): the signal name '{name}' of a process's start event must give a name at deploy, without variables: {e}",
                                    id_of(node)
                                ));
                                Trigger::None
                            }
                        }
                    }
                    Some(name) => Trigger::Signal { name },
                    None => {
                        self.invalid.push(format!(
                            "{} ({}): Must reference a signal with a name (signalRef)",
                            id_of(node),
                            node.tag_name().name()
                        ));
                        Trigger::None
                    }
                }
            }
            _ => Trigger::None,
        }
    }

    /// `zeebe:executionListeners`: each with an `eventType` of start or end and a job `type`.
    fn listeners(&mut self, node: Node, id: &str) -> Vec<ExecutionListener> {
        let Some(list) = zeebe(node, "executionListeners") else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for l in list.children().filter(|c| c.is_element()) {
            let event = match l.attribute("eventType") {
                Some("start") => ListenerEvent::Start,
                Some("end") => ListenerEvent::End,
                other => {
                    self.invalid.push(format!(
                        "{id} ({}): execution listener eventType {} is not start or end",
                        node.tag_name().name(),
                        other.map_or_else(|| "(none)".to_owned(), |o| format!("'{o}'"))
                    ));
                    continue;
                }
            };
            match attr(l, "type").filter(|t| !t.trim().is_empty()) {
                Some(job_type) => out.push(ExecutionListener {
                    event,
                    job_type,
                    retries: attr(l, "retries").unwrap_or_else(|| "3".to_owned()),
                }),
                None => self.invalid.push(format!(
                    "{id} ({}): an execution listener needs a job type",
                    node.tag_name().name()
                )),
            }
        }
        out
    }

    fn multi_instance(&mut self, node: Node) -> Option<MultiInstance> {
        let mi = node
            .children()
            .find(|c| bpmn(c, "multiInstanceLoopCharacteristics"))?;
        let sequential = mi.attribute("isSequential") == Some("true");
        match zeebe(mi, "loopCharacteristics") {
            Some(lc) => Some(MultiInstance {
                sequential,
                input_collection: attr(lc, "inputCollection").unwrap_or_default(),
                input_element: attr(lc, "inputElement"),
                output_collection: attr(lc, "outputCollection"),
                output_element: attr(lc, "outputElement"),
            }),
            None => {
                self.invalid.push(format!(
                    "{} is multi-instance without zeebe:loopCharacteristics (inputCollection)",
                    id_of(node)
                ));
                None
            }
        }
    }

    fn flow_node(&mut self, node: Node, parent: Option<&str>, process: &mut Process) {
        let name = node.tag_name().name();
        let id = id_of(node);
        if node
            .children()
            .any(|c| bpmn(&c, "standardLoopCharacteristics"))
        {
            self.unsupported.push((
                id.clone(),
                format!("{name} with standardLoopCharacteristics"),
            ));
        }
        let listeners = self.listeners(node, &id);
        let kind = match name {
            "startEvent" => {
                let in_event_subprocess = node.parent().is_some_and(|p| {
                    bpmn(&p, "subProcess") && p.attribute("triggeredByEvent") == Some("true")
                });
                let allowed: &[&str] = if in_event_subprocess {
                    &["message", "timer", "error", "escalation", "signal"]
                } else {
                    &["none", "message", "timer", "signal"]
                };
                ElementKind::StartEvent {
                    trigger: self.trigger(node, allowed),
                }
            }
            "endEvent" => {
                let trigger = self.trigger(
                    node,
                    &[
                        "none",
                        "error",
                        "terminate",
                        "message",
                        "escalation",
                        "signal",
                        "compensate",
                    ],
                );
                let job = if matches!(trigger, Trigger::Message { .. }) {
                    Some(self.required_job(node))
                } else {
                    None
                };
                ElementKind::EndEvent { trigger, job }
            }
            "intermediateCatchEvent" => ElementKind::IntermediateCatchEvent {
                trigger: self.trigger(node, &["message", "timer", "link", "signal"]),
            },
            "intermediateThrowEvent" => {
                let trigger = self.trigger(
                    node,
                    &[
                        "none",
                        "message",
                        "link",
                        "escalation",
                        "signal",
                        "compensate",
                    ],
                );
                let job = if matches!(trigger, Trigger::Message { .. }) {
                    Some(self.required_job(node))
                } else {
                    None
                };
                ElementKind::IntermediateThrowEvent { trigger, job }
            }
            "boundaryEvent" => ElementKind::BoundaryEvent {
                attached_to: attr(node, "attachedToRef").unwrap_or_default(),
                interrupting: node.attribute("cancelActivity") != Some("false"),
                trigger: self.trigger(
                    node,
                    &[
                        "timer",
                        "error",
                        "message",
                        "escalation",
                        "signal",
                        "compensate",
                    ],
                ),
            },
            "serviceTask" => ElementKind::ServiceTask {
                job: self.required_job(node),
            },
            "sendTask" => ElementKind::SendTask {
                job: self.required_job(node),
            },
            "userTask" => {
                let native = zeebe(node, "userTask").is_some();
                let assignment = zeebe(node, "assignmentDefinition");
                let schedule = zeebe(node, "taskSchedule");
                ElementKind::UserTask {
                    native,
                    job: (!native).then(|| JobDefinition {
                        job_type: USER_TASK_JOB_TYPE.into(),
                        retries: "3".into(),
                        headers: task_headers(node),
                    }),
                    assignee: assignment.and_then(|a| attr(a, "assignee")),
                    candidate_groups: assignment.and_then(|a| attr(a, "candidateGroups")),
                    due_date: schedule.and_then(|s| attr(s, "dueDate")),
                }
            }
            "receiveTask" => {
                let (message_ref, name, correlation_key) =
                    self.message(node, node.attribute("messageRef"));
                ElementKind::ReceiveTask {
                    message_ref,
                    name,
                    correlation_key,
                }
            }
            "exclusiveGateway" => ElementKind::ExclusiveGateway {
                default: attr(node, "default"),
            },
            "inclusiveGateway" => ElementKind::InclusiveGateway {
                default: attr(node, "default"),
            },
            "eventBasedGateway" => ElementKind::EventBasedGateway,
            "parallelGateway" => ElementKind::ParallelGateway,
            "manualTask" | "task" => ElementKind::PassThroughTask {
                tag: name.to_owned(),
            },
            "scriptTask" => match zeebe(node, "script") {
                Some(script) => ElementKind::ScriptTask {
                    script: Some(Script {
                        expression: attr(script, "expression").unwrap_or_default(),
                        result_variable: attr(script, "resultVariable").unwrap_or_default(),
                    }),
                    job: None,
                },
                None => ElementKind::ScriptTask {
                    script: None,
                    job: Some(self.required_job(node)),
                },
            },
            "businessRuleTask" => match zeebe(node, "calledDecision") {
                Some(called) => ElementKind::BusinessRuleTask {
                    decision: Some(CalledDecision {
                        decision_id: attr(called, "decisionId").unwrap_or_default(),
                        result_variable: attr(called, "resultVariable").unwrap_or_default(),
                        binding: attr(called, "bindingType").unwrap_or_else(|| "latest".into()),
                        version_tag: attr(called, "versionTag"),
                    }),
                    job: None,
                },
                None => ElementKind::BusinessRuleTask {
                    decision: None,
                    job: Some(self.required_job(node)),
                },
            },
            "callActivity" => {
                let called = zeebe(node, "calledElement");
                if called.is_none() {
                    self.invalid.push(format!(
                        "{id} (callActivity): needs a zeebe:calledElement with a processId"
                    ));
                }
                let flag = |name: &str| called.and_then(|c| c.attribute(name)) != Some("false");
                ElementKind::CallActivity {
                    called: CalledElement {
                        process_id: called
                            .and_then(|c| attr(c, "processId"))
                            .unwrap_or_default(),
                        binding: called
                            .and_then(|c| attr(c, "bindingType"))
                            .unwrap_or_else(|| "latest".into()),
                        version_tag: called.and_then(|c| attr(c, "versionTag")),
                        propagate_all_parent_variables: flag("propagateAllParentVariables"),
                        propagate_all_child_variables: flag("propagateAllChildVariables"),
                    },
                }
            }
            "subProcess" => {
                self.container(node, Some(&id), process);
                if node.attribute("triggeredByEvent") == Some("true") {
                    let interrupting = node
                        .children()
                        .find(|c| bpmn(c, "startEvent"))
                        .and_then(|s| s.attribute("isInterrupting"))
                        != Some("false");
                    ElementKind::EventSubProcess { interrupting }
                } else {
                    ElementKind::SubProcess
                }
            }
            other => {
                self.unsupported.push((id.clone(), other.to_owned()));
                return;
            }
        };
        process.elements.push(Element {
            id,
            name: attr(node, "name"),
            parent: parent.map(str::to_owned),
            kind,
            inputs: mappings(node, "input"),
            outputs: mappings(node, "output"),
            listeners,
            multi_instance: self.multi_instance(node),
        });
    }

    /// Reads the flow nodes and sequence flows directly inside a process or subprocess.
    fn container(&mut self, node: Node, parent: Option<&str>, process: &mut Process) {
        for child in node
            .children()
            .filter(|c| c.is_element() && c.tag_name().namespace() == Some(BPMN))
        {
            let name = child.tag_name().name();
            if name == "association" {
                if let (Some(from), Some(to)) = (attr(child, "sourceRef"), attr(child, "targetRef"))
                {
                    self.associations.push((from, to));
                }
                continue;
            }
            if IGNORED.contains(&name) {
                continue;
            }
            if name == "sequenceFlow" {
                process.flows.push(SequenceFlow {
                    id: id_of(child),
                    source: attr(child, "sourceRef").unwrap_or_default(),
                    target: attr(child, "targetRef").unwrap_or_default(),
                    condition: child
                        .children()
                        .find(|c| bpmn(c, "conditionExpression"))
                        .and_then(text_of),
                });
            } else {
                self.flow_node(child, parent, process);
            }
        }
    }
}

fn check(process: &Process, invalid: &mut Vec<String>) {
    let exists = |id: &str| process.elements.iter().any(|e| e.id == id);
    for f in &process.flows {
        for end in [&f.source, &f.target] {
            if !exists(end) {
                invalid.push(format!(
                    "sequence flow {} connects \"{end}\", which is not an element of {}",
                    f.id, process.id
                ));
            }
        }
    }
    if !process
        .elements
        .iter()
        .any(|e| e.parent.is_none() && matches!(e.kind, ElementKind::StartEvent { .. }))
    {
        invalid.push(format!("process {} has no start event", process.id));
    }
    for e in &process.elements {
        match &e.kind {
            ElementKind::ExclusiveGateway { default: Some(d) }
            | ElementKind::InclusiveGateway { default: Some(d) }
                if !process.flows.iter().any(|f| &f.id == d && f.source == e.id) =>
            {
                invalid.push(format!(
                    "gateway {}: default flow {d} does not leave it",
                    e.id
                ));
            }
            ElementKind::BoundaryEvent {
                attached_to,
                trigger,
                ..
            } => {
                if !process
                    .element(attached_to)
                    .is_some_and(|a| a.kind.is_activity())
                {
                    invalid.push(format!("boundary event {} is attached to \"{attached_to}\", which is not an activity", e.id));
                }
                if matches!(
                    trigger,
                    Trigger::Message {
                        correlation_key: None,
                        ..
                    }
                ) {
                    invalid.push(format!(
                        "{} waits for a message without a zeebe:subscription correlationKey",
                        e.id
                    ));
                }
            }
            ElementKind::IntermediateCatchEvent {
                trigger:
                    Trigger::Message {
                        correlation_key: None,
                        ..
                    },
            }
            | ElementKind::ReceiveTask {
                correlation_key: None,
                ..
            } => {
                invalid.push(format!(
                    "{} waits for a message without a zeebe:subscription correlationKey",
                    e.id
                ));
            }
            _ => {}
        }
        if let Some(mi) = &e.multi_instance {
            if mi.input_collection.trim().is_empty() {
                invalid.push(format!(
                    "{} is multi-instance without an inputCollection",
                    e.id
                ));
            }
        }
    }
}

/// A file written for Camunda 7: the `camunda:` namespace used and `zeebe:` nowhere.
fn camunda7(doc: &Document) -> bool {
    let uses = |ns: &str| {
        doc.root_element().namespaces().any(|n| n.uri() == ns)
            || doc.descendants().filter(|n| n.is_element()).any(|n| {
                n.tag_name().namespace() == Some(ns)
                    || n.attributes().any(|a| a.namespace() == Some(ns))
            })
    };
    uses(CAMUNDA7) && !uses(ZEEBE)
}

/// Reads a BPMN file. Fails with every unsupported element, or with every structural and
/// expression problem of its executable processes.
pub fn read(xml: &str) -> Result<Definitions, DeployError> {
    super::limits::check_depth(xml).map_err(DeployError::Xml)?;
    let doc = Document::parse(xml).map_err(|e| DeployError::Xml(e.to_string()))?;
    let root = doc.root_element();
    if !bpmn(&root, "definitions") {
        return Err(DeployError::Xml(
            "the root element is not bpmn:definitions".into(),
        ));
    }
    if camunda7(&doc) {
        return Err(DeployError::Invalid(vec![
            "this is a Camunda 7 model (camunda: extensions, namespace \
             http://camunda.org/schema/1.0/bpmn): the engine runs Camunda 8 models, whose tasks, \
             messages and mappings are configured with zeebe: extensions; migrate the file or \
             model it again for Camunda 8"
                .into(),
        ]));
    }
    let mut r = Reader {
        unsupported: Vec::new(),
        invalid: Vec::new(),
        messages: Vec::new(),
        errors: Vec::new(),
        escalations: Vec::new(),
        signals: Vec::new(),
        associations: Vec::new(),
    };
    for e in root.children().filter(|c| bpmn(c, "signal")) {
        r.signals.push((id_of(e), attr(e, "name")));
    }
    for e in root.children().filter(|c| bpmn(c, "escalation")) {
        r.escalations.push((id_of(e), attr(e, "escalationCode")));
    }
    for m in root.children().filter(|c| bpmn(c, "message")) {
        r.messages.push(MessageDef {
            id: id_of(m),
            name: attr(m, "name").unwrap_or_default(),
            correlation_key: zeebe(m, "subscription").and_then(|s| attr(s, "correlationKey")),
        });
    }
    for e in root.children().filter(|c| bpmn(c, "error")) {
        r.errors.push(ErrorDef {
            id: id_of(e),
            name: attr(e, "name"),
            code: attr(e, "errorCode"),
        });
    }
    let mut processes = Vec::new();
    for (i, p) in root.children().filter(|c| bpmn(c, "process")).enumerate() {
        let executable = p.attribute("isExecutable") != Some("false");
        let mut process = Process {
            id: id_of(p),
            name: attr(p, "name"),
            executable,
            elements: Vec::new(),
            flows: Vec::new(),
            compensation_handlers: Default::default(),
            version_tag: zeebe(p, "versionTag")
                .and_then(|v| attr(v, "value"))
                .filter(|v| !v.trim().is_empty()),
        };
        if executable {
            if p.attribute("id").is_none_or(|id| id.trim().is_empty()) {
                r.invalid.push(format!(
                    "process #{} ({}) has no id: an executable process needs one",
                    i + 1,
                    attr(p, "name").map_or_else(|| "no name".into(), |n| format!("name \"{n}\"")),
                ));
            }
            r.associations.clear();
            r.container(p, None, &mut process);
            let associations = std::mem::take(&mut r.associations);
            let for_compensation: Vec<String> = p
                .descendants()
                .filter(|n| n.attribute("isForCompensation") == Some("true"))
                .map(id_of)
                .collect();
            check::compensation(
                &mut process,
                &associations,
                &for_compensation,
                &mut r.invalid,
            );
        } else {
            // A non-executable pool is documentation: read for completeness, never refused.
            let mut scratch = Reader {
                unsupported: Vec::new(),
                invalid: Vec::new(),
                messages: r.messages.clone(),
                errors: r.errors.clone(),
                escalations: r.escalations.clone(),
                signals: r.signals.clone(),
                associations: Vec::new(),
            };
            scratch.container(p, None, &mut process);
        }
        processes.push(process);
    }
    if !r.unsupported.is_empty() {
        return Err(DeployError::Unsupported(r.unsupported));
    }
    let executable: Vec<&Process> = processes.iter().filter(|p| p.executable).collect();
    if executable.is_empty() {
        r.invalid
            .push("the file holds no executable process".into());
    }
    for p in executable {
        check(p, &mut r.invalid);
        check::subprocess_starts(p, &mut r.invalid);
        check::event_subprocesses(p, &mut r.invalid);
        check::gateways_and_links(p, &mut r.invalid);
        check::process_expressions(p, &mut r.invalid);
    }
    for m in &r.messages {
        check::message_expressions(m, &mut r.invalid);
    }
    if !r.invalid.is_empty() {
        return Err(DeployError::Invalid(r.invalid));
    }
    Ok(Definitions {
        checksum: hex::encode(Sha256::digest(xml.as_bytes())),
        processes,
        messages: r.messages,
        errors: r.errors,
    })
}
