//! The `external_call_attempt` table: every call a worker makes to an external system for a job,
//! recorded (in a committed transaction of its own) before it is made, and finished with its
//! outcome in the transaction that reports the job's.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use uuid::Uuid;

use super::job::ActivatedJob;

/// Records that `job` is about to call `target`; returns the attempt's id.
pub async fn external_call_attempt_insert(
    tx: &mut Tx,
    tenant: &TenantId,
    job: &ActivatedJob,
    target: &str,
    at: DateTime<Utc>,
) -> Result<Uuid, Error> {
    let id = Uuid::now_v7();
    timed(
        "external_call_attempt_insert",
        sqlx::query(
            "INSERT INTO external_call_attempt (attempt_id, tenant_id, job_id, attempt, target, idempotency_key, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(job.job_id)
        .bind(job.attempt)
        .bind(target)
        .bind(job.idempotency_key())
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(id)
}

/// What came of an attempt.
#[derive(Debug, Clone, Copy)]
pub struct CallOutcome<'a> {
    /// `success`, `business-error`, `rejected` or `failed`.
    pub outcome: &'a str,
    /// The HTTP status, when an answer came.
    pub status_code: Option<u16>,
    pub detail: &'a str,
}

/// Finishes an attempt with its outcome.
pub async fn external_call_attempt_finish(
    tx: &mut Tx,
    attempt: Uuid,
    outcome: CallOutcome<'_>,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "external_call_attempt_finish",
        sqlx::query("UPDATE external_call_attempt SET finished_at = $2, outcome = $3, status_code = $4, detail = $5 WHERE attempt_id = $1")
            .bind(attempt)
            .bind(at)
            .bind(outcome.outcome)
            .bind(outcome.status_code.map(i32::from))
            .bind(outcome.detail)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
