//! `/v1/catalog`: catalog versions (draft → publish → activate), their documents and elements,
//! and offering search over the version in force.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use cpq_catalog::commands;
use cpq_catalog::document::COLLECTIONS;
use cpq_catalog::store::{self, OfferingHit, OfferingSearch};
use cpq_catalog::version::CatalogVersion;
use cpq_catalog::CatalogDocument;
use cpq_core::{Error, Role};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{execute, read};
use crate::extract::{ApiPath, ApiQuery, Caller, IfMatch, JsonBody, RequestContext};
use crate::pagination::{decode_cursor, page, page_size, query_fingerprint, Page};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

const AUTHORS: &[Role] = &[Role::CatalogManager];
const READERS: &[Role] = &[
    Role::CatalogManager,
    Role::Sales,
    Role::Approver,
    Role::OrderOperations,
    Role::Operator,
];

/// A catalog version's metadata (the document is at `/document`).
#[derive(Debug, Serialize, ToSchema)]
pub struct CatalogVersionView {
    pub id: Uuid,
    pub label: String,
    /// `draft`, `published` or `retired`.
    pub status: String,
    /// SHA-256 of the canonical document; set when published.
    pub content_hash: Option<String>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub published_at: Option<DateTime<Utc>>,
    pub published_by: Option<String>,
}

impl From<CatalogVersion> for CatalogVersionView {
    fn from(v: CatalogVersion) -> Self {
        CatalogVersionView {
            id: v.id,
            label: v.label,
            status: v.status.as_str().to_owned(),
            content_hash: v.content_hash,
            version: v.version,
            created_at: v.created_at,
            created_by: v.created_by,
            updated_at: v.updated_at,
            updated_by: v.updated_by,
            published_at: v.published_at,
            published_by: v.published_by,
        }
    }
}

fn respond(v: CatalogVersion, created: bool) -> Result<CommandResponse, Error> {
    let (id, version) = (v.id, v.version);
    let body = serde_json::to_value(CatalogVersionView::from(v)).map_err(Error::internal)?;
    Ok(if created {
        CommandResponse::created(format!("/v1/catalog/versions/{id}"), body)
    } else {
        CommandResponse::ok(body)
    }
    .with_etag(version))
}

/// Create a draft, empty or from a whole document (bulk import).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCatalogVersion {
    pub label: String,
    /// The whole version (offerings, rules, price_lists, promotions, tax_rates, technical).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub document: CatalogDocument,
}

#[utoipa::path(post, path = "/v1/catalog/versions", tag = "catalog", security(("bearer" = [])),
    params(("Idempotency-Key" = Option<String>, Header)),
    request_body = CreateCatalogVersion,
    responses((status = 201, body = CatalogVersionView), (status = 400, body = Problem), (status = 409, description = "label taken", body = Problem)))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<CreateCatalogVersion>,
) -> Result<Response, ApiError> {
    caller.0.require_any(AUTHORS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        |tx, meta, b: CreateCatalogVersion| {
            Box::pin(async move {
                respond(
                    commands::create_draft(tx, &meta, &b.label, &b.document).await?,
                    true,
                )
            })
        },
    )
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(get, path = "/v1/catalog/versions/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = CatalogVersionView), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let mut tx = read(&state, &caller).await?;
    let v = store::catalog_version_fetch(&mut tx, &caller.0.tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("catalog version", id))?;
    Ok(respond(v, false)?.into_response())
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/catalog/versions", tag = "catalog", security(("bearer" = [])),
    params(PageQuery), responses((status = 200, description = "A page of versions")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    let fingerprint = query_fingerprint(&q);
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<Uuid>(c, &fingerprint))
        .transpose()?;
    let mut tx = read(&state, &caller).await?;
    let rows =
        store::catalog_version_list(&mut tx, &caller.0.tenant, after, i64::from(limit) + 1).await?;
    let p: Page<CatalogVersionView> = page(
        rows,
        limit,
        &fingerprint,
        |v| v.id,
        CatalogVersionView::from,
    );
    Ok(axum::Json(p).into_response())
}

/// Export: the version's whole document, as imported.
#[utoipa::path(get, path = "/v1/catalog/versions/{id}/document", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, description = "The catalog document"), (status = 404, body = Problem)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    caller.0.require_any(READERS)?;
    let mut tx = read(&state, &caller).await?;
    let doc: Value = store::catalog_version_document(&mut tx, &caller.0.tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("catalog version", id))?;
    Ok(axum::Json(doc).into_response())
}

/// Import into a draft: replaces its whole document.
#[utoipa::path(put, path = "/v1/catalog/versions/{id}/document", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header)),
    request_body(content = Object, description = "The catalog document"),
    responses((status = 200, body = CatalogVersionView), (status = 409, description = "not a draft", body = Problem), (status = 412, body = Problem), (status = 428, body = Problem)))]
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected): IfMatch,
    body: JsonBody<CatalogDocument>,
) -> Result<Response, ApiError> {
    caller.0.require_any(AUTHORS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, doc: CatalogDocument| {
            Box::pin(async move {
                respond(
                    commands::replace_document(tx, &meta, id, expected, &doc).await?,
                    false,
                )
            })
        },
    )
    .await?;
    Ok(r.into_response())
}

fn collection(name: &str) -> Result<(), Error> {
    if COLLECTIONS.iter().any(|(c, _)| *c == name) {
        Ok(())
    } else {
        let names: Vec<&str> = COLLECTIONS.iter().map(|(c, _)| *c).collect();
        Err(Error::not_found(
            "catalog collection",
            format!("{name} (collections: {})", names.join(", ")),
        ))
    }
}

/// Put one element (offering, rule, price list, promotion, tax rate, technical mapping) into a draft.
#[utoipa::path(put, path = "/v1/catalog/versions/{id}/{collection}/{key}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("collection" = String, Path, description = "offerings, rules, price-lists, promotions, tax-rates or technical"), ("key" = String, Path), ("If-Match" = String, Header)),
    request_body(content = Object),
    responses((status = 200, body = CatalogVersionView), (status = 422, body = Problem)))]
pub async fn put_element(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, coll, key)): ApiPath<(Uuid, String, String)>,
    IfMatch(expected): IfMatch,
    body: JsonBody<Value>,
) -> Result<Response, ApiError> {
    caller.0.require_any(AUTHORS)?;
    collection(&coll)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, element: Value| {
            Box::pin(async move {
                respond(
                    commands::edit_element(tx, &meta, id, expected, &coll, &key, Some(element))
                        .await?,
                    false,
                )
            })
        },
    )
    .await?;
    Ok(r.into_response())
}

#[utoipa::path(delete, path = "/v1/catalog/versions/{id}/{collection}/{key}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("collection" = String, Path), ("key" = String, Path), ("If-Match" = String, Header)),
    responses((status = 200, body = CatalogVersionView), (status = 404, body = Problem)))]
pub async fn delete_element(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, coll, key)): ApiPath<(Uuid, String, String)>,
    IfMatch(expected): IfMatch,
) -> Result<Response, ApiError> {
    caller.0.require_any(AUTHORS)?;
    collection(&coll)?;
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
                commands::edit_element(tx, &meta, id, expected, &coll, &key, None).await?,
                false,
            )
        })
    })
    .await?;
    Ok(r.into_response())
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishCatalogVersion {}

/// Validate, compile and publish a draft; 422 lists every problem (`errors[].field` is where,
/// `errors[].code` the kind).
#[utoipa::path(post, path = "/v1/catalog/versions/{id}/publish", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("If-Match" = String, Header), ("Idempotency-Key" = Option<String>, Header)),
    request_body = PublishCatalogVersion,
    responses((status = 200, body = CatalogVersionView), (status = 409, body = Problem), (status = 422, description = "every problem of the version", body = Problem)))]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    IfMatch(expected): IfMatch,
    body: JsonBody<PublishCatalogVersion>,
) -> Result<Response, ApiError> {
    caller.0.require_any(AUTHORS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, _: PublishCatalogVersion| {
            Box::pin(
                async move { respond(commands::publish(tx, &meta, id, expected).await?, false) },
            )
        },
    )
    .await?;
    state.catalogs.invalidate(&caller.0.tenant, id).await;
    Ok(r.into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateCatalogVersion {
    /// From when the version is in force (RFC 3339).
    pub effective_from: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/catalog/versions/{id}/activate", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header)),
    request_body = ActivateCatalogVersion,
    responses((status = 200, body = CatalogVersionView), (status = 409, description = "not published, or that instant is taken", body = Problem)))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<ActivateCatalogVersion>,
) -> Result<Response, ApiError> {
    caller.0.require_any(AUTHORS)?;
    let r = execute(
        &state,
        &caller,
        &ctx,
        body,
        move |tx, meta, b: ActivateCatalogVersion| {
            Box::pin(async move {
                respond(
                    commands::activate(tx, &meta, id, b.effective_from).await?,
                    false,
                )
            })
        },
    )
    .await?;
    // Seen at once here; other instances drop the schedule when PostgreSQL notifies them.
    state.catalogs.schedules.forget(&caller.0.tenant);
    Ok(r.into_response())
}

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Words in the code, name or description (the last matches as a prefix).
    pub q: Option<String>,
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    /// Effective date (default today); also picks the version in force then.
    pub date: Option<NaiveDate>,
    /// A specific version instead of the one in force.
    pub version: Option<Uuid>,
    /// Include components that are only sold inside bundles.
    #[serde(default)]
    pub include_components: bool,
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/catalog/offerings", tag = "catalog", security(("bearer" = [])),
    params(SearchQuery), responses((status = 200, description = "A page of offerings"), (status = 404, description = "the named version is not a published version of the caller's tenant", body = Problem), (status = 409, description = "no version in force", body = Problem)))]
pub async fn search(
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
    let date = q.date.unwrap_or_else(|| Utc::now().date_naive());
    let version = match q.version {
        // A named version must be one of the caller's published versions, as for validate and
        // price (404 otherwise); the compiled version is usually held in process already.
        Some(v) => {
            state
                .catalogs
                .compiled(&state.db, &caller.0.tenant, v)
                .await?;
            v
        }
        None => {
            state
                .catalogs
                .active(&state.db, &caller.0.tenant, instant_for(date))
                .await?
        }
    };
    let fingerprint = query_fingerprint(&(&q, version, date));
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<String>(c, &fingerprint))
        .transpose()?;
    let filter = OfferingSearch {
        text: q.q.clone(),
        market: q.market.clone(),
        channel: q.channel.clone(),
        segment: q.segment.clone(),
        date: Some(date),
        sellable_only: !q.include_components,
    };
    let mut tx = read(&state, &caller).await?;
    let rows = store::catalog_offering_search(
        &mut tx,
        &caller.0.tenant,
        version,
        &filter,
        after.as_deref(),
        i64::from(limit) + 1,
    )
    .await?;
    let p: Page<OfferingHit> = page(rows, limit, &fingerprint, |o| o.code.clone(), |o| o);
    let mut body = serde_json::to_value(p).map_err(Error::internal)?;
    body["catalog_version"] = serde_json::json!(version);
    Ok(axum::Json(body).into_response())
}

/// The instant whose version in force a date means: now for today, else the start of that day
/// (activations usually take effect at midnight).
pub fn instant_for(date: NaiveDate) -> DateTime<Utc> {
    let now = Utc::now();
    if date == now.date_naive() {
        now
    } else {
        date.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now)
    }
}
