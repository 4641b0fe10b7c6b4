//! The `process_instance` table: the instance's row written as it starts and after each command
//! under its row lock (the commands that decide what to write are in the parent module), and
//! what operations read: lists, one instance's detail, gauges.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::bpmn::Process;
use crate::runtime::{Command, Effect, InstanceState, InstanceStatus};

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

/// A new instance and what its first command did.
pub(super) struct NewInstance<'a> {
    pub id: Uuid,
    pub tenant: &'a str,
    pub definition_id: Uuid,
    pub bpmn_process_id: &'a str,
    pub version: i32,
    /// The call activity that started it: (caller instance, element key).
    pub parent: Option<(Uuid, i64)>,
    pub state: &'a InstanceState,
    pub command: &'a Command,
    pub effects: &'a [Effect],
    pub at: DateTime<Utc>,
}

/// Inserts the instance and its first history entry in one statement.
pub(super) async fn process_instance_insert(tx: &mut Tx, i: &NewInstance<'_>) -> Result<(), Error> {
    timed(
        "process_instance_insert",
        sqlx::query(
            "WITH i AS (INSERT INTO process_instance (process_instance_id, tenant_id, process_definition_id, bpmn_process_id, version, status, \
             state, revision, created_at, updated_at, ended_at, parent_process_instance_id, parent_element_key) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9, $12, $13)) \
             INSERT INTO process_instance_history (tenant_id, process_instance_id, command, effects, at) VALUES ($2, $1, $10, $11, $8)",
        )
        .bind(i.id)
        .bind(i.tenant)
        .bind(i.definition_id)
        .bind(i.bpmn_process_id)
        .bind(i.version)
        .bind(status_text(i.state.status))
        .bind(serde_json::to_value(i.state).map_err(Error::internal)?)
        .bind(i.at)
        .bind((i.state.status != InstanceStatus::Active).then_some(i.at))
        .bind(serde_json::to_value(i.command).map_err(Error::internal)?)
        .bind(serde_json::to_value(i.effects).map_err(Error::internal)?)
        .bind(i.parent.map(|p| p.0))
        .bind(i.parent.map(|p| p.1))
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// An instance locked to apply a command to it: (tenant, state, revision, model, the call
/// activity that started it).
/// Tenant, state, revision, process model, caller (instance, element key), process version key.
pub(super) type LockedInstance = (
    String,
    InstanceState,
    i64,
    Process,
    Option<(Uuid, i64)>,
    Uuid,
);

/// Locks an instance to apply a command to it.
pub(super) async fn process_instance_fetch_for_update(
    tx: &mut Tx,
    instance: Uuid,
) -> Result<LockedInstance, Error> {
    #[allow(clippy::type_complexity)]
    let row: Option<(String, Value, i64, Value, Option<Uuid>, Option<i64>, Uuid)> = timed(
        "process_instance_fetch_for_update",
        sqlx::query_as(
            "SELECT pi.tenant_id, pi.state, pi.revision, pd.model, pi.parent_process_instance_id, pi.parent_element_key, \
             pi.process_definition_id \
             FROM process_instance pi \
             JOIN process_definition pd USING (process_definition_id) WHERE pi.process_instance_id = $1 FOR UPDATE OF pi",
        )
        .bind(instance)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let (tenant, state, revision, model, parent, element, definition) =
        row.ok_or_else(|| Error::not_found("process instance", instance))?;
    let state: InstanceState = serde_json::from_value(state)
        .map_err(|e| Error::internal(format!("stored instance state: {e}")))?;
    let process: Process = serde_json::from_value(model)
        .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
    Ok((
        tenant,
        state,
        revision,
        process,
        parent.zip(element),
        definition,
    ))
}

/// The active child instance a call activity (`element` of `caller`) started, if any.
pub(super) async fn active_child(
    tx: &mut Tx,
    caller: Uuid,
    element: i64,
) -> Result<Option<Uuid>, Error> {
    timed(
        "process_instance_fetch_child",
        sqlx::query_scalar(
            "SELECT process_instance_id FROM process_instance WHERE parent_process_instance_id = $1 \
             AND parent_element_key = $2 AND status = 'active'",
        )
        .bind(caller)
        .bind(element)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// Writes an instance's state after a command, one revision on from `revision`.
/// Records the correlation key of the message that started `instance`.
pub(super) async fn set_message_correlation_key(
    tx: &mut Tx,
    instance: Uuid,
    correlation_key: &str,
) -> Result<(), Error> {
    timed(
        "process_instance_set_message_key",
        sqlx::query(
            "UPDATE process_instance SET message_correlation_key = $2 WHERE process_instance_id = $1",
        )
        .bind(instance)
        .bind(correlation_key)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Writes the instance's new state; for one that has just ended and was started by a message,
/// returns that message's correlation key.
pub(super) async fn process_instance_update(
    tx: &mut Tx,
    instance: Uuid,
    state: &InstanceState,
    revision: i64,
    at: DateTime<Utc>,
) -> Result<Option<String>, Error> {
    let key: Option<String> = timed(
        "process_instance_update",
        sqlx::query_scalar("UPDATE process_instance SET state = $2, status = $3, revision = $4, updated_at = $5, ended_at = $6 WHERE process_instance_id = $1 RETURNING message_correlation_key")
            .bind(instance)
            .bind(serde_json::to_value(state).map_err(Error::internal)?)
            .bind(status_text(state.status))
            .bind(revision + 1)
            .bind(at)
            .bind((state.status != InstanceStatus::Active).then_some(at))
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(key.filter(|_| state.status != InstanceStatus::Active))
}
