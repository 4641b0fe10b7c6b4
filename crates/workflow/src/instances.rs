//! Process instances and jobs in PostgreSQL.
//!
//! Every change runs in the caller's transaction: [`start_instance`] next to the business writes
//! that cause it (no dual write between an order and its workflow), and each job outcome under the
//! instance's row lock, through the pure runtime ([`crate::runtime::apply`]), writing its effects
//! (new jobs, cancelled jobs, incidents) in the same transaction. New jobs `NOTIFY cpq_jobs` with
//! their type, delivered on commit, so that idle workers wake without polling hard.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::bpmn::Process;
use crate::routing::{resolve, RouteRequest, VersionRule};
use crate::runtime::{apply, Command, Effect, InstanceState, InstanceStatus, Repeat};

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

/// The deployed versions of a process (with their definition ids, in the same order) and its
/// routing rules, in one statement: routing changes at any time, so it is read on every start.
async fn start_routing(
    tx: &mut Tx,
    bpmn_process_id: &str,
) -> Result<(Vec<i32>, Vec<Uuid>, Vec<VersionRule>), Error> {
    let (versions, ids, rules): (Vec<i32>, Vec<Uuid>, Value) = timed(
        "process_routing_fetch",
        sqlx::query_as(
            "SELECT coalesce(array_agg(d.version ORDER BY d.version), '{}'), \
             coalesce(array_agg(d.process_definition_id ORDER BY d.version), '{}'), \
             (SELECT coalesce(jsonb_agg(jsonb_build_object('tenant', r.target_tenant, 'product_line', r.product_line, \
             'release_flag', r.release_flag, 'version', r.version, 'priority', r.priority)), '[]') \
             FROM process_version_rule r WHERE r.bpmn_process_id = $1) \
             FROM process_definition d WHERE d.bpmn_process_id = $1",
        )
        .bind(bpmn_process_id)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let rules = serde_json::from_value(rules)
        .map_err(|e| Error::internal(format!("stored routing rules: {e}")))?;
    Ok((versions, ids, rules))
}

/// Parsed process models by definition id. A deployed definition never changes (a changed
/// process is a new version with a new id), so its model is read from PostgreSQL once per
/// process; ids are UUIDs, so databases never share an entry.
static MODELS: OnceLock<Mutex<HashMap<Uuid, Arc<Process>>>> = OnceLock::new();

/// The model of a deployed definition, from [`MODELS`] or else PostgreSQL.
async fn definition_model(tx: &mut Tx, definition_id: Uuid) -> Result<Arc<Process>, Error> {
    let models = MODELS.get_or_init(Mutex::default);
    if let Some(p) = models
        .lock()
        .ok()
        .and_then(|m| m.get(&definition_id).cloned())
    {
        return Ok(p);
    }
    let model: Value = timed(
        "process_definition_fetch_model",
        sqlx::query_scalar("SELECT model FROM process_definition WHERE process_definition_id = $1")
            .bind(definition_id)
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let process: Arc<Process> = Arc::new(
        serde_json::from_value(model)
            .map_err(|e| Error::internal(format!("stored process model: {e}")))?,
    );
    if let Ok(mut m) = models.lock() {
        m.insert(definition_id, process.clone());
    }
    Ok(process)
}

async fn record_history(
    tx: &mut Tx,
    tenant: &str,
    instance: Uuid,
    command: &Command,
    effects: &[Effect],
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "process_instance_history_insert",
        sqlx::query("INSERT INTO process_instance_history (tenant_id, process_instance_id, command, effects, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(tenant)
            .bind(instance)
            .bind(serde_json::to_value(command).map_err(Error::internal)?)
            .bind(serde_json::to_value(effects).map_err(Error::internal)?)
            .bind(at)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
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

fn status_text(s: InstanceStatus) -> &'static str {
    match s {
        InstanceStatus::Active => "active",
        InstanceStatus::Completed => "completed",
        InstanceStatus::Terminated => "terminated",
    }
}

async fn write_effects(
    tx: &mut Tx,
    tenant: &str,
    instance: Uuid,
    effects: &[Effect],
    job: Option<Uuid>,
    at: DateTime<Utc>,
) -> Result<Vec<Command>, Error> {
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
                timed(
                    "job_insert",
                    sqlx::query(
                        "INSERT INTO job (job_id, tenant_id, process_instance_id, element_key, element_id, job_type, status, retries, \
                         retry_at, headers, variables, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, 'activatable', $7, $8, $9, $10, $8, $8)",
                    )
                    .bind(Uuid::now_v7())
                    .bind(tenant)
                    .bind(instance)
                    .bind(*element as i64)
                    .bind(element_id)
                    .bind(job_type)
                    .bind(*retries)
                    .bind(at)
                    .bind(Value::Object(headers_object(headers)))
                    .bind(Value::Object(variables.clone()))
                    .execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
                announced.insert(job_type);
            }
            Effect::CancelJob { element } => {
                timed(
                    "job_cancel",
                    sqlx::query(
                        "UPDATE job SET status = 'cancelled', updated_at = $3 WHERE process_instance_id = $1 AND element_key = $2 \
                         AND status IN ('activatable', 'activated', 'failed')",
                    )
                    .bind(instance)
                    .bind(*element as i64)
                    .bind(at)
                    .execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
            }
            Effect::Incident {
                element,
                element_id,
                message,
            } => {
                insert_incident(
                    tx,
                    tenant,
                    instance,
                    *element as i64,
                    element_id,
                    job,
                    message,
                    at,
                )
                .await?;
            }
            Effect::ScheduleTimer {
                element,
                timer_id,
                due,
                repeat,
            } => {
                timed(
                    "timer_insert",
                    sqlx::query(
                        "INSERT INTO timer (timer_id, tenant_id, process_instance_id, element_key, event_id, due_at, repeat, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(Uuid::now_v7())
                    .bind(tenant)
                    .bind(instance)
                    .bind(*element as i64)
                    .bind(timer_id)
                    .bind(*due)
                    .bind(repeat.map(|r| serde_json::to_value(r).unwrap_or(Value::Null)))
                    .bind(at)
                    .execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
            }
            Effect::CancelTimers { element } => {
                timed(
                    "timer_delete_for_element",
                    sqlx::query(
                        "DELETE FROM timer WHERE process_instance_id = $1 AND element_key = $2",
                    )
                    .bind(instance)
                    .bind(*element as i64)
                    .execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
            }
            Effect::OpenSubscription {
                element,
                catch_id,
                message_name,
                correlation_key,
            } => {
                let buffered: Option<(Uuid, Value)> = timed(
                    "message_take_buffered",
                    sqlx::query_as(
                        "SELECT message_key, variables FROM message WHERE tenant_id = $1 AND message_name = $2 AND correlation_key = $3 \
                         AND correlated_at IS NULL AND expires_at > $4 ORDER BY published_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    )
                    .bind(tenant)
                    .bind(message_name)
                    .bind(correlation_key)
                    .bind(at)
                    .fetch_optional(&mut **tx),
                )
                .await
                .map_err(db_error)?;
                match buffered {
                    Some((key, variables)) => {
                        timed(
                            "message_mark_correlated",
                            sqlx::query(
                                "UPDATE message SET correlated_at = $2 WHERE message_key = $1",
                            )
                            .bind(key)
                            .bind(at)
                            .execute(&mut **tx),
                        )
                        .await
                        .map_err(db_error)?;
                        follow_ups.push(Command::CorrelateMessage {
                            element: *element,
                            catch_id: catch_id.clone(),
                            variables: variables.as_object().cloned().unwrap_or_default(),
                        });
                    }
                    None => {
                        timed(
                            "message_subscription_insert",
                            sqlx::query(
                                "INSERT INTO message_subscription (message_subscription_id, tenant_id, process_instance_id, element_key, catch_id, \
                                 message_name, correlation_key, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                            )
                            .bind(Uuid::now_v7())
                            .bind(tenant)
                            .bind(instance)
                            .bind(*element as i64)
                            .bind(catch_id)
                            .bind(message_name)
                            .bind(correlation_key)
                            .bind(at)
                            .execute(&mut **tx),
                        )
                        .await
                        .map_err(db_error)?;
                    }
                }
            }
            Effect::CloseSubscriptions { element } => {
                timed(
                    "message_subscription_delete_for_element",
                    sqlx::query("DELETE FROM message_subscription WHERE process_instance_id = $1 AND element_key = $2").bind(instance).bind(*element as i64).execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
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
                timed(
                    "user_task_insert",
                    sqlx::query(
                        "INSERT INTO user_task (user_task_id, tenant_id, process_instance_id, element_key, element_id, name, assignee, \
                         candidate_groups, due_date, status, variables, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'created', $10, $11)",
                    )
                    .bind(Uuid::now_v7())
                    .bind(tenant)
                    .bind(instance)
                    .bind(*element as i64)
                    .bind(element_id)
                    .bind(name)
                    .bind(assignee)
                    .bind(candidate_groups)
                    .bind(due_date)
                    .bind(Value::Object(variables.clone()))
                    .bind(at)
                    .execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
            }
            Effect::CancelUserTask { element } => {
                timed(
                    "user_task_cancel",
                    sqlx::query("UPDATE user_task SET status = 'cancelled' WHERE process_instance_id = $1 AND element_key = $2 AND status = 'created'")
                        .bind(instance)
                        .bind(*element as i64)
                        .execute(&mut **tx),
                )
                .await
                .map_err(db_error)?;
            }
            Effect::InstanceCompleted | Effect::InstanceTerminated => {}
        }
    }
    for job_type in announced {
        timed(
            "job_notify",
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(JOB_CHANNEL)
                .bind(job_type)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
    }
    Ok(follow_ups)
}

#[allow(clippy::too_many_arguments)]
async fn insert_incident(
    tx: &mut Tx,
    tenant: &str,
    instance: Uuid,
    element_key: i64,
    element_id: &str,
    job: Option<Uuid>,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "incident_insert",
        sqlx::query(
            "INSERT INTO incident (incident_id, tenant_id, process_instance_id, element_key, element_id, job_id, message, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8)",
        )
        .bind(Uuid::now_v7())
        .bind(tenant)
        .bind(instance)
        .bind(element_key)
        .bind(element_id)
        .bind(job)
        .bind(message)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    metrics::counter!("workflow_incidents_total").increment(1);
    Ok(())
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

/// What happened to a published message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Publication {
    /// It met an open subscription of this instance at once.
    Correlated { process_instance_id: Uuid },
    /// No subscription was open; it waits for one until it expires.
    Buffered { message_key: Uuid },
    /// No subscription was open, and the latest version of a process starts with this message:
    /// a new instance.
    StartedInstance { process_instance_id: Uuid },
    /// No subscription was open and its time to live is zero: dropped, as in Zeebe.
    Dropped,
}

/// The longest time to live a message may have: ten years. Its id is kept as long (see
/// [`publish_message`]), and its expiry must be a representable instant.
pub const MAX_MESSAGE_TTL: Duration = Duration::from_secs(10 * 365 * 86_400);

#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub tenant: &'a TenantId,
    pub name: &'a str,
    pub correlation_key: &'a str,
    /// At most [`MAX_MESSAGE_TTL`].
    pub time_to_live: Duration,
    /// Deduplicates, as in Zeebe: a message with the same name and id is refused (409) while an
    /// earlier one's time to live lasts, whether that one was buffered, correlated at once or
    /// started an instance.
    pub message_id: Option<&'a str>,
    pub variables: Map<String, Value>,
    pub at: DateTime<Utc>,
}

/// `at` plus `ttl`, refused (naming the API's field) when it is over [`MAX_MESSAGE_TTL`].
fn message_expiry(at: DateTime<Utc>, ttl: Duration) -> Result<DateTime<Utc>, Error> {
    let refused = || {
        Error::validation(vec![cpq_core::FieldError::new(
            "time_to_live_ms",
            "out-of-range",
            format!(
                "time_to_live_ms is 0 to {} (ten years)",
                MAX_MESSAGE_TTL.as_millis()
            ),
        )])
    };
    if ttl > MAX_MESSAGE_TTL {
        return Err(refused());
    }
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .ok_or_else(refused)
}

/// Records `m`'s id for its time to live; a conflict when a live record holds it.
async fn claim_message_id(
    tx: &mut Tx,
    m: &Message<'_>,
    id: &str,
    key: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), Error> {
    let claimed: Option<Uuid> = if m.time_to_live.is_zero() {
        // Kept for no time at all: nothing to record, but a live earlier one still refuses it.
        None
    } else {
        timed(
            "message_publication_claim",
            sqlx::query_scalar(
                "INSERT INTO message_publication (tenant_id, message_name, message_id, message_key, published_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (tenant_id, message_name, message_id) DO UPDATE \
                 SET message_key = EXCLUDED.message_key, published_at = EXCLUDED.published_at, expires_at = EXCLUDED.expires_at \
                 WHERE message_publication.expires_at <= EXCLUDED.published_at RETURNING message_key",
            )
            .bind(m.tenant.as_str())
            .bind(m.name)
            .bind(id)
            .bind(key)
            .bind(m.at)
            .bind(expires_at)
            .fetch_optional(&mut **tx),
        )
        .await
        .map_err(db_error)?
    };
    if claimed.is_some() {
        return Ok(());
    }
    let live: Option<DateTime<Utc>> = timed(
        "message_publication_live",
        sqlx::query_scalar(
            "SELECT expires_at FROM message_publication WHERE tenant_id = $1 AND message_name = $2 AND message_id = $3 \
             AND expires_at > $4",
        )
        .bind(m.tenant.as_str())
        .bind(m.name)
        .bind(id)
        .bind(m.at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    match live {
        Some(until) => Err(Error::conflict(format!(
            "a message \"{}\" with message_id \"{id}\" was already published; the id is taken until {} (that message's time to live)",
            m.name,
            until.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ))),
        None => Ok(()),
    }
}

/// Publishes a message in the caller's transaction: correlated to the oldest open subscription
/// with its name and correlation key, else it starts an instance of a process with that message
/// start event, else it is buffered for its time to live (dropped when that is zero).
pub async fn publish_message(tx: &mut Tx, m: &Message<'_>) -> Result<Publication, Error> {
    let expires_at = message_expiry(m.at, m.time_to_live)?;
    let key = Uuid::now_v7();
    if let Some(id) = m.message_id {
        claim_message_id(tx, m, id, key, expires_at).await?;
    }
    let subscription: Option<(Uuid, Uuid, i64, String)> = timed(
        "message_subscription_match",
        sqlx::query_as(
            "SELECT message_subscription_id, process_instance_id, element_key, catch_id FROM message_subscription \
             WHERE tenant_id = $1 AND message_name = $2 AND correlation_key = $3 ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .bind(m.tenant.as_str())
        .bind(m.name)
        .bind(m.correlation_key)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if let Some((subscription, instance, element_key, catch_id)) = subscription {
        timed(
            "message_subscription_delete",
            sqlx::query("DELETE FROM message_subscription WHERE message_subscription_id = $1")
                .bind(subscription)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        step(
            tx,
            instance,
            Command::CorrelateMessage {
                element: element_key as u64,
                catch_id,
                variables: m.variables.clone(),
            },
            None,
            m.at,
        )
        .await?;
        return Ok(Publication::Correlated {
            process_instance_id: instance,
        });
    }
    if let Some(started) = start_by_message(tx, m).await? {
        return Ok(Publication::StartedInstance {
            process_instance_id: started,
        });
    }
    if m.time_to_live.is_zero() {
        return Ok(Publication::Dropped);
    }
    timed(
        "message_insert",
        sqlx::query(
            "INSERT INTO message (message_key, tenant_id, message_name, correlation_key, message_id, variables, published_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key)
        .bind(m.tenant.as_str())
        .bind(m.name)
        .bind(m.correlation_key)
        .bind(m.message_id)
        .bind(Value::Object(m.variables.clone()))
        .bind(m.at)
        .bind(expires_at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(Publication::Buffered { message_key: key })
}

/// Deletes up to `limit` expired messages and up to `limit` expired message-id records, across
/// tenants (what the worker's timer scan runs). Returns how many rows went.
pub async fn purge_expired_messages(pool: &PgPool, limit: i32) -> Result<i32, Error> {
    timed(
        "message_purge_expired",
        sqlx::query_scalar("SELECT message_purge_expired($1)")
            .bind(limit)
            .fetch_one(pool),
    )
    .await
    .map_err(db_error)
}

/// Timers due now, across tenants: (timer, tenant). Fire each with [`fire_timer`].
pub async fn timers_due(pool: &PgPool, limit: i32) -> Result<Vec<(Uuid, String)>, Error> {
    timed(
        "timer_due_list",
        sqlx::query_as("SELECT timer_id, tenant_id FROM timer_due_list($1)")
            .bind(limit)
            .fetch_all(pool),
    )
    .await
    .map_err(db_error)
}

/// Fires one due timer in its tenant's transaction; `false` when another scanner has it or it is
/// gone (its element ended).
pub async fn fire_timer(tx: &mut Tx, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let row: Option<(Uuid, i64, String, Option<Value>)> = timed(
        "timer_fetch_for_update",
        sqlx::query_as("SELECT process_instance_id, element_key, event_id, repeat FROM timer WHERE timer_id = $1 AND due_at <= $2 FOR UPDATE SKIP LOCKED")
            .bind(timer)
            .bind(at)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let Some((instance, element_key, event_id, repeat)) = row else {
        return Ok(false);
    };
    timed(
        "timer_delete",
        sqlx::query("DELETE FROM timer WHERE timer_id = $1")
            .bind(timer)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let repeat: Option<Repeat> = repeat.and_then(|r| serde_json::from_value(r).ok());
    step(
        tx,
        instance,
        Command::TimerFired {
            element: element_key as u64,
            timer_id: event_id,
            repeat,
        },
        None,
        at,
    )
    .await?;
    metrics::counter!("workflow_timers_fired_total").increment(1);
    Ok(true)
}

#[derive(Debug, Clone, Copy)]
enum TimerKind {
    /// Timers of running instances (boundary, intermediate catch).
    Element,
    /// Timer start events of deployed definitions.
    Start,
}

/// Fires every due timer (up to `limit`), each in its tenant's transaction: what the worker's
/// timer scan runs. Returns how many fired; failures are logged and retried by the next scan.
pub async fn fire_due_timers(pool: &PgPool, limit: i32) -> usize {
    fire_due(pool, limit, TimerKind::Element).await
}

/// As [`fire_due_timers`], for timer start events.
pub async fn fire_due_start_timers(pool: &PgPool, limit: i32) -> usize {
    fire_due(pool, limit, TimerKind::Start).await
}

async fn fire_due(pool: &PgPool, limit: i32, kind: TimerKind) -> usize {
    let due = match kind {
        TimerKind::Element => timers_due(pool, limit).await,
        TimerKind::Start => start_timers_due(pool, limit).await,
    };
    let due = match due {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, ?kind, "timer scan failed");
            return 0;
        }
    };
    let mut fired = 0;
    for (timer, tenant_id) in due {
        let Ok(t) = TenantId::parse(&tenant_id) else {
            continue;
        };
        let result = async {
            let mut tx = cpq_db::tenant::begin(pool, &t).await.map_err(db_error)?;
            let done = match kind {
                TimerKind::Element => fire_timer(&mut tx, timer, Utc::now()).await?,
                TimerKind::Start => fire_start_timer(&mut tx, timer, Utc::now()).await?,
            };
            tx.commit().await.map_err(db_error)?;
            Ok::<bool, Error>(done)
        }
        .await;
        match result {
            Ok(true) => fired += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, %timer, ?kind, "firing a timer failed; the next scan retries it")
            }
        }
    }
    fired
}

/// A job a worker holds until its lease ends.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ActivatedJob {
    pub job_id: Uuid,
    pub tenant_id: String,
    pub process_instance_id: Uuid,
    pub element_id: String,
    pub retries: i32,
    pub attempt: i32,
    /// Custom headers: a JSON object of strings.
    pub headers: Value,
    pub variables: Value,
    pub lease_deadline: DateTime<Utc>,
}

impl ActivatedJob {
    /// The idempotency key for external calls this job makes: the same for every delivery of
    /// the job (a job can be delivered twice after a lease expires).
    pub fn idempotency_key(&self) -> String {
        format!("job-{}", self.job_id)
    }
}

/// Whose jobs a worker claims. There is no default: every caller says which tenants it serves,
/// having checked that it is authorised for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTenants {
    /// Every tenant: only for a platform credential or the platform's own `cpq-worker`.
    Every,
    /// These tenants only (none: nothing is claimed).
    Only(Vec<TenantId>),
}

/// A job's custom headers (`zeebe:taskHeaders`) as the JSON object Camunda's job carries. Older
/// rows hold them as a list of `[key, value]` pairs; a repeated key keeps its last value.
fn headers_object(pairs: &[(String, String)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

fn stored_headers(stored: Value) -> Value {
    match stored {
        Value::Array(pairs) => Value::Object(
            pairs
                .into_iter()
                .filter_map(|p| match p {
                    Value::Array(kv) if kv.len() == 2 => match (&kv[0], &kv[1]) {
                        (Value::String(k), v) => Some((k.clone(), v.clone())),
                        _ => None,
                    },
                    _ => None,
                })
                .collect(),
        ),
        Value::Object(o) => Value::Object(o),
        _ => Value::Object(Map::new()),
    }
}

/// Claims up to `max` jobs of `job_type` of `tenants` for `worker`, leasing them for `lease`.
pub async fn activate_jobs(
    pool: &PgPool,
    job_type: &str,
    worker: &str,
    max: i32,
    lease: Duration,
    tenants: &JobTenants,
) -> Result<Vec<ActivatedJob>, Error> {
    let lease_ms = i32::try_from(lease.as_millis()).unwrap_or(i32::MAX);
    let (every, only): (bool, Vec<&str>) = match tenants {
        JobTenants::Every => (true, Vec::new()),
        JobTenants::Only(list) => (false, list.iter().map(TenantId::as_str).collect()),
    };
    let mut jobs: Vec<ActivatedJob> = timed(
        "job_activate",
        sqlx::query_as("SELECT * FROM job_activate($1, $2, $3, $4, $5, $6)")
            .bind(job_type)
            .bind(worker)
            .bind(max)
            .bind(lease_ms)
            .bind(every)
            .bind(only)
            .fetch_all(pool),
    )
    .await
    .map_err(db_error)?;
    for j in &mut jobs {
        j.headers = stored_headers(std::mem::take(&mut j.headers));
    }
    metrics::counter!("workflow_jobs_activated_total", "job_type" => job_type.to_owned())
        .increment(jobs.len() as u64);
    Ok(jobs)
}

/// Locks an activated job in the tenant's transaction: (instance, element key).
async fn lock_activated(tx: &mut Tx, job: Uuid) -> Result<(Uuid, i64, String), Error> {
    let row: Option<(Uuid, i64, String, String)> = timed(
        "job_fetch_for_update",
        sqlx::query_as("SELECT process_instance_id, element_key, status, job_type FROM job WHERE job_id = $1 FOR UPDATE")
            .bind(job)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (instance, element_key, status, job_type) =
        row.ok_or_else(|| Error::not_found("job", job))?;
    if status != "activated" {
        return Err(Error::conflict(format!(
            "job {job} is {status}, not activated"
        )));
    }
    Ok((instance, element_key, job_type))
}

async fn set_job_status(
    tx: &mut Tx,
    job: Uuid,
    status: &str,
    message: Option<&str>,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "job_status_update",
        sqlx::query("UPDATE job SET status = $2, error_message = coalesce($3, error_message), lease_owner = NULL, lease_deadline = NULL, updated_at = $4 WHERE job_id = $1")
            .bind(job)
            .bind(status)
            .bind(message)
            .bind(at)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Completes an activated job with result variables; the instance moves on.
pub async fn complete_job(
    tx: &mut Tx,
    job: Uuid,
    variables: Map<String, Value>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    let (instance, element_key, job_type) = lock_activated(tx, job).await?;
    set_job_status(tx, job, "completed", None, at).await?;
    let status = step(
        tx,
        instance,
        Command::CompleteJob {
            element: element_key as u64,
            variables,
        },
        Some(job),
        at,
    )
    .await?;
    metrics::counter!("workflow_jobs_completed_total", "job_type" => job_type).increment(1);
    Ok(status)
}

/// The longest back-off before a failed job is retried: seven days.
pub const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(7 * 86_400);

/// Fails an activated job: with retries left it becomes activatable again after `backoff` (at
/// most [`MAX_RETRY_BACKOFF`]);
/// without, it raises an incident (resolved by giving it retries).
pub async fn fail_job(
    tx: &mut Tx,
    job: Uuid,
    retries: i32,
    backoff: Duration,
    message: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let (instance, element_key, job_type) = lock_activated(tx, job).await?;
    metrics::counter!("workflow_jobs_failed_total", "job_type" => job_type).increment(1);
    if retries > 0 {
        let retry_at = chrono::Duration::from_std(backoff)
            .ok()
            .filter(|_| backoff <= MAX_RETRY_BACKOFF)
            .and_then(|d| at.checked_add_signed(d))
            .ok_or_else(|| {
                Error::validation(vec![cpq_core::FieldError::new(
                    "retry_back_off_ms",
                    "out-of-range",
                    format!(
                        "retry_back_off_ms is 0 to {} (seven days)",
                        MAX_RETRY_BACKOFF.as_millis()
                    ),
                )])
            })?;
        timed(
            "job_retry_later",
            sqlx::query(
                "UPDATE job SET status = 'activatable', retries = $2, retry_at = $3, error_message = $4, lease_owner = NULL, \
                 lease_deadline = NULL, updated_at = $5 WHERE job_id = $1",
            )
            .bind(job)
            .bind(retries)
            .bind(retry_at)
            .bind(message)
            .bind(at)
            .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        return Ok(());
    }
    set_job_status(tx, job, "failed", Some(message), at).await?;
    timed(
        "job_retries_zero",
        sqlx::query("UPDATE job SET retries = 0 WHERE job_id = $1")
            .bind(job)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (tenant, element_id): (String, String) = timed(
        "job_fetch_incident_context",
        sqlx::query_as("SELECT tenant_id, element_id FROM job WHERE job_id = $1")
            .bind(job)
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    insert_incident(
        tx,
        &tenant,
        instance,
        element_key,
        &element_id,
        Some(job),
        &format!("no retries left: {message}"),
        at,
    )
    .await
}

/// Throws a BPMN error from an activated job: a matching error boundary catches it, else an
/// incident is raised. `variables` are the error's, applied at the catch event as Zeebe does
/// (see [`Command::ThrowError`]).
pub async fn throw_error(
    tx: &mut Tx,
    job: Uuid,
    code: &str,
    message: &str,
    variables: Map<String, Value>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    let (instance, element_key, _) = lock_activated(tx, job).await?;
    set_job_status(tx, job, "error-thrown", Some(message), at).await?;
    step(
        tx,
        instance,
        Command::ThrowError {
            element: element_key as u64,
            code: code.to_owned(),
            message: message.to_owned(),
            variables,
        },
        Some(job),
        at,
    )
    .await
}

/// Resolves a job's incident by giving the job `retries` again; it becomes activatable at once.
pub async fn resolve_incident(
    tx: &mut Tx,
    incident: Uuid,
    retries: i32,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    let row: Option<(Option<Uuid>, String)> = timed(
        "incident_fetch_for_update",
        sqlx::query_as("SELECT job_id, status FROM incident WHERE incident_id = $1 FOR UPDATE")
            .bind(incident)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (job, status) = row.ok_or_else(|| Error::not_found("incident", incident))?;
    if status != "open" {
        return Err(Error::conflict(format!("incident {incident} is {status}")));
    }
    let Some(job) = job else {
        return Err(Error::conflict("this incident is not about a job; it is resolved by fixing the process or its variables"));
    };
    if retries < 1 {
        return Err(Error::validation(vec![cpq_core::FieldError::new(
            "retries",
            "out-of-range",
            "retries must be at least 1",
        )]));
    }
    timed(
        "job_retries_update",
        sqlx::query("UPDATE job SET status = 'activatable', retries = $2, retry_at = $3, updated_at = $3 WHERE job_id = $1 AND status = 'failed'")
            .bind(job)
            .bind(retries)
            .bind(at)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    timed(
        "incident_resolve",
        sqlx::query(
            "UPDATE incident SET status = 'resolved', resolved_at = $2 WHERE incident_id = $1",
        )
        .bind(incident)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The tenant a job belongs to, whoever asks: callers check that they are authorised for it
/// before acting (everything after that runs in a transaction of the job's tenant).
pub async fn job_tenant(pool: &PgPool, job: Uuid) -> Result<TenantId, Error> {
    let tenant: Option<String> = timed(
        "job_tenant",
        sqlx::query_scalar("SELECT job_tenant($1)")
            .bind(job)
            .fetch_one(pool),
    )
    .await
    .map_err(db_error)?;
    let tenant = tenant.ok_or_else(|| Error::not_found("job", job))?;
    TenantId::parse(&tenant)
        .map_err(|_| Error::internal(format!("job {job} has tenant \"{tenant}\"")))
}

/// Cancels an active instance: its jobs, timers and subscriptions end with it.
pub async fn cancel_instance(
    tx: &mut Tx,
    instance: Uuid,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    step(tx, instance, Command::Cancel, None, at).await
}

/// An instance as operations see it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct InstanceSummary {
    pub process_instance_id: Uuid,
    pub bpmn_process_id: String,
    pub version: i32,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub ended_at: Option<DateTime<Utc>>,
}

pub async fn instance_list(
    tx: &mut Tx,
    tenant: &TenantId,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<InstanceSummary>, Error> {
    timed(
        "process_instance_list",
        sqlx::query_as(
            "SELECT process_instance_id, bpmn_process_id, version, status, created_at, updated_at, ended_at FROM process_instance \
             WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR process_instance_id > $3) \
             ORDER BY process_instance_id LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(status)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// One instance with its execution state, jobs and incidents.
pub async fn instance_detail(
    tx: &mut Tx,
    tenant: &TenantId,
    instance: Uuid,
) -> Result<Value, Error> {
    let row: Option<(String, String, i32, String, Value)> = timed(
        "process_instance_fetch",
        sqlx::query_as("SELECT tenant_id, bpmn_process_id, version, status, state FROM process_instance WHERE tenant_id = $1 AND process_instance_id = $2")
            .bind(tenant.as_str())
            .bind(instance)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (_, process, version, status, state) =
        row.ok_or_else(|| Error::not_found("process instance", instance))?;
    let jobs: Vec<Value> = timed(
        "job_list_for_instance",
        sqlx::query_scalar(
            "SELECT jsonb_build_object('job_id', job_id, 'element_id', element_id, 'job_type', job_type, 'status', status, \
             'retries', retries, 'attempt', attempt, 'error_message', error_message) FROM job WHERE process_instance_id = $1 ORDER BY job_id",
        )
        .bind(instance)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let incidents: Vec<Value> = timed(
        "incident_list_for_instance",
        sqlx::query_scalar(
            "SELECT jsonb_build_object('incident_id', incident_id, 'element_id', element_id, 'job_id', job_id, 'message', message, \
             'status', status, 'created_at', created_at) FROM incident WHERE process_instance_id = $1 ORDER BY incident_id",
        )
        .bind(instance)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let history: Vec<Value> = timed(
        "process_instance_history_list",
        sqlx::query_scalar(
            "SELECT jsonb_build_object('at', at, 'command', command, 'effects', effects) FROM process_instance_history \
             WHERE process_instance_id = $1 ORDER BY history_id DESC LIMIT 200",
        )
        .bind(instance)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(serde_json::json!({
        "history": history.into_iter().rev().collect::<Vec<_>>(),
        "process_instance_id": instance, "bpmn_process_id": process, "version": version, "status": status,
        "variables": state.get("variables"), "active_elements": state.get("active").map(|a| a.as_object().map(|o| o.values().cloned().collect::<Vec<_>>()).unwrap_or_default()),
        "jobs": jobs, "incidents": incidents,
    }))
}

pub async fn incident_list(
    tx: &mut Tx,
    tenant: &TenantId,
    open_only: bool,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Value>, Error> {
    timed(
        "incident_list",
        sqlx::query_scalar(
            "SELECT jsonb_build_object('incident_id', incident_id, 'process_instance_id', process_instance_id, 'element_id', element_id, \
             'job_id', job_id, 'message', message, 'status', status, 'created_at', created_at, 'resolved_at', resolved_at) \
             FROM incident WHERE tenant_id = $1 AND (NOT $2 OR status = 'open') AND ($3::uuid IS NULL OR incident_id > $3) \
             ORDER BY incident_id LIMIT $4",
        )
        .bind(tenant.as_str())
        .bind(open_only)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// A user task as its people see it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UserTask {
    pub user_task_id: Uuid,
    pub process_instance_id: Uuid,
    pub element_id: String,
    pub name: Option<String>,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub due_date: Option<String>,
    pub status: String,
    pub variables: Value,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<String>,
}

const USER_TASK_COLUMNS: &str = "user_task_id, process_instance_id, element_id, name, assignee, candidate_groups, due_date, status, \
    variables, created_at, completed_at, completed_by";

/// Open tasks assigned to `assignee`, or offered to any of `groups`.
pub async fn user_task_list(
    tx: &mut Tx,
    tenant: &TenantId,
    assignee: Option<&str>,
    groups: &[String],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserTask>, Error> {
    timed(
        "user_task_list",
        sqlx::query_as(&format!(
            "SELECT {USER_TASK_COLUMNS} FROM user_task WHERE tenant_id = $1 AND status = 'created' \
             AND (($2::text IS NOT NULL AND assignee = $2) OR (assignee IS NULL AND candidate_groups && $3)) \
             AND ($4::uuid IS NULL OR user_task_id > $4) ORDER BY user_task_id LIMIT $5"
        ))
        .bind(tenant.as_str())
        .bind(assignee)
        .bind(groups)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

pub async fn user_task_fetch_for_update(
    tx: &mut Tx,
    tenant: &TenantId,
    task: Uuid,
) -> Result<(UserTask, i64), Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        task: UserTask,
        element_key: i64,
    }
    let row: Option<Row> = timed(
        "user_task_fetch_for_update",
        sqlx::query_as(&format!("SELECT {USER_TASK_COLUMNS}, element_key FROM user_task WHERE tenant_id = $1 AND user_task_id = $2 FOR UPDATE"))
            .bind(tenant.as_str())
            .bind(task)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let row = row.ok_or_else(|| Error::not_found("user task", task))?;
    Ok((row.task, row.element_key))
}

/// Completes an open user task with the person's variables; the instance moves on.
pub async fn complete_user_task(
    tx: &mut Tx,
    tenant: &TenantId,
    task: Uuid,
    by: &str,
    variables: Map<String, Value>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    let (t, element_key) = user_task_fetch_for_update(tx, tenant, task).await?;
    if t.status != "created" {
        return Err(Error::conflict(format!("user task {task} is {}", t.status)));
    }
    timed(
        "user_task_complete",
        sqlx::query("UPDATE user_task SET status = 'completed', completed_at = $2, completed_by = $3 WHERE user_task_id = $1")
            .bind(task)
            .bind(at)
            .bind(by)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    step(
        tx,
        t.process_instance_id,
        Command::CompleteUserTask {
            element: element_key as u64,
            variables,
        },
        None,
        at,
    )
    .await
}

/// Assigns (or with `None` unassigns) an open user task.
pub async fn assign_user_task(
    tx: &mut Tx,
    tenant: &TenantId,
    task: Uuid,
    assignee: Option<&str>,
) -> Result<UserTask, Error> {
    let (t, _) = user_task_fetch_for_update(tx, tenant, task).await?;
    if t.status != "created" {
        return Err(Error::conflict(format!("user task {task} is {}", t.status)));
    }
    timed(
        "user_task_assign",
        sqlx::query("UPDATE user_task SET assignee = $2 WHERE user_task_id = $1")
            .bind(task)
            .bind(assignee)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(UserTask {
        assignee: assignee.map(str::to_owned),
        ..t
    })
}

/// Active instances by process and version (all tenants): for gauges.
pub async fn active_instance_counts(pool: &PgPool) -> Result<Vec<(String, i32, i64)>, Error> {
    timed(
        "workflow_active_instances",
        sqlx::query_as("SELECT bpmn_process_id, version, active FROM workflow_active_instances()")
            .fetch_all(pool),
    )
    .await
    .map_err(db_error)
}

/// Starts an instance of the latest version of the first process (by id) whose message start
/// event has the message's name; `None` when no process starts with it.
async fn start_by_message(tx: &mut Tx, m: &Message<'_>) -> Result<Option<Uuid>, Error> {
    let candidates: Vec<(Uuid, String, i32, Value)> = timed(
        "process_definition_latest_all",
        sqlx::query_as(
            "SELECT * FROM (SELECT DISTINCT ON (bpmn_process_id) process_definition_id, bpmn_process_id, version, model \
             FROM process_definition ORDER BY bpmn_process_id, version DESC) latest \
             WHERE model @> jsonb_build_object('elements', jsonb_build_array(jsonb_build_object('kind', \
                   jsonb_build_object('start_event', jsonb_build_object('trigger', jsonb_build_object('message', \
                   jsonb_build_object('name', $1::text))))))) \
             ORDER BY bpmn_process_id",
        )
        .bind(m.name)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    for (definition_id, bpmn_process_id, version, model) in candidates {
        let process: Process = serde_json::from_value(model)
            .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
        let start = process.elements.iter().find(|e| {
            e.parent.is_none() && matches!(&e.kind, crate::bpmn::ElementKind::StartEvent { trigger: crate::bpmn::Trigger::Message { name, .. } } if name == m.name)
        });
        let Some(start) = start else { continue };
        let command = Command::StartByMessage {
            start_event: start.id.clone(),
            variables: m.variables.clone(),
        };
        let id = create_instance(
            tx,
            m.tenant.as_str(),
            definition_id,
            &bpmn_process_id,
            version,
            &process,
            command,
            m.at,
        )
        .await?;
        return Ok(Some(id));
    }
    Ok(None)
}

/// Timer start events due now, across tenants: (start timer, tenant).
pub async fn start_timers_due(pool: &PgPool, limit: i32) -> Result<Vec<(Uuid, String)>, Error> {
    timed(
        "start_timer_due_list",
        sqlx::query_as("SELECT start_timer_id, tenant_id FROM start_timer_due_list($1)")
            .bind(limit)
            .fetch_all(pool),
    )
    .await
    .map_err(db_error)
}

/// Fires one due start timer in its tenant's transaction: a new instance of its process version,
/// and the next occurrence for a cycle. `false` when another scanner has it.
pub async fn fire_start_timer(tx: &mut Tx, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let row: Option<(String, Uuid, String, Option<Value>)> = timed(
        "start_timer_fetch_for_update",
        sqlx::query_as("SELECT tenant_id, process_definition_id, event_id, repeat FROM start_timer WHERE start_timer_id = $1 AND due_at <= $2 FOR UPDATE SKIP LOCKED")
            .bind(timer)
            .bind(at)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let Some((tenant, definition_id, event_id, repeat)) = row else {
        return Ok(false);
    };
    let (bpmn_process_id, version, model): (String, i32, Value) = timed(
        "process_definition_fetch_by_id",
        sqlx::query_as("SELECT bpmn_process_id, version, model FROM process_definition WHERE process_definition_id = $1").bind(definition_id).fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let process: Process = serde_json::from_value(model)
        .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
    create_instance(
        tx,
        &tenant,
        definition_id,
        &bpmn_process_id,
        version,
        &process,
        Command::StartByTimer {
            start_event: event_id,
        },
        at,
    )
    .await?;
    let repeat: Option<Repeat> = repeat.and_then(|r| serde_json::from_value(r).ok());
    // A cycle whose next occurrence is past the representable range ends here.
    let next_due =
        |r: &Repeat| at.checked_add_signed(chrono::Duration::try_milliseconds(r.interval_ms)?);
    match repeat
        .filter(|r| r.remaining != Some(0))
        .and_then(|r| Some((r, next_due(&r)?)))
    {
        Some((r, due)) => {
            let next = Repeat {
                remaining: r.remaining.map(|n| n - 1),
                interval_ms: r.interval_ms,
            };
            timed(
                "start_timer_reschedule",
                sqlx::query(
                    "UPDATE start_timer SET due_at = $2, repeat = $3 WHERE start_timer_id = $1",
                )
                .bind(timer)
                .bind(due)
                .bind(serde_json::to_value(next).map_err(Error::internal)?)
                .execute(&mut **tx),
            )
            .await
            .map_err(db_error)?;
        }
        None => {
            timed(
                "start_timer_delete",
                sqlx::query("DELETE FROM start_timer WHERE start_timer_id = $1")
                    .bind(timer)
                    .execute(&mut **tx),
            )
            .await
            .map_err(db_error)?;
        }
    }
    metrics::counter!("workflow_timers_fired_total").increment(1);
    Ok(true)
}
