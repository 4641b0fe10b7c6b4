//! The quote search projection (`quote_search`), which `cpq-consumer` builds from the quote and
//! order topics: eventually consistent with the quotes themselves, and rebuildable from the
//! topics. Newest event first, ties broken by quote id: the key `(updated_at, quote_id)` is a total
//! order, and each filter has an index in that order.

use chrono::{DateTime, Utc};
use cpq_core::{Error, FieldError, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

use crate::model::lifecycle::Status;

/// One quote as the projection has it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QuoteSearchEntry {
    pub quote_id: Uuid,
    pub customer_account_id: Option<Uuid>,
    pub status: String,
    pub revision_no: Option<i32>,
    pub snapshot_hash: Option<String>,
    pub order_id: Option<Uuid>,
    /// The type of the last event applied, e.g. `quote.priced`.
    pub last_event_type: String,
    pub events_applied: i32,
    pub updated_at: DateTime<Utc>,
}

/// The checked filters of one search.
#[derive(Debug, Default, Clone)]
pub struct SearchFilter {
    pub status: Option<String>,
    pub customer: Option<Uuid>,
}

impl SearchFilter {
    /// The filters of a request; `status` must be a quote status (a malformed request otherwise).
    pub fn parse(status: Option<&str>, customer: Option<Uuid>) -> Result<SearchFilter, Error> {
        Ok(SearchFilter {
            status: status.map(checked_status).transpose()?,
            customer,
        })
    }
}

fn checked_status(s: &str) -> Result<String, Error> {
    serde_json::from_value::<Status>(Value::String(s.to_owned()))
        .map(|_| s.to_owned())
        .map_err(|_| Error::Malformed {
            detail: format!("status \"{s}\" is not a quote status"),
            errors: vec![FieldError::new(
                "status",
                "unknown-value",
                "a quote status such as draft, priced or approval-pending",
            )],
        })
}

fn search_query<'q>(
    select: &str,
    tenant: &'q TenantId,
    f: &'q SearchFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> sqlx::QueryBuilder<'q, sqlx::Postgres> {
    let mut q = sqlx::QueryBuilder::new(format!(
        "{select} quote_id, customer_account_id, status, revision_no, snapshot_hash, order_id, \
         last_event_type, events_applied, updated_at FROM quote_search WHERE tenant_id = "
    ));
    q.push_bind(tenant.as_str());
    if let Some(s) = &f.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(c) = f.customer {
        q.push(" AND customer_account_id = ").push_bind(c);
    }
    if let Some((at, id)) = after {
        q.push(" AND (updated_at, quote_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY updated_at DESC, quote_id DESC LIMIT ")
        .push_bind(limit);
    q
}

/// Up to `limit` rows of the projection after the key `after`, newest event first.
pub async fn quote_search_list(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &SearchFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<QuoteSearchEntry>, Error> {
    let mut q = search_query("SELECT", tenant, f, after, limit);
    timed("quote_search_list", q.build_query_as().fetch_all(&mut **tx))
        .await
        .map_err(db_error)
}

/// The plan PostgreSQL picks for [`quote_search_list`], as text (for plan-baseline tests).
pub async fn quote_search_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &SearchFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<String, Error> {
    let mut q = search_query("EXPLAIN SELECT", tenant, f, after, limit);
    let lines: Vec<String> = timed(
        "quote_search_explain",
        q.build_query_scalar().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(lines.join("\n"))
}
