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

// Canonical JSON lives in cpq-core (pure); re-exported for callers that still name it here.
pub use cpq_core::canonical::{canonical_json, digest};

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

/// Writes the audit record and the events in `tx`. Returns the event ids (UUIDv7, so they sort by
/// creation time).
pub async fn record(
    tx: &mut Tx,
    meta: &CommandMeta,
    audit: &AuditEntry,
    events: &[NewEvent],
) -> Result<Vec<Uuid>, Error> {
    timed(
        "audit_record_insert",
        cpq_db::sqlx::query(
            "INSERT INTO audit_record (audit_id, tenant_id, actor_subject, action, aggregate_type, \
             aggregate_id, before_digest, after_digest, reason, correlation_id, causation_id, \
             occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
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
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;

    let mut ids = Vec::with_capacity(events.len());
    for event in events {
        let id = Uuid::now_v7();
        timed(
            "outbox_event_insert",
            cpq_db::sqlx::query(
                "INSERT INTO outbox_event (event_id, tenant_id, aggregate_type, aggregate_id, \
                 event_type, schema_version, occurred_at, correlation_id, causation_id, payload) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(id)
            .bind(meta.tenant.as_str())
            .bind(event.aggregate_type)
            .bind(event.aggregate_id)
            .bind(event.event_type)
            .bind(event.schema_version)
            .bind(meta.occurred_at)
            .bind(&meta.correlation_id)
            .bind(meta.causation_id.as_deref())
            .bind(&event.payload)
            .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        ids.push(id);
    }
    Ok(ids)
}
