//! `/v1/quote-search`: the quote search projection, built by `cpq-consumer` from the quote and
//! order topics (eventually consistent with the quotes themselves; rebuildable from the topics).
//!
//! Paged like every list: `limit` (1 to the configured maximum, else 400) and an opaque `cursor`
//! bound to the filters. Newest event first, ties broken by quote id: the key
//! `(updated_at, quote_id)` is a total order, and each filter has an index in that order.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cpq_application::search::SearchQuotes;
use cpq_application::Operation;
use cpq_quote::store::search::QuoteSearchEntry;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::query;
use crate::extract::{ApiQuery, Caller};
use crate::openapi::schemas::QuoteStatus;
use crate::pagination::{Page, PageRequest};
use crate::problem::ApiError;
use crate::state::AppState;

// The projection's filters and the plan of its query live with its SQL in the quote crate; kept
// reachable here for the plan-baseline test.
pub use cpq_quote::store::search::{quote_search_plan, SearchFilter};

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
#[derive(Debug, Serialize, ToSchema)]
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

impl From<QuoteSearchEntry> for QuoteSearchRow {
    fn from(e: QuoteSearchEntry) -> Self {
        QuoteSearchRow {
            quote_id: e.quote_id,
            customer_account_id: e.customer_account_id,
            status: e.status,
            revision_no: e.revision_no,
            snapshot_hash: e.snapshot_hash,
            order_id: e.order_id,
            last_event_type: e.last_event_type,
            events_applied: e.events_applied,
            updated_at: e.updated_at,
        }
    }
}

/// One page of the projection.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct QuoteSearchPage {
    items: Vec<QuoteSearchRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
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
    // A caller who may not read quotes is refused before the query is checked.
    caller.0.require_any(SearchQuotes::ROLES)?;
    let filter = SearchFilter::parse(q.status.as_deref(), q.customer)?;
    let paging = PageRequest::<(DateTime<Utc>, Uuid)>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &q,
    )?;
    let search = SearchQuotes {
        filter,
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, search).await?;
    let p: Page<QuoteSearchRow> =
        paging.page(rows, |r| (r.updated_at, r.quote_id), QuoteSearchRow::from);
    Ok(axum::Json(p).into_response())
}
