//! `/v1/quotes`: create, read, add and remove lines, price, submit, accept, revise, cancel and
//! convert into an order (`/v1/orders/{id}`). Every change needs `If-Match`; lines are validated
//! against the quote's catalog version. Approval tasks and the policy are in
//! [`crate::routes::approvals`].

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{Duration, NaiveDate};
use cpq_configuration::ConfigItem;
use cpq_core::{Error, Role, TenantId};
use cpq_order::commands as orders;
use cpq_quote::commands;
use cpq_quote::model::{NewQuote, Quote};
use cpq_quote::{revisions, store};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{execute, read};
use crate::extract::{ApiPath, Caller, IfMatch, JsonBody, RequestContext};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

const SELLERS: &[Role] = &[Role::Sales];
const READERS: &[Role] = &[
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
];

fn respond(q: Quote, created: bool) -> Result<CommandResponse, Error> {
    let (id, version) = (q.id, q.version);
    let body: Value = serde_json::to_value(&q).map_err(Error::internal)?;
    Ok(if created {
        CommandResponse::created(format!("/v1/quotes/{id}"), body)
    } else {
        CommandResponse::ok(body)
    }
    .with_etag(version))
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
    caller.0.require_any(SELLERS)?;
    let r = execute(&state, &caller, &ctx, body, |tx, meta, b: CreateQuote| {
        Box::pin(async move {
            let input = NewQuote {
                customer_account_id: b.customer_account_id,
                channel: b.channel.unwrap_or_else(|| "direct".to_owned()),
                valid_until: b
                    .valid_until
                    .unwrap_or_else(|| meta.occurred_at.date_naive() + Duration::days(30)),
                special_terms: b.special_terms,
            };
            respond(commands::create(tx, &meta, &input).await?, true)
        })
    })
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(get, path = "/v1/quotes/{id}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The quote, its current lines and price"), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let mut tx = read(&state, &caller).await?;
    let q = store::quote_fetch(&mut tx, &caller.0.tenant, id).await?;
    let history = store::quote_approval_history(&mut tx, &caller.0.tenant, id).await?;
    let version = q.version;
    let mut body = serde_json::to_value(q).map_err(Error::internal)?;
    body["approvals"] = serde_json::to_value(history).map_err(Error::internal)?;
    Ok(CommandResponse::ok(body).with_etag(version).into_response())
}

/// The compiled catalog of a version, for the commands that validate or price against the
/// quote's pinned version (cached in process: published versions never change).
async fn catalog_of(
    state: &AppState,
    tenant: &TenantId,
    version: Uuid,
) -> Result<std::sync::Arc<cpq_catalog::CompiledCatalog>, Error> {
    state.catalogs.compiled(&state.db, tenant, version).await
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

#[utoipa::path(post, path = "/v1/quotes/{id}/items", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = AddItem,
    responses((status = 200, description = "Line added; a priced quote's price is stale"), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, description = "every violation of the configuration", body = Problem)))]
pub async fn add_item(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected): IfMatch,
    body: JsonBody<AddItem>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let st = state.clone();
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: AddItem| {
        Box::pin(async move {
            let catalog = |v| catalog_of(&st, &meta.tenant, v);
            respond(
                commands::add_item(
                    tx,
                    &meta,
                    id,
                    expected,
                    catalog,
                    &b.configuration,
                    b.manual_discount_percent,
                )
                .await?,
                false,
            )
        })
    })
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(put, path = "/v1/quotes/{id}/items/{line_no}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("line_no" = i32, Path), ("If-Match" = String, Header)), request_body = AddItem,
    responses((status = 200, description = "Line changed; a priced quote's price is stale"), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem), (status = 422, description = "every violation of the configuration", body = Problem)))]
pub async fn change_item(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, line_no)): ApiPath<(Uuid, i32)>,
    IfMatch(expected): IfMatch,
    body: JsonBody<AddItem>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let st = state.clone();
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: AddItem| {
        Box::pin(async move {
            let catalog = |v| catalog_of(&st, &meta.tenant, v);
            respond(
                commands::change_item(
                    tx,
                    &meta,
                    id,
                    expected,
                    line_no,
                    catalog,
                    &b.configuration,
                    b.manual_discount_percent,
                )
                .await?,
                false,
            )
        })
    })
    .await?;
    Ok(r.into_response())
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
    IfMatch(expected): IfMatch,
    body: JsonBody<SetTerms>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: SetTerms| {
        Box::pin(async move {
            respond(
                commands::set_terms(tx, &meta, id, expected, b.special_terms.as_deref()).await?,
                false,
            )
        })
    })
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(delete, path = "/v1/quotes/{id}/items/{line_no}", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("line_no" = i32, Path), ("If-Match" = String, Header)),
    responses((status = 200, description = "Line removed"), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_item(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, line)): ApiPath<(Uuid, i32)>,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let body = JsonBody {
        value: (),
        idempotency_key: None,
        fingerprint: [0; 32],
        method: "DELETE".into(),
        path: String::new(),
    };
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, ()| {
        Box::pin(async move {
            respond(
                commands::remove_item(tx, &meta, id, expected, line).await?,
                false,
            )
        })
    })
    .await?;
    Ok(r.into_response())
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
    IfMatch(expected): IfMatch,
    body: JsonBody<PriceQuote>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let st = state.clone();
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, _: PriceQuote| {
            Box::pin(async move {
                let catalog = |v| catalog_of(&st, &meta.tenant, v);
                respond(
                    commands::price(tx, &meta, id, expected, catalog).await?,
                    false,
                )
            })
        },
    )
    .await?;
    Ok(r.into_response())
}

#[derive(Debug, Deserialize, serde::Serialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WorklistQuery {
    /// e.g. `draft`, `priced`, `approval-pending`, `approved`, `accepted`.
    pub status: Option<String>,
    pub owner: Option<String>,
    /// A customer account id.
    pub customer: Option<Uuid>,
    pub updated_before: Option<chrono::DateTime<chrono::Utc>>,
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
    crate::extract::ApiQuery(q): crate::extract::ApiQuery<WorklistQuery>,
) -> Result<Response, ApiError> {
    use crate::pagination::{decode_cursor, page, page_size, query_fingerprint, Page};
    caller.0.require_any(READERS)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(
            serde_json::from_value::<cpq_quote::model::lifecycle::Status>(Value::String(
                s.to_owned(),
            ))
            .map_err(|_| Error::Malformed {
                detail: format!("status \"{s}\" is not a quote status"),
                errors: vec![cpq_core::FieldError::new(
                    "status",
                    "unknown-value",
                    "a quote status such as draft, priced or approval-pending",
                )],
            })?,
        ),
    };
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    let fingerprint = query_fingerprint(&q);
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<(chrono::DateTime<chrono::Utc>, Uuid)>(c, &fingerprint))
        .transpose()?;
    let w = store::Worklist {
        status,
        owner: q.owner.clone(),
        customer_account_id: q.customer,
        updated_before: q.updated_before,
    };
    let mut tx = read(&state, &caller).await?;
    let rows =
        store::quote_worklist(&mut tx, &caller.0.tenant, &w, after, i64::from(limit) + 1).await?;
    let p: Page<store::QuoteSummary> = page(
        rows,
        limit,
        &fingerprint,
        |r| (r.updated_at, r.quote_id),
        |r| r,
    );
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
    IfMatch(expected): IfMatch,
    body: JsonBody<CancelQuote>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, b: CancelQuote| {
            Box::pin(async move {
                respond(
                    commands::cancel(tx, &meta, id, expected, &b.reason).await?,
                    false,
                )
            })
        },
    )
    .await?;
    Ok(r.into_response())
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
    IfMatch(expected): IfMatch,
    body: JsonBody<EmptyCommand>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, _: EmptyCommand| {
            Box::pin(
                async move { respond(commands::submit(tx, &meta, id, expected).await?, false) },
            )
        },
    )
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(post, path = "/v1/quotes/{id}/accept", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)), request_body = EmptyCommand,
    responses((status = 200, description = "Accepted; records who and when"), (status = 409, description = "only approved or approval-free quotes", body = Problem), (status = 412, body = Problem)))]
pub async fn accept(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected): IfMatch,
    body: JsonBody<EmptyCommand>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, _: EmptyCommand| {
            Box::pin(
                async move { respond(commands::accept(tx, &meta, id, expected).await?, false) },
            )
        },
    )
    .await?;
    Ok(r.into_response())
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
    IfMatch(expected): IfMatch,
    body: JsonBody<ReviseQuote>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, b: ReviseQuote| {
            Box::pin(async move {
                respond(
                    revisions::revise(tx, &meta, id, expected, b.reason.as_deref()).await?,
                    false,
                )
            })
        },
    )
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(get, path = "/v1/quotes/{id}/revisions", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "Superseded revisions, newest first"), (status = 404, body = Problem)))]
pub async fn revision_list(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let mut tx = read(&state, &caller).await?;
    let items = store::quote_revision_list(&mut tx, &caller.0.tenant, id).await?;
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
    caller.0.require_any(READERS)?;
    let mut tx = read(&state, &caller).await?;
    Ok(
        axum::Json(store::quote_revision_fetch(&mut tx, &caller.0.tenant, id, revision_no).await?)
            .into_response(),
    )
}

#[utoipa::path(post, path = "/v1/quotes/{id}/convert", tag = "quotes", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header), ("Idempotency-Key" = Option<String>, Header)), request_body = EmptyCommand,
    responses((status = 201, description = "The order, created from the price snapshot, with its fulfillment process started"),
        (status = 409, description = "not accepted, snapshot changed, or already converted (`existing` names the order)", body = Problem), (status = 412, body = Problem)))]
pub async fn convert(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected): IfMatch,
    body: JsonBody<EmptyCommand>,
) -> Result<Response, ApiError> {
    caller.0.require_any(SELLERS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, _: EmptyCommand| {
            Box::pin(async move {
                let order = orders::convert(tx, &meta, id, expected).await?;
                let (order_id, version) = (order.order_id, order.version);
                Ok(CommandResponse::created(
                    format!("/v1/orders/{order_id}"),
                    serde_json::to_value(order).map_err(Error::internal)?,
                )
                .with_etag(version))
            })
        },
    )
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The order and its items as converted from the quote's snapshot"), (status = 404, body = Problem)))]
pub async fn order_fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let mut tx = read(&state, &caller).await?;
    let order = orders::order_fetch(&mut tx, &caller.0.tenant, id).await?;
    let version = order.version;
    Ok(
        CommandResponse::ok(serde_json::to_value(order).map_err(Error::internal)?)
            .with_etag(version)
            .into_response(),
    )
}
