//! Process instances in PostgreSQL: starting them and applying commands to them. One module per
//! table holds that table's statements and the commands on it (`process_instance`, `history`,
//! `job`, `timer`, `message`, `incident`, `user_task`, `external_call_attempt`,
//! `external_callback`; `definition` for
//! what instances read of deployed processes; `activation` for claiming jobs with a wait). This
//! module holds what they share and writes no SQL itself: starting an instance, and `step`, which
//! applies a command under the instance's row lock through the pure runtime
//! ([`crate::runtime::apply`]) and writes each of its effects through its table's module. Other crates use the re-exports here
//! (`cpq_workflow::instances::complete_job`), not the modules.
//!
//! Every change runs in the caller's transaction: [`start_instance`] next to the business writes
//! that cause it (no dual write between an order and its workflow), and each job outcome under the
//! instance's row lock, writing its effects (new jobs, cancelled jobs, incidents) in the same
//! transaction. New jobs `NOTIFY cpq_jobs` with their type, delivered on commit, so that idle
//! workers wake without polling hard.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::Tx;
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::bpmn::{Element, ElementKind, Process, Trigger};
use crate::decisions::CalledDecisions;
use crate::routing::{resolve, RouteRequest};
use crate::runtime::{apply_with_decisions, Command, Effect, InstanceState, InstanceStatus};

mod activation;
mod definition;
mod external_call_attempt;
mod external_callback;
mod history;
mod incident;
mod job;
mod message;
mod process_instance;
mod signal;
mod timer;
mod user_task;

pub use activation::{activate_or_wait, JobWait};
pub use external_call_attempt::{
    external_call_attempt_finish, external_call_attempt_insert, CallOutcome,
};
pub use external_callback::{external_call_tenant, external_callback_insert, NewCallback};
pub use incident::{incident_list, resolve_incident};
pub use job::{
    activate_jobs, complete_job, fail_job, job_tenant, throw_error, ActivatedJob, JobTenants,
    MAX_RETRY_BACKOFF,
};
pub use message::{publish_message, purge_expired_messages, Message, Publication, MAX_MESSAGE_TTL};
pub use process_instance::{
    active_instance_counts, instance_detail, instance_list, InstanceSummary,
};
pub use signal::{broadcast_signal, Broadcast, MAX_CASCADE};
pub use timer::{
    fire_due_start_timers, fire_due_timers, fire_start_timer, fire_timer, start_timers_due,
    timers_due,
};
pub use user_task::{
    assign_user_task, complete_user_task, user_task_fetch_for_update, user_task_list,
    LockedUserTask, UserTask,
};

use definition::{definition_model, start_routing};
use history::record_history;
use process_instance::{
    process_instance_fetch_for_update, process_instance_insert, process_instance_update,
    NewInstance,
};
use signal::Signal;

/// The channel new jobs are announced on (payload: the job type).
pub const JOB_CHANNEL: &str = "cpq_jobs";

#[derive(Debug, Clone)]
pub struct StartRequest<'a> {
    pub tenant: &'a TenantId,
    pub bpmn_process_id: &'a str,
    pub product_line: Option<String>,
    pub release_flags: Vec<String>,
    pub variables: Map<String, Value>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Started {
    pub process_instance_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
}

fn runtime_error(e: crate::runtime::RuntimeError) -> Error {
    Error::conflict(e.to_string())
}

/// Starts an instance of the version the routing rules pick for this tenant, in `tx`: one
/// statement reads the routing (deployed versions and rules), the version's model comes from
/// [`definition_model`].
pub async fn start_instance(tx: &mut Tx, req: &StartRequest<'_>) -> Result<Started, Error> {
    let (versions, definition_ids, rules) = start_routing(tx, req.bpmn_process_id).await?;
    let route = RouteRequest {
        tenant: req.tenant.to_string(),
        product_line: req.product_line.clone(),
        release_flags: req.release_flags.clone(),
    };
    let version = resolve(&versions, &rules, &route)
        .ok_or_else(|| Error::not_found("process definition", req.bpmn_process_id))?;
    let definition_id = versions
        .iter()
        .zip(&definition_ids)
        .find_map(|(v, id)| (*v == version).then_some(*id))
        .ok_or_else(|| {
            Error::internal(format!("{} has no version {version}", req.bpmn_process_id))
        })?;
    let process = definition_model(tx, definition_id).await?;
    let command = Command::Start {
        variables: req.variables.clone(),
    };
    let id = create_instance(
        tx,
        req.tenant.as_str(),
        definition_id,
        req.bpmn_process_id,
        version,
        &process,
        command,
        req.at,
    )
    .await?;
    Ok(Started {
        process_instance_id: id,
        bpmn_process_id: req.bpmn_process_id.to_owned(),
        version,
    })
}

/// Inserts a new instance of `process` started by `command` and writes what it did.
#[allow(clippy::too_many_arguments)]
async fn create_instance(
    tx: &mut Tx,
    tenant: &str,
    definition_id: Uuid,
    bpmn_process_id: &str,
    version: i32,
    process: &Process,
    command: Command,
    at: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let definition = Definition {
        id: definition_id,
        bpmn_process_id,
        version,
        process,
    };
    let (id, notify) = create_instance_in(tx, tenant, &definition, command, None, at).await?;
    if !notify.signals.is_empty() {
        Box::pin(signal::broadcast(tx, notify.signals, at)).await?;
    }
    Ok(id)
}

/// A deployed version as an instance starts from it.
struct Definition<'a> {
    id: Uuid,
    bpmn_process_id: &'a str,
    version: i32,
    process: &'a Process,
}

/// A child instance's completion, for the call activity that started it: (caller, command).
type Continuation = Option<(Uuid, Command)>;

/// What a step leaves to its caller once its writes are done: the command continuing the
/// caller of a child instance that completed, and the signals it threw.
#[derive(Debug, Default)]
struct Notify {
    caller: Continuation,
    signals: Vec<Signal>,
}

/// The signals thrown by one command's effects.
fn signals_of(tenant: &str, effects: &[Effect]) -> Vec<Signal> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::BroadcastSignal {
                signal_name,
                variables,
            } => Some(Signal {
                tenant: tenant.to_owned(),
                name: signal_name.clone(),
                variables: variables.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// The command that continues the caller of an instance that has just completed.
fn completion(parent: Option<(Uuid, i64)>, state: &InstanceState) -> Continuation {
    let (caller, element) = parent?;
    (state.status == InstanceStatus::Completed).then(|| {
        (
            caller,
            Command::CompleteChild {
                element: element as u64,
                variables: state.variables.clone(),
            },
        )
    })
}

/// [`create_instance`], as the child of a call activity when `parent` is set: returns the new
/// instance and, when it completed at once, the command that continues its caller.
async fn create_instance_in(
    tx: &mut Tx,
    tenant: &str,
    definition: &Definition<'_>,
    command: Command,
    parent: Option<(Uuid, i64)>,
    at: DateTime<Utc>,
) -> Result<(Uuid, Notify), Error> {
    let process = definition.process;
    let mut decisions = CalledDecisions::of(tx, process, definition.id).await?;
    let (state, effects) = loop {
        let run = apply_with_decisions(process, &InstanceState::new(), &command, at, &decisions)
            .map_err(runtime_error)?;
        if !decisions.load_missed(tx).await? {
            break run;
        }
    };
    let id = Uuid::now_v7();
    process_instance_insert(
        tx,
        &NewInstance {
            id,
            tenant,
            definition_id: definition.id,
            bpmn_process_id: definition.bpmn_process_id,
            version: definition.version,
            parent,
            state: &state,
            command: &command,
            effects: &effects,
            at,
        },
    )
    .await?;
    let mut notify = Notify {
        caller: completion(parent, &state),
        signals: signals_of(tenant, &effects),
    };
    let closing = Closing::of(process, &InstanceState::new(), &state, &command, &effects);
    let (follow_ups, signals) = write_effects(tx, tenant, id, &effects, &closing, None, at).await?;
    notify.signals.extend(signals);
    for follow_up in follow_ups {
        let (_, n) = Box::pin(step_once(tx, None, id, follow_up, None, at)).await?;
        notify.caller = notify.caller.or(n.caller);
        notify.signals.extend(n.signals);
    }
    Ok((id, notify))
}

/// Starts the child instance of a call activity: the version its binding picks (`latest`, or
/// `deployment`: the one deployed from the same file as the caller's). `Ok(Err(message))` when
/// there is none, for an incident on the call activity.
#[allow(clippy::too_many_arguments)]
async fn start_child(
    tx: &mut Tx,
    scope: &Scope<'_>,
    element: u64,
    process_id: &str,
    (binding, version_tag): (&str, Option<&str>),
    variables: &Map<String, Value>,
) -> Result<Result<Notify, String>, Error> {
    let Some((definition_id, version)) =
        definition::called_definition(tx, scope.instance, process_id, binding, version_tag).await?
    else {
        return Ok(Err(match binding {
            "deployment" => format!(
                "no process '{process_id}' was deployed with the calling process (binding type deployment)"
            ),
            "versionTag" => format!(
                "no process '{process_id}' with version tag '{}' is deployed",
                version_tag.unwrap_or_default()
            ),
            _ => format!("no process with BPMN id '{process_id}' is deployed"),
        }));
    };
    let process = definition_model(tx, definition_id).await?;
    let definition = Definition {
        id: definition_id,
        bpmn_process_id: process_id,
        version,
        process: &process,
    };
    let command = Command::Start {
        variables: variables.clone(),
    };
    let parent = Some((scope.instance, element as i64));
    let (_, notify) = Box::pin(create_instance_in(
        tx,
        scope.tenant,
        &definition,
        command,
        parent,
        scope.at,
    ))
    .await?;
    Ok(Ok(notify))
}

/// The instance whose effects are written, and when: what every effect's statement binds.
#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    tenant: &'a str,
    instance: Uuid,
    at: DateTime<Utc>,
}

/// The element instances whose timers and message subscriptions one command's effects close
/// ([`Effect::CancelTimers`], [`Effect::CloseSubscriptions`]), keeping only those that can have
/// any left: each kind is then deleted in one statement, or none when no element has any.
///
/// The runtime closes both for every element with a boundary event (an error boundary too), so
/// each key is looked up: an element can have timers when it is a timer catch event or has a
/// timer boundary event, and subscriptions when it is a message catch event or receive task or
/// has a message boundary event; but not when the command is the correlation of its only message
/// wait, whose subscription the correlation has taken. A key not found in the instance's state
/// before or after the command is kept (closed as before).
#[derive(Debug, Default)]
struct Closing {
    timers: Vec<i64>,
    subscriptions: Vec<i64>,
    signal_subscriptions: Vec<i64>,
}

impl Closing {
    fn of(
        process: &Process,
        before: &InstanceState,
        after: &InstanceState,
        command: &Command,
        effects: &[Effect],
    ) -> Closing {
        let element_of = |key: u64| {
            before
                .active
                .get(&key)
                .or_else(|| after.active.get(&key))
                .and_then(|ei| process.element(&ei.element_id))
        };
        // The correlation of `key`'s message has taken one of its subscriptions.
        let taken = |key: u64| match command {
            Command::CorrelateMessage { element, .. } if *element == key => 1,
            _ => 0,
        };
        let signal_taken = |key: u64| match command {
            Command::TriggerSignal { element, .. } if *element == key => 1,
            _ => 0,
        };
        let mut closing = Closing::default();
        for e in effects {
            match e {
                Effect::CancelTimers { element }
                    if element_of(*element).is_none_or(|el| timer_waits(process, el) > 0) =>
                {
                    closing.timers.push(*element as i64)
                }
                Effect::CloseSubscriptions { element } => {
                    let el = element_of(*element);
                    if el.is_none_or(|el| message_waits(process, el) > taken(*element)) {
                        closing.subscriptions.push(*element as i64)
                    }
                    if el.is_none_or(|el| signal_waits(process, el) > signal_taken(*element)) {
                        closing.signal_subscriptions.push(*element as i64)
                    }
                }
                _ => {}
            }
        }
        closing
    }
}

/// The boundary events attached to `element`.
fn boundaries<'p>(process: &'p Process, element: &Element) -> impl Iterator<Item = &'p Trigger> {
    let id = element.id.clone();
    process.elements.iter().filter_map(move |b| match &b.kind {
        ElementKind::BoundaryEvent {
            attached_to,
            trigger,
            ..
        } if *attached_to == id => Some(trigger),
        _ => None,
    })
}

/// The catch events an event-based gateway waits on (the targets of its flows).
fn gateway_events<'p>(process: &'p Process, element: &Element) -> Vec<&'p Trigger> {
    if !matches!(element.kind, ElementKind::EventBasedGateway) {
        return Vec::new();
    }
    process
        .flows
        .iter()
        .filter(|f| f.source == element.id)
        .filter_map(|f| match &process.element(&f.target)?.kind {
            ElementKind::IntermediateCatchEvent { trigger } => Some(trigger),
            _ => None,
        })
        .collect()
}

/// The start events of the event subprocesses directly inside `element` (waiting while it runs).
fn event_subprocess_starts<'p>(
    process: &'p Process,
    element: &Element,
) -> impl Iterator<Item = &'p Trigger> {
    let id = element.id.clone();
    let subs: Vec<String> = process
        .elements
        .iter()
        .filter(|e| {
            e.parent.as_deref() == Some(id.as_str())
                && matches!(e.kind, ElementKind::EventSubProcess { .. })
        })
        .map(|e| e.id.clone())
        .collect();
    process.elements.iter().filter_map(move |e| match &e.kind {
        ElementKind::StartEvent { trigger }
            if e.parent.as_ref().is_some_and(|p| subs.contains(p)) =>
        {
            Some(trigger)
        }
        _ => None,
    })
}

/// How many timers an instance of `element` can wait on at once.
fn timer_waits(process: &Process, element: &Element) -> usize {
    let gateway = gateway_events(process, element)
        .into_iter()
        .filter(|t| matches!(t, Trigger::Timer(_)))
        .count();
    let own = matches!(
        element.kind,
        ElementKind::IntermediateCatchEvent {
            trigger: Trigger::Timer(_)
        }
    );
    usize::from(own)
        + gateway
        + boundaries(process, element)
            .chain(event_subprocess_starts(process, element))
            .filter(|t| matches!(t, Trigger::Timer(_)))
            .count()
}

/// How many message subscriptions an instance of `element` can hold at once.
fn message_waits(process: &Process, element: &Element) -> usize {
    let gateway = gateway_events(process, element)
        .into_iter()
        .filter(|t| matches!(t, Trigger::Message { .. }))
        .count();
    let own = matches!(
        element.kind,
        ElementKind::IntermediateCatchEvent {
            trigger: Trigger::Message { .. }
        } | ElementKind::ReceiveTask { .. }
    );
    usize::from(own)
        + gateway
        + boundaries(process, element)
            .chain(event_subprocess_starts(process, element))
            .filter(|t| matches!(t, Trigger::Message { .. }))
            .count()
}

/// How many signal subscriptions an instance of `element` can hold at once.
fn signal_waits(process: &Process, element: &Element) -> usize {
    let signal = |t: &Trigger| matches!(t, Trigger::Signal { .. });
    let own = matches!(
        &element.kind,
        ElementKind::IntermediateCatchEvent { trigger } if signal(trigger)
    );
    usize::from(own)
        + gateway_events(process, element)
            .into_iter()
            .filter(|t| signal(t))
            .count()
        + boundaries(process, element)
            .chain(event_subprocess_starts(process, element))
            .filter(|t| signal(t))
            .count()
}

/// Writes what one command did, each effect through its table's module; the timers and
/// subscriptions it closes go last, each kind in one statement ([`Closing`]). A new job is
/// announced by its insert. Returns the commands that follow at once (a subscription met by a
/// buffered message); `job` is the job whose outcome this is, named by an incident it raises.
async fn write_effects(
    tx: &mut Tx,
    tenant: &str,
    instance: Uuid,
    effects: &[Effect],
    closing: &Closing,
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<(Vec<Command>, Vec<Signal>), Error> {
    let scope = Scope {
        tenant,
        instance,
        at,
    };
    let mut follow_ups = Vec::new();
    // Thrown by child instances started here (their own are in `effects`' broadcasts).
    let mut signals = Vec::new();
    // New jobs go in one statement, written before any job is cancelled (and at the end);
    // new subscriptions in at most four, at the end, before those closed.
    let mut jobs = Vec::new();
    let mut subscriptions = Vec::new();
    for e in effects {
        match e {
            Effect::CreateJob {
                element,
                element_id,
                job_type,
                retries,
                headers,
                variables,
            } => jobs.push(job::NewJob {
                element: *element,
                element_id,
                job_type,
                retries: *retries,
                headers,
                variables,
            }),
            Effect::CancelJob { element } => {
                job::job_insert_many(tx, &scope, &std::mem::take(&mut jobs)).await?;
                job::job_cancel_for_element(tx, instance, *element, at).await?
            }
            Effect::Incident {
                element,
                element_id,
                message,
            } => {
                incident::insert_incident(
                    tx,
                    tenant,
                    instance,
                    *element as i64,
                    element_id,
                    job,
                    message,
                    at,
                )
                .await?
            }
            Effect::ScheduleTimer {
                element,
                timer_id,
                due,
                repeat,
            } => timer::timer_insert(tx, &scope, *element, timer_id, *due, *repeat).await?,
            // Closed together after the loop (see [`Closing`]).
            Effect::CancelTimers { .. } | Effect::CloseSubscriptions { .. } => {}
            Effect::CloseWaits { element, catch_ids } => {
                timer::close_waits(tx, instance, *element, catch_ids).await?
            }
            Effect::OpenSubscription {
                element,
                catch_id,
                message_name,
                correlation_key,
            } => subscriptions.push(message::NewSubscription {
                element: *element,
                catch_id,
                message_name,
                correlation_key,
            }),
            Effect::CreateUserTask {
                element,
                element_id,
                name,
                assignee,
                candidate_groups,
                due_date,
                variables,
            } => {
                user_task::user_task_insert(
                    tx,
                    &scope,
                    *element,
                    element_id,
                    name,
                    assignee,
                    candidate_groups,
                    due_date,
                    variables,
                )
                .await?
            }
            Effect::CancelUserTask { element } => {
                user_task::user_task_cancel(tx, instance, *element).await?
            }
            Effect::StartChildInstance {
                element,
                process_id,
                binding,
                version_tag,
                variables,
                ..
            } => match start_child(
                tx,
                &scope,
                *element,
                process_id,
                (binding, version_tag.as_deref()),
                variables,
            )
            .await?
            {
                // The child completed at once: its caller continues in this same command.
                Ok(notify) => {
                    follow_ups.extend(notify.caller.map(|(_, command)| command));
                    signals.extend(notify.signals);
                }
                Err(message) => follow_ups.push(Command::ChildNotStarted {
                    element: *element,
                    message,
                }),
            },
            Effect::CancelChildInstance { element } => {
                if let Some(child) =
                    process_instance::active_child(tx, instance, *element as i64).await?
                {
                    Box::pin(step_once(tx, None, child, Command::Cancel, None, at)).await?;
                }
            }
            Effect::OpenSignalSubscription {
                element,
                catch_id,
                signal_name,
            } => signal::subscription_insert(tx, &scope, *element, catch_id, signal_name).await?,
            Effect::BroadcastSignal { .. }
            | Effect::InstanceCompleted
            | Effect::InstanceTerminated => {}
        }
    }
    job::job_insert_many(tx, &scope, &jobs).await?;
    follow_ups.extend(message::subscription_open_many(tx, &scope, &subscriptions).await?);
    if !closing.timers.is_empty() {
        timer::timer_delete_for_elements(tx, instance, &closing.timers).await?;
    }
    if !closing.subscriptions.is_empty() {
        message::subscription_delete_for_elements(tx, instance, &closing.subscriptions).await?;
    }
    if !closing.signal_subscriptions.is_empty() {
        signal::subscription_delete_for_elements(tx, instance, &closing.signal_subscriptions)
            .await?;
    }
    Ok((follow_ups, signals))
}

/// Applies `command` to the instance under its row lock and writes the outcome.
async fn step(
    tx: &mut Tx,
    instance: Uuid,
    command: Command,
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    step_in(tx, None, instance, command, job, at).await
}

/// [`step`], refusing an instance of another tenant than `expected` as not found (row-level
/// security already hides it; the locked read answers for both). When the instance completes as
/// the child of a call activity, its caller continues, and so on up the chain.
async fn step_in(
    tx: &mut Tx,
    expected: Option<&TenantId>,
    instance: Uuid,
    command: Command,
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    let (status, signals) = step_collect(tx, expected, instance, command, job, at).await?;
    if !signals.is_empty() {
        signal::broadcast(tx, signals, at).await?;
    }
    Ok(status)
}

/// [`step_in`], leaving the signals thrown on the way to the caller.
async fn step_collect(
    tx: &mut Tx,
    expected: Option<&TenantId>,
    instance: Uuid,
    command: Command,
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<(InstanceStatus, Vec<Signal>), Error> {
    let (status, first) = step_once(tx, expected, instance, command, job, at).await?;
    let mut signals = first.signals;
    let mut next = first.caller;
    while let Some((caller, command)) = next.take() {
        let n = Box::pin(step_once(tx, None, caller, command, None, at))
            .await?
            .1;
        signals.extend(n.signals);
        next = n.caller;
    }
    Ok((status, signals))
}

/// One command on one instance under its row lock, with the commands that follow at once; the
/// caller of a child instance that completed is left to the returned [`Notify`].
async fn step_once(
    tx: &mut Tx,
    expected: Option<&TenantId>,
    instance: Uuid,
    command: Command,
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<(InstanceStatus, Notify), Error> {
    let (tenant, mut state, revision, process, parent, definition) =
        process_instance_fetch_for_update(tx, instance).await?;
    if expected.is_some_and(|t| t.as_str() != tenant) {
        return Err(Error::not_found("process instance", instance));
    }
    if let (Some(_), Command::Cancel, Some((caller, _))) = (expected, &command, parent) {
        return Err(Error::conflict(format!(
            "instance {instance} was started by a call activity of instance {caller}: cancel that \
             one, and its children are cancelled with it"
        )));
    }
    let mut decisions = CalledDecisions::of(tx, &process, definition).await?;
    let mut pending = std::collections::VecDeque::from([command]);
    let mut first = true;
    let mut signals = Vec::new();
    while let Some(command) = pending.pop_front() {
        if state.status != InstanceStatus::Active && !first {
            break;
        }
        let (next, effects) = loop {
            let run = apply_with_decisions(&process, &state, &command, at, &decisions)
                .map_err(runtime_error)?;
            if !decisions.load_missed(tx).await? {
                break run;
            }
        };
        let closing = Closing::of(&process, &state, &next, &command, &effects);
        state = next;
        record_history(tx, &tenant, instance, &command, &effects, at).await?;
        signals.extend(signals_of(&tenant, &effects));
        let (follow_ups, thrown) = write_effects(
            tx,
            &tenant,
            instance,
            &effects,
            &closing,
            if first { job } else { None },
            at,
        )
        .await?;
        pending.extend(follow_ups);
        signals.extend(thrown);
        first = false;
    }
    let ended_message_start = process_instance_update(tx, instance, &state, revision, at).await?;
    if let Some(key) = ended_message_start {
        if state.status != InstanceStatus::Active {
            message::start_next_by_message(tx, &tenant, &process, &key, at).await?;
        }
    }
    Ok((
        state.status,
        Notify {
            caller: completion(parent, &state),
            signals,
        },
    ))
}

/// Cancels an active instance of `tenant`: its jobs, timers and subscriptions end with it. Not
/// found (404) when `tenant` has no such instance, a conflict when it is not active; one locked
/// read answers both.
pub async fn cancel_instance(
    tx: &mut Tx,
    tenant: &TenantId,
    instance: Uuid,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    step_in(tx, Some(tenant), instance, Command::Cancel, None, at).await
}
