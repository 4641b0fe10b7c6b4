//! `/v1/orders`: the operational order search, and `/v1/stuck-fulfillment-tasks`: plan tasks in
//! flight for longer than they should be (issue 15, items 5 and 6). The filters and their SQL
//! live in `cpq_order::search`.
//!
//! Paged like every list: `limit` (1 to the configured maximum, else 400) and an opaque `cursor`
//! bound to the filters. Orders come newest first (key `(created_at, order_id)`), stuck tasks
//! the longest stuck first (key `(started_at, order_id, task_key)`). A parameter that is not
//! valid is named in the problem's `errors`: 400 when it cannot be read (an unknown status or
//! system, a malformed id, timestamp, boolean or duration), 422 when the values do not fit
//! together (`created_to` not after `created_from`, `older_than` outside PT1M..P30D or without
//! `stuck=true`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cpq_application::order_search::{ListStuckTasks, SearchOrders};
use cpq_application::Operation;
use cpq_order::search::{OrderFilter, OrderParams, OrderSummary, StuckFilter, StuckKey, StuckTask};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::query;
use crate::extract::{ApiQuery, Caller};
use crate::pagination::{Page, PageRequest};
use crate::problem::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderSearchQuery {
    /// Only orders in these statuses: one, or a comma-separated list, of `in-fulfillment`,
    /// `in-fallout`, `completed`, `cancelled`.
    #[param(example = "in-fulfillment,in-fallout")]
    pub status: Option<String>,
    /// Only orders of this customer account.
    #[param(value_type = Option<Uuid>)]
    pub customer_account_id: Option<String>,
    /// Only orders created at or after this instant (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_from: Option<String>,
    /// Only orders created before this instant (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub created_to: Option<String>,
    /// `true`: only orders in fallout (status `in-fallout`: a fallout case of the order is open);
    /// `false`: only orders that are not.
    #[param(value_type = Option<bool>)]
    pub in_fallout: Option<String>,
    /// `true`: only orders with a stuck task (running or waiting for a callback since before
    /// `older_than` ago).
    #[param(value_type = Option<bool>)]
    pub stuck: Option<String>,
    /// With `stuck=true`: how long a task may be in flight before it counts as stuck, as
    /// an ISO 8601 duration of days and time (`PT15M`, `PT2H`, `P1D`), from 1 minute to 30 days
    /// (default `PT15M`).
    #[param(example = "PT15M")]
    pub older_than: Option<String>,
    /// Only orders with a task on this system that is not finished yet (pending, ready, running,
    /// waiting-callback or failed): `inventory`, `provisioning`, `billing`, `crm`, `notification`.
    pub system: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(skip_serializing)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`; only valid with the same filters.
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

/// One order as the search lists it; its items and plan are at `/v1/orders/{id}` and
/// `/v1/orders/{id}/fulfillment-plan`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSearchRow {
    pub order_id: Uuid,
    pub quote_id: Uuid,
    pub customer_account_id: Uuid,
    /// `in-fulfillment`, `in-fallout`, `completed` or `cancelled`.
    pub status: String,
    pub currency: String,
    #[schema(value_type = Object)]
    pub totals: Value,
    pub fulfillment_instance_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<OrderSummary> for OrderSearchRow {
    fn from(o: OrderSummary) -> Self {
        OrderSearchRow {
            order_id: o.order_id,
            quote_id: o.quote_id,
            customer_account_id: o.customer_account_id,
            status: o.status,
            currency: o.currency,
            totals: o.totals,
            fulfillment_instance_id: o.fulfillment_instance_id,
            version: o.version,
            created_at: o.created_at,
            updated_at: o.updated_at,
            completed_at: o.completed_at,
        }
    }
}

/// One page of orders.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct OrderSearchPage {
    items: Vec<OrderSearchRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Orders for order operations, newest first.
#[utoipa::path(get, path = "/v1/orders", tag = "orders", security(("bearer" = [])),
    params(OrderSearchQuery),
    responses((status = 200, description = "A page of orders, newest first", body = OrderSearchPage),
        (status = 422, description = "`created_to` is not after `created_from`, or `older_than` is out of range or given without `stuck=true` (each in `errors`)")))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OrderSearchQuery>,
) -> Result<Response, ApiError> {
    // A caller who may not read orders is refused before the query is checked.
    caller.0.require_any(SearchOrders::ROLES)?;
    let params = OrderParams {
        status: q.status.as_deref(),
        customer_account_id: q.customer_account_id.as_deref(),
        created_from: q.created_from.as_deref(),
        created_to: q.created_to.as_deref(),
        in_fallout: q.in_fallout.as_deref(),
        stuck: q.stuck.as_deref(),
        older_than: q.older_than.as_deref(),
        system: q.system.as_deref(),
    };
    let filter = OrderFilter::parse(params, Utc::now())?;
    let paging = PageRequest::<(DateTime<Utc>, Uuid)>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &q,
    )?;
    let search = SearchOrders {
        filter,
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, search).await?;
    let p: Page<OrderSearchRow> =
        paging.page(rows, |r| (r.created_at, r.order_id), OrderSearchRow::from);
    Ok(axum::Json(p).into_response())
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StuckTaskQuery {
    /// How long a task may be running or waiting for a callback before it counts as stuck, as
    /// an ISO 8601 duration of days and time (`PT15M`, `PT2H`, `P1D`), from 1 minute to 30 days
    /// (default `PT15M`).
    #[param(example = "PT15M")]
    pub older_than: Option<String>,
    /// Only tasks on this system: `inventory`, `provisioning`, `billing`, `crm`, `notification`.
    pub system: Option<String>,
    /// Page size, 1 to 200 (default 50).
    #[serde(skip_serializing)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`; only valid with the same filters.
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

/// A plan task in flight for longer than `older_than`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StuckTaskRow {
    pub order_id: Uuid,
    pub task_key: String,
    pub job_type: String,
    pub system: Option<String>,
    /// `running` or `waiting-callback`.
    pub status: String,
    /// The task's first attempt.
    pub started_at: DateTime<Utc>,
    pub attempts: i32,
    /// The last attempt's error, if it had one.
    #[schema(value_type = Option<Object>)]
    pub last_error: Option<Value>,
}

impl From<StuckTask> for StuckTaskRow {
    fn from(t: StuckTask) -> Self {
        StuckTaskRow {
            order_id: t.order_id,
            task_key: t.task_key,
            job_type: t.job_type,
            system: t.system,
            status: t.status,
            started_at: t.started_at,
            attempts: t.attempts,
            last_error: t.last_error,
        }
    }
}

/// One page of stuck tasks.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct StuckTaskPage {
    items: Vec<StuckTaskRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Fulfillment tasks running or waiting for a callback for longer than `older_than`, the
/// longest stuck first.
#[utoipa::path(get, path = "/v1/stuck-fulfillment-tasks", tag = "orders", security(("bearer" = [])),
    params(StuckTaskQuery),
    responses((status = 200, description = "A page of stuck tasks, the longest stuck first", body = StuckTaskPage),
        (status = 422, description = "`older_than` is outside PT1M..P30D")))]
pub async fn stuck_tasks(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StuckTaskQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(ListStuckTasks::ROLES)?;
    let filter = StuckFilter::parse(q.older_than.as_deref(), q.system.as_deref(), Utc::now())?;
    let mut paging =
        PageRequest::<StuckKey>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListStuckTasks {
        filter,
        after: paging.after.take(),
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<StuckTaskRow> = paging.page(
        rows,
        |r| (r.started_at, r.order_id, r.task_key.clone()),
        StuckTaskRow::from,
    );
    Ok(axum::Json(p).into_response())
}
