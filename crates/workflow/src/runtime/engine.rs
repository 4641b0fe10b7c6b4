use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::bpmn::{Element, ElementKind, Process, Trigger};
use crate::feel::{Env, Expression};

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
}

impl InstanceState {
    pub fn new() -> InstanceState {
        InstanceState {
            status: InstanceStatus::Active,
            variables: Map::new(),
            active: BTreeMap::new(),
            joins: BTreeMap::new(),
            incidents: BTreeMap::new(),
            next_key: 1,
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
    CompleteJob {
        element: Key,
        variables: Map<String, Json>,
    },
    ThrowError {
        element: Key,
        code: String,
        message: String,
    },
    Cancel,
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
    InstanceCompleted,
    InstanceTerminated,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    #[error("the instance is {0:?}")]
    NotActive(InstanceStatus),
    #[error("no active element instance {0} waits for a job")]
    NoSuchJob(Key),
    #[error("the process has no none start event")]
    NoStart,
    #[error("the instance was already started")]
    AlreadyStarted,
}

enum Step {
    Activate {
        element_id: String,
        scope: Option<Key>,
        via: Option<String>,
    },
    Complete {
        key: Key,
    },
}

struct Run<'p> {
    process: &'p Process,
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

impl<'p> Run<'p> {
    fn element(&self, id: &str) -> Option<&'p Element> {
        self.process.element(id)
    }

    /// Variables visible from inside `scope` (and `local`): process scope, then each enclosing
    /// subprocess, inner names shadowing outer ones.
    fn visible(&self, scope: Option<Key>, local: Option<&Map<String, Json>>) -> Map<String, Json> {
        let mut chain = Vec::new();
        let mut at = scope;
        while let Some(k) = at {
            match self.state.active.get(&k) {
                Some(ei) => {
                    chain.push(&ei.variables);
                    at = ei.scope;
                }
                None => break,
            }
        }
        let mut out = self.state.variables.clone();
        for vars in chain.into_iter().rev().chain(local) {
            for (k, v) in vars {
                out.insert(k.clone(), v.clone());
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
            },
        );
        key
    }

    fn run(&mut self) {
        while let Some(step) = self.queue.pop_front() {
            if self.state.status != InstanceStatus::Active {
                return;
            }
            match step {
                Step::Activate {
                    element_id,
                    scope,
                    via,
                } => self.activate(&element_id, scope, via),
                Step::Complete { key } => self.complete(key),
            }
        }
    }

    fn activate(&mut self, element_id: &str, scope: Option<Key>, via: Option<String>) {
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
                if let Some(v) = via {
                    arrived.insert(v);
                }
                if !incoming.is_subset(arrived) {
                    return;
                }
                self.state.joins.remove(&jk);
            }
        }
        let key = self.new_instance(&element.id, scope);
        // Input mappings: local variables of this element instance.
        if !element.inputs.is_empty() {
            let visible = self.visible(scope, None);
            let mut local = Map::new();
            for m in &element.inputs {
                let env = Env {
                    variables: &visible,
                    now: self.now,
                };
                match Expression::parse(&m.source).and_then(|e| e.evaluate(&env)) {
                    Ok(v) => {
                        local.insert(m.target.clone(), v.to_json());
                    }
                    Err(e) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("input mapping '{}' failed: {e}", m.source),
                        )
                    }
                }
            }
            if let Some(ei) = self.state.active.get_mut(&key) {
                ei.variables = local;
            }
        }
        if element.multi_instance.is_some() {
            return self.incident(
                key,
                &element.id,
                "multi-instance is not executed by the runtime yet".into(),
            );
        }
        match &element.kind {
            // A boundary event is only ever activated by its trigger (see `throw`): it has fired.
            ElementKind::StartEvent { .. }
            | ElementKind::ParallelGateway
            | ElementKind::IntermediateThrowEvent { job: None, .. }
            | ElementKind::BoundaryEvent { .. } => {
                self.queue.push_back(Step::Complete { key });
            }
            ElementKind::ServiceTask { .. }
            | ElementKind::SendTask { .. }
            | ElementKind::UserTask { .. }
            | ElementKind::IntermediateThrowEvent { .. }
            | ElementKind::EndEvent { job: Some(_), .. } => {
                let Some(job) = element.kind.job() else {
                    return self.incident(
                        key,
                        &element.id,
                        "native user tasks are not executed by the runtime yet".into(),
                    );
                };
                let local = self.state.active.get(&key).map(|e| e.variables.clone());
                let variables = self.visible(scope, local.as_ref());
                let retries = job.retries.trim().parse().unwrap_or(3);
                self.effects.push(Effect::CreateJob {
                    element: key,
                    element_id: element.id.clone(),
                    job_type: job.job_type.clone(),
                    retries,
                    headers: job.headers.clone(),
                    variables,
                });
            }
            ElementKind::ExclusiveGateway { default } => {
                let visible = self.visible(scope, None);
                let env = Env {
                    variables: &visible,
                    now: self.now,
                };
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
                    Some(s) => self.queue.push_back(Step::Activate {
                        element_id: s.id.clone(),
                        scope: Some(key),
                        via: None,
                    }),
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
                self.throw(key, &code, format!("error end event {}", element.id));
            }
            ElementKind::EndEvent { .. } => {
                self.queue.push_back(Step::Complete { key });
            }
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
            self.state.incidents.remove(&key);
        }
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
        if !element.outputs.is_empty() {
            let visible = self.visible(ei.scope, Some(&ei.variables));
            for m in &element.outputs {
                let env = Env {
                    variables: &visible,
                    now: self.now,
                };
                match Expression::parse(&m.source).and_then(|e| e.evaluate(&env)) {
                    Ok(v) => self.propagate(ei.scope, &m.target, v.to_json()),
                    Err(e) => {
                        return self.incident(
                            key,
                            &element.id,
                            format!("output mapping '{}' failed: {e}", m.source),
                        )
                    }
                }
            }
        }
        self.state.active.remove(&key);
        let flows = self.outgoing(&element.id);
        if flows.is_empty() {
            self.scope_may_complete(ei.scope);
        } else {
            self.take_all(&element.id, ei.scope);
        }
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
    /// chain catches it (ending what it is attached to); uncaught → incident.
    fn throw(&mut self, from: Key, code: &str, message: String) {
        let mut at = Some(from);
        while let Some(k) = at {
            let Some(ei) = self.state.active.get(&k).cloned() else {
                break;
            };
            let boundary = self.process.elements.iter().find(|b| match &b.kind {
                ElementKind::BoundaryEvent {
                    attached_to,
                    trigger: Trigger::Error { code: c, .. },
                    ..
                } => attached_to == &ei.element_id && c.as_deref().is_none_or(|c| c == code),
                _ => false,
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
                self.queue.push_back(Step::Activate {
                    element_id: b.id.clone(),
                    scope: ei.scope,
                    via: None,
                });
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
    if state.status != InstanceStatus::Active {
        return Err(RuntimeError::NotActive(state.status));
    }
    let mut run = Run {
        process,
        now,
        state: state.clone(),
        effects: Vec::new(),
        queue: VecDeque::new(),
    };
    match command {
        Command::Start { variables } => {
            if run.state.next_key != 1 {
                return Err(RuntimeError::AlreadyStarted);
            }
            let start = process
                .elements
                .iter()
                .find(|e| {
                    e.parent.is_none()
                        && matches!(
                            e.kind,
                            ElementKind::StartEvent {
                                trigger: Trigger::None
                            }
                        )
                })
                .ok_or(RuntimeError::NoStart)?;
            run.state.variables = variables.clone();
            run.queue.push_back(Step::Activate {
                element_id: start.id.clone(),
                scope: None,
                via: None,
            });
        }
        Command::CompleteJob { element, variables } => {
            let ei = run
                .state
                .active
                .get(element)
                .cloned()
                .ok_or(RuntimeError::NoSuchJob(*element))?;
            if run
                .element(&ei.element_id)
                .and_then(|e| e.kind.job())
                .is_none()
            {
                return Err(RuntimeError::NoSuchJob(*element));
            }
            let has_outputs = run
                .element(&ei.element_id)
                .is_some_and(|e| !e.outputs.is_empty());
            for (k, v) in variables {
                if has_outputs {
                    // With output mappings, job results are local to the element and only the
                    // mappings reach outer scopes.
                    if let Some(local) = run.state.active.get_mut(element) {
                        local.variables.insert(k.clone(), v.clone());
                    }
                } else {
                    run.propagate(ei.scope, k, v.clone());
                }
            }
            run.queue.push_back(Step::Complete { key: *element });
        }
        Command::ThrowError {
            element,
            code,
            message,
        } => {
            let ei = run
                .state
                .active
                .get(element)
                .cloned()
                .ok_or(RuntimeError::NoSuchJob(*element))?;
            if run
                .element(&ei.element_id)
                .and_then(|e| e.kind.job())
                .is_none()
            {
                return Err(RuntimeError::NoSuchJob(*element));
            }
            run.throw(*element, code, message.clone());
        }
        Command::Cancel => {
            let keys: Vec<Key> = run.state.active.keys().copied().collect();
            for k in keys {
                run.cancel(k);
            }
            run.state.status = InstanceStatus::Terminated;
            run.effects.push(Effect::InstanceTerminated);
        }
    }
    run.run();
    Ok((run.state, run.effects))
}
