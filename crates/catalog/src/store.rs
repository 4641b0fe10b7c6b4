//! SQL for catalog versions, activations and the offering search projection. Named, timed, and
//! filtered on the tenant under row-level security.

use chrono::{DateTime, NaiveDate, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::{db_error, violated_unique_constraint};
use cpq_db::{timed, Tx};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::compiled::CompiledCatalog;
use crate::document::CatalogDocument;
use crate::version::{CatalogVersion, VersionStatus};

const META: &str =
    "catalog_version_id, tenant_id, label, status, content_hash, version, created_at, \
    created_by, updated_at, updated_by, published_at, published_by";

#[derive(sqlx::FromRow)]
struct Row {
    catalog_version_id: Uuid,
    tenant_id: String,
    label: String,
    status: String,
    content_hash: Option<String>,
    version: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
    published_at: Option<DateTime<Utc>>,
    published_by: Option<String>,
}

impl TryFrom<Row> for CatalogVersion {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        Ok(CatalogVersion {
            id: r.catalog_version_id,
            tenant: TenantId::parse(&r.tenant_id)
                .map_err(|_| Error::internal("stored tenant invalid"))?,
            status: VersionStatus::parse(&r.status)
                .ok_or_else(|| Error::internal(format!("stored status {} invalid", r.status)))?,
            label: r.label,
            content_hash: r.content_hash,
            version: r.version,
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
            published_at: r.published_at,
            published_by: r.published_by,
        })
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(Error::internal)
}

pub async fn catalog_version_insert(
    tx: &mut Tx,
    v: &CatalogVersion,
    doc: &CatalogDocument,
) -> Result<(), Error> {
    timed(
        "catalog_version_insert",
        sqlx::query(
            "INSERT INTO catalog_version (catalog_version_id, tenant_id, label, status, document, version, \
             created_at, created_by, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(v.id)
        .bind(v.tenant.as_str())
        .bind(&v.label)
        .bind(v.status.as_str())
        .bind(to_json(doc)?)
        .bind(v.version)
        .bind(v.created_at)
        .bind(&v.created_by)
        .bind(v.updated_at)
        .bind(&v.updated_by)
        .execute(&mut **tx),
    )
    .await
    .map_err(|e| {
        if violated_unique_constraint(&e) == Some("catalog_version_label_key") {
            Error::conflict(format!("a catalog version labelled \"{}\" already exists", v.label))
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

pub async fn catalog_version_fetch(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<CatalogVersion>, Error> {
    let row: Option<Row> = timed(
        "catalog_version_fetch",
        sqlx::query_as(&format!(
            "SELECT {META} FROM catalog_version WHERE tenant_id = $1 AND catalog_version_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.map(CatalogVersion::try_from).transpose()
}

/// Locks the version and reads its document: the command path of every draft change.
pub async fn catalog_version_fetch_document_for_update(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<(CatalogVersion, CatalogDocument)>, Error> {
    #[derive(sqlx::FromRow)]
    struct WithDoc {
        #[sqlx(flatten)]
        meta: Row,
        document: serde_json::Value,
    }
    let row: Option<WithDoc> = timed(
        "catalog_version_fetch_document_for_update",
        sqlx::query_as(&format!("SELECT {META}, document FROM catalog_version WHERE tenant_id = $1 AND catalog_version_id = $2 FOR UPDATE"))
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    match row {
        None => Ok(None),
        Some(r) => {
            let doc: CatalogDocument = serde_json::from_value(r.document)
                .map_err(|e| Error::internal(format!("stored catalog document: {e}")))?;
            Ok(Some((CatalogVersion::try_from(r.meta)?, doc)))
        }
    }
}

pub async fn catalog_version_update_draft(
    tx: &mut Tx,
    v: &CatalogVersion,
    doc: &CatalogDocument,
    expected_version: i64,
) -> Result<(), Error> {
    let done = timed(
        "catalog_version_update_draft",
        sqlx::query(
            "UPDATE catalog_version SET document = $4, version = $5, updated_at = $6, updated_by = $7 \
             WHERE tenant_id = $1 AND catalog_version_id = $2 AND version = $3 AND status = 'draft'",
        )
        .bind(v.tenant.as_str())
        .bind(v.id)
        .bind(expected_version)
        .bind(to_json(doc)?)
        .bind(v.version)
        .bind(v.updated_at)
        .bind(&v.updated_by)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "catalog version {} changed while locked",
            v.id
        )))
    }
}

pub async fn catalog_version_publish(
    tx: &mut Tx,
    v: &CatalogVersion,
    compiled: &CompiledCatalog,
    expected_version: i64,
) -> Result<(), Error> {
    let done = timed(
        "catalog_version_publish",
        sqlx::query(
            "UPDATE catalog_version SET status = 'published', content_hash = $4, compiled = $5, version = $6, \
             updated_at = $7, updated_by = $8, published_at = $7, published_by = $8 \
             WHERE tenant_id = $1 AND catalog_version_id = $2 AND version = $3 AND status = 'draft'",
        )
        .bind(v.tenant.as_str())
        .bind(v.id)
        .bind(expected_version)
        .bind(&compiled.content_hash)
        .bind(to_json(compiled)?)
        .bind(v.version)
        .bind(v.updated_at)
        .bind(&v.updated_by)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "catalog version {} changed while locked",
            v.id
        )))
    }
}

/// Writes the search rows of every offering of a version being published, in one statement.
pub async fn catalog_offering_insert_all(
    tx: &mut Tx,
    tenant: &TenantId,
    version_id: Uuid,
    doc: &CatalogDocument,
) -> Result<(), Error> {
    let o = &doc.offerings;
    let arr = |v: &Vec<String>| {
        format!(
            "{{{}}}",
            v.iter()
                .map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect::<Vec<_>>()
                .join(",")
        )
    };
    timed(
        "catalog_offering_insert_all",
        sqlx::query(
            "INSERT INTO catalog_offering (tenant_id, catalog_version_id, code, name, description, kind, markets, \
             channels, segments, effective_from, effective_to, sellable) \
             SELECT $1, $2, code, name, description, kind, markets::text[], channels::text[], segments::text[], \
                    effective_from, effective_to, sellable \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], \
                         $10::date[], $11::date[], $12::bool[]) \
                  AS t(code, name, description, kind, markets, channels, segments, effective_from, effective_to, sellable)",
        )
        .bind(tenant.as_str())
        .bind(version_id)
        .bind(o.iter().map(|x| x.code.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.name.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.description.clone()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| format!("{:?}", x.kind).to_lowercase()).collect::<Vec<_>>())
        .bind(o.iter().map(|x| arr(&x.markets)).collect::<Vec<_>>())
        .bind(o.iter().map(|x| arr(&x.channels)).collect::<Vec<_>>())
        .bind(o.iter().map(|x| arr(&x.segments)).collect::<Vec<_>>())
        .bind(o.iter().map(|x| x.effective_from).collect::<Vec<Option<NaiveDate>>>())
        .bind(o.iter().map(|x| x.effective_to).collect::<Vec<Option<NaiveDate>>>())
        .bind(o.iter().map(|x| x.sellable).collect::<Vec<_>>())
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

pub async fn catalog_version_document(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<serde_json::Value>, Error> {
    timed(
        "catalog_version_document",
        sqlx::query_scalar(
            "SELECT document FROM catalog_version WHERE tenant_id = $1 AND catalog_version_id = $2",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// The compiled form of a published version; `None` for drafts and unknown ids.
pub async fn catalog_version_compiled(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<CompiledCatalog>, Error> {
    let raw: Option<Option<serde_json::Value>> = timed(
        "catalog_version_compiled",
        sqlx::query_scalar(
            "SELECT compiled FROM catalog_version WHERE tenant_id = $1 AND catalog_version_id = $2",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    raw.flatten()
        .map(|v| {
            serde_json::from_value(v)
                .map_err(|e| Error::internal(format!("stored compiled catalog: {e}")))
        })
        .transpose()
}

pub async fn catalog_version_list(
    tx: &mut Tx,
    tenant: &TenantId,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CatalogVersion>, Error> {
    let rows: Vec<Row> = timed(
        "catalog_version_list",
        sqlx::query_as(&format!(
            "SELECT {META} FROM catalog_version WHERE tenant_id = $1 AND ($2::uuid IS NULL OR catalog_version_id > $2) \
             ORDER BY catalog_version_id LIMIT $3"
        ))
        .bind(tenant.as_str())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    rows.into_iter().map(CatalogVersion::try_from).collect()
}

pub async fn catalog_activation_insert(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
    effective_from: DateTime<Utc>,
    at: DateTime<Utc>,
    by: &str,
) -> Result<(), Error> {
    timed(
        "catalog_activation_insert",
        sqlx::query(
            "INSERT INTO catalog_activation (tenant_id, effective_from, catalog_version_id, activated_at, activated_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(tenant.as_str())
        .bind(effective_from)
        .bind(id)
        .bind(at)
        .bind(by)
        .execute(&mut **tx),
    )
    .await
    .map_err(|e| {
        if violated_unique_constraint(&e) == Some("catalog_activation_pkey") {
            Error::conflict(format!("another version is already activated from {effective_from}"))
        } else {
            db_error(e)
        }
    })?;
    Ok(())
}

/// The version in force at `at`: the latest activation not after it.
pub async fn catalog_active_version(
    tx: &mut Tx,
    tenant: &TenantId,
    at: DateTime<Utc>,
) -> Result<Option<Uuid>, Error> {
    timed(
        "catalog_active_version",
        sqlx::query_scalar(
            "SELECT catalog_version_id FROM catalog_activation WHERE tenant_id = $1 AND effective_from <= $2 \
             ORDER BY effective_from DESC LIMIT 1",
        )
        .bind(tenant.as_str())
        .bind(at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// Every activation of the tenant, `(effective_from, version)` in ascending order.
pub async fn catalog_activation_schedule(
    tx: &mut Tx,
    tenant: &TenantId,
) -> Result<Vec<(DateTime<Utc>, Uuid)>, Error> {
    timed(
        "catalog_activation_schedule",
        sqlx::query_as(
            "SELECT effective_from, catalog_version_id FROM catalog_activation WHERE tenant_id = $1 \
             ORDER BY effective_from",
        )
        .bind(tenant.as_str())
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// Filters of the offering search; each backed by the projection's indexes.
#[derive(Debug, Clone, Default)]
pub struct OfferingSearch {
    /// Words that must all appear in code, name or description (prefix match on the last one).
    pub text: Option<String>,
    pub market: Option<String>,
    pub channel: Option<String>,
    pub segment: Option<String>,
    pub date: Option<NaiveDate>,
    pub sellable_only: bool,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct OfferingHit {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub kind: String,
    pub markets: Vec<String>,
    pub channels: Vec<String>,
    pub segments: Vec<String>,
    pub effective_from: Option<NaiveDate>,
    pub effective_to: Option<NaiveDate>,
    pub sellable: bool,
}

/// A `to_tsquery('simple', ...)` text from free words: each word quoted, the last as a prefix.
fn ts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let n = words.len();
    (n > 0).then(|| {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| {
                if i + 1 == n {
                    format!("'{w}':*")
                } else {
                    format!("'{w}'")
                }
            })
            .collect::<Vec<_>>()
            .join(" & ")
    })
}

fn search_query<'q>(
    select: &str,
    tenant: &'q TenantId,
    version: Uuid,
    s: &'q OfferingSearch,
    after: Option<&'q str>,
    limit: i64,
) -> QueryBuilder<'q, Postgres> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "{select} code, name, description, kind, markets, channels, segments, effective_from, effective_to, sellable \
         FROM catalog_offering WHERE tenant_id = "
    ));
    q.push_bind(tenant.as_str())
        .push(" AND catalog_version_id = ")
        .push_bind(version);
    if let Some(tsq) = s.text.as_deref().and_then(ts_query) {
        q.push(" AND search @@ to_tsquery('simple', ")
            .push_bind(tsq)
            .push(")");
    }
    for (column, value) in [
        ("markets", &s.market),
        ("channels", &s.channel),
        ("segments", &s.segment),
    ] {
        if let Some(v) = value {
            q.push(format!(" AND (cardinality({column}) = 0 OR "))
                .push_bind(v.clone())
                .push(format!(" = ANY({column}))"));
        }
    }
    if let Some(d) = s.date {
        q.push(" AND (effective_from IS NULL OR effective_from <= ")
            .push_bind(d)
            .push(")");
        q.push(" AND (effective_to IS NULL OR effective_to > ")
            .push_bind(d)
            .push(")");
    }
    if s.sellable_only {
        q.push(" AND sellable");
    }
    if let Some(a) = after {
        q.push(" AND code > ").push_bind(a);
    }
    q.push(" ORDER BY code LIMIT ").push_bind(limit);
    q
}

pub async fn catalog_offering_search(
    tx: &mut Tx,
    tenant: &TenantId,
    version: Uuid,
    s: &OfferingSearch,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<OfferingHit>, Error> {
    let mut q = search_query("SELECT", tenant, version, s, after, limit);
    timed(
        "catalog_offering_search",
        q.build_query_as().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// The plan of [`catalog_offering_search`] for these arguments: what plan-baseline tests check.
pub async fn catalog_offering_search_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    version: Uuid,
    s: &OfferingSearch,
    after: Option<&str>,
    limit: i64,
) -> Result<String, Error> {
    let mut q = search_query("EXPLAIN SELECT", tenant, version, s, after, limit);
    let lines: Vec<String> = timed(
        "catalog_offering_search_explain",
        q.build_query_scalar().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(lines.join("\n"))
}

pub async fn catalog_version_find_by_label(
    tx: &mut Tx,
    tenant: &TenantId,
    label: &str,
) -> Result<Option<CatalogVersion>, Error> {
    let row: Option<Row> = timed(
        "catalog_version_find_by_label",
        sqlx::query_as(&format!(
            "SELECT {META} FROM catalog_version WHERE tenant_id = $1 AND label = $2"
        ))
        .bind(tenant.as_str())
        .bind(label)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.map(CatalogVersion::try_from).transpose()
}

pub async fn catalog_activation_exists(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<bool, Error> {
    timed(
        "catalog_activation_exists",
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM catalog_activation WHERE tenant_id = $1 AND catalog_version_id = $2)")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)
}
