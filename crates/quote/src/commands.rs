//! Quote commands in the caller's tenant transaction: create (pinning the catalog version in
//! force), add and remove items (each configuration validated against that version), price (the
//! pricing engine's snapshot and hash). Every change checks the lifecycle and the version the
//! caller saw, and writes its audit record and event.

use chrono::{DateTime, NaiveDate, Utc};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_catalog::CompiledCatalog;
use cpq_configuration::{validate, ConfigItem, Context};
use cpq_core::{Error, FieldError, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use cpq_pricing::{price as price_items, PriceItem, PricingContext};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::lifecycle::{apply, Action, Status};

pub const AGGREGATE: &str = "quote";

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QuoteItem {
    pub line_no: i32,
    pub configuration: Value,
    pub manual_discount_percent: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    pub id: Uuid,
    pub customer_account_id: Uuid,
    pub catalog_version_id: Uuid,
    pub market: String,
    pub channel: String,
    pub segment: String,
    pub currency: String,
    pub valid_until: NaiveDate,
    /// Non-standard terms, if any: they need the approval levels the policy gives them.
    pub special_terms: Option<String>,
    pub owner: String,
    pub status: Status,
    pub revision_no: i32,
    pub price_stale: bool,
    pub snapshot_hash: Option<String>,
    pub price_snapshot: Option<Value>,
    /// What the approval policy decided at submission: levels and reasons.
    pub approval_decision: Option<Value>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub accepted_by: Option<String>,
    /// The approval process instance of the current submission, if it needed approval.
    pub approval_instance_id: Option<Uuid>,
    /// The order this quote became.
    pub order_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
    pub items: Vec<QuoteItem>,
}

fn status_from(raw: &str) -> Result<Status, Error> {
    serde_json::from_value(Value::String(raw.to_owned()))
        .map_err(|_| Error::internal(format!("stored quote status {raw}")))
}

pub(crate) fn status_text(s: Status) -> Result<String, Error> {
    match serde_json::to_value(s) {
        Ok(Value::String(v)) => Ok(v),
        _ => Err(Error::internal("quote status does not serialize")),
    }
}

#[derive(sqlx::FromRow)]
struct HeaderRow {
    quote_id: Uuid,
    customer_account_id: Uuid,
    catalog_version_id: Uuid,
    market: String,
    channel: String,
    segment: String,
    currency: String,
    valid_until: NaiveDate,
    special_terms: Option<String>,
    owner: String,
    status: String,
    revision_no: i32,
    price_stale: bool,
    snapshot_hash: Option<String>,
    price_snapshot: Option<Value>,
    approval_decision: Option<Value>,
    accepted_at: Option<DateTime<Utc>>,
    accepted_by: Option<String>,
    approval_instance_id: Option<Uuid>,
    order_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    updated_by: String,
}

/// The quote and its current revision's items; `lock` takes the row lock (command path).
pub async fn quote_fetch(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
    lock: bool,
) -> Result<Quote, Error> {
    let sql = format!(
        "SELECT quote_id, customer_account_id, catalog_version_id, market, channel, segment, currency, valid_until, special_terms, owner, status, \
         revision_no, price_stale, snapshot_hash, price_snapshot, approval_decision, accepted_at, accepted_by, approval_instance_id, order_id, version, created_at, \
         updated_at, updated_by \
         FROM quote WHERE tenant_id = $1 AND quote_id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    let row: Option<HeaderRow> = timed(
        if lock {
            "quote_fetch_for_update"
        } else {
            "quote_fetch"
        },
        sqlx::query_as(&sql)
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let r = row.ok_or_else(|| Error::not_found("quote", id))?;
    let items: Vec<(i32, Value, Option<Decimal>)> = timed(
        "quote_item_list",
        sqlx::query_as("SELECT line_no, configuration, manual_discount_percent FROM quote_item WHERE quote_id = $1 AND revision_no = $2 ORDER BY line_no")
            .bind(id)
            .bind(r.revision_no)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(Quote {
        id: r.quote_id,
        customer_account_id: r.customer_account_id,
        catalog_version_id: r.catalog_version_id,
        market: r.market,
        channel: r.channel,
        segment: r.segment,
        currency: r.currency,
        valid_until: r.valid_until,
        special_terms: r.special_terms,
        owner: r.owner,
        status: status_from(&r.status)?,
        revision_no: r.revision_no,
        price_stale: r.price_stale,
        snapshot_hash: r.snapshot_hash,
        price_snapshot: r.price_snapshot,
        approval_decision: r.approval_decision,
        accepted_at: r.accepted_at,
        accepted_by: r.accepted_by,
        approval_instance_id: r.approval_instance_id,
        order_id: r.order_id,
        version: r.version,
        created_at: r.created_at,
        updated_at: r.updated_at,
        updated_by: r.updated_by,
        items: items
            .into_iter()
            .map(
                |(line_no, configuration, manual_discount_percent)| QuoteItem {
                    line_no,
                    configuration,
                    manual_discount_percent,
                },
            )
            .collect(),
    })
}

pub(crate) async fn event(
    tx: &mut Tx,
    meta: &CommandMeta,
    action: &'static str,
    event_type: &'static str,
    q: &Quote,
    payload: Value,
) -> Result<(), Error> {
    record(
        tx,
        meta,
        &AuditEntry {
            action,
            aggregate_type: AGGREGATE,
            aggregate_id: q.id,
            before: None,
            after: Some(payload.clone()),
            reason: None,
        },
        &[NewEvent {
            event_type,
            schema_version: 1,
            aggregate_type: AGGREGATE,
            aggregate_id: q.id,
            payload,
        }],
    )
    .await
    .map(|_| ())
}

#[derive(Debug, Clone)]
pub struct NewQuote {
    pub customer_account_id: Uuid,
    pub channel: String,
    pub valid_until: NaiveDate,
    pub special_terms: Option<String>,
}

/// Creates a draft quote for an active customer account, pinned to the catalog version in force.
pub async fn create(tx: &mut Tx, meta: &CommandMeta, input: &NewQuote) -> Result<Quote, Error> {
    let account = cpq_customer_account(tx, &meta.tenant, input.customer_account_id).await?;
    if account.3 != "active" {
        return Err(Error::conflict(format!(
            "customer account {} is {}; quotes are for active accounts",
            input.customer_account_id, account.3
        )));
    }
    if input.valid_until < meta.occurred_at.date_naive() {
        return Err(Error::validation(vec![FieldError::new(
            "valid_until",
            "in-the-past",
            "valid_until must not be in the past",
        )]));
    }
    let version = cpq_catalog::store::catalog_active_version(tx, &meta.tenant, meta.occurred_at)
        .await?
        .ok_or_else(|| Error::conflict("no catalog version is in force: quotes need one"))?;
    let id = Uuid::now_v7();
    timed(
        "quote_insert",
        sqlx::query(
            "INSERT INTO quote (quote_id, tenant_id, customer_account_id, catalog_version_id, market, channel, segment, currency, valid_until, \
             owner, status, revision_no, price_stale, version, created_at, updated_at, updated_by, special_terms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'draft', 1, false, 1, $11, $11, $10, $12)",
        )
        .bind(id)
        .bind(meta.tenant.as_str())
        .bind(input.customer_account_id)
        .bind(version)
        .bind(&account.0)
        .bind(&input.channel)
        .bind(&account.1)
        .bind(&account.2)
        .bind(input.valid_until)
        .bind(&meta.actor_subject)
        .bind(meta.occurred_at)
        .bind(terms_text(input.special_terms.as_deref())?)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let q = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(tx, meta, "quote.create", "quote.created", &q, json!({ "quote_id": id, "customer_account_id": q.customer_account_id, "catalog_version_id": version })).await?;
    Ok(q)
}

/// (market, segment, currency, status) of an account.
async fn cpq_customer_account(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<(String, String, String, String), Error> {
    let row: Option<(String, String, String, String)> = timed(
        "quote_customer_account_fetch",
        sqlx::query_as("SELECT market, segment, currency, status FROM customer_account WHERE tenant_id = $1 AND customer_account_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.ok_or_else(|| {
        Error::validation(vec![FieldError::new(
            "customer_account_id",
            "not-found",
            format!("customer account {id} does not exist"),
        )])
    })
}

/// Locks the quote, checks the version the caller saw, and that `action` is allowed.
pub(crate) async fn lock_for(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    action: Action,
) -> Result<(Quote, Status), Error> {
    let q = quote_fetch(tx, &meta.tenant, id, true).await?;
    if q.version != expected {
        return Err(Error::PreconditionFailed {
            current: q.version.to_string(),
        });
    }
    let next = apply(q.status, action).map_err(|r| Error::conflict(r.to_string()))?;
    Ok((q, next))
}

pub(crate) async fn touch(
    tx: &mut Tx,
    meta: &CommandMeta,
    q: &Quote,
    status: Status,
    price_stale: bool,
) -> Result<(), Error> {
    timed(
        "quote_update_status",
        sqlx::query("UPDATE quote SET status = $2, price_stale = $3, version = version + 1, updated_at = $4, updated_by = $5 WHERE quote_id = $1")
            .bind(q.id)
            .bind(status_text(status)?)
            .bind(price_stale)
            .bind(meta.occurred_at)
            .bind(&meta.actor_subject)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

fn context(q: &Quote, date: NaiveDate) -> Context {
    Context {
        market: Some(q.market.clone()),
        channel: Some(q.channel.clone()),
        segment: Some(q.segment.clone()),
        date,
    }
}

/// Special terms as stored: trimmed, empty is none, at most 4,000 characters.
fn terms_text(raw: Option<&str>) -> Result<Option<String>, Error> {
    let t = raw.map(str::trim).filter(|t| !t.is_empty());
    if t.is_some_and(|t| t.chars().count() > 4000) {
        return Err(Error::validation(vec![FieldError::new(
            "special_terms",
            "too-long",
            "special terms are at most 4,000 characters",
        )]));
    }
    Ok(t.map(str::to_owned))
}

/// A line's configuration must be valid in the quote's catalog version (every violation reported)
/// and its manual discount within 0 to 100 percent.
fn check_line(
    q: &Quote,
    catalog: &CompiledCatalog,
    meta: &CommandMeta,
    config: &ConfigItem,
    discount: Option<Decimal>,
) -> Result<(), Error> {
    let v = validate(catalog, &context(q, meta.occurred_at.date_naive()), config);
    if !v.valid {
        return Err(Error::validation(
            v.violations
                .into_iter()
                .map(|x| {
                    FieldError::new(
                        if x.path.is_empty() {
                            "configuration".to_owned()
                        } else {
                            format!("configuration.{}", x.path)
                        },
                        &x.rule,
                        x.message,
                    )
                })
                .collect(),
        ));
    }
    if discount.is_some_and(|d| d.is_sign_negative() || d > Decimal::ONE_HUNDRED) {
        return Err(Error::validation(vec![FieldError::new(
            "manual_discount_percent",
            "out-of-range",
            "a manual discount is 0 to 100 percent",
        )]));
    }
    Ok(())
}

/// Adds a line; its configuration must be valid in the quote's catalog version (every violation
/// reported, nothing written otherwise). A priced quote's price becomes stale.
pub async fn add_item(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    catalog: &CompiledCatalog,
    config: &ConfigItem,
    discount: Option<Decimal>,
) -> Result<Quote, Error> {
    let (q, next) = lock_for(tx, meta, id, expected, Action::EditItems).await?;
    check_line(&q, catalog, meta, config, discount)?;
    let line = q.items.iter().map(|i| i.line_no).max().unwrap_or(0) + 1;
    timed(
        "quote_item_insert",
        sqlx::query("INSERT INTO quote_item (quote_id, revision_no, line_no, tenant_id, configuration, manual_discount_percent, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(id)
            .bind(q.revision_no)
            .bind(line)
            .bind(meta.tenant.as_str())
            .bind(serde_json::to_value(config).map_err(Error::internal)?)
            .bind(discount)
            .bind(meta.occurred_at)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, q.snapshot_hash.is_some()).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.add-item",
        "quote.item-added",
        &updated,
        json!({ "quote_id": id, "line_no": line, "offering": config.offering }),
    )
    .await?;
    Ok(updated)
}

/// Replaces a line's configuration and discount, validated as when it was added.
#[allow(clippy::too_many_arguments)]
pub async fn change_item(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    line_no: i32,
    catalog: &CompiledCatalog,
    config: &ConfigItem,
    discount: Option<Decimal>,
) -> Result<Quote, Error> {
    let (q, next) = lock_for(tx, meta, id, expected, Action::EditItems).await?;
    if !q.items.iter().any(|i| i.line_no == line_no) {
        return Err(Error::not_found("quote line", line_no));
    }
    check_line(&q, catalog, meta, config, discount)?;
    timed(
        "quote_item_update",
        sqlx::query("UPDATE quote_item SET configuration = $4, manual_discount_percent = $5 WHERE quote_id = $1 AND revision_no = $2 AND line_no = $3")
            .bind(id)
            .bind(q.revision_no)
            .bind(line_no)
            .bind(serde_json::to_value(config).map_err(Error::internal)?)
            .bind(discount)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, q.snapshot_hash.is_some()).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.change-item",
        "quote.item-changed",
        &updated,
        json!({ "quote_id": id, "line_no": line_no, "offering": config.offering }),
    )
    .await?;
    Ok(updated)
}

/// Sets (or with `None` clears) the quote's special terms; like an item edit, it needs a new
/// price before submission, and the approval policy sees the terms at submission.
pub async fn set_terms(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    terms: Option<&str>,
) -> Result<Quote, Error> {
    let terms = terms_text(terms)?;
    let (q, next) = lock_for(tx, meta, id, expected, Action::EditItems).await?;
    timed(
        "quote_set_terms",
        sqlx::query("UPDATE quote SET special_terms = $2 WHERE quote_id = $1")
            .bind(id)
            .bind(&terms)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, q.snapshot_hash.is_some()).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.set-terms",
        "quote.terms-changed",
        &updated,
        json!({ "quote_id": id, "special_terms": terms }),
    )
    .await?;
    Ok(updated)
}

pub async fn remove_item(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    line_no: i32,
) -> Result<Quote, Error> {
    let (q, next) = lock_for(tx, meta, id, expected, Action::EditItems).await?;
    let done = timed(
        "quote_item_delete",
        sqlx::query(
            "DELETE FROM quote_item WHERE quote_id = $1 AND revision_no = $2 AND line_no = $3",
        )
        .bind(id)
        .bind(q.revision_no)
        .bind(line_no)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Err(Error::not_found("quote line", line_no));
    }
    touch(tx, meta, &q, next, q.snapshot_hash.is_some()).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.remove-item",
        "quote.item-removed",
        &updated,
        json!({ "quote_id": id, "line_no": line_no }),
    )
    .await?;
    Ok(updated)
}

/// Prices the current items with the quote's catalog version; stores the snapshot and its hash.
pub async fn price(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    catalog: &CompiledCatalog,
) -> Result<Quote, Error> {
    let (q, next) = lock_for(tx, meta, id, expected, Action::Price).await?;
    if q.items.is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "items",
            "required",
            "a quote needs at least one line to be priced",
        )]));
    }
    let date = meta.occurred_at.date_naive();
    let mut items = Vec::with_capacity(q.items.len());
    for i in &q.items {
        let config: ConfigItem = serde_json::from_value(i.configuration.clone())
            .map_err(|e| Error::internal(format!("stored configuration: {e}")))?;
        let v = validate(catalog, &context(&q, date), &config);
        if !v.valid {
            return Err(Error::conflict(format!(
                "line {} is no longer valid in this catalog version; change it before pricing",
                i.line_no
            )));
        }
        items.push(PriceItem {
            line_id: format!("{:04}", i.line_no),
            configured: v.configuration,
            manual_discount_percent: i.manual_discount_percent,
        });
    }
    let ctx = PricingContext {
        market: q.market.clone(),
        channel: q.channel.clone(),
        segment: q.segment.clone(),
        currency: q.currency.clone(),
        date,
        customer: serde_json::Map::new(),
    };
    let snapshot = price_items(catalog, &ctx, &items).map_err(|e| {
        Error::validation(vec![FieldError::new(e.field(), e.code(), e.to_string())])
    })?;
    timed(
        "quote_store_price",
        sqlx::query("UPDATE quote SET price_snapshot = $2, snapshot_hash = $3 WHERE quote_id = $1")
            .bind(id)
            .bind(serde_json::to_value(&snapshot).map_err(Error::internal)?)
            .bind(&snapshot.hash)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, false).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(
        tx,
        meta,
        "quote.price",
        "quote.priced",
        &updated,
        json!({ "quote_id": id, "snapshot_hash": snapshot.hash, "totals": snapshot.totals }),
    )
    .await?;
    Ok(updated)
}

/// Worklist filters; `status` leads the index `quote_worklist (tenant_id, status, updated_at DESC,
/// quote_id DESC)`.
#[derive(Debug, Clone, Default)]
pub struct Worklist {
    pub status: Option<Status>,
    pub owner: Option<String>,
    pub customer_account_id: Option<Uuid>,
    pub updated_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct QuoteSummary {
    pub quote_id: Uuid,
    pub customer_account_id: Uuid,
    pub status: String,
    pub owner: String,
    pub currency: String,
    pub snapshot_hash: Option<String>,
    pub price_stale: bool,
    pub valid_until: NaiveDate,
    pub updated_at: DateTime<Utc>,
}

fn worklist_query<'q>(
    select: &str,
    tenant: &'q TenantId,
    w: &'q Worklist,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<sqlx::QueryBuilder<'q, sqlx::Postgres>, Error> {
    let mut q = sqlx::QueryBuilder::new(format!(
        "{select} quote_id, customer_account_id, status, owner, currency, snapshot_hash, price_stale, valid_until, updated_at \
         FROM quote WHERE tenant_id = "
    ));
    q.push_bind(tenant.as_str());
    if let Some(s) = w.status {
        q.push(" AND status = ").push_bind(status_text(s)?);
    }
    if let Some(o) = &w.owner {
        q.push(" AND owner = ").push_bind(o.as_str());
    }
    if let Some(c) = w.customer_account_id {
        q.push(" AND customer_account_id = ").push_bind(c);
    }
    if let Some(b) = w.updated_before {
        q.push(" AND updated_at < ").push_bind(b);
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
    Ok(q)
}

/// One page of the worklist, newest change first, after the (updated_at, id) key `after`.
pub async fn quote_worklist(
    tx: &mut Tx,
    tenant: &TenantId,
    w: &Worklist,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<QuoteSummary>, Error> {
    let mut q = worklist_query("SELECT", tenant, w, after, limit)?;
    timed("quote_worklist", q.build_query_as().fetch_all(&mut **tx))
        .await
        .map_err(db_error)
}

/// The plan of [`quote_worklist`]: what the plan-baseline test reads.
pub async fn quote_worklist_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    w: &Worklist,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<String, Error> {
    let mut q = worklist_query("EXPLAIN SELECT", tenant, w, after, limit)?;
    let lines: Vec<String> = timed(
        "quote_worklist_explain",
        q.build_query_scalar().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(lines.join("\n"))
}

/// Cancels an open quote, with a reason kept in the audit trail.
pub async fn cancel(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    reason: &str,
) -> Result<Quote, Error> {
    if reason.trim().is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "reason",
            "required",
            "cancelling a quote needs a reason",
        )]));
    }
    let (q, next) = lock_for(tx, meta, id, expected, Action::Cancel).await?;
    crate::approvals::end_approval(tx, meta, &q).await?;
    touch(tx, meta, &q, next, q.price_stale).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "quote.cancel",
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            before: None,
            after: Some(json!({ "status": "cancelled" })),
            reason: Some(reason.trim().to_owned()),
        },
        &[NewEvent {
            event_type: "quote.cancelled",
            schema_version: 1,
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            payload: json!({ "quote_id": id, "reason": reason.trim() }),
        }],
    )
    .await?;
    Ok(updated)
}
