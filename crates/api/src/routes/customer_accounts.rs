//! `/v1/customer-accounts`: create, read, change (If-Match), list (filters, cursor), close; the
//! account's installed base (`/assets`).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cpq_application::assets::ListCustomerAssets;
use cpq_application::customers::{
    CloseAccount, CreateAccount, FetchAccount, ListAccounts, UpdateAccount,
};
use cpq_application::Operation;
use cpq_core::{Error, FieldError};
use cpq_customer::store::AccountFilter;
use cpq_customer::{AccountInput, AccountPatch, AccountStatus, CustomerAccount};
use cpq_order::assets::{Asset, AssetFilter, AssetPage, AssetStatus};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, IfMatch, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

/// A customer account as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CustomerAccountView {
    pub id: Uuid,
    pub name: String,
    pub external_ref: Option<String>,
    /// `consumer`, `small-business`, `enterprise` or `public-sector`.
    pub segment: String,
    pub market: String,
    /// ISO 4217 code.
    pub currency: String,
    /// `active` or `closed`.
    pub status: String,
    /// Also the `ETag` (quoted).
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub closed_at: Option<DateTime<Utc>>,
    pub close_reason: Option<String>,
}

impl From<CustomerAccount> for CustomerAccountView {
    fn from(a: CustomerAccount) -> Self {
        CustomerAccountView {
            id: a.id,
            name: a.name,
            external_ref: a.external_ref,
            segment: a.segment.as_str().to_owned(),
            market: a.market,
            currency: a.currency.code().to_owned(),
            status: a.status.as_str().to_owned(),
            version: a.version,
            created_at: a.created_at,
            created_by: a.created_by,
            updated_at: a.updated_at,
            updated_by: a.updated_by,
            closed_at: a.closed_at,
            close_reason: a.close_reason,
        }
    }
}

/// The account with its version as the entity tag.
fn answer(a: CustomerAccount) -> Result<CommandResponse, Error> {
    let version = a.version;
    let body = serde_json::to_value(CustomerAccountView::from(a)).map_err(Error::internal)?;
    Ok(CommandResponse::ok(body).with_etag(version))
}

/// Create a customer account. Every field problem is reported at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomerAccount {
    #[schema(required = true, max_length = 200)]
    pub name: Option<String>,
    /// The CRM's id for this customer; unique within the tenant.
    #[schema(max_length = 64)]
    pub external_ref: Option<String>,
    #[schema(required = true)]
    pub segment: Option<String>,
    /// Market code, e.g. `DE` or `EU-WEST`.
    #[schema(required = true)]
    pub market: Option<String>,
    /// ISO 4217 code, e.g. `EUR`.
    #[schema(required = true)]
    pub currency: Option<String>,
}

fn some_null<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A JSON merge patch (RFC 7396) of an account: absent fields stay, `"external_ref": null`
/// removes the reference.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomerAccount {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "some_null")]
    #[schema(value_type = Option<String>)]
    pub external_ref: Option<Option<String>>,
    pub segment: Option<String>,
    pub market: Option<String>,
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseCustomerAccount {
    /// Why the account is closed (kept in the audit trail).
    pub reason: String,
}

fn location(id: Uuid) -> String {
    format!("/v1/customer-accounts/{id}")
}

#[utoipa::path(post, path = "/v1/customer-accounts", tag = "customer-accounts",
    security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: a replay returns the first response")),
    request_body = CreateCustomerAccount,
    responses(
        (status = 201, description = "Created; ETag and Location headers set", body = CustomerAccountView),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "external_ref already used", body = Problem),
        (status = 422, description = "validation failed, or Idempotency-Key reused with another body", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<CreateCustomerAccount>,
) -> Result<Response, ApiError> {
    let input = |b: CreateCustomerAccount| {
        CreateAccount(AccountInput {
            name: b.name,
            external_ref: b.external_ref,
            segment: b.segment,
            market: b.market,
            currency: b.currency,
        })
    };
    command(&state, &caller, &ctx, body, input, |a| {
        let id = a.id;
        Ok(answer(a)?.as_created(location(id)))
    })
    .await
}

#[utoipa::path(get, path = "/v1/customer-accounts/{id}", tag = "customer-accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "ETag header set", body = CustomerAccountView),
              (status = 404, description = "No such account in the caller's tenant", body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let account = query(&state, &caller, FetchAccount(id)).await?;
    Ok(answer(account)?.into_response())
}

#[utoipa::path(patch, path = "/v1/customer-accounts/{id}", tag = "customer-accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header, description = "The ETag the change is based on")),
    request_body(content = UpdateCustomerAccount, content_type = "application/merge-patch+json"),
    responses((status = 200, body = CustomerAccountView),
              (status = 404, body = Problem), (status = 409, description = "account closed, or external_ref taken", body = Problem),
              (status = 412, description = "If-Match is stale", body = Problem),
              (status = 422, body = Problem), (status = 428, description = "If-Match missing", body = Problem)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<UpdateCustomerAccount>,
) -> Result<Response, ApiError> {
    let input = |b: UpdateCustomerAccount| UpdateAccount {
        id,
        expected_version,
        patch: AccountPatch {
            name: b.name,
            external_ref: b.external_ref,
            segment: b.segment,
            market: b.market,
            currency: b.currency,
        },
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

#[utoipa::path(post, path = "/v1/customer-accounts/{id}/close", tag = "customer-accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = CloseCustomerAccount,
    responses((status = 200, body = CustomerAccountView), (status = 404, body = Problem),
              (status = 409, description = "already closed", body = Problem), (status = 412, body = Problem),
              (status = 428, body = Problem)))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<CloseCustomerAccount>,
) -> Result<Response, ApiError> {
    let input = |b: CloseCustomerAccount| CloseAccount {
        id,
        expected_version,
        reason: b.reason,
    };
    command(&state, &caller, &ctx, body, input, answer).await
}

/// Filters for the account list; each is backed by an index.
#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `active` or `closed`.
    pub status: Option<String>,
    /// Case-insensitive prefix of the name.
    pub name_prefix: Option<String>,
    pub external_ref: Option<String>,
    /// Page size, 1 to the configured maximum (default 50, maximum 200).
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomerAccountPage {
    items: Vec<CustomerAccountView>,
    next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/customer-accounts", tag = "customer-accounts",
    security(("bearer" = [])),
    params(ListQuery),
    responses((status = 200, body = CustomerAccountPage), (status = 400, body = Problem)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    // A caller who may not read accounts is refused before the query is checked.
    caller.0.require_any(ListAccounts::ROLES)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(AccountStatus::parse(s).ok_or_else(|| Error::Malformed {
            detail: format!("status \"{s}\" is not active or closed"),
            errors: vec![FieldError::new(
                "status",
                "unknown-value",
                "status must be active or closed",
            )],
        })?),
    };
    let filter = AccountFilter {
        status,
        name_prefix: q.name_prefix.clone().filter(|p| !p.is_empty()),
        external_ref: q.external_ref.clone(),
    };
    let paging = PageRequest::<Uuid>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListAccounts {
        filter,
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let page: Page<CustomerAccountView> = paging.page(rows, |a| a.id, CustomerAccountView::from);
    Ok(axum::Json(page).into_response())
}

/// An asset of the customer's installed base: an offering in its configuration, made by the
/// completion of the order item it names.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssetView {
    pub id: Uuid,
    pub customer_account_id: Uuid,
    pub offering_code: String,
    /// The order item's configuration, as ordered.
    #[schema(value_type = Object)]
    pub configuration: Value,
    /// `active`, `suspended` or `terminated`.
    pub status: String,
    /// The order that made it, and its item.
    pub order_id: Uuid,
    pub line_no: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Asset> for AssetView {
    fn from(a: Asset) -> Self {
        AssetView {
            id: a.asset_id,
            customer_account_id: a.customer_account_id,
            offering_code: a.offering_code,
            configuration: a.configuration,
            status: a.status.as_str().to_owned(),
            order_id: a.order_id,
            line_no: a.line_no,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Filters for an account's assets.
#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssetListQuery {
    /// `active`, `suspended` or `terminated`.
    pub status: Option<String>,
    /// Exactly this offering code, e.g. `CLOUD-BACKUP`.
    pub offering_code: Option<String>,
    /// Page size, 1 to the configured maximum (default 50, maximum 200).
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    /// From the previous page's `next_cursor`.
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomerAssetPage {
    items: Vec<AssetView>,
    next_cursor: Option<String>,
}

/// The account's installed base, newest first: one asset per order item its completed orders
/// fulfilled.
#[utoipa::path(get, path = "/v1/customer-accounts/{id}/assets", tag = "customer-accounts",
    security(("bearer" = [])),
    params(("id" = Uuid, Path), AssetListQuery),
    responses((status = 200, body = CustomerAssetPage), (status = 400, body = Problem),
              (status = 404, description = "No such account in the caller's tenant", body = Problem)))]
pub async fn list_assets(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<AssetListQuery>,
) -> Result<Response, ApiError> {
    // A caller who may not read accounts is refused before the query is checked.
    caller.0.require_any(ListCustomerAssets::ROLES)?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(AssetStatus::parse(s).ok_or_else(|| Error::Malformed {
            detail: format!("status \"{s}\" is not active, suspended or terminated"),
            errors: vec![FieldError::new(
                "status",
                "unknown-value",
                "status must be active, suspended or terminated",
            )],
        })?),
    };
    // The cursor is bound to the account as well as to the filters.
    let paging = PageRequest::<(DateTime<Utc>, Uuid)>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &(id, &q),
    )?;
    let list = ListCustomerAssets {
        customer_account_id: id,
        filter: AssetFilter {
            status,
            offering_code: q.offering_code.clone(),
        },
        page: AssetPage {
            after: paging.after,
            limit: paging.fetch(),
        },
    };
    let rows = query(&state, &caller, list).await?;
    let page: Page<AssetView> = paging.page(rows, |a| (a.created_at, a.asset_id), AssetView::from);
    Ok(axum::Json(page).into_response())
}
