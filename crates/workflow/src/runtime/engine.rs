use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::bpmn::{Element, ElementKind, ListenerEvent, Process, Timer, Trigger};
use crate::feel::{parse_duration, Env, Expression, FeelError, Value as Feel};

/// Element instance keys: unique within an instance, in creation order.
pub type Key = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstanceStatus {
    Active,
    Completed,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementInstance {
    pub key: Key,
    pub element_id: String,
    /// The subprocess instance it runs in; `None` for the process scope.
    pub scope: Option<Key>,
    pub variables: Map<String, Json>,
    /// Set on the body of a multi-instance activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<MultiBody>,
    /// Set on an inner instance of a multi-instance activity: its index in the collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loop_index: Option<usize>,
}

/// Bookkeeping of a multi-instance body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiBody {
    /// The input collection, kept only when sequential (the inner instances not yet started
    /// take their item from it); a parallel body hands every inner instance its item at once
    /// and keeps none (the collection may be large: an order's whole fulfillment plan).
    /// `outputs` has one slot per item either way.
    #[serde(default)]
    pub items: Vec<Json>,
    pub sequential: bool,
    /// Index of the next inner instance to start (sequential).
    pub next: usize,
    pub done: usize,
    pub outputs: Vec<Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub status: InstanceStatus,
    /// The process scope's variables.
    pub variables: Map<String, Json>,
    pub active: BTreeMap<Key, ElementInstance>,
    /// Parallel joins waiting for more tokens: "scope/gateway" → flows that have arrived.
    pub joins: BTreeMap<String, BTreeSet<String>>,
    /// Open incidents by element instance.
    pub incidents: BTreeMap<Key, String>,
    pub next_key: Key,
    /// Scopes an interrupting event subprocess has started in ([`ROOT`] for the process): their
    /// other event subprocesses no longer start.
    #[serde(default)]
    pub interrupted: BTreeSet<Key>,
    /// Completed activities that a compensation throw of their scope may compensate, in the
    /// order they completed.
    #[serde(default)]
    pub completed: Vec<Completed>,
    /// Compensation throw events waiting for their handlers: the ones still to run, next first.
    #[serde(default)]
    pub compensating: BTreeMap<Key, Vec<Completed>>,
    /// Running compensation handler instances, by the throw event they run for.
    #[serde(default)]
    pub handlers: BTreeMap<Key, Key>,
    /// Element instances whose incident was raised while completing (an output mapping): a
    /// retry completes them again rather than entering them again.
    #[serde(default)]
    pub completing: BTreeSet<Key>,
    /// Element instances whose execution listener job runs: which event's, and its index.
    #[serde(default)]
    pub listening: BTreeMap<Key, (ListenerEvent, usize)>,
}

/// A completed activity that can be compensated: one with a compensation handler (each inner
/// instance of a multi-instance one), or an embedded subprocess holding such activities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completed {
    pub key: Key,
    pub element_id: String,
    /// The scope it completed in (a multi-instance activity's: its body's).
    pub scope: Option<Key>,
}

/// The key standing for the process scope where an effect needs one: the timers and message
/// subscriptions of the process's own event subprocesses. Element instance keys start at 1.
pub const ROOT: Key = 0;

impl InstanceState {
    pub fn new() -> InstanceState {
        InstanceState {
            status: InstanceStatus::Active,
            variables: Map::new(),
            active: BTreeMap::new(),
            joins: BTreeMap::new(),
            incidents: BTreeMap::new(),
            next_key: 1,
            interrupted: BTreeSet::new(),
            completed: Vec::new(),
            compensating: BTreeMap::new(),
            handlers: BTreeMap::new(),
            completing: BTreeSet::new(),
            listening: BTreeMap::new(),
        }
    }
}

impl Default for InstanceState {
    fn default() -> Self {
        InstanceState::new()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "command")]
pub enum Command {
    Start {
        variables: Map<String, Json>,
    },
    /// Starts at a message start event (the message's variables become the instance's).
    StartByMessage {
        start_event: String,
        variables: Map<String, Json>,
    },
    /// Starts at a timer start event whose time has come.
    StartByTimer {
        start_event: String,
    },
    /// Starts at a signal start event (the signal's variables become the instance's).
    StartBySignal {
        start_event: String,
        variables: Map<String, Json>,
    },
    /// A broadcast signal reached the subscription of `element` (or of the scope `ROOT`) for
    /// catch event `catch_id`: like a correlated message.
    TriggerSignal {
        element: Key,
        catch_id: String,
        variables: Map<String, Json>,
    },
    CompleteJob {
        element: Key,
        variables: Map<String, Json>,
    },
    /// A job threw a BPMN error. Its `variables` are set, as in Zeebe, at the error catch event
    /// that catches it: local to that event when it has output mappings (which then decide what
    /// reaches the outer scopes), else propagated from it like a job's result (each to the nearest
    /// enclosing scope that has the variable, else the process scope). An uncaught error raises an
    /// incident and its variables are dropped.
    ThrowError {
        element: Key,
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Map::is_empty")]
        variables: Map<String, Json>,
    },
    /// A timer scheduled for `element` (a timer catch event, or an activity with a timer boundary
    /// event `timer_id`) is due.
    TimerFired {
        element: Key,
        timer_id: String,
        repeat: Option<Repeat>,
    },
    /// A published message matched the subscription of `element` for catch event `catch_id`.
    CorrelateMessage {
        element: Key,
        catch_id: String,
        variables: Map<String, Json>,
    },
    /// The child instance a call activity started completed with these (process-scope)
    /// variables.
    CompleteChild {
        element: Key,
        variables: Map<String, Json>,
    },
    /// The child instance of a call activity could not start (no such process, ...).
    ChildNotStarted {
        element: Key,
        message: String,
    },
    /// A person completed the native user task of `element`.
    CompleteUserTask {
        element: Key,
        variables: Map<String, Json>,
    },
    Cancel,
    /// An operator resolved the incident of an element instance that has no failed job to
    /// retry (a script, decision, mapping, called process or timer that failed): the element
    /// is entered again, or completed again when it failed while completing, as Zeebe's
    /// resolve-incident does.
    RetryElement {
        element: Key,
    },
}

/// How a cycle timer repeats: `remaining` more firings (`None`: forever) every `interval_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repeat {
    pub remaining: Option<u32>,
    pub interval_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "effect")]
pub enum Effect {
    CreateJob {
        element: Key,
        element_id: String,
        job_type: String,
        retries: i32,
        headers: Vec<(String, String)>,
        variables: Map<String, Json>,
    },
    CancelJob {
        element: Key,
    },
    Incident {
        element: Key,
        element_id: String,
        message: String,
    },
    ScheduleTimer {
        element: Key,
        timer_id: String,
        due: DateTime<Utc>,
        repeat: Option<Repeat>,
    },
    CancelTimers {
        element: Key,
    },
    OpenSubscription {
        element: Key,
        catch_id: String,
        message_name: String,
        correlation_key: String,
    },
    CloseSubscriptions {
        element: Key,
    },
    /// Only these catch events of `element` stop waiting (its timers, message and signal
    /// subscriptions): the other event subprocesses of a scope an interrupting one started in,
    /// while the scope's own boundary events go on waiting.
    CloseWaits {
        element: Key,
        catch_ids: Vec<String>,
    },
    /// A native user task (`zeebe:userTask`) waits for a person.
    CreateUserTask {
        element: Key,
        element_id: String,
        name: Option<String>,
        assignee: Option<String>,
        candidate_groups: Vec<String>,
        due_date: Option<String>,
        variables: Map<String, Json>,
    },
    CancelUserTask {
        element: Key,
    },
    /// A call activity starts an instance of another process; its completion comes back as
    /// [`Command::CompleteChild`], a failure to start as [`Command::ChildNotStarted`].
    StartChildInstance {
        element: Key,
        element_id: String,
        process_id: String,
        /// `latest`, `deployment` or `versionTag`.
        binding: String,
        version_tag: Option<String>,
        variables: Map<String, Json>,
    },
    /// The call activity ended otherwise (cancelled, interrupted): its child instance is
    /// cancelled with it.
    CancelChildInstance {
        element: Key,
    },
    /// Waits for a signal of this name (closed by [`Effect::CloseSubscriptions`] like a
    /// message's).
    OpenSignalSubscription {
        element: Key,
        catch_id: String,
        signal_name: String,
    },
    /// A signal thrown: every subscription of its name in the tenant is triggered and every
    /// process with a signal start event of the name starts, after this command.
    BroadcastSignal {
        signal_name: String,
        variables: Map<String, Json>,
    },
    InstanceCompleted,
    InstanceTerminated,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("the instance is {0:?}")]
    NotActive(InstanceStatus),
    #[error("no active element instance {0} waits for a job")]
    NoSuchJob(Key),
    #[error("the process has no such start event")]
    NoStart,
    #[error("the instance was already started")]
    AlreadyStarted,
    /// Zeebe refuses a BPMN error from an execution listener's job (the element is not active
    /// yet, or no longer): the job stays as it was, to be completed or failed.
    #[error(
        "a BPMN error cannot be thrown from the job of an execution listener of {0}: complete or fail the job"
    )]
    ListenerJobError(String),
}

enum Step {
    Activate {
        element_id: String,
        scope: Option<Key>,
        via: Option<String>,
        /// Local variables the new element instance starts with (an error's, at its catch event).
        locals: Map<String, Json>,
    },
    Complete {
        key: Key,
    },
}

/// The decision a business rule task calls, its id and version tag evaluated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecisionCall {
    pub decision_id: String,
    /// `latest`, `deployment` or `versionTag`.
    pub binding: String,
    pub version_tag: Option<String>,
}

/// Evaluates the DMN decisions business rule tasks call (`zeebe:calledDecision`): the decision
/// called and the variables visible at the task give its result, or why there is none.
pub trait DecisionEvaluator {
    fn evaluate(&self, call: &DecisionCall, variables: &Map<String, Json>) -> Result<Json, String>;
}

/// No decision is deployed: a business rule task calling one raises an incident, as in Zeebe.
pub struct NoDecisions;

impl DecisionEvaluator for NoDecisions {
    fn evaluate(&self, call: &DecisionCall, _: &Map<String, Json>) -> Result<Json, String> {
        Err(format!(
            "no decision with id '{}' is deployed",
            call.decision_id
        ))
    }
}

struct Run<'p> {
    process: &'p Process,
    decisions: &'p dyn DecisionEvaluator,
    now: DateTime<Utc>,
    state: InstanceState,
    effects: Vec<Effect>,
    queue: VecDeque<Step>,
}

fn join_key(scope: Option<Key>, gateway: &str) -> String {
    format!(
        "{}/{gateway}",
        scope.map_or_else(|| "root".to_owned(), |s| s.to_string())
    )
}

fn expression_value(source: &str, env: &Env) -> Result<Feel, String> {
    match Expression::parse(source).and_then(|e| e.evaluate(env)) {
        Ok(Feel::String(s)) if source.trim_start().starts_with('=') => Ok(Feel::String(s)),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

/// A user task's assignment (`zeebe:assignmentDefinition`, `zeebe:taskSchedule`), its FEEL
/// evaluated: assignee, candidate groups, due date.
#[derive(Debug, Default)]
struct Assignment {
    assignee: Option<String>,
    candidate_groups: Vec<String>,
    due_date: Option<String>,
}

fn assignment(element: &Element, env: &Env) -> Result<Assignment, String> {
    let ElementKind::UserTask {
        assignee,
        candidate_groups,
        due_date,
        ..
    } = &element.kind
    else {
        return Ok(Assignment::default());
    };
    let text = |src: &Option<String>| -> Result<Option<String>, String> {
        match src {
            None => Ok(None),
            Some(s) => match expression_value(s, env)? {
                Feel::Null => Ok(None),
                Feel::String(v) => Ok(Some(v)),
                other => match other.to_json() {
                    Json::String(v) => Ok(Some(v)),
                    v => Ok(Some(v.to_string())),
                },
            },
        }
    };
    let candidate_groups = match &candidate_groups {
        None => Vec::new(),
        Some(src) if src.trim_start().starts_with('=') => match expression_value(src, env)? {
            Feel::List(items) => items
                .iter()
                .filter_map(|i| match i {
                    Feel::String(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            Feel::String(s) => vec![s],
            other => return Err(format!("candidateGroups gave {other:?}")),
        },
        Some(list) => list
            .split(',')
            .map(|g| g.trim().to_owned())
            .filter(|g| !g.is_empty())
            .collect(),
    };
    Ok(Assignment {
        assignee: text(assignee)?,
        candidate_groups,
        due_date: text(due_date)?,
    })
}

/// The headers of a job: the task's own, and for a job-based user task its assignment under
/// Zeebe's reserved keys (`io.camunda.zeebe:assignee`, `:candidateGroups` as a JSON list,
/// `:dueDate`), as Zeebe's job behaviour encodes them for the task list that works the job.
fn job_headers(
    element: &Element,
    own: &[(String, String)],
    env: &Env,
) -> Result<Vec<(String, String)>, String> {
    let mut headers = own.to_vec();
    if !matches!(element.kind, ElementKind::UserTask { native: false, .. }) {
        return Ok(headers);
    }
    let a = assignment(element, env)?;
    if let Some(assignee) = a.assignee {
        headers.push(("io.camunda.zeebe:assignee".into(), assignee));
    }
    if !a.candidate_groups.is_empty() {
        headers.push((
            "io.camunda.zeebe:candidateGroups".into(),
            Json::from(a.candidate_groups).to_string(),
        ));
    }
    if let Some(due) = a.due_date {
        headers.push(("io.camunda.zeebe:dueDate".into(), due));
    }
    Ok(headers)
}

/// An attribute that is a static text or, starting with `=`, a FEEL expression giving a text (a
/// number is taken as its decimal text): job types, retries, called process and decision ids.
fn job_text(source: &str, env: &Env) -> Result<String, String> {
    if !source.trim_start().starts_with('=') {
        return Ok(source.to_owned());
    }
    match expression_value(source, env)? {
        Feel::String(s) => Ok(s),
        Feel::Null => Err("the expression gave null".into()),
        other => match other.to_json() {
            Json::String(s) => Ok(s),
            v => Ok(v.to_string()),
        },
    }
}

fn as_duration(v: Feel, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let v = match v {
        Feel::String(s) => parse_duration(&s).map_err(|e| e.to_string())?,
        other => other,
    };
    match v {
        Feel::Duration(d) => now
            .checked_add_signed(d)
            .ok_or_else(|| "duration out of range".to_owned()),
        Feel::Months(m) => u32::try_from(m.max(0))
            .ok()
            .and_then(|m| now.checked_add_months(chrono::Months::new(m)))
            .ok_or_else(|| "duration out of range".to_owned()),
        other => Err(format!("{other:?} is not a duration")),
    }
}

/// When a timer is first due, and how it repeats.
pub(crate) fn timer_due(
    timer: &Timer,
    env: &Env,
) -> Result<(DateTime<Utc>, Option<Repeat>), String> {
    match timer {
        Timer::Duration(src) => Ok((as_duration(expression_value(src, env)?, env.now)?, None)),
        Timer::Date(src) => match expression_value(src, env)? {
            Feel::DateTime(d) => Ok((d.to_utc(), None)),
            Feel::String(s) => DateTime::parse_from_rfc3339(&s)
                .map(|d| (d.to_utc(), None))
                .map_err(|e| format!("\"{s}\" is not a date-time: {e}")),
            other => Err(format!("{other:?} is not a date-time")),
        },
        Timer::Cycle(src) => {
            let text = match expression_value(src, env)? {
                Feel::String(s) => s,
                other => return Err(format!("{other:?} is not a cycle")),
            };
            let (reps, interval) = text
                .split_once('/')
                .ok_or_else(|| format!("\"{text}\" is not an ISO 8601 cycle (R3/PT10M)"))?;
            let remaining = match reps.strip_prefix('R') {
                Some("") => None,
                Some(n) => Some(
                    n.parse::<u32>()
                        .map_err(|_| format!("\"{text}\" has a bad repetition count"))?,
                ),
                None => return Err(format!("\"{text}\" is not an ISO 8601 cycle (R3/PT10M)")),
            };
            let due = as_duration(Feel::String(interval.to_owned()), env.now)?;
            let interval_ms = (due - env.now).num_milliseconds();
            if interval_ms <= 0 {
                return Err(format!("\"{text}\" has no positive interval"));
            }
            Ok((
                due,
                Some(Repeat {
                    remaining: remaining.map(|r| r.saturating_sub(1)),
                    interval_ms,
                }),
            ))
        }
    }
}

impl<'p> Run<'p> {
    fn element(&self, id: &str) -> Option<&'p Element> {
        self.process.element(id)
    }

    /// Variables visible from inside `scope` (and `local`): process scope, then each enclosing
    /// subprocess, inner names shadowing outer ones.
    /// The active element instance a command names (a job's, a wait's, a call activity's).
    fn active_instance(&self, key: Key) -> Result<ElementInstance, RuntimeError> {
        self.state
            .active
            .get(&key)
            .cloned()
            .ok_or(RuntimeError::NoSuchJob(key))
    }

    /// These variables at the engine's instant, for FEEL.
    fn env<'v>(&self, variables: &'v Map<String, Json>) -> Env<'v> {
        Env {
            variables,
            outer: &[],
            now: self.now,
        }
    }

    /// The variables of `local` (if any), then of each scope from `scope` out to the process:
    /// what an element sees, innermost first, borrowed ([`Run::scoped_env`] reads them in
    /// place; [`Run::visible`] copies them into one map where one must be kept).
    fn layers<'v>(
        &'v self,
        scope: Option<Key>,
        local: Option<&'v Map<String, Json>>,
    ) -> Vec<&'v Map<String, Json>> {
        let mut layers: Vec<&'v Map<String, Json>> = local.into_iter().collect();
        let mut at = scope;
        while let Some(k) = at {
            match self.state.active.get(&k) {
                Some(ei) => {
                    layers.push(&ei.variables);
                    at = ei.scope;
                }
                None => break,
            }
        }
        layers.push(&self.state.variables);
        layers
    }

    /// FEEL's view of `layers` (from [`Run::layers`], never empty) at the engine's instant.
    fn scoped_env<'v>(&self, layers: &'v [&'v Map<String, Json>]) -> Env<'v> {
        Env {
            variables: layers[0],
            outer: &layers[1..],
            now: self.now,
        }
    }

    /// Evaluates a FEEL text against these variables at the engine's instant.
    fn eval(&self, env: &Env, source: &str) -> Result<Feel, FeelError> {
        Expression::parse(source).and_then(|e| e.evaluate(env))
    }

    /// The variables an element instance sees: its own over its scopes'.
    fn element_visible(&self, key: Key, scope: Option<Key>) -> Map<String, Json> {
        let local = self.state.active.get(&key).map(|e| &e.variables);
        self.visible(scope, local)
    }

    /// The variables an element sees, copied into one map (for a job's or a user task's
    /// variables, or a decision's input): innermost first, each name copied once, so a value
    /// shadowed by an inner scope (the fulfillment plan that each task's scope maps to null) is
    /// never cloned.
    fn visible(&self, scope: Option<Key>, local: Option<&Map<String, Json>>) -> Map<String, Json> {
        let mut out = Map::new();
        for vars in self.layers(scope, local) {
            for (k, v) in vars {
                if !out.contains_key(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
        out
    }

    /// Sets a variable where Zeebe would: the nearest enclosing scope that has it, else the
    /// process scope.
    fn propagate(&mut self, scope: Option<Key>, name: &str, value: Json) {
        let mut at = scope;
        while let Some(k) = at {
            match self.state.active.get_mut(&k) {
                Some(ei) if ei.variables.contains_key(name) => {
                    ei.variables.insert(name.to_owned(), value);
                    return;
                }
                Some(ei) => at = ei.scope,
                None => break,
            }
        }
        self.state.variables.insert(name.to_owned(), value);
    }

    /// An element's result (a job's variables, a script's or decision's result variable): local to
    /// the element when it has output mappings (which then decide what reaches outer scopes),
    /// else propagated like Zeebe's job variables.
    fn set_result(
        &mut self,
        key: Key,
        element: &Element,
        scope: Option<Key>,
        variables: Map<String, Json>,
    ) {
        if element.outputs.is_empty() {
            for (k, v) in variables {
                self.propagate(scope, &k, v);
            }
        } else if let Some(local) = self.state.active.get_mut(&key) {
            local.variables.extend(variables);
        }
    }

    /// Throws an escalation from `from`: the nearest escalation boundary event (of its code, or
    /// catching all) on an enclosing subprocess catches it. Returns whether the thrower was
    /// ended by an interrupting catch. Uncaught, it is ignored, as in Zeebe.
    fn escalate(&mut self, from: Key, code: &str) -> bool {
        let mut at = self.state.active.get(&from).and_then(|e| e.scope);
        loop {
            let sub = self.catching_event_subprocess(at, |t| match t {
                Trigger::Escalation { code: c } => match c.as_deref() {
                    None => Some(false),
                    Some(c) => (c == code).then_some(true),
                },
                _ => None,
            });
            if let Some(sub) = sub {
                let interrupting = matches!(
                    sub.kind,
                    ElementKind::EventSubProcess { interrupting: true }
                );
                self.start_event_subprocess(at, sub, Map::new());
                return interrupting;
            }
            let Some(k) = at else {
                break;
            };
            let Some(ei) = self.state.active.get(&k).cloned() else {
                break;
            };
            let boundary = self.process.elements.iter().find(|b| {
                ei.loop_index.is_none()
                    && matches!(&b.kind, ElementKind::BoundaryEvent {
                        attached_to,
                        trigger: Trigger::Escalation { code: c },
                        ..
                    } if attached_to == &ei.element_id && c.as_deref().is_none_or(|c| c == code))
            });
            if let Some(b) = boundary {
                let interrupting = matches!(
                    b.kind,
                    ElementKind::BoundaryEvent {
                        interrupting: true,
                        ..
                    }
                );
                if interrupting {
                    for d in self.descendants(k) {
                        self.cancel(d);
                    }
                    self.cancel(k);
                }
                self.queue.push_back(Step::Activate {
                    element_id: b.id.clone(),
                    scope: ei.scope,
                    via: None,
                    locals: Map::new(),
                });
                return interrupting;
            }
            at = ei.scope;
        }
        false
    }

    /// Whether a token can still go from element `from` to `gateway` (through sequence flows and
    /// boundary events, not through the gateway itself).
    fn can_reach(&self, from: &str, gateway: &str) -> bool {
        let mut seen = BTreeSet::new();
        let mut frontier = vec![from];
        while let Some(at) = frontier.pop() {
            if !seen.insert(at) {
                continue;
            }
            for f in self.process.flows.iter().filter(|f| f.source == at) {
                if f.target == gateway {
                    return true;
                }
                frontier.push(&f.target);
            }
            for b in &self.process.elements {
                if matches!(&b.kind, ElementKind::BoundaryEvent { attached_to, .. } if attached_to == at)
                {
                    frontier.push(&b.id);
                }
            }
        }
        false
    }

    /// An inclusive join with tokens waiting fires when no other token of its scope (an active
    /// element, a queued activation, tokens waiting at another join) can still reach it.
    fn inclusive_join_ready(&self) -> Option<(Option<Key>, &'p Element)> {
        for jk in self.state.joins.keys() {
            let Some((scope_text, gateway_id)) = jk.split_once('/') else {
                continue;
            };
            let Some(gateway) = self.element(gateway_id) else {
                continue;
            };
            if !matches!(gateway.kind, ElementKind::InclusiveGateway { .. }) {
                continue;
            }
            let scope = scope_text.parse::<Key>().ok();
            let blocked = self
                .state
                .active
                .values()
                .any(|e| e.scope == scope && self.can_reach(&e.element_id, gateway_id))
                || self.queue.iter().any(|s| {
                    matches!(s, Step::Activate { element_id, scope: sc, .. }
                        if *sc == scope && (element_id == gateway_id || self.can_reach(element_id, gateway_id)))
                })
                || self.state.joins.keys().any(|other| {
                    other != jk
                        && other.split_once('/').is_some_and(|(s, g)| {
                            s == scope_text && self.can_reach(g, gateway_id)
                        })
                });
            if !blocked {
                return Some((scope, gateway));
            }
        }
        None
    }

    fn incident(&mut self, key: Key, element_id: &str, message: String) {
        self.state.incidents.insert(key, message.clone());
        self.effects.push(Effect::Incident {
            element: key,
            element_id: element_id.to_owned(),
            message,
        });
    }

    fn outgoing(&self, element_id: &str) -> Vec<&'p crate::bpmn::SequenceFlow> {
        self.process
            .flows
            .iter()
            .filter(|f| f.source == element_id)
            .collect()
    }

    fn take_all(&mut self, element_id: &str, scope: Option<Key>) {
        for f in self.outgoing(element_id) {
            self.queue.push_back(Step::Activate {
                element_id: f.target.clone(),
                scope,
                via: Some(f.id.clone()),
                locals: Map::new(),
            });
        }
    }

    fn new_instance(&mut self, element_id: &str, scope: Option<Key>) -> Key {
        let key = self.state.next_key;
        self.state.next_key += 1;
        self.state.active.insert(
            key,
            ElementInstance {
                key,
                element_id: element_id.to_owned(),
                scope,
                variables: Map::new(),
                multi: None,
                loop_index: None,
            },
        );
        key
    }

    fn run(&mut self) {
        loop {
            if self.state.status != InstanceStatus::Active {
                return;
            }
            let Some(step) = self.queue.pop_front() else {
                // Nothing else moves: an inclusive join no token can reach any more fires.
                let Some((scope, gateway)) = self.inclusive_join_ready() else {
                    return;
                };
                self.state.joins.remove(&join_key(scope, &gateway.id));
                let key = self.new_instance(&gateway.id, scope);
                self.enter(key, gateway, scope, Map::new());
                continue;
            };
            match step {
                Step::Activate {
                    element_id,
                    scope,
                    via,
                    locals,
                } => self.activate(&element_id, scope, via, locals),
                Step::Complete { key } => self.complete(key),
            }
        }
    }

    fn activate(
        &mut self,
        element_id: &str,
        scope: Option<Key>,
        via: Option<String>,
        locals: Map<String, Json>,
    ) {
        let Some(element) = self.element(element_id) else {
            return;
        };
        if let ElementKind::ParallelGateway = element.kind {
            let incoming: BTreeSet<String> = self
                .process
                .flows
                .iter()
                .filter(|f| f.target == element.id)
                .map(|f| f.id.clone())
                .collect();
            if incoming.len() > 1 {
                let jk = join_key(scope, &element.id);
                let arrived = self.state.joins.entry(jk.clone()).or_default();
                if let Some(v) = &via {
                    arrived.insert(v.clone());
                }
                if !incoming.is_subset(arrived) {
                    return;
                }
                self.state.joins.remove(&jk);
            }
        }
        if let ElementKind::InclusiveGateway { .. } = element.kind {
            let incoming = self
                .process
                .flows
                .iter()
                .filter(|f| f.target == element.id)
                .count();
            if incoming > 1 {
                // Waits (see `inclusive_join_ready`) for every token that can still come.
                let arrived = self
                    .state
                    .joins
                    .entry(join_key(scope, &element.id))
                    .or_default();
                arrived.insert(via.unwrap_or_default());
                return;
            }
        }
        if element.multi_instance.is_some() {
            return self.activate_body(element, scope);
        }
        let key = self.new_instance(&element.id, scope);
        self.enter(key, element, scope, locals);
    }

    /// Starts a multi-instance activity: its body, then one inner instance per item (all at once,
    /// or one after the other when sequential).
    fn activate_body(&mut self, element: &'p Element, scope: Option<Key>) {
        let Some(mi) = element.multi_instance.as_ref() else {
            return;
        };
        let key = self.new_instance(&element.id, scope);
        let layers = self.layers(scope, None);
        let env = self.scoped_env(&layers);
        let items = match Expression::parse(&mi.input_collection).and_then(|e| e.evaluate(&env)) {
            Ok(Feel::List(items)) => items.iter().map(Feel::to_json).collect::<Vec<_>>(),
            Ok(other) => {
                return self.incident(
                    key,
                    &element.id,
                    format!(
                        "inputCollection '{}' is {other:?}, not a list",
                        mi.input_collection
                    ),
                )
            }
            Err(e) => {
                return self.incident(
                    key,
                    &element.id,
                    format!("inputCollection '{}' failed: {e}", mi.input_collection),
                )
            }
        };
        let n = items.len();
        let first = if mi.sequential { n.min(1) } else { n };
        let starting: Vec<Json> = items.iter().take(first).cloned().collect();
        if let Some(body) = self.state.active.get_mut(&key) {
            body.multi = Some(MultiBody {
                outputs: vec![Json::Null; n],
                items: if mi.sequential { items } else { Vec::new() },
                sequential: mi.sequential,
                next: first,
                done: 0,
            });
        }
        self.arm_boundaries(key, &element.id, scope);
        if n == 0 {
            self.queue.push_back(Step::Complete { key });
            return;
        }
        for (i, item) in starting.into_iter().enumerate() {
            self.activate_inner(key, element, i, item);
        }
    }

    fn activate_inner(&mut self, body: Key, element: &'p Element, index: usize, item: Json) {
        let Some(mi) = element.multi_instance.as_ref() else {
            return;
        };
        let key = self.new_instance(&element.id, Some(body));
        let mut locals = Map::new();
        if let Some(name) = &mi.input_element {
            locals.insert(name.clone(), item);
        }
        locals.insert("loopCounter".into(), Json::from(index + 1));
        if let Some(ei) = self.state.active.get_mut(&key) {
            ei.loop_index = Some(index);
        }
        self.enter(key, element, Some(body), locals);
    }

    /// An element instance starts: input mappings, its boundary events, its own behaviour.
    fn enter(
        &mut self,
        key: Key,
        element: &'p Element,
        scope: Option<Key>,
        mut locals: Map<String, Json>,
    ) {
        if !element.inputs.is_empty() {
            let layers = self.layers(scope, Some(&locals));
            let env = self.scoped_env(&layers);
            let mut mapped = Vec::with_capacity(element.inputs.len());
            for m in &element.inputs {
                match self.eval(&env, &m.source) {
                    Ok(v) => mapped.push((m.target.clone(), v.to_json())),
                    Err(e) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("input mapping '{}' failed: {e}", m.source),
                        )
                    }
                }
            }
            locals.extend(mapped);
        }
        let inner = self
            .state
            .active
            .get(&key)
            .is_some_and(|ei| ei.loop_index.is_some());
        if let Some(ei) = self.state.active.get_mut(&key) {
            ei.variables = locals;
        }
        if element.kind.is_activity() && !inner {
            self.arm_boundaries(key, &element.id, scope);
        }
        if !self.listen(key, element, scope, ListenerEvent::Start, 0) {
            self.behave(key, element, scope);
        }
    }

    /// The work of an element that has been entered (its start listeners done).
    fn behave(&mut self, key: Key, element: &'p Element, scope: Option<Key>) {
        match &element.kind {
            // A boundary event is only ever activated by its trigger (see `throw`): it has fired.
            ElementKind::StartEvent { .. }
            | ElementKind::ParallelGateway
            | ElementKind::IntermediateThrowEvent {
                trigger: Trigger::None,
                ..
            }
            | ElementKind::BoundaryEvent { .. } => {
                self.queue.push_back(Step::Complete { key });
            }
            ElementKind::ServiceTask { .. }
            | ElementKind::SendTask { .. }
            | ElementKind::UserTask { .. }
            | ElementKind::ScriptTask { job: Some(_), .. }
            | ElementKind::BusinessRuleTask { job: Some(_), .. }
            | ElementKind::IntermediateThrowEvent {
                trigger: Trigger::Message { .. },
                ..
            }
            | ElementKind::EndEvent { job: Some(_), .. } => {
                let Some(job) = element.kind.job() else {
                    return self.user_task(key, element, scope);
                };
                let local = self.state.active.get(&key).map(|e| &e.variables);
                let layers = self.layers(scope, local);
                let env = self.scoped_env(&layers);
                // Type and retries may be FEEL, evaluated when the job is created (Zeebe).
                let job_type = match job_text(&job.job_type, &env) {
                    Ok(t) if !t.trim().is_empty() => t,
                    Ok(_) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("the job type '{}' is empty", job.job_type),
                        )
                    }
                    Err(e) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("job type '{}': {e}", job.job_type),
                        )
                    }
                };
                let retries = match job_text(&job.retries, &env)
                    .and_then(|r| r.trim().parse::<i32>().map_err(|e| format!("'{r}': {e}")))
                {
                    Ok(r) => r,
                    Err(e) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("job retries '{}' is not a number: {e}", job.retries),
                        )
                    }
                };
                let headers = match job_headers(element, &job.headers, &env) {
                    Ok(h) => h,
                    Err(e) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("user task {}: {e}", element.id),
                        )
                    }
                };
                // The job carries every variable the element sees (one copy, made last).
                let variables = self.element_visible(key, scope);
                self.effects.push(Effect::CreateJob {
                    element: key,
                    element_id: element.id.clone(),
                    job_type,
                    retries,
                    headers,
                    variables,
                });
            }
            ElementKind::PassThroughTask { .. }
            | ElementKind::IntermediateCatchEvent {
                trigger: Trigger::Link { .. },
            } => self.queue.push_back(Step::Complete { key }),
            ElementKind::ScriptTask {
                script: Some(script),
                ..
            } => {
                let local = self.state.active.get(&key).map(|e| &e.variables);
                let layers = self.layers(scope, local);
                let outcome = self.eval(&self.scoped_env(&layers), &script.expression);
                match outcome {
                    Ok(v) => {
                        let mut result = Map::new();
                        result.insert(script.result_variable.clone(), v.to_json());
                        self.set_result(key, element, scope, result);
                        self.queue.push_back(Step::Complete { key });
                    }
                    Err(e) => self.incident(
                        key,
                        &element.id,
                        format!("script '{}' failed: {e}", script.expression),
                    ),
                }
            }
            ElementKind::BusinessRuleTask {
                decision: Some(called),
                ..
            } => {
                let visible = self.element_visible(key, scope);
                let env = self.env(&visible);
                let outcome = job_text(&called.decision_id, &env)
                    .and_then(|decision_id| {
                        let version_tag = called
                            .version_tag
                            .as_deref()
                            .map(|t| {
                                job_text(t, &env).map_err(|e| format!("versionTag '{t}': {e}"))
                            })
                            .transpose()?;
                        Ok(DecisionCall {
                            decision_id,
                            binding: called.binding.clone(),
                            version_tag,
                        })
                    })
                    .and_then(|call| self.decisions.evaluate(&call, &visible));
                match outcome {
                    Ok(v) => {
                        let mut result = Map::new();
                        result.insert(called.result_variable.clone(), v);
                        self.set_result(key, element, scope, result);
                        self.queue.push_back(Step::Complete { key });
                    }
                    Err(e) => self.incident(
                        key,
                        &element.id,
                        format!("decision '{}': {e}", called.decision_id),
                    ),
                }
            }
            ElementKind::CallActivity { called } => {
                let local = self
                    .state
                    .active
                    .get(&key)
                    .map(|e| e.variables.clone())
                    .unwrap_or_default();
                let visible = self.visible(scope, Some(&local));
                let env = self.env(&visible);
                let target = job_text(&called.process_id, &env).and_then(|process_id| {
                    let tag = called
                        .version_tag
                        .as_deref()
                        .map(|t| job_text(t, &env).map_err(|e| format!("versionTag '{t}': {e}")))
                        .transpose()?;
                    Ok((process_id, tag))
                });
                match target {
                    Ok((process_id, version_tag)) => {
                        self.effects.push(Effect::StartChildInstance {
                            element: key,
                            element_id: element.id.clone(),
                            process_id,
                            binding: called.binding.clone(),
                            version_tag,
                            variables: if called.propagate_all_parent_variables {
                                visible
                            } else {
                                local
                            },
                        })
                    }
                    Err(e) => self.incident(
                        key,
                        &element.id,
                        format!("called process id '{}': {e}", called.process_id),
                    ),
                }
            }
            ElementKind::InclusiveGateway { default } => {
                let layers = self.layers(scope, None);
                let env = self.scoped_env(&layers);
                let mut chosen = Vec::new();
                for f in self.outgoing(&element.id) {
                    if Some(&f.id) == default.as_ref() {
                        continue;
                    }
                    match &f.condition {
                        None => chosen.push(f),
                        Some(c) => match Expression::parse(c).and_then(|e| e.holds(&env)) {
                            Ok(true) => chosen.push(f),
                            Ok(false) => {}
                            Err(e) => {
                                return self.incident(
                                    key,
                                    &element.id,
                                    format!("condition of {} failed: {e}", f.id),
                                )
                            }
                        },
                    }
                }
                if chosen.is_empty() {
                    if let Some(d) = default
                        .as_ref()
                        .and_then(|d| self.process.flows.iter().find(|f| &f.id == d))
                    {
                        chosen.push(d);
                    }
                }
                if chosen.is_empty() {
                    return self.incident(
                        key,
                        &element.id,
                        "no outgoing flow's condition is true and there is no default flow".into(),
                    );
                }
                self.state.active.remove(&key);
                for f in chosen {
                    self.queue.push_back(Step::Activate {
                        element_id: f.target.clone(),
                        scope,
                        via: Some(f.id.clone()),
                        locals: Map::new(),
                    });
                }
            }
            ElementKind::EventBasedGateway => {
                for f in self.outgoing(&element.id) {
                    let Some(target) = self.element(&f.target) else {
                        continue;
                    };
                    if let ElementKind::IntermediateCatchEvent { trigger } = &target.kind {
                        self.wait_for(key, &target.id, trigger, scope);
                    }
                }
            }
            ElementKind::IntermediateThrowEvent {
                trigger: Trigger::Link { name },
                ..
            } => {
                let target = self.process.elements.iter().find(|c| {
                    c.parent == element.parent
                        && matches!(&c.kind, ElementKind::IntermediateCatchEvent { trigger: Trigger::Link { name: n } } if n == name)
                });
                match target {
                    Some(c) => {
                        self.state.active.remove(&key);
                        self.queue.push_back(Step::Activate {
                            element_id: c.id.clone(),
                            scope,
                            via: None,
                            locals: Map::new(),
                        });
                    }
                    None => self.incident(
                        key,
                        &element.id,
                        format!("no link catch event named '{name}'"),
                    ),
                }
            }
            ElementKind::IntermediateThrowEvent {
                trigger: Trigger::Compensation { activity },
                ..
            }
            | ElementKind::EndEvent {
                trigger: Trigger::Compensation { activity },
                ..
            } => {
                let todo = self.take_compensable(scope, activity.as_deref());
                if todo.is_empty() {
                    self.queue.push_back(Step::Complete { key });
                } else {
                    self.state.compensating.insert(key, todo);
                    self.next_handler(key);
                }
            }
            ElementKind::IntermediateThrowEvent {
                trigger: Trigger::Signal { name },
                ..
            }
            | ElementKind::EndEvent {
                trigger: Trigger::Signal { name },
                ..
            } => {
                // The signal carries the event's own variables (its input mappings), as in Zeebe.
                let variables = self
                    .state
                    .active
                    .get(&key)
                    .map(|e| e.variables.clone())
                    .unwrap_or_default();
                let visible = self.element_visible(key, scope);
                match job_text(name, &self.env(&visible)) {
                    Ok(signal_name) => {
                        self.effects.push(Effect::BroadcastSignal {
                            signal_name,
                            variables,
                        });
                        self.queue.push_back(Step::Complete { key });
                    }
                    Err(e) => self.incident(key, &element.id, format!("signal name '{name}': {e}")),
                }
            }
            ElementKind::IntermediateThrowEvent {
                trigger: Trigger::Escalation { code },
                ..
            }
            | ElementKind::EndEvent {
                trigger: Trigger::Escalation { code },
                ..
            } => {
                let code = code.clone().unwrap_or_default();
                if !self.escalate(key, &code) {
                    self.queue.push_back(Step::Complete { key });
                }
            }
            ElementKind::ExclusiveGateway { default } => {
                let layers = self.layers(scope, None);
                let env = self.scoped_env(&layers);
                let mut chosen = None;
                for f in self.outgoing(&element.id) {
                    if Some(&f.id) == default.as_ref() {
                        continue;
                    }
                    match &f.condition {
                        Some(c) => match Expression::parse(c).and_then(|e| e.holds(&env)) {
                            Ok(true) => {
                                chosen = Some(f);
                                break;
                            }
                            Ok(false) => {}
                            Err(e) => {
                                return self.incident(
                                    key,
                                    &element.id,
                                    format!("condition of {} failed: {e}", f.id),
                                )
                            }
                        },
                        None if default.is_none() => {
                            chosen = Some(f);
                            break;
                        }
                        None => {}
                    }
                }
                let chosen = chosen.or_else(|| {
                    default
                        .as_ref()
                        .and_then(|d| self.process.flows.iter().find(|f| &f.id == d))
                });
                match chosen {
                    Some(f) => {
                        self.state.active.remove(&key);
                        self.queue.push_back(Step::Activate {
                            element_id: f.target.clone(),
                            scope,
                            via: Some(f.id.clone()),
                            locals: Map::new(),
                        });
                    }
                    None => self.incident(
                        key,
                        &element.id,
                        "no outgoing flow's condition is true and there is no default flow".into(),
                    ),
                }
            }
            ElementKind::SubProcess => {
                let start = self.process.elements.iter().find(|e| {
                    e.parent.as_deref() == Some(&element.id)
                        && matches!(
                            e.kind,
                            ElementKind::StartEvent {
                                trigger: Trigger::None
                            }
                        )
                });
                match start {
                    Some(s) => {
                        self.arm_event_subprocesses(Some(key));
                        self.queue.push_back(Step::Activate {
                            element_id: s.id.clone(),
                            scope: Some(key),
                            via: None,
                            locals: Map::new(),
                        })
                    }
                    None => self.incident(
                        key,
                        &element.id,
                        "the subprocess has no none start event".into(),
                    ),
                }
            }
            ElementKind::EndEvent {
                trigger: Trigger::Terminate,
                ..
            } => {
                self.state.active.remove(&key);
                self.terminate_scope(scope);
            }
            ElementKind::EndEvent {
                trigger: Trigger::Error { code, .. },
                ..
            } => {
                let code = code.clone().unwrap_or_default();
                self.throw(
                    key,
                    &code,
                    format!("error end event {}", element.id),
                    Map::new(),
                );
            }
            ElementKind::EndEvent { .. } => {
                self.queue.push_back(Step::Complete { key });
            }
            ElementKind::IntermediateCatchEvent {
                trigger:
                    trigger @ (Trigger::Timer(_) | Trigger::Message { .. } | Trigger::Signal { .. }),
            } => self.wait_for(key, &element.id, trigger, scope),
            ElementKind::ReceiveTask {
                name,
                correlation_key,
                ..
            } => self.subscribe(key, &element.id, name, correlation_key.as_deref(), scope),
            other => {
                let what = format!("{other:?}");
                let name = what
                    .split([' ', '{', '('])
                    .next()
                    .unwrap_or("element")
                    .to_owned();
                self.incident(
                    key,
                    &element.id,
                    format!("{name} is not executed by the runtime yet"),
                );
            }
        }
    }

    /// Begins a new instance at the top-level start event `which` picks.
    fn start_at(
        &mut self,
        which: impl Fn(&Element) -> bool,
        variables: Map<String, Json>,
    ) -> Result<(), RuntimeError> {
        if self.state.next_key != 1 {
            return Err(RuntimeError::AlreadyStarted);
        }
        let start = self
            .process
            .elements
            .iter()
            .find(|e| e.parent.is_none() && which(e))
            .ok_or(RuntimeError::NoStart)?;
        self.state.variables = variables;
        self.arm_event_subprocesses(None);
        self.queue.push_back(Step::Activate {
            element_id: start.id.clone(),
            scope: None,
            via: None,
            locals: Map::new(),
        });
        Ok(())
    }

    /// The event subprocesses directly inside `container` (an element id; `None`: the process).
    fn event_subprocesses(&self, container: Option<&str>) -> Vec<&'p Element> {
        let process: &'p Process = self.process;
        process
            .elements
            .iter()
            .filter(|e| {
                e.parent.as_deref() == container
                    && matches!(e.kind, ElementKind::EventSubProcess { .. })
            })
            .collect()
    }

    /// The start event of an event subprocess.
    fn start_of(&self, sub: &Element) -> Option<&'p Element> {
        let process: &'p Process = self.process;
        process.elements.iter().find(|e| {
            e.parent.as_deref() == Some(sub.id.as_str())
                && matches!(e.kind, ElementKind::StartEvent { .. })
        })
    }

    fn container_of(&self, scope: Option<Key>) -> Option<String> {
        scope.and_then(|k| self.state.active.get(&k).map(|e| e.element_id.clone()))
    }

    /// A scope became active: the timer and message start events of its event subprocesses
    /// start waiting, under the scope's key ([`ROOT`] for the process).
    fn arm_event_subprocesses(&mut self, scope: Option<Key>) {
        let container = self.container_of(scope);
        let owner = scope.unwrap_or(ROOT);
        for sub in self.event_subprocesses(container.as_deref()) {
            let Some(start) = self.start_of(sub) else {
                continue;
            };
            if let ElementKind::StartEvent { trigger } = &start.kind {
                self.wait_for(owner, &start.id, trigger, scope);
            }
        }
    }

    /// The start events of the event subprocesses inside `container` that wait on a timer, a
    /// message or a signal.
    fn waiting_starts(&self, container: Option<&str>) -> impl Iterator<Item = &'p Element> + '_ {
        self.event_subprocesses(container)
            .into_iter()
            .filter_map(|sub| self.start_of(sub))
            .filter(|s| {
                matches!(
                    s.kind,
                    ElementKind::StartEvent {
                        trigger: Trigger::Timer(_)
                            | Trigger::Message { .. }
                            | Trigger::Signal { .. }
                    }
                )
            })
    }

    /// Whether the event subprocesses inside `container` wait on timers or messages.
    fn has_waiting_event_subprocesses(&self, container: Option<&str>) -> bool {
        self.waiting_starts(container).next().is_some()
    }

    /// The process scope ended: its event subprocesses stop waiting.
    fn disarm_root(&mut self) {
        if self.has_waiting_event_subprocesses(None) {
            self.effects.push(Effect::CancelTimers { element: ROOT });
            self.effects
                .push(Effect::CloseSubscriptions { element: ROOT });
        }
    }

    /// Starts event subprocess `sub` in `scope`: an interrupting one first ends everything else
    /// in the scope (and the scope's other event subprocesses no longer start). `variables` (a
    /// message's or an error's) are set in the scope.
    fn start_event_subprocess(
        &mut self,
        scope: Option<Key>,
        sub: &'p Element,
        variables: Map<String, Json>,
    ) {
        let Some(start) = self.start_of(sub) else {
            return;
        };
        if matches!(
            sub.kind,
            ElementKind::EventSubProcess { interrupting: true }
        ) {
            let inside: Vec<Key> = match scope {
                Some(s) => self.descendants(s),
                None => self.state.active.keys().copied().collect(),
            };
            for k in inside {
                self.cancel(k);
            }
            let prefix = format!(
                "{}/",
                scope.map_or_else(|| "root".to_owned(), |s| s.to_string())
            );
            self.state.joins.retain(|jk, _| !jk.starts_with(&prefix));
            self.queue.retain(|step| match step {
                Step::Activate { scope: sc, .. } => *sc != scope,
                Step::Complete { .. } => true,
            });
            self.state.interrupted.insert(scope.unwrap_or(ROOT));
            if let Some(s) = scope {
                // The scope's other event subprocesses no longer start: they stop waiting.
                let container = self.container_of(scope);
                let catch_ids: Vec<String> = self
                    .waiting_starts(container.as_deref())
                    .filter(|s| s.parent.as_deref() != Some(sub.id.as_str()))
                    .map(|s| s.id.clone())
                    .collect();
                if !catch_ids.is_empty() {
                    self.effects.push(Effect::CloseWaits {
                        element: s,
                        catch_ids,
                    });
                }
            }
        }
        for (name, value) in variables {
            self.propagate(scope, &name, value);
        }
        let key = self.new_instance(&sub.id, scope);
        self.queue.push_back(Step::Activate {
            element_id: start.id.clone(),
            scope: Some(key),
            via: None,
            locals: Map::new(),
        });
    }

    /// A timer or message for the start event `start_id` of an event subprocess of the scope
    /// `owner` (a subprocess instance, or [`ROOT`]). False when `start_id` is no such event.
    fn event_subprocess_triggered(
        &mut self,
        owner: Key,
        start_id: &str,
        repeat: Option<Repeat>,
        variables: Map<String, Json>,
    ) -> bool {
        let Some(sub) = self
            .element(start_id)
            .and_then(|s| s.parent.as_deref())
            .and_then(|p| self.element(p))
            .filter(|p| matches!(p.kind, ElementKind::EventSubProcess { .. }))
        else {
            return false;
        };
        let scope = (owner != ROOT).then_some(owner);
        if scope.is_some_and(|k| !self.state.active.contains_key(&k))
            || self.state.interrupted.contains(&owner)
            || self.container_of(scope).as_deref() != sub.parent.as_deref()
        {
            return true;
        }
        if matches!(
            sub.kind,
            ElementKind::EventSubProcess {
                interrupting: false
            }
        ) {
            self.repeat_timer(owner, start_id, repeat);
            if let Some(ElementKind::StartEvent {
                trigger: trigger @ (Trigger::Message { .. } | Trigger::Signal { .. }),
            }) = self.element(start_id).map(|s| &s.kind)
            {
                // The correlation took the subscription; a non-interrupting start waits again.
                self.wait_for(owner, start_id, trigger, scope);
            }
        } else if owner == ROOT {
            // The process's other event subprocesses stop waiting.
            self.disarm_root();
        }
        self.start_event_subprocess(scope, sub, variables);
        true
    }

    /// The event subprocess of `scope` whose start event catches a thrown error or escalation:
    /// `catches` tells, for a start event's trigger, whether it catches it by its code
    /// (`Some(true)`) or catches everything (`Some(false)`); an exact code wins.
    fn catching_event_subprocess(
        &self,
        scope: Option<Key>,
        catches: impl Fn(&Trigger) -> Option<bool>,
    ) -> Option<&'p Element> {
        if self.state.interrupted.contains(&scope.unwrap_or(ROOT)) {
            return None;
        }
        let container = self.container_of(scope);
        let candidates: Vec<(&'p Element, bool)> = self
            .event_subprocesses(container.as_deref())
            .into_iter()
            .filter_map(|sub| match &self.start_of(sub)?.kind {
                ElementKind::StartEvent { trigger } => catches(trigger).map(|exact| (sub, exact)),
                _ => None,
            })
            .collect();
        candidates
            .iter()
            .find(|(_, exact)| *exact)
            .or_else(|| candidates.first())
            .map(|(sub, _)| *sub)
    }

    /// Schedules the next occurrence of a cycle timer that fired, if it has one.
    fn repeat_timer(&mut self, key: Key, timer_id: &str, repeat: Option<Repeat>) {
        let Some(r) = repeat.filter(|r| r.remaining != Some(0)) else {
            return;
        };
        let next = Repeat {
            remaining: r.remaining.map(|n| n.saturating_sub(1)),
            interval_ms: r.interval_ms,
        };
        // A cycle whose next occurrence is past the representable range ends here.
        if let Some(due) = chrono::Duration::try_milliseconds(r.interval_ms)
            .and_then(|d| self.now.checked_add_signed(d))
        {
            self.effects.push(Effect::ScheduleTimer {
                element: key,
                timer_id: timer_id.to_owned(),
                due,
                repeat: Some(next),
            });
        }
    }

    /// Every element instance inside `scope`, transitively.
    fn descendants(&self, scope: Key) -> Vec<Key> {
        let mut out = Vec::new();
        let mut frontier = vec![scope];
        while let Some(s) = frontier.pop() {
            for (k, ei) in &self.state.active {
                if ei.scope == Some(s) {
                    out.push(*k);
                    frontier.push(*k);
                }
            }
        }
        out
    }

    fn cancel(&mut self, key: Key) {
        if let Some(ei) = self.state.active.remove(&key) {
            if self
                .element(&ei.element_id)
                .and_then(|e| e.kind.job())
                .is_some()
            {
                self.effects.push(Effect::CancelJob { element: key });
            }
            if self
                .element(&ei.element_id)
                .is_some_and(|e| matches!(e.kind, ElementKind::UserTask { native: true, .. }))
            {
                self.effects.push(Effect::CancelUserTask { element: key });
            }
            if ei.multi.is_none()
                && self
                    .element(&ei.element_id)
                    .is_some_and(|e| matches!(e.kind, ElementKind::CallActivity { .. }))
            {
                self.effects
                    .push(Effect::CancelChildInstance { element: key });
            }
            self.disarm(key, &ei.element_id);
            self.state.incidents.remove(&key);
            self.state.handlers.remove(&key);
            self.state.compensating.remove(&key);
            self.state.completing.remove(&key);
            if self.state.listening.remove(&key).is_some()
                && self
                    .element(&ei.element_id)
                    .and_then(|e| e.kind.job())
                    .is_none()
            {
                // The listener's job (an element with a job of its own cancels it above).
                self.effects.push(Effect::CancelJob { element: key });
            }
        }
    }

    /// A native user task: assignee, candidate groups and due date may be FEEL expressions.
    fn user_task(&mut self, key: Key, element: &'p Element, scope: Option<Key>) {
        let variables = self.element_visible(key, scope);
        match assignment(element, &self.env(&variables)) {
            Ok(a) => self.effects.push(Effect::CreateUserTask {
                element: key,
                element_id: element.id.clone(),
                name: element.name.clone(),
                assignee: a.assignee,
                candidate_groups: a.candidate_groups,
                due_date: a.due_date,
                variables,
            }),
            Err(e) => self.incident(key, &element.id, format!("user task {}: {e}", element.id)),
        }
    }

    /// Whether timers or subscriptions can belong to an element instance of `element_id`.
    fn waits_on_events(&self, element_id: &str) -> bool {
        self.has_waiting_event_subprocesses(Some(element_id))
            || self.element(element_id).is_some_and(|e| {
            matches!(e.kind, ElementKind::IntermediateCatchEvent { .. } | ElementKind::ReceiveTask { .. } | ElementKind::EventBasedGateway)
                || self.process.elements.iter().any(|b| matches!(&b.kind, ElementKind::BoundaryEvent { attached_to, .. } if attached_to == element_id))
        })
    }

    fn disarm(&mut self, key: Key, element_id: &str) {
        if self.waits_on_events(element_id) {
            self.effects.push(Effect::CancelTimers { element: key });
            self.effects
                .push(Effect::CloseSubscriptions { element: key });
        }
    }

    fn schedule(&mut self, key: Key, timer_id: &str, timer: &Timer, scope: Option<Key>) {
        let layers = self.layers(scope, None);
        let env = self.scoped_env(&layers);
        match timer_due(timer, &env) {
            Ok((due, repeat)) => self.effects.push(Effect::ScheduleTimer {
                element: key,
                timer_id: timer_id.to_owned(),
                due,
                repeat,
            }),
            Err(e) => self.incident(key, timer_id, format!("timer of {timer_id}: {e}")),
        }
    }

    fn subscribe(
        &mut self,
        key: Key,
        catch_id: &str,
        name: &str,
        correlation_key: Option<&str>,
        scope: Option<Key>,
    ) {
        let layers = self.layers(scope, None);
        let env = self.scoped_env(&layers);
        let Some(source) = correlation_key else {
            return self.incident(key, catch_id, format!("{catch_id} has no correlation key"));
        };
        match expression_value(source, &env) {
            Ok(Feel::Null) => self.incident(
                key,
                catch_id,
                format!("the correlation key '{source}' of {catch_id} is null"),
            ),
            Ok(v) => {
                let correlation_key = match v.to_json() {
                    Json::String(s) => s,
                    other => other.to_string(),
                };
                self.effects.push(Effect::OpenSubscription {
                    element: key,
                    catch_id: catch_id.to_owned(),
                    message_name: name.to_owned(),
                    correlation_key,
                });
            }
            Err(e) => self.incident(
                key,
                catch_id,
                format!("correlation key '{source}' of {catch_id}: {e}"),
            ),
        }
    }

    /// Timer and message boundary events of an activity start waiting with it.
    fn arm_boundaries(&mut self, key: Key, element_id: &str, scope: Option<Key>) {
        let boundaries: Vec<&'p Element> = self
            .process
            .elements
            .iter()
            .filter(|b| matches!(&b.kind, ElementKind::BoundaryEvent { attached_to, .. } if attached_to == element_id))
            .collect();
        for b in boundaries {
            if let ElementKind::BoundaryEvent { trigger, .. } = &b.kind {
                self.wait_for(key, &b.id, trigger, scope);
            }
        }
    }

    /// Catch event `catch_id` starts waiting under `key` for its timer, message or signal
    /// (other triggers have nothing to wait for).
    fn wait_for(&mut self, key: Key, catch_id: &str, trigger: &Trigger, scope: Option<Key>) {
        match trigger {
            Trigger::Timer(t) => self.schedule(key, catch_id, t, scope),
            Trigger::Message {
                name,
                correlation_key,
                ..
            } => self.subscribe(key, catch_id, name, correlation_key.as_deref(), scope),
            Trigger::Signal { name } => self.signal_subscribe(key, catch_id, name, scope),
            _ => {}
        }
    }

    /// Waits for the signal `name` (FEEL allowed, evaluated in `scope` now).
    fn signal_subscribe(&mut self, key: Key, catch_id: &str, name: &str, scope: Option<Key>) {
        let layers = self.layers(scope, None);
        match job_text(name, &self.scoped_env(&layers)) {
            Ok(signal_name) => self.effects.push(Effect::OpenSignalSubscription {
                element: key,
                catch_id: catch_id.to_owned(),
                signal_name,
            }),
            Err(e) => self.incident(
                key,
                catch_id,
                format!("signal name '{name}' of {catch_id}: {e}"),
            ),
        }
    }

    /// A timer or message for `key` arrived for catch event `event_id` (the element itself, or a
    /// boundary event attached to it).
    fn event_arrived(&mut self, key: Key, event_id: &str, repeat: Option<Repeat>) {
        if self.event_subprocess_triggered(key, event_id, repeat, Map::new()) {
            return;
        }
        let Some(ei) = self.state.active.get(&key).cloned() else {
            return;
        };
        if ei.element_id == event_id {
            self.queue.push_back(Step::Complete { key });
            return;
        }
        let Some(boundary) = self.element(event_id) else {
            return;
        };
        if self
            .element(&ei.element_id)
            .is_some_and(|g| matches!(g.kind, ElementKind::EventBasedGateway))
        {
            // The first event after an event-based gateway: the gateway's other waits end and
            // the event that happened completes at once.
            self.state.active.remove(&key);
            self.disarm(key, &ei.element_id);
            let caught = self.new_instance(&boundary.id, ei.scope);
            self.queue.push_back(Step::Complete { key: caught });
            return;
        }
        let ElementKind::BoundaryEvent {
            attached_to,
            interrupting,
            ..
        } = &boundary.kind
        else {
            return;
        };
        if attached_to != &ei.element_id {
            return;
        }
        if *interrupting {
            for d in self.descendants(key) {
                self.cancel(d);
            }
            self.cancel(key);
        } else {
            self.repeat_timer(key, event_id, repeat);
        }
        self.queue.push_back(Step::Activate {
            element_id: boundary.id.clone(),
            scope: ei.scope,
            via: None,
            locals: Map::new(),
        });
    }

    /// A terminate end event: everything else in the scope ends; the scope itself completes.
    fn terminate_scope(&mut self, scope: Option<Key>) {
        let inside: Vec<Key> = match scope {
            Some(s) => self.descendants(s),
            None => self.state.active.keys().copied().collect(),
        };
        for k in inside {
            self.cancel(k);
        }
        self.state.joins.retain(|jk, _| {
            !jk.starts_with(&format!(
                "{}/",
                scope.map_or_else(|| "root".to_owned(), |s| s.to_string())
            ))
        });
        match scope {
            Some(s) => self.queue.push_back(Step::Complete { key: s }),
            None => self.finish(),
        }
    }

    fn finish(&mut self) {
        self.disarm_root();
        self.state.status = InstanceStatus::Completed;
        self.effects.push(Effect::InstanceCompleted);
    }

    fn complete(&mut self, key: Key) {
        let Some(ei) = self.state.active.get(&key).cloned() else {
            return;
        };
        let Some(element) = self.element(&ei.element_id) else {
            return;
        };
        if let Some(throw) = self.state.handlers.remove(&key) {
            // A compensation handler is done: the next one runs, or its throw event goes on.
            self.state.active.remove(&key);
            self.disarm(key, &element.id);
            return self.next_handler(throw);
        }
        if let (Some(index), Some(body)) = (ei.loop_index, ei.scope) {
            return self.complete_inner(key, &ei, element, body, index);
        }
        if let Some(multi) = &ei.multi {
            // The body: every inner instance is done; publish the output collection.
            if let Some(name) = element
                .multi_instance
                .as_ref()
                .and_then(|m| m.output_collection.clone())
            {
                self.propagate(ei.scope, &name, Json::Array(multi.outputs.clone()));
            }
        } else if !element.outputs.is_empty() {
            let layers = self.layers(ei.scope, Some(&ei.variables));
            let mapped = self.output_values(element, &self.scoped_env(&layers));
            if !self.map_outputs(key, element, mapped, ei.scope) {
                return;
            }
        }
        if ei.multi.is_none() {
            self.record_completed(key, element, ei.scope);
        }
        if !self.listen(key, element, ei.scope, ListenerEvent::End, 0) {
            self.leave(key, element, ei.scope);
        }
    }

    /// A completed element (its end listeners done) leaves: its outgoing flows are taken.
    fn leave(&mut self, key: Key, element: &'p Element, scope: Option<Key>) {
        self.state.active.remove(&key);
        self.disarm(key, &element.id);
        let flows = self.outgoing(&element.id);
        if flows.is_empty() {
            self.scope_may_complete(scope);
        } else {
            self.take_all(&element.id, scope);
        }
    }

    /// Creates the job of the `index`th execution listener of `event` of the element, if it has
    /// one: true while a listener runs.
    fn listen(
        &mut self,
        key: Key,
        element: &'p Element,
        scope: Option<Key>,
        event: ListenerEvent,
        index: usize,
    ) -> bool {
        let Some(listener) = element
            .listeners
            .iter()
            .filter(|l| l.event == event)
            .nth(index)
        else {
            self.state.listening.remove(&key);
            return false;
        };
        self.state.listening.insert(key, (event, index));
        let variables = self.element_visible(key, scope);
        let env = self.env(&variables);
        let job = job_text(&listener.job_type, &env).and_then(|job_type| {
            let retries = job_text(&listener.retries, &env)?;
            let retries = retries
                .trim()
                .parse::<i32>()
                .map_err(|e| format!("retries '{retries}': {e}"))?;
            Ok((job_type, retries))
        });
        match job {
            Ok((job_type, retries)) => self.effects.push(Effect::CreateJob {
                element: key,
                element_id: element.id.clone(),
                job_type,
                retries,
                headers: Vec::new(),
                variables,
            }),
            Err(e) => self.incident(
                key,
                &element.id,
                format!("execution listener '{}': {e}", listener.job_type),
            ),
        }
        true
    }

    /// An execution listener's job completed: its variables are set on the element, then the
    /// next listener runs, or the element goes on (its work after start listeners, its way out
    /// after end listeners).
    fn listener_done(&mut self, key: Key, variables: &Map<String, Json>) {
        let Some((event, index)) = self.state.listening.get(&key).copied() else {
            return;
        };
        let Some(ei) = self.state.active.get(&key).cloned() else {
            return;
        };
        let Some(element) = self.element(&ei.element_id) else {
            return;
        };
        for (name, value) in variables {
            self.propagate(ei.scope, name, value.clone());
        }
        if self.listen(key, element, ei.scope, event, index + 1) {
            return;
        }
        match event {
            ListenerEvent::Start => self.behave(key, element, ei.scope),
            ListenerEvent::End => self.leave(key, element, ei.scope),
        }
    }

    /// The element's output mappings evaluated against what it sees (`env`): each target with
    /// its value, or the first failure's message.
    fn output_values(&self, element: &Element, env: &Env) -> Result<Vec<(String, Json)>, String> {
        element
            .outputs
            .iter()
            .map(|m| {
                self.eval(env, &m.source)
                    .map(|v| (m.target.clone(), v.to_json()))
                    .map_err(|e| format!("output mapping '{}' failed: {e}", m.source))
            })
            .collect()
    }

    /// Applies the element's evaluated output mappings into `scope`; false when one failed (an
    /// incident).
    fn map_outputs(
        &mut self,
        key: Key,
        element: &Element,
        mapped: Result<Vec<(String, Json)>, String>,
        scope: Option<Key>,
    ) -> bool {
        match mapped {
            Ok(values) => {
                for (target, value) in values {
                    self.propagate(scope, &target, value);
                }
                true
            }
            Err(message) => {
                self.state.completing.insert(key);
                self.incident(key, &element.id, message);
                false
            }
        }
    }

    fn complete_inner(
        &mut self,
        key: Key,
        ei: &ElementInstance,
        element: &'p Element,
        body: Key,
        index: usize,
    ) {
        // Both read what the instance saw before its outputs were applied.
        let (mapped, output) = {
            let layers = self.layers(Some(body), Some(&ei.variables));
            let env = self.scoped_env(&layers);
            let output = element
                .multi_instance
                .as_ref()
                .and_then(|m| m.output_element.as_deref())
                .map(|source| {
                    self.eval(&env, source)
                        .map(|v| v.to_json())
                        .map_err(|e| format!("outputElement '{source}' failed: {e}"))
                });
            (self.output_values(element, &env), output)
        };
        if !self.map_outputs(key, element, mapped, Some(body)) {
            return;
        }
        let output = match output {
            Some(Ok(v)) => Some(v),
            Some(Err(message)) => {
                self.state.completing.insert(key);
                return self.incident(key, &element.id, message);
            }
            None => None,
        };
        let outer = self.state.active.get(&body).and_then(|b| b.scope);
        self.record_completed(key, element, outer);
        self.state.active.remove(&key);
        self.disarm(key, &element.id);
        let (next, all_done) = match self
            .state
            .active
            .get_mut(&body)
            .and_then(|b| b.multi.as_mut())
        {
            Some(m) => {
                if let (Some(v), Some(slot)) = (output, m.outputs.get_mut(index)) {
                    *slot = v;
                }
                m.done += 1;
                let next = (m.sequential && m.next < m.outputs.len()).then(|| {
                    m.next += 1;
                    let i = m.next - 1;
                    (i, m.items.get(i).cloned().unwrap_or(Json::Null))
                });
                (next, m.done == m.outputs.len())
            }
            None => (None, false),
        };
        if let Some((i, item)) = next {
            self.activate_inner(body, element, i, item);
        } else if all_done {
            self.queue.push_back(Step::Complete { key: body });
        }
    }

    /// Keeps a completed activity for compensation when it has a handler, or is an embedded
    /// subprocess in which such activities completed.
    fn record_completed(&mut self, key: Key, element: &Element, scope: Option<Key>) {
        let compensable = self.process.compensation_handlers.contains_key(&element.id)
            || (matches!(element.kind, ElementKind::SubProcess)
                && self.state.completed.iter().any(|c| c.scope == Some(key)));
        if compensable {
            self.state.completed.push(Completed {
                key,
                element_id: element.id.clone(),
                scope,
            });
        }
    }

    /// The completed activities a compensation throw in `scope` compensates, latest first (only
    /// `activity` when the throw names one): each is taken, so it is compensated once; a
    /// subprocess without a handler of its own stands for the activities completed inside it.
    fn take_compensable(&mut self, scope: Option<Key>, activity: Option<&str>) -> Vec<Completed> {
        let mine: Vec<Completed> = self
            .state
            .completed
            .iter()
            .filter(|c| c.scope == scope && activity.is_none_or(|a| a == c.element_id))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for c in mine.into_iter().rev() {
            self.state.completed.retain(|x| x.key != c.key);
            if self
                .process
                .compensation_handlers
                .contains_key(&c.element_id)
            {
                self.drop_inside(c.key);
                out.push(c);
            } else {
                out.extend(self.take_compensable(Some(c.key), None));
            }
        }
        out
    }

    /// Forgets what completed inside a compensated subprocess (its own handler stands for it).
    fn drop_inside(&mut self, key: Key) {
        let inside: Vec<Key> = self
            .state
            .completed
            .iter()
            .filter(|c| c.scope == Some(key))
            .map(|c| c.key)
            .collect();
        for k in inside {
            self.state.completed.retain(|x| x.key != k);
            self.drop_inside(k);
        }
    }

    /// Runs the next compensation handler of throw event `throw` (in the throw's scope), or
    /// lets the throw go on when none is left.
    fn next_handler(&mut self, throw: Key) {
        let Some(throw_instance) = self.state.active.get(&throw).cloned() else {
            self.state.compensating.remove(&throw);
            return;
        };
        let next = self
            .state
            .compensating
            .get_mut(&throw)
            .and_then(|todo| (!todo.is_empty()).then(|| todo.remove(0)));
        let Some(done) = next else {
            self.state.compensating.remove(&throw);
            self.queue.push_back(Step::Complete { key: throw });
            return;
        };
        let process: &'p Process = self.process;
        let Some(handler) = process
            .compensation_handlers
            .get(&done.element_id)
            .and_then(|h| process.element(h))
        else {
            return self.next_handler(throw);
        };
        let scope = throw_instance.scope;
        let key = self.new_instance(&handler.id, scope);
        self.state.handlers.insert(key, throw);
        self.enter(key, handler, scope, Map::new());
    }

    /// A scope with nothing left active (and no pending joins) completes.
    fn scope_may_complete(&mut self, scope: Option<Key>) {
        let busy = self
            .state
            .active
            .values()
            .any(|e| e.scope == scope && Some(e.key) != scope)
            || self
                .queue
                .iter()
                .any(|s| matches!(s, Step::Activate { scope: sc, .. } if *sc == scope))
            || self.state.joins.keys().any(|jk| {
                jk.starts_with(&format!(
                    "{}/",
                    scope.map_or_else(|| "root".to_owned(), |s| s.to_string())
                ))
            });
        if busy {
            return;
        }
        match scope {
            Some(s) => self.queue.push_back(Step::Complete { key: s }),
            None => self.finish(),
        }
    }

    /// Throws a BPMN error from `from`: the nearest matching error boundary event up the scope
    /// chain catches it (ending what it is attached to) with the error's `variables` (see
    /// [`Command::ThrowError`]); uncaught → incident.
    fn throw(&mut self, from: Key, code: &str, message: String, variables: Map<String, Json>) {
        let mut at = Some(from);
        while let Some(k) = at {
            let Some(ei) = self.state.active.get(&k).cloned() else {
                break;
            };
            let boundary = self.process.elements.iter().find(|b| {
                ei.loop_index.is_none()
                    && match &b.kind {
                        ElementKind::BoundaryEvent {
                            attached_to,
                            trigger: Trigger::Error { code: c, .. },
                            ..
                        } => {
                            attached_to == &ei.element_id && c.as_deref().is_none_or(|c| c == code)
                        }
                        _ => false,
                    }
            });
            if let Some(b) = boundary {
                for d in self.descendants(k) {
                    self.cancel(d);
                }
                // The job (if any) that threw is done; other jobs of the activity are cancelled.
                if k != from {
                    self.cancel(k);
                } else {
                    self.state.active.remove(&k);
                }
                let locals = if b.outputs.is_empty() {
                    for (name, value) in variables {
                        self.propagate(ei.scope, &name, value);
                    }
                    Map::new()
                } else {
                    variables
                };
                self.queue.push_back(Step::Activate {
                    element_id: b.id.clone(),
                    scope: ei.scope,
                    via: None,
                    locals,
                });
                return;
            }
            let sub = self.catching_event_subprocess(ei.scope, |t| match t {
                Trigger::Error { code: c, .. } => match c.as_deref() {
                    None => Some(false),
                    Some(c) => (c == code).then_some(true),
                },
                _ => None,
            });
            if let Some(sub) = sub {
                // The job that threw is done (not cancelled); the rest of the scope ends.
                self.state.active.remove(&from);
                self.start_event_subprocess(ei.scope, sub, variables);
                return;
            }
            at = ei.scope;
        }
        let element_id = self
            .state
            .active
            .get(&from)
            .map(|e| e.element_id.clone())
            .unwrap_or_default();
        self.incident(
            from,
            &element_id,
            format!("unhandled BPMN error '{code}': {message}"),
        );
    }
}

/// Applies one command to an instance. See the module docs.
pub fn apply(
    process: &Process,
    state: &InstanceState,
    command: &Command,
    now: DateTime<Utc>,
) -> Result<(InstanceState, Vec<Effect>), RuntimeError> {
    apply_with_decisions(process, state, command, now, &NoDecisions)
}

/// [`apply`], with the decisions business rule tasks call.
pub fn apply_with_decisions(
    process: &Process,
    state: &InstanceState,
    command: &Command,
    now: DateTime<Utc>,
    decisions: &dyn DecisionEvaluator,
) -> Result<(InstanceState, Vec<Effect>), RuntimeError> {
    if state.status != InstanceStatus::Active {
        return Err(RuntimeError::NotActive(state.status));
    }
    let mut run = Run {
        process,
        decisions,
        now,
        state: state.clone(),
        effects: Vec::new(),
        queue: VecDeque::new(),
    };
    match command {
        Command::StartByTimer { start_event } => {
            run.start_at(
                |e| {
                    e.id == *start_event
                        && matches!(
                            e.kind,
                            ElementKind::StartEvent {
                                trigger: Trigger::Timer(_)
                            }
                        )
                },
                Map::new(),
            )?;
        }
        Command::StartByMessage {
            start_event,
            variables,
        }
        | Command::StartBySignal {
            start_event,
            variables,
        } => {
            let by_signal = matches!(command, Command::StartBySignal { .. });
            run.start_at(
                |e| {
                    e.id == *start_event
                        && match &e.kind {
                            ElementKind::StartEvent {
                                trigger: Trigger::Message { .. },
                            } => !by_signal,
                            ElementKind::StartEvent {
                                trigger: Trigger::Signal { .. },
                            } => by_signal,
                            _ => false,
                        }
                },
                variables.clone(),
            )?;
        }
        Command::Start { variables } => {
            run.start_at(
                |e| {
                    matches!(
                        e.kind,
                        ElementKind::StartEvent {
                            trigger: Trigger::None
                        }
                    )
                },
                variables.clone(),
            )?;
        }
        Command::CompleteJob { element, variables }
            if run.state.listening.contains_key(element) =>
        {
            run.listener_done(*element, variables);
        }
        Command::CompleteJob { element, variables } => {
            let ei = run.active_instance(*element)?;
            if run
                .element(&ei.element_id)
                .and_then(|e| e.kind.job())
                .is_none()
            {
                return Err(RuntimeError::NoSuchJob(*element));
            }
            if let Some(el) = run.element(&ei.element_id) {
                run.set_result(*element, el, ei.scope, variables.clone());
            }
            run.queue.push_back(Step::Complete { key: *element });
        }
        Command::ThrowError {
            element,
            code,
            message,
            variables,
        } => {
            let ei = run.active_instance(*element)?;
            if run.state.listening.contains_key(element) {
                return Err(RuntimeError::ListenerJobError(ei.element_id));
            }
            if run
                .element(&ei.element_id)
                .and_then(|e| e.kind.job())
                .is_none()
            {
                return Err(RuntimeError::NoSuchJob(*element));
            }
            run.throw(*element, code, message.clone(), variables.clone());
        }
        Command::TimerFired {
            element,
            timer_id,
            repeat,
        } => {
            run.event_arrived(*element, timer_id, *repeat);
        }
        Command::CorrelateMessage {
            element,
            catch_id,
            variables,
        }
        | Command::TriggerSignal {
            element,
            catch_id,
            variables,
        } => {
            // The message start of an event subprocess (of the process: `element` is `ROOT`)
            // sets its variables in the scope itself; any other catch's are propagated here.
            if !run.event_subprocess_triggered(*element, catch_id, None, variables.clone()) {
                let ei = run.active_instance(*element)?;
                for (k, v) in variables {
                    run.propagate(ei.scope, k, v.clone());
                }
                run.event_arrived(*element, catch_id, None);
            }
        }
        Command::CompleteChild { element, variables } => {
            let ei = run.active_instance(*element)?;
            let Some(el) = run.element(&ei.element_id) else {
                return Err(RuntimeError::NoSuchJob(*element));
            };
            let ElementKind::CallActivity { called } = &el.kind else {
                return Err(RuntimeError::NoSuchJob(*element));
            };
            if called.propagate_all_child_variables {
                run.set_result(*element, el, ei.scope, variables.clone());
            } else if let Some(local) = run.state.active.get_mut(element) {
                // Only the output mappings, which see the child's variables, reach the caller.
                local.variables.extend(variables.clone());
            }
            run.queue.push_back(Step::Complete { key: *element });
        }
        Command::ChildNotStarted { element, message } => {
            let ei = run.active_instance(*element)?;
            run.incident(*element, &ei.element_id, message.clone());
        }
        Command::CompleteUserTask { element, variables } => {
            let ei = run.active_instance(*element)?;
            if !run
                .element(&ei.element_id)
                .is_some_and(|e| matches!(e.kind, ElementKind::UserTask { native: true, .. }))
            {
                return Err(RuntimeError::NoSuchJob(*element));
            }
            for (k, v) in variables {
                run.propagate(ei.scope, k, v.clone());
            }
            run.queue.push_back(Step::Complete { key: *element });
        }
        Command::RetryElement { element } => {
            let ei = run
                .state
                .active
                .get(element)
                .cloned()
                .filter(|_| run.state.incidents.contains_key(element))
                .ok_or(RuntimeError::NoSuchJob(*element))?;
            let el = run
                .element(&ei.element_id)
                .ok_or(RuntimeError::NoSuchJob(*element))?;
            run.state.incidents.remove(element);
            if run.state.completing.remove(element) {
                run.queue.push_back(Step::Complete { key: *element });
            } else if ei.multi.is_some() {
                // The input collection failed: the multi-instance activity starts again.
                run.state.active.remove(element);
                run.activate_body(el, ei.scope);
            } else {
                run.enter(*element, el, ei.scope, ei.variables.clone());
            }
        }
        Command::Cancel => {
            let keys: Vec<Key> = run.state.active.keys().copied().collect();
            for k in keys {
                run.cancel(k);
            }
            run.disarm_root();
            run.state.status = InstanceStatus::Terminated;
            run.effects.push(Effect::InstanceTerminated);
        }
    }
    run.run();
    Ok((run.state, run.effects))
}
