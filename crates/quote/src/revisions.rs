//! Revisions. Revising a submitted, approval-pending, approved or rejected quote freezes the
//! current revision (header, items, price snapshot, approval decision) into `quote_revision`,
//! which nothing updates, and opens the next revision in draft on the same quote, carrying the
//! items forward. Commands only ever read the quote row and its current revision's items. The
//! superseded revisions are read through [`crate::store`] (`quote_revision_list`,
//! `quote_revision_fetch`).

use cpq_audit::events::QuoteRevised;
use cpq_audit::CommandMeta;
use cpq_core::Error;
use cpq_db::Tx;
use serde_json::json;
use uuid::Uuid;

use crate::commands::{audit_event, end_approval};
use crate::model::lifecycle::Action;
use crate::model::{status_text, transition, Quote};
use crate::store;

/// Opens the next revision of a quote.
pub async fn revise(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    reason: Option<&str>,
) -> Result<Quote, Error> {
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    transition(&q, expected, Action::Revise)?;
    end_approval(tx, meta, &q).await?;
    let header = json!({
        "customer_account_id": q.customer_account_id, "catalog_version_id": q.catalog_version_id, "market": q.market,
        "channel": q.channel, "segment": q.segment, "currency": q.currency, "valid_until": q.valid_until, "owner": q.owner,
        "price_stale": q.price_stale, "version": q.version, "updated_at": q.updated_at, "updated_by": q.updated_by,
    });
    store::quote_revision_insert(
        tx,
        &meta.tenant,
        &q,
        &header,
        meta.occurred_at,
        &meta.actor_subject,
    )
    .await?;
    store::quote_item_carry_forward(tx, id, q.revision_no, meta.occurred_at).await?;
    let updated = store::quote_open_revision(tx, id, meta.occurred_at, &meta.actor_subject).await?;
    let event = QuoteRevised {
        quote_id: id,
        revision_no: updated.revision_no,
        previous_revision_no: q.revision_no,
        previous_status: status_text(q.status)?,
        reason: reason.map(str::to_owned),
    };
    audit_event(tx, meta, "quote.revise", &event).await?;
    Ok(updated)
}
