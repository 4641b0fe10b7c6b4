//! `/v1/catalog`: catalog versions (draft → publish → activate), their documents and elements,
//! and offering search over the version in force.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use cpq_application::catalog::{
    ActivateVersion, CreateVersion, EditElement, ExportDocument, FetchVersion, ImportDocument,
    ListVersions, PublishVersion, SearchOfferings,
};
use cpq_application::Operation;
use cpq_catalog::document::Collection;
use cpq_catalog::store::OfferingHit;
use cpq_catalog::version::CatalogVersion;
use cpq_catalog::CatalogDocument;
use cpq_core::Error;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, IfMatch, JsonBody, RequestContext};
use crate::pagination::{decode_cursor, page, page_size, query_fingerprint, Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

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
    /// The whole version (offerings, rules, price_lists, promotions, tax_rates, technical, order_tasks).
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
    let input = |b: CreateCatalogVersion| CreateVersion {
        label: b.label,
        document: b.document,
    };
    command(&state, &caller, &ctx, body, input, |v| respond(v, true)).await
}

#[utoipa::path(get, path = "/v1/catalog/versions/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = CatalogVersionView), (status = 404, body = Problem)))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Response, ApiError> {
    let v = query(&state, &caller, FetchVersion(id)).await?;
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
    // A caller who may not read versions is refused before the query is checked.
    caller.0.require_any(ListVersions::ROLES)?;
    let paging = PageRequest::<Uuid>::new(&state.config.http, q.limit, q.cursor.as_deref(), &q)?;
    let list = ListVersions {
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<CatalogVersionView> = paging.page(rows, |v| v.id, CatalogVersionView::from);
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
    let doc: Value = query(&state, &caller, ExportDocument(id)).await?;
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
    IfMatch(expected_version): IfMatch,
    body: JsonBody<CatalogDocument>,
) -> Result<Response, ApiError> {
    let input = |document: CatalogDocument| ImportDocument {
        id,
        expected_version,
        document,
    };
    command(&state, &caller, &ctx, body, input, |v| respond(v, false)).await
}

/// The collection a path names, checked where it was before there were operations: after who may
/// edit (403 before 404) and before any transaction.
fn collection(caller: &Caller, name: &str) -> Result<Collection, Error> {
    caller.0.require_any(EditElement::ROLES)?;
    Collection::parse(name)
}

/// Put one element (offering, rule, price list, promotion, tax rate, technical mapping, order task) into a draft.
#[utoipa::path(put, path = "/v1/catalog/versions/{id}/{collection}/{key}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("collection" = String, Path, description = "offerings, rules, price-lists, promotions, tax-rates, technical or order-tasks"), ("key" = String, Path), ("If-Match" = String, Header)),
    request_body(content = Object),
    responses((status = 200, body = CatalogVersionView), (status = 422, body = Problem)))]
pub async fn put_element(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, coll, key)): ApiPath<(Uuid, String, String)>,
    IfMatch(expected_version): IfMatch,
    body: JsonBody<Value>,
) -> Result<Response, ApiError> {
    let collection = collection(&caller, &coll)?;
    let input = |element: Value| EditElement {
        id,
        expected_version,
        collection,
        key,
        element: Some(element),
    };
    command(&state, &caller, &ctx, body, input, |v| respond(v, false)).await
}

#[utoipa::path(delete, path = "/v1/catalog/versions/{id}/{collection}/{key}", tag = "catalog", security(("bearer" = [])),
    params(("id" = Uuid, Path), ("collection" = String, Path), ("key" = String, Path), ("If-Match" = String, Header)),
    responses((status = 200, body = CatalogVersionView), (status = 404, body = Problem)))]
pub async fn delete_element(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath((id, coll, key)): ApiPath<(Uuid, String, String)>,
    IfMatch(expected_version): IfMatch,
) -> Result<Response, ApiError> {
    let collection = collection(&caller, &coll)?;
    let body = JsonBody {
        value: (),
        idempotency_key: None,
        fingerprint: [0; 32],
        method: "DELETE".into(),
        path: String::new(),
    };
    let input = |()| EditElement {
        id,
        expected_version,
        collection,
        key,
        element: None,
    };
    command(&state, &caller, &ctx, body, input, |v| respond(v, false)).await
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
    IfMatch(expected_version): IfMatch,
    body: JsonBody<PublishCatalogVersion>,
) -> Result<Response, ApiError> {
    let input = |_: PublishCatalogVersion| PublishVersion {
        id,
        expected_version,
    };
    command(&state, &caller, &ctx, body, input, |v| respond(v, false)).await
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
    let input = |b: ActivateCatalogVersion| ActivateVersion {
        id,
        effective_from: b.effective_from,
    };
    command(&state, &caller, &ctx, body, input, |v| respond(v, false)).await
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
    // A caller who may not read the catalog is refused before the query is checked.
    caller.0.require_any(cpq_application::catalog::READERS)?;
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    // A cursor continues a search of the same version on the same date.
    let fingerprint = |version: Uuid, date: NaiveDate| query_fingerprint(&(&q, version, date));
    let resume = |version: Uuid, date: NaiveDate| {
        let fingerprint = fingerprint(version, date);
        q.cursor
            .as_deref()
            .map(|c| decode_cursor::<String>(c, &fingerprint))
            .transpose()
    };
    let search = SearchOfferings {
        text: q.q.clone(),
        market: q.market.clone(),
        channel: q.channel.clone(),
        segment: q.segment.clone(),
        date: q.date,
        version: q.version,
        include_components: q.include_components,
        resume,
        limit: i64::from(limit) + 1,
    };
    let found = query(&state, &caller, search).await?;
    let fingerprint = fingerprint(found.catalog_version, found.date);
    let p: Page<OfferingHit> = page(found.hits, limit, &fingerprint, |o| o.code.clone(), |o| o);
    let mut body = serde_json::to_value(p).map_err(Error::internal)?;
    body["catalog_version"] = serde_json::json!(found.catalog_version);
    Ok(axum::Json(body).into_response())
}
