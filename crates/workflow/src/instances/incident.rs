//! The `incident` table: raised by the runtime or by a job out of retries, listed for
//! operations, resolved by giving the job retries again.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

#[allow(clippy::too_many_arguments)]
pub(super) async fn insert_incident(
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
