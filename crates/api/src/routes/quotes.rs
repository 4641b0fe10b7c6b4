//! `/v1/quotes`: create, read, add and remove lines, price, submit, accept, revise, cancel and
//! convert into an order (`/v1/orders/{id}`, its plan at `/v1/orders/{id}/fulfillment-plan`). Every change needs `If-Match`; lines are validated
//! against the quote's catalog version. Approval tasks and the policy are in
//! [`crate::routes::approvals`]. The operations are `cpq_application`'s
//! ([`cpq_application::quotes`], [`cpq_application::orders`]).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use cpq_application::orders::{ConvertQuote, FetchFulfillmentPlan, FetchOrder};
use cpq_application::quotes::{self as op, LineInput, QuoteWithApprovals};
use cpq_application::Operation;
use cpq_configuration::ConfigItem;
use cpq_core::{Error, FieldError};
use cpq_order::Order;
use cpq_quote::model::lifecycle::Status;
use cpq_quote::model::Quote;
use cpq_quote::store::{QuoteSummary, Worklist};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, IfMatch, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

/// The quote with its version as the entity tag.
fn answer(q: Quote) -> Result<CommandResponse, Error> {
    let version = q.version;
    let body: Value = serde_json::to_value(&q).map_err(Error::internal)?;
    Ok(CommandResponse::ok(body).with_etag(version))
}

/// The order with its version as the entity tag.
fn order_answer(o: Order) -> Result<CommandResponse, Error> {
    let version = o.version;
    let body = serde_json::to_value(o).map_err(Error::internal)?;
    Ok(CommandResponse::ok(body).with_etag(version))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQuote {
    pub customer_account_id: Uuid,
    /// Sales channel (default `direct`).
    pub channel: Option<String>,
    /// Default: 30 days from today.
    pub valid_until: Option<NaiveDate>,
    /// Non-standard terms (payment, liability, ...), for the approvers; the policy's
    /// `non_standard_terms` rules apply when present.
    pub special_terms: Option<String>,
}

#[utoipa::path(post, path = "/v1/quotes", tag = "quotes", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header)), request_body = CreateQuote,
    responses((status = 201, description = "A draft quote, pinned to the catalog version in force"), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<CreateQuote>,
) -> Result<Response, ApiError> {
    let input = |b: CreateQuote| op::CreateQuote {
        customer_account_id: b.customer_account_id,
        channel: b.channel,
        valid_until: b.valid_until,
        special_terms: b.special_terms,
    };
    command(&state, &caller, &ctx, body, input, |q| {
        let id = q.id;
        Ok(answer(q)?.as_created(format!("/v1/quotes/{id}")))
    })
    .await
}

#[utoipa::path(get, path = "/v1/quotes/{id}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The quote, its current lines and price"), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let QuoteWithApprovals { quote, approvals } =
        query(&state, &caller, op::FetchQuote(id)).await?;
    let mut response = answer(quote)?;
    response.body["approvals"] = serde_json::to_value(approvals).map_err(Error::internal)?;
    Ok(response.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    #[schema(value_type = Object)]
    pub configuration: ConfigItem,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    #[schema(value_type = Option<String>)]
    pub manual_discount_percent: Option<Decimal>,
}

impl From<AddItem> for LineInput {
    fn from(b: AddItem) -> LineInput {
        LineInput {
            configuration: b.configuration,
            manual_discount_percent: b.manual_discount_percent,
        }
    }
}

#[utoipa::path(post, path = "/v1/quotes/{id}/items", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = AddItem,
    responses((status = 200, description = "Line added; a priced quote's price is stale"), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, description = "every violation of the configuration", body = Problem)))]
pub async fn add_item(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<AddItem>,
) -> Result<Response, ApiError> {
    let input = |b: AddItem| op::AddLine {
        id,
        expected_version,
        line: b.into(),
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[utoipa::path(put, path = "/v1/quotes/{id}/items/{line_no}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("line_no" = i32, Path), ("If-Match" = String, Header)), request_body = AddItem,
    responses((status = 200, description = "Line changed; a priced quote's price is stale"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, description = "every violation of the configuration", body = Problem)))]
pub async fn change_item(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, line_no)): ApiPath<(Uuid, i32)>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<AddItem>,
) -> Result<Response, ApiError> {
    let input = |b: AddItem| op::ChangeLine {
        id,
        expected_version,
        line_no,
        line: b.into(),
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTerms {
    /// The non-standard terms; `null` or empty clears them.
    pub special_terms: Option<String>,
}

#[utoipa::path(put, path = "/v1/quotes/{id}/terms", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = SetTerms,
    responses((status = 200, description = "Terms set; like an edit, the quote needs a new price"), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn set_terms(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<SetTerms>,
) -> Result<Response, ApiError> {
    let input = |b: SetTerms| op::SetTerms {
        id,
        expected_version,
        special_terms: b.special_terms,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[utoipa::path(delete, path = "/v1/quotes/{id}/items/{line_no}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("line_no" = i32, Path), ("If-Match" = String, Header)),
    responses((status = 200, description = "Line removed"), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_item(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, line_no)): ApiPath<(Uuid, i32)>,
    IfMatch(expected_version): IfMatch,
) -> Result<Response, ApiError> {
    // A DELETE has no body and takes no idempotency key: its If-Match makes a retry fail
    // rather than act twice.
    let body = JsonBody {
        value: (),
        idempotency_key: None,
        fingerprint: [0; 32],
        method: "DELETE".into(),
        path: String::new(),
    };
    let input = |()| op::RemoveLine {
        id,
        expected_version,
        line_no,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceQuote {}

#[utoipa::path(post, path = "/v1/quotes/{id}/price", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = PriceQuote,
    responses((status = 200, description = "Priced: snapshot and hash stored"), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, body = Problem)))]
pub async fn price(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<PriceQuote>,
) -> Result<Response, ApiError> {
    let input = |_: PriceQuote| op::PriceQuote {
        id,
        expected_version,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorklistQuery {
    /// e.g. `draft`, `priced`, `approval-pending`, `approved`, `accepted`.
    pub status: Option<String>,
    pub owner: Option<String>,
    /// A customer account id.
    pub customer: Option<Uuid>,
    pub updated_before: Option<DateTime<Utc>>,
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

/// The quote worklist, newest change first; every filter is index-backed.
#[utoipa::path(get, path = "/v1/quotes", tag = "quotes", security(("bearer" = [])),
    params(WorklistQuery), responses((status = 200, description = "A page of quotes"), (status = 400, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WorklistQuery>,
) -> Result<Response, ApiError> {
    // A caller who may not read quotes is refused before the query is checked, as always.
    caller.0.require_any(op::ListQuotes::ROLES)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<Status>(Value::String(s.to_owned())).map_err(|_| {
                Error::Malformed {
                    detail: format!("status \"{s}\" is not a quote status"),
                    errors: vec![FieldError::new(
                        "status",
                        "unknown-value",
                        "a quote status such as draft, priced or approval-pending",
                    )],
                }
            })?,
        ),
    };
    let paging = PageRequest::<(DateTime<Utc>, Uuid)>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &q,
    )?;
    let list = op::ListQuotes {
        filter: Worklist {
            status,
            owner: q.owner.clone(),
            customer_account_id: q.customer,
            updated_before: q.updated_before,
        },
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<QuoteSummary> = paging.page(rows, |r| (r.updated_at, r.quote_id), |r| r);
    Ok(axum::Json(p).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelQuote {
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/quotes/{id}/cancel", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = CancelQuote,
    responses((status = 200, description = "Cancelled"), (status = 409, description = "not open; names the allowed actions", body = Problem), (status = 412, body = Problem)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<CancelQuote>,
) -> Result<Response, ApiError> {
    let input = |b: CancelQuote| op::CancelQuote {
        id,
        expected_version,
        reason: b.reason,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyCommand {}

#[utoipa::path(post, path = "/v1/quotes/{id}/submit", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = EmptyCommand,
    responses((status = 200, description = "Submitted (approval-free) or approval-pending with the policy's decision; approval-pending starts the approval process"),
        (status = 409, description = "no current price, or not allowed in its status", body = Problem), (status = 412, body = Problem)))]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<EmptyCommand>,
) -> Result<Response, ApiError> {
    let input = |_: EmptyCommand| op::SubmitQuote {
        id,
        expected_version,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[utoipa::path(post, path = "/v1/quotes/{id}/accept", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = EmptyCommand,
    responses((status = 200, description = "Accepted; records who and when"), (status = 409, description = "only approved or approval-free quotes", body = Problem), (status = 412, body = Problem)))]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<EmptyCommand>,
) -> Result<Response, ApiError> {
    let input = |_: EmptyCommand| op::AcceptQuote {
        id,
        expected_version,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviseQuote {
    /// Why a new revision is needed (kept in the audit trail and the event).
    pub reason: Option<String>,
}

#[utoipa::path(post, path = "/v1/quotes/{id}/revise", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = ReviseQuote,
    responses((status = 200, description = "The next revision, in draft, with the items carried forward; the previous one is frozen"),
        (status = 409, description = "only submitted, approval-pending, approved or rejected quotes are revised", body = Problem), (status = 412, body = Problem)))]
pub async fn revise(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<ReviseQuote>,
) -> Result<Response, ApiError> {
    let input = |b: ReviseQuote| op::ReviseQuote {
        id,
        expected_version,
        reason: b.reason,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[utoipa::path(get, path = "/v1/quotes/{id}/revisions", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "Superseded revisions, newest first"), (status = 404, body = Problem)))]
pub async fn revision_list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let items = query(&state, &caller, op::ListRevisions(id)).await?;
    Ok(axum::Json(serde_json::json!({ "items": items })).into_response())
}

#[utoipa::path(get, path = "/v1/quotes/{id}/revisions/{revision_no}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("revision_no" = i32, Path)),
    responses((status = 200, description = "A superseded revision as it stood: header, items, snapshot, approval decision"), (status = 404, body = Problem)))]
pub async fn revision_fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((id, revision_no)): ApiPath<(Uuid, i32)>,
) -> Result<Response, ApiError> {
    let revision = query(&state, &caller, op::FetchRevision { id, revision_no }).await?;
    Ok(axum::Json(revision).into_response())
}

#[utoipa::path(post, path = "/v1/quotes/{id}/convert", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header), ("Idempotency-Key" = Option<String>, Header)), request_body = EmptyCommand,
    responses((status = 201, description = "The order, created from the price snapshot, with its fulfillment process started"),
        (status = 409, description = "not accepted, snapshot changed, or already converted (`existing` names the order)", body = Problem), (status = 412, body = Problem)))]
pub async fn convert(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(quote_id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<EmptyCommand>,
) -> Result<Response, ApiError> {
    let input = |_: EmptyCommand| ConvertQuote {
        quote_id,
        expected_version,
    };
    command(&state, &caller, &ctx, body, input, |o| {
        let order_id = o.order_id;
        Ok(order_answer(o)?.as_created(format!("/v1/orders/{order_id}")))
    })
    .await
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The order and its items as converted from the quote's snapshot"), (status = 404, body = Problem)))]
pub async fn order_fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let order = query(&state, &caller, FetchOrder(id)).await?;
    Ok(order_answer(order)?.into_response())
}

#[utoipa::path(get, path = "/v1/orders/{id}/fulfillment-plan", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The order's fulfillment plan: every task, in plan order (each after the tasks it depends on), with its status, attempts, timings, system, job type and dependencies"), (status = 404, body = Problem)))]
pub async fn fulfillment_plan(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let plan = query(&state, &caller, FetchFulfillmentPlan(id)).await?;
    Ok(axum::Json(plan).into_response())
}
