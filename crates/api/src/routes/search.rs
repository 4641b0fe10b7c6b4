//! `/v1/quote-search`: the quote search projection, built by `cpq-consumer` from the quote and
//! order topics (eventually consistent with the quotes themselves; rebuildable from the topics).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cpq_core::Role;
use cpq_db::error::db_error;
use cpq_db::timed;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;
use uuid::Uuid;

use crate::command::read;
use crate::extract::{ApiQuery, Caller};
use crate::problem::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    pub status: Option<String>,
    pub customer: Option<Uuid>,
    /// At most 200 (default 50), newest event first.
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct QuoteSearchRow {
    pub quote_id: Uuid,
    pub customer_account_id: Option<Uuid>,
    pub status: String,
    pub revision_no: Option<i32>,
    pub snapshot_hash: Option<String>,
    pub order_id: Option<Uuid>,
    pub last_event_type: String,
    pub events_applied: i32,
    pub updated_at: DateTime<Utc>,
}

#[utoipa::path(get, path = "/v1/quote-search", tag = "quotes", security(("bearer" = [])),
    params(SearchQuery), responses((status = 200, description = "Quotes as the event projection has them, newest event first")))]
pub async fn quote_search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(&[
        Role::Sales,
        Role::Approver,
        Role::OrderOperations,
        Role::Operator,
    ])?;
    let limit = i64::from(q.limit.unwrap_or(50).clamp(1, 200));
    let mut tx = read(&state, &caller).await?;
    let rows: Vec<QuoteSearchRow> = timed(
        "quote_search_list",
        sqlx::query_as(
            "SELECT quote_id, customer_account_id, status, revision_no, snapshot_hash, order_id, last_event_type, events_applied, updated_at \
             FROM quote_search WHERE tenant_id = $1 AND ($2::text IS NULL OR status = $2) AND ($3::uuid IS NULL OR customer_account_id = $3) \
             ORDER BY updated_at DESC, quote_id DESC LIMIT $4",
        )
        .bind(caller.0.tenant.as_str())
        .bind(&q.status)
        .bind(q.customer)
        .bind(limit)
        .fetch_all(&mut *tx),
    )
    .await
    .map_err(db_error)?;
    Ok(axum::Json(serde_json::json!({ "items": rows })).into_response())
}
