//! The `job` table: jobs created by the runtime's effects and announced on [`JOB_CHANNEL`],
//! claimed by workers under a lease, and completed, failed or ended by a BPMN error under the
//! instance's row lock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::incident::insert_incident;
use super::{step, Scope, JOB_CHANNEL};
use crate::runtime::{Command, InstanceStatus};

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

/// An activated job under its row lock: what its outcome needs to know.
struct LockedJob {
    instance: Uuid,
    element_key: i64,
    job_type: String,
    tenant: String,
    element_id: String,
}

/// Locks an activated job in the tenant's transaction (a conflict unless it is activated).
async fn lock_activated(tx: &mut Tx, job: Uuid) -> Result<LockedJob, Error> {
    let row: Option<(Uuid, i64, String, String, String, String)> = timed(
        "job_fetch_for_update",
        sqlx::query_as(
            "SELECT process_instance_id, element_key, status, job_type, tenant_id, element_id FROM job \
             WHERE job_id = $1 FOR UPDATE",
        )
        .bind(job)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (instance, element_key, status, job_type, tenant, element_id) =
        row.ok_or_else(|| Error::not_found("job", job))?;
    if status != "activated" {
        return Err(Error::conflict(format!(
            "job {job} is {status}, not activated"
        )));
    }
    Ok(LockedJob {
        instance,
        element_key,
        job_type,
        tenant,
        element_id,
    })
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
    let locked = lock_activated(tx, job).await?;
    set_job_status(tx, job, "completed", None, at).await?;
    let status = step(
        tx,
        locked.instance,
        Command::CompleteJob {
            element: locked.element_key as u64,
            variables,
        },
        Some(job),
        at,
    )
    .await?;
    metrics::counter!("workflow_jobs_completed_total", "job_type" => locked.job_type).increment(1);
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
    let locked = lock_activated(tx, job).await?;
    metrics::counter!("workflow_jobs_failed_total", "job_type" => locked.job_type).increment(1);
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
    timed(
        "job_fail",
        sqlx::query(
            "UPDATE job SET status = 'failed', retries = 0, error_message = $2, lease_owner = NULL, lease_deadline = NULL, \
             updated_at = $3 WHERE job_id = $1",
        )
        .bind(job)
        .bind(message)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    insert_incident(
        tx,
        &locked.tenant,
        locked.instance,
        locked.element_key,
        &locked.element_id,
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
    let locked = lock_activated(tx, job).await?;
    set_job_status(tx, job, "error-thrown", Some(message), at).await?;
    step(
        tx,
        locked.instance,
        Command::ThrowError {
            element: locked.element_key as u64,
            code: code.to_owned(),
            message: message.to_owned(),
            variables,
        },
        Some(job),
        at,
    )
    .await
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

/// A job a [`crate::runtime::Effect::CreateJob`] asks for.
pub(super) struct NewJob<'a> {
    pub element: u64,
    pub element_id: &'a str,
    pub job_type: &'a str,
    pub retries: i32,
    pub headers: &'a [(String, String)],
    pub variables: &'a Map<String, Value>,
}

/// Inserts the jobs one command's effects ask for, activatable at once, in one statement, and
/// announces each job type on [`JOB_CHANNEL`] in the same statement (delivered on commit;
/// PostgreSQL delivers one notification for the same channel and payload per transaction).
pub(super) async fn job_insert_many(
    tx: &mut Tx,
    scope: &Scope<'_>,
    jobs: &[NewJob<'_>],
) -> Result<(), Error> {
    if jobs.is_empty() {
        return Ok(());
    }
    let rows: Vec<Value> = jobs
        .iter()
        .map(|j| {
            serde_json::json!({
                "job_id": Uuid::now_v7(),
                "element_key": j.element as i64,
                "element_id": j.element_id,
                "job_type": j.job_type,
                "retries": j.retries,
                "headers": Value::Object(headers_object(j.headers)),
                "variables": Value::Object(j.variables.clone()),
            })
        })
        .collect();
    timed(
        "job_insert",
        sqlx::query(
            "WITH j AS (INSERT INTO job (job_id, tenant_id, process_instance_id, element_key, element_id, job_type, status, \
             retries, retry_at, headers, variables, created_at, updated_at) \
             SELECT r.job_id, $1, $2, r.element_key, r.element_id, r.job_type, 'activatable', r.retries, $3, r.headers, r.variables, $3, $3 \
             FROM jsonb_to_recordset($4::jsonb) AS r (job_id uuid, element_key bigint, element_id text, job_type text, retries integer, \
             headers jsonb, variables jsonb) RETURNING job_type) \
             SELECT pg_notify($5, t.job_type) FROM (SELECT DISTINCT job_type FROM j) t",
        )
        .bind(scope.tenant)
        .bind(scope.instance)
        .bind(scope.at)
        .bind(Value::Array(rows))
        .bind(JOB_CHANNEL)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Cancels the unfinished job of an element that ended otherwise.
pub(super) async fn job_cancel_for_element(
    tx: &mut Tx,
    instance: Uuid,
    element: u64,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "job_cancel",
        sqlx::query(
            "UPDATE job SET status = 'cancelled', updated_at = $3 WHERE process_instance_id = $1 AND element_key = $2 \
             AND status IN ('activatable', 'activated', 'failed')",
        )
        .bind(instance)
        .bind(element as i64)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
