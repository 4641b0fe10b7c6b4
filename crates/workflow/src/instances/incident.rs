//! The `incident` table: raised by the runtime or by a job out of retries, listed for
//! operations, resolved by giving the job retries again or trying the element again.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

use super::step;
use crate::runtime::Command;

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

/// Resolves an incident. A failed job's: the job gets `retries` again and becomes activatable at
/// once. Any other (a script, decision, mapping, called process or timer that failed, or a job
/// that completed but whose output mapping failed): the element is tried again
/// ([`Command::RetryElement`]), as Zeebe's resolve-incident does; if it fails again, a new
/// incident is raised.
pub async fn resolve_incident(
    tx: &mut Tx,
    incident: Uuid,
    retries: i32,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    #[allow(clippy::type_complexity)]
    let row: Option<(Option<Uuid>, String, Uuid, i64, Option<String>)> = timed(
        "incident_fetch_for_update",
        sqlx::query_as(
            "SELECT i.job_id, i.status, i.process_instance_id, i.element_key, j.status FROM incident i \
             LEFT JOIN job j ON j.job_id = i.job_id WHERE i.incident_id = $1 FOR UPDATE OF i",
        )
        .bind(incident)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (job, status, instance, element, job_status) =
        row.ok_or_else(|| Error::not_found("incident", incident))?;
    if status != "open" {
        return Err(Error::conflict(format!("incident {incident} is {status}")));
    }
    let failed_job = job.filter(|_| job_status.as_deref() == Some("failed"));
    if failed_job.is_some() && retries < 1 {
        return Err(Error::validation(vec![cpq_core::FieldError::new(
            "retries",
            "out-of-range",
            "retries must be at least 1",
        )]));
    }
    if let Some(job) = failed_job {
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
    }
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
    if failed_job.is_none() {
        let command = Command::RetryElement {
            element: element as u64,
        };
        step(tx, instance, command, None, at).await?;
    }
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
