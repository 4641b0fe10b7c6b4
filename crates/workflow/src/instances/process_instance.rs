//! The `process_instance` table as operations read it: lists, one instance's detail, gauges.
//! The commands that change an instance are in [`super`].

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::runtime::InstanceStatus;

pub(super) fn status_text(s: InstanceStatus) -> &'static str {
    match s {
        InstanceStatus::Active => "active",
        InstanceStatus::Completed => "completed",
        InstanceStatus::Terminated => "terminated",
    }
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
