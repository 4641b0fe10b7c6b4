//! The audit trail and the outbox: what every command records in the same transaction as its
//! business writes, through [`record`].
//!
//! An audit record says who did what to which aggregate, in which tenant, why, under which
//! correlation id, with SHA-256 digests of the aggregate before and after (digests, not copies:
//! the audit table stays small and the aggregate's own history holds the data). Outbox events are
//! the versioned facts that the relay later publishes to Kafka keyed by aggregate id. This crate
//! must not publish anything itself: nothing external happens inside a transaction. Each event
//! type is a type of [`events`], turned into a [`NewEvent`] by [`NewEvent::of`].

pub mod events;

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

use cpq_core::digest;

/// Who acts, for which tenant, and under which correlation: shared by the audit record and every
/// event of one command.
#[derive(Debug, Clone)]
pub struct CommandMeta {
    pub tenant: TenantId,
    pub actor_subject: String,
    /// Ties together everything one business flow causes (from `X-Correlation-Id`, else the
    /// request id).
    pub correlation_id: String,
    /// What directly caused this command (the request id for API commands).
    pub causation_id: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// One audited change to one aggregate.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    /// e.g. `customer-account.create`
    pub action: &'static str,
    pub aggregate_type: &'static str,
    pub aggregate_id: Uuid,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub reason: Option<String>,
}

/// One event for the outbox.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// e.g. `customer-account.created`
    pub event_type: &'static str,
    pub schema_version: i32,
    pub aggregate_type: &'static str,
    pub aggregate_id: Uuid,
    pub payload: Value,
}

/// Writes the audit record and the events in `tx`, in one statement (`audit_record_insert`: the
/// record, and the events through `unnest`, however many). Returns the event ids (UUIDv7, so they
/// sort by creation time, in the order given).
pub async fn record(
    tx: &mut Tx,
    meta: &CommandMeta,
    audit: &AuditEntry,
    events: &[NewEvent],
) -> Result<Vec<Uuid>, Error> {
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::now_v7()).collect();
    let aggregate_types: Vec<&str> = events.iter().map(|e| e.aggregate_type).collect();
    let aggregate_ids: Vec<Uuid> = events.iter().map(|e| e.aggregate_id).collect();
    let event_types: Vec<&str> = events.iter().map(|e| e.event_type).collect();
    let schema_versions: Vec<i32> = events.iter().map(|e| e.schema_version).collect();
    let payloads: Vec<&Value> = events.iter().map(|e| &e.payload).collect();
    timed(
        "audit_record_insert",
        cpq_db::sqlx::query(
            "WITH audit AS (INSERT INTO audit_record (audit_id, tenant_id, actor_subject, action, \
             aggregate_type, aggregate_id, before_digest, after_digest, reason, correlation_id, \
             causation_id, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)) \
             INSERT INTO outbox_event (event_id, tenant_id, aggregate_type, aggregate_id, \
             event_type, schema_version, occurred_at, correlation_id, causation_id, payload) \
             SELECT e.event_id, $2, e.aggregate_type, e.aggregate_id, e.event_type, \
             e.schema_version, $12, $10, $11, e.payload \
             FROM unnest($13::uuid[], $14::text[], $15::uuid[], $16::text[], $17::int4[], \
             $18::jsonb[]) WITH ORDINALITY \
             AS e(event_id, aggregate_type, aggregate_id, event_type, schema_version, payload, n) \
             ORDER BY e.n",
        )
        .bind(Uuid::now_v7())
        .bind(meta.tenant.as_str())
        .bind(&meta.actor_subject)
        .bind(audit.action)
        .bind(audit.aggregate_type)
        .bind(audit.aggregate_id)
        .bind(audit.before.as_ref().map(|v| digest(v).to_vec()))
        .bind(audit.after.as_ref().map(|v| digest(v).to_vec()))
        .bind(audit.reason.as_deref())
        .bind(&meta.correlation_id)
        .bind(meta.causation_id.as_deref())
        .bind(meta.occurred_at)
        .bind(&ids)
        .bind(&aggregate_types)
        .bind(&aggregate_ids)
        .bind(&event_types)
        .bind(&schema_versions)
        .bind(&payloads)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(ids)
}
