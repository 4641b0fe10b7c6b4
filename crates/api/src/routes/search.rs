//! `/v1/quote-search`: the quote search projection, built by `cpq-consumer` from the quote and
//! order topics (eventually consistent with the quotes themselves; rebuildable from the topics).
//!
//! Paged like every list: `limit` (1 to the configured maximum, else 400) and an opaque `cursor`
//! bound to the filters. Newest event first, ties broken by quote id: the key
//! `(updated_at, quote_id)` is a total order, and each filter has an index in that order.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cpq_core::{Error, FieldError, Role, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::read;
use crate::extract::{ApiQuery, Caller};
use crate::openapi::schemas::QuoteStatus;
use crate::pagination::{decode_cursor, page, page_size, query_fingerprint, Page};
use crate::problem::ApiError;
use crate::state::AppState;

const READERS: &[Role] = &[
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
];

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Only quotes in this status.
    #[param(value_type = Option<QuoteStatus>)]
    pub status: Option<String>,
    /// Only quotes of this customer account.
    pub customer: Option<Uuid>,
    /// Page size, 1 to 200 (default 50).
    #[serde(skip_serializing)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`; only valid with the same filters.
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

/// One quote as the event projection has it.
#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct QuoteSearchRow {
    pub quote_id: Uuid,
    pub customer_account_id: Option<Uuid>,
    #[schema(value_type = QuoteStatus)]
    pub status: String,
    pub revision_no: Option<i32>,
    pub snapshot_hash: Option<String>,
    pub order_id: Option<Uuid>,
    /// The type of the last event applied, e.g. `quote.priced`.
    pub last_event_type: String,
    pub events_applied: i32,
    pub updated_at: DateTime<Utc>,
}

/// One page of the projection.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QuoteSearchPage {
    items: Vec<QuoteSearchRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// The checked filters of one search.
#[derive(Debug, Default, Clone)]
pub struct SearchFilter {
    pub status: Option<String>,
    pub customer: Option<Uuid>,
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
) -> Result<Vec<QuoteSearchRow>, Error> {
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

fn checked_status(s: &str) -> Result<String, Error> {
    serde_json::from_value::<cpq_quote::lifecycle::Status>(Value::String(s.to_owned()))
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

/// Quotes as the event projection has them, newest event first.
#[utoipa::path(get, path = "/v1/quote-search", tag = "quotes", security(("bearer" = [])),
    params(SearchQuery),
    responses((status = 200, description = "A page of quotes as the event projection has them, newest event first", body = QuoteSearchPage)))]
pub async fn quote_search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    let filter = SearchFilter {
        status: q.status.as_deref().map(checked_status).transpose()?,
        customer: q.customer,
    };
    let fingerprint = query_fingerprint(&q);
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<(DateTime<Utc>, Uuid)>(c, &fingerprint))
        .transpose()?;
    let mut tx = read(&state, &caller).await?;
    let rows = quote_search_list(
        &mut tx,
        &caller.0.tenant,
        &filter,
        after,
        i64::from(limit) + 1,
    )
    .await?;
    let p: Page<QuoteSearchRow> = page(
        rows,
        limit,
        &fingerprint,
        |r| (r.updated_at, r.quote_id),
        |r| r,
    );
    Ok(axum::Json(p).into_response())
}
