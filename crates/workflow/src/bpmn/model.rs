use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Definitions {
    /// SHA-256 (hex) of the file's bytes: a re-deploy of the same file is recognised by it.
    pub checksum: String,
    pub processes: Vec<Process>,
    pub messages: Vec<MessageDef>,
    pub errors: Vec<ErrorDef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageDef {
    pub id: String,
    pub name: String,
    /// FEEL expression (`=orderId`) from `zeebe:subscription`.
    pub correlation_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDef {
    pub id: String,
    pub name: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    pub id: String,
    pub name: Option<String>,
    pub executable: bool,
    /// Every flow node, subprocess contents included (see [`Element::parent`]).
    pub elements: Vec<Element>,
    pub flows: Vec<SequenceFlow>,
    /// Activity id -> its compensation handler's id (a compensation boundary event on the
    /// activity, associated with an activity marked `isForCompensation`).
    #[serde(default)]
    pub compensation_handlers: std::collections::BTreeMap<String, String>,
    /// `zeebe:versionTag`: what call activities with binding type `versionTag` ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_tag: Option<String>,
}

impl Process {
    pub fn element(&self, id: &str) -> Option<&Element> {
        self.elements.iter().find(|e| e.id == id)
    }

    /// The job types the process needs workers for.
    pub fn job_types(&self) -> Vec<String> {
        let mut types: Vec<String> = self
            .elements
            .iter()
            .filter_map(|e| e.kind.job().map(|j| j.job_type.clone()))
            .chain(
                self.elements
                    .iter()
                    .flat_map(|e| e.listeners.iter().map(|l| l.job_type.clone())),
            )
            .collect();
        types.sort();
        types.dedup();
        types
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceFlow {
    pub id: String,
    pub source: String,
    pub target: String,
    /// FEEL condition, e.g. `=total > 100`.
    pub condition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub source: String,
    pub target: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobDefinition {
    pub job_type: String,
    /// Retries as written (a number or a FEEL expression); Zeebe's default is 3.
    pub retries: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiInstance {
    pub sequential: bool,
    pub input_collection: String,
    pub input_element: Option<String>,
    pub output_collection: Option<String>,
    pub output_element: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum Timer {
    /// ISO 8601 date-time, or FEEL.
    Date(String),
    /// ISO 8601 duration (`PT15M`), or FEEL.
    Duration(String),
    /// ISO 8601 repeating interval (`R3/PT10M`), or FEEL.
    Cycle(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    None,
    Message {
        message_ref: String,
        name: String,
        correlation_key: Option<String>,
    },
    Timer(Timer),
    /// For error end and boundary events; a boundary without a code catches every error.
    Error {
        error_ref: Option<String>,
        code: Option<String>,
    },
    Terminate,
    /// An intermediate link event: a throw jumps to the catch of the same name in its scope.
    Link {
        name: String,
    },
    /// Compensation: a boundary event names its activity's handler (by an association); a throw
    /// (intermediate or end) compensates the completed activities of its scope, or only
    /// `activity` (its `activityRef`).
    Compensation {
        activity: Option<String>,
    },
    /// A signal, by its name: a throw (intermediate or end) broadcasts it to every catch of the
    /// name in the tenant (catch events, boundary events, start events).
    Signal {
        name: String,
    },
    /// Escalation throw (intermediate or end) and catch (boundary): a catch without a code
    /// catches every escalation.
    Escalation {
        code: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementKind {
    StartEvent {
        trigger: Trigger,
    },
    /// A message end event is executed as a job, as in Zeebe.
    EndEvent {
        trigger: Trigger,
        job: Option<JobDefinition>,
    },
    IntermediateCatchEvent {
        trigger: Trigger,
    },
    IntermediateThrowEvent {
        trigger: Trigger,
        job: Option<JobDefinition>,
    },
    BoundaryEvent {
        attached_to: String,
        interrupting: bool,
        trigger: Trigger,
    },
    ServiceTask {
        job: JobDefinition,
    },
    SendTask {
        job: JobDefinition,
    },
    /// `native`: a `zeebe:userTask`; otherwise the job-based form (job type
    /// `io.camunda.zeebe:userTask`).
    UserTask {
        native: bool,
        job: Option<JobDefinition>,
        assignee: Option<String>,
        candidate_groups: Option<String>,
        due_date: Option<String>,
    },
    ReceiveTask {
        message_ref: String,
        name: String,
        correlation_key: Option<String>,
    },
    ExclusiveGateway {
        default: Option<String>,
    },
    /// Takes every outgoing flow whose condition is true (the default when none is); as a join,
    /// waits until no further token can reach it.
    InclusiveGateway {
        default: Option<String>,
    },
    /// Waits for the first of the events its outgoing flows lead to (message and timer catch
    /// events); that one continues, the others are never entered.
    EventBasedGateway,
    ParallelGateway,
    SubProcess,
    /// An event subprocess (`triggeredByEvent`): never entered by a flow; its one start event
    /// (message, timer, error or escalation) starts it inside the scope holding it while that
    /// scope is active. `interrupting` (its start event's `isInterrupting`) ends everything else
    /// in the scope first.
    EventSubProcess {
        interrupting: bool,
    },
    /// A manual task or a task of no type: passes through at once, as in Zeebe.
    PassThroughTask {
        /// `manualTask` or `task`.
        tag: String,
    },
    /// `zeebe:script` (a FEEL expression and its result variable), or job-based.
    ScriptTask {
        script: Option<Script>,
        job: Option<JobDefinition>,
    },
    /// `zeebe:calledDecision` (a DMN decision and its result variable), or job-based.
    BusinessRuleTask {
        decision: Option<CalledDecision>,
        job: Option<JobDefinition>,
    },
    /// `zeebe:calledElement`: runs another process as a child instance.
    CallActivity {
        called: CalledElement,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    pub expression: String,
    pub result_variable: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalledDecision {
    /// The decision's id, or a FEEL expression for it.
    pub decision_id: String,
    pub result_variable: String,
    /// `latest` (the default), `deployment` (the version deployed together with the calling
    /// process's version) or `versionTag`. Models stored before it was read are `latest`.
    #[serde(default = "latest")]
    pub binding: String,
    /// The decision's `zeebe:versionTag` asked for (binding `versionTag`), or a FEEL expression.
    #[serde(default)]
    pub version_tag: Option<String>,
}

fn latest() -> String {
    "latest".to_owned()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalledElement {
    /// The called process's BPMN id, or a FEEL expression for it.
    pub process_id: String,
    /// `latest` (the default), `deployment` or `versionTag`.
    pub binding: String,
    pub version_tag: Option<String>,
    /// Whether every variable of the caller is copied into the child (Zeebe's default: true).
    pub propagate_all_parent_variables: bool,
    /// Whether every variable of the child is copied back on completion (default: true).
    pub propagate_all_child_variables: bool,
}

impl ElementKind {
    pub fn job(&self) -> Option<&JobDefinition> {
        match self {
            ElementKind::ServiceTask { job } | ElementKind::SendTask { job } => Some(job),
            ElementKind::EndEvent { job, .. }
            | ElementKind::IntermediateThrowEvent { job, .. }
            | ElementKind::UserTask { job, .. }
            | ElementKind::ScriptTask { job, .. }
            | ElementKind::BusinessRuleTask { job, .. } => job.as_ref(),
            _ => None,
        }
    }

    pub fn is_activity(&self) -> bool {
        matches!(
            self,
            ElementKind::ServiceTask { .. }
                | ElementKind::SendTask { .. }
                | ElementKind::UserTask { .. }
                | ElementKind::ReceiveTask { .. }
                | ElementKind::SubProcess
                | ElementKind::EventSubProcess { .. }
                | ElementKind::PassThroughTask { .. }
                | ElementKind::ScriptTask { .. }
                | ElementKind::BusinessRuleTask { .. }
                | ElementKind::CallActivity { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Element {
    pub id: String,
    pub name: Option<String>,
    /// The embedded subprocess holding it, if any.
    pub parent: Option<String>,
    pub kind: ElementKind,
    pub inputs: Vec<Mapping>,
    pub outputs: Vec<Mapping>,
    pub multi_instance: Option<MultiInstance>,
    /// `zeebe:executionListeners`: jobs run before the element's work (start) and after it
    /// completed (end), one at a time in document order.
    #[serde(default)]
    pub listeners: Vec<ExecutionListener>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListenerEvent {
    Start,
    End,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutionListener {
    pub event: ListenerEvent,
    /// The job type, or a FEEL expression for it.
    pub job_type: String,
    /// A number, or a FEEL expression for it.
    pub retries: String,
}
