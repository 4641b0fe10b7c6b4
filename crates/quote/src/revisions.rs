//! Revisions. Revising a submitted, approval-pending, approved or rejected quote freezes the
//! current revision (header, items, price snapshot, approval decision) into `quote_revision`,
//! which nothing updates, and opens the next revision in draft on the same quote, carrying the
//! items forward. Commands only ever read the quote row and its current revision's items.

use chrono::{DateTime, Utc};
use cpq_audit::CommandMeta;
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::approvals::end_approval;
use crate::commands::{event, lock_for, quote_fetch, status_text, Quote};
use crate::lifecycle::Action;

/// Opens the next revision of a quote.
pub async fn revise(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    reason: Option<&str>,
) -> Result<Quote, Error> {
    let (q, _) = lock_for(tx, meta, id, expected, Action::Revise).await?;
    end_approval(tx, meta, &q).await?;
    let header = json!({
        "customer_account_id": q.customer_account_id, "catalog_version_id": q.catalog_version_id, "market": q.market,
        "channel": q.channel, "segment": q.segment, "currency": q.currency, "valid_until": q.valid_until, "owner": q.owner,
        "price_stale": q.price_stale, "version": q.version, "updated_at": q.updated_at, "updated_by": q.updated_by,
    });
    timed(
        "quote_revision_insert",
        sqlx::query(
            "INSERT INTO quote_revision (quote_id, revision_no, tenant_id, status, header, items, price_snapshot, snapshot_hash, approval_decision, \
             revised_at, revised_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(id)
        .bind(q.revision_no)
        .bind(meta.tenant.as_str())
        .bind(status_text(q.status)?)
        .bind(header)
        .bind(serde_json::to_value(&q.items).map_err(Error::internal)?)
        .bind(&q.price_snapshot)
        .bind(&q.snapshot_hash)
        .bind(&q.approval_decision)
        .bind(meta.occurred_at)
        .bind(&meta.actor_subject)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    timed(
        "quote_item_carry_forward",
        sqlx::query(
            "INSERT INTO quote_item (quote_id, revision_no, line_no, tenant_id, configuration, manual_discount_percent, created_at) \
             SELECT quote_id, revision_no + 1, line_no, tenant_id, configuration, manual_discount_percent, $3 FROM quote_item \
             WHERE quote_id = $1 AND revision_no = $2",
        )
        .bind(id)
        .bind(q.revision_no)
        .bind(meta.occurred_at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    timed(
        "quote_open_revision",
        sqlx::query(
            "UPDATE quote SET revision_no = revision_no + 1, status = 'draft', price_snapshot = NULL, snapshot_hash = NULL, price_stale = false, \
             approval_decision = NULL, approval_instance_id = NULL, version = version + 1, updated_at = $2, updated_by = $3 WHERE quote_id = $1",
        )
        .bind(id)
        .bind(meta.occurred_at)
        .bind(&meta.actor_subject)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.revise",
        "quote.revised",
        &updated,
        json!({ "quote_id": id, "revision_no": updated.revision_no, "previous_revision_no": q.revision_no, "previous_status": status_text(q.status)?, "reason": reason }),
    )
    .await?;
    Ok(updated)
}

/// A superseded revision, as it stood.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Revision {
    pub revision_no: i32,
    /// The status it had when it was superseded.
    pub status: String,
    pub header: Value,
    pub items: Value,
    pub price_snapshot: Option<Value>,
    pub snapshot_hash: Option<String>,
    pub approval_decision: Option<Value>,
    pub revised_at: DateTime<Utc>,
    pub revised_by: String,
}

/// Superseded revisions of a quote, newest first, without their snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RevisionSummary {
    pub revision_no: i32,
    pub status: String,
    pub snapshot_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub revised_by: String,
}

pub async fn revision_list(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Vec<RevisionSummary>, Error> {
    quote_exists(tx, tenant, id).await?;
    timed(
        "quote_revision_list",
        sqlx::query_as("SELECT revision_no, status, snapshot_hash, revised_at, revised_by FROM quote_revision WHERE tenant_id = $1 AND quote_id = $2 ORDER BY revision_no DESC")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

pub async fn revision_fetch(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
    revision_no: i32,
) -> Result<Revision, Error> {
    let row: Option<Revision> = timed(
        "quote_revision_fetch",
        sqlx::query_as(
            "SELECT revision_no, status, header, items, price_snapshot, snapshot_hash, approval_decision, revised_at, revised_by FROM quote_revision \
             WHERE tenant_id = $1 AND quote_id = $2 AND revision_no = $3",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(revision_no)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.ok_or_else(|| Error::not_found("quote revision", format!("{id}/{revision_no}")))
}

async fn quote_exists(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<(), Error> {
    let found: Option<i32> = timed(
        "quote_exists",
        sqlx::query_scalar("SELECT 1 FROM quote WHERE tenant_id = $1 AND quote_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::not_found("quote", id))
}
