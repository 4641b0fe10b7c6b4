//! Process instances in PostgreSQL: starting them and applying commands to them. One module per
//! table holds that table's statements and the commands on it (`job`, `timer`, `message`,
//! `incident`, `user_task`, `process_instance` for reads, `history`, `definition` for what
//! instances read of deployed processes); this module holds what they share: starting an instance
//! and `step`, which applies a command under the instance's row lock through the pure runtime
//! ([`crate::runtime::apply`]) and writes its effects, each through its table's module. Other
//! crates use the re-exports here (`cpq_workflow::instances::complete_job`), not the modules.
//!
//! Every change runs in the caller's transaction: [`start_instance`] next to the business writes
//! that cause it (no dual write between an order and its workflow), and each job outcome under the
//! instance's row lock, writing its effects (new jobs, cancelled jobs, incidents) in the same
//! transaction. New jobs `NOTIFY cpq_jobs` with their type, delivered on commit, so that idle
//! workers wake without polling hard.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::bpmn::Process;
use crate::routing::{resolve, RouteRequest};
use crate::runtime::{apply, Command, Effect, InstanceState, InstanceStatus};

mod activation;
mod definition;
mod history;
mod incident;
mod job;
mod message;
mod process_instance;
mod timer;
mod user_task;

pub use activation::{activate_or_wait, JobWait};
pub use incident::{incident_list, resolve_incident};
pub use job::{
    activate_jobs, complete_job, fail_job, job_tenant, throw_error, ActivatedJob, JobTenants,
    MAX_RETRY_BACKOFF,
};
pub use message::{publish_message, purge_expired_messages, Message, Publication, MAX_MESSAGE_TTL};
pub use process_instance::{
    active_instance_counts, instance_detail, instance_list, InstanceSummary,
};
pub use timer::{
    fire_due_start_timers, fire_due_timers, fire_start_timer, fire_timer, start_timers_due,
    timers_due,
};
pub use user_task::{
    assign_user_task, complete_user_task, user_task_fetch_for_update, user_task_list, UserTask,
};

use definition::{definition_model, start_routing};
use history::record_history;
use process_instance::status_text;

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
    let (state, effects) =
        apply(process, &InstanceState::new(), &command, at).map_err(runtime_error)?;
    let id = Uuid::now_v7();
    // The instance and its first history entry in one statement.
    timed(
        "process_instance_insert",
        sqlx::query(
            "WITH i AS (INSERT INTO process_instance (process_instance_id, tenant_id, process_definition_id, bpmn_process_id, version, status, \
             state, revision, created_at, updated_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9)) \
             INSERT INTO process_instance_history (tenant_id, process_instance_id, command, effects, at) VALUES ($2, $1, $10, $11, $8)",
        )
        .bind(id)
        .bind(tenant)
        .bind(definition_id)
        .bind(bpmn_process_id)
        .bind(version)
        .bind(status_text(state.status))
        .bind(serde_json::to_value(&state).map_err(Error::internal)?)
        .bind(at)
        .bind((state.status != InstanceStatus::Active).then_some(at))
        .bind(serde_json::to_value(&command).map_err(Error::internal)?)
        .bind(serde_json::to_value(&effects).map_err(Error::internal)?)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    for follow_up in write_effects(tx, tenant, id, &effects, None, at).await? {
        step(tx, id, follow_up, None, at).await?;
    }
    Ok(id)
}

/// The instance whose effects are written, and when: what every effect's statement binds.
#[derive(Debug, Clone, Copy)]
struct Scope<'a> {
    tenant: &'a str,
    instance: Uuid,
    at: DateTime<Utc>,
}

/// Writes what one command did, each effect through its table's module, and announces new jobs
/// once per type. Returns the commands that follow at once (a subscription met by a buffered
/// message); `job` is the job whose outcome this is, named by an incident it raises.
async fn write_effects(
    tx: &mut Tx,
    tenant: &str,
    instance: Uuid,
    effects: &[Effect],
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<Vec<Command>, Error> {
    let scope = Scope {
        tenant,
        instance,
        at,
    };
    let mut announced: BTreeSet<&str> = BTreeSet::new();
    let mut follow_ups = Vec::new();
    for e in effects {
        match e {
            Effect::CreateJob {
                element,
                element_id,
                job_type,
                retries,
                headers,
                variables,
            } => {
                job::job_insert(
                    tx, &scope, *element, element_id, job_type, *retries, headers, variables,
                )
                .await?;
                announced.insert(job_type);
            }
            Effect::CancelJob { element } => {
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
            Effect::CancelTimers { element } => {
                timer::timer_delete_for_element(tx, instance, *element).await?
            }
            Effect::OpenSubscription {
                element,
                catch_id,
                message_name,
                correlation_key,
            } => follow_ups.extend(
                message::subscription_open(
                    tx,
                    &scope,
                    *element,
                    catch_id,
                    message_name,
                    correlation_key,
                )
                .await?,
            ),
            Effect::CloseSubscriptions { element } => {
                message::subscription_delete_for_element(tx, instance, *element).await?
            }
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
            Effect::InstanceCompleted | Effect::InstanceTerminated => {}
        }
    }
    job::job_notify(tx, announced).await?;
    Ok(follow_ups)
}

/// Applies `command` to the instance under its row lock and writes the outcome.
async fn step(
    tx: &mut Tx,
    instance: Uuid,
    command: Command,
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    let row: Option<(String, Value, i64, Value)> = timed(
        "process_instance_fetch_for_update",
        sqlx::query_as(
            "SELECT pi.tenant_id, pi.state, pi.revision, pd.model FROM process_instance pi \
             JOIN process_definition pd USING (process_definition_id) WHERE pi.process_instance_id = $1 FOR UPDATE OF pi",
        )
        .bind(instance)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (tenant, state, revision, model) =
        row.ok_or_else(|| Error::not_found("process instance", instance))?;
    let mut state: InstanceState = serde_json::from_value(state)
        .map_err(|e| Error::internal(format!("stored instance state: {e}")))?;
    let process: Process = serde_json::from_value(model)
        .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
    let mut pending = std::collections::VecDeque::from([command]);
    let mut first = true;
    while let Some(command) = pending.pop_front() {
        if state.status != InstanceStatus::Active && !first {
            break;
        }
        let (next, effects) = apply(&process, &state, &command, at).map_err(runtime_error)?;
        state = next;
        record_history(tx, &tenant, instance, &command, &effects, at).await?;
        pending.extend(
            write_effects(
                tx,
                &tenant,
                instance,
                &effects,
                if first { job } else { None },
                at,
            )
            .await?,
        );
        first = false;
    }
    timed(
        "process_instance_update",
        sqlx::query("UPDATE process_instance SET state = $2, status = $3, revision = $4, updated_at = $5, ended_at = $6 WHERE process_instance_id = $1")
            .bind(instance)
            .bind(serde_json::to_value(&state).map_err(Error::internal)?)
            .bind(status_text(state.status))
            .bind(revision + 1)
            .bind(at)
            .bind((state.status != InstanceStatus::Active).then_some(at))
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(state.status)
}

/// Cancels an active instance: its jobs, timers and subscriptions end with it.
pub async fn cancel_instance(
    tx: &mut Tx,
    instance: Uuid,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    step(tx, instance, Command::Cancel, None, at).await
}
