//! Every SQL statement of the quote crate, each through `timed` under a resource-first name that
//! shows up in metrics and in the statement budgets. A quote is read with its current revision's
//! lines in one statement (the lines aggregated in a subquery), and every write of the quote
//! row answers with the quote as written (`RETURNING`), so no command re-reads what it has just
//! written, and each change of the quote is one UPDATE (status, version and the fields the
//! command sets). The approval statements (policy versions, tasks, decisions) are its
//! `approvals` part, re-exported here. Decisions are [`crate::model`]'s, not this module's.

use chrono::{DateTime, NaiveDate, Utc};
use cpq_core::{Error, FieldError, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use crate::model::lifecycle::Status;
use crate::model::{status_from, status_text, AccountTerms, Quote, QuoteItem};

mod approvals;
pub mod search;

pub use approvals::{
    approval_policy_current, approval_policy_insert, approval_policy_lock, approval_task_list,
    quote_approval_count, quote_approval_history, quote_approval_insert, ApprovalInsert,
    ApprovalRecord, ApprovalTask,
};

/// The quote's columns and its current revision's lines, for `SELECT ... FROM quote` and for
/// `RETURNING` (there the subquery sees the lines written earlier in the transaction).
const QUOTE_COLUMNS: &str = "quote_id, customer_account_id, catalog_version_id, market, channel, segment, currency, valid_until, special_terms, owner, status, \
     revision_no, price_stale, snapshot_hash, price_snapshot, approval_decision, accepted_at, accepted_by, approval_instance_id, order_id, version, created_at, \
     updated_at, updated_by, \
     (SELECT coalesce(jsonb_agg(jsonb_build_object('line_no', i.line_no, 'configuration', i.configuration, \
        'manual_discount_percent', i.manual_discount_percent::text) ORDER BY i.line_no), '[]'::jsonb) \
      FROM quote_item i WHERE i.quote_id = quote.quote_id AND i.revision_no = quote.revision_no) AS items";

#[derive(Deserialize)]
struct ItemRow {
    line_no: i32,
    configuration: Value,
    manual_discount_percent: Option<Decimal>,
}

#[derive(sqlx::FromRow)]
struct QuoteRow {
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
    items: Json<Vec<ItemRow>>,
}

impl QuoteRow {
    fn into_quote(self) -> Result<Quote, Error> {
        Ok(Quote {
            id: self.quote_id,
            customer_account_id: self.customer_account_id,
            catalog_version_id: self.catalog_version_id,
            market: self.market,
            channel: self.channel,
            segment: self.segment,
            currency: self.currency,
            valid_until: self.valid_until,
            special_terms: self.special_terms,
            owner: self.owner,
            status: status_from(&self.status)?,
            revision_no: self.revision_no,
            price_stale: self.price_stale,
            snapshot_hash: self.snapshot_hash,
            price_snapshot: self.price_snapshot,
            approval_decision: self.approval_decision,
            accepted_at: self.accepted_at,
            accepted_by: self.accepted_by,
            approval_instance_id: self.approval_instance_id,
            order_id: self.order_id,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
            items: self
                .items
                .0
                .into_iter()
                .map(|i| QuoteItem {
                    line_no: i.line_no,
                    configuration: i.configuration,
                    manual_discount_percent: i.manual_discount_percent,
                })
                .collect(),
        })
    }
}

fn found(row: Option<QuoteRow>, id: Uuid) -> Result<Quote, Error> {
    row.ok_or_else(|| Error::not_found("quote", id))?
        .into_quote()
}

/// The quote and its current revision's lines (read path).
pub async fn quote_fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<Quote, Error> {
    let row: Option<QuoteRow> = timed(
        "quote_fetch",
        sqlx::query_as(&format!(
            "SELECT {QUOTE_COLUMNS} FROM quote WHERE tenant_id = $1 AND quote_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    found(row, id)
}

/// The quote and its current revision's lines, with the quote's row lock (command path).
pub async fn quote_fetch_for_update(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Quote, Error> {
    let row: Option<QuoteRow> = timed(
        "quote_fetch_for_update",
        sqlx::query_as(&format!(
            "SELECT {QUOTE_COLUMNS} FROM quote WHERE tenant_id = $1 AND quote_id = $2 FOR UPDATE"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    found(row, id)
}

/// The quote whose current approval process is `instance`, locked; `None` if there is none.
pub async fn quote_fetch_for_update_by_approval_instance(
    tx: &mut Tx,
    tenant: &TenantId,
    instance: Uuid,
) -> Result<Option<Quote>, Error> {
    let row: Option<QuoteRow> = timed(
        "quote_fetch_for_update_by_approval_instance",
        sqlx::query_as(&format!(
            "SELECT {QUOTE_COLUMNS} FROM quote WHERE tenant_id = $1 AND approval_instance_id = $2 FOR UPDATE"
        ))
        .bind(tenant.as_str())
        .bind(instance)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.map(QuoteRow::into_quote).transpose()
}

/// The catalog version a quote is pinned to (it never changes).
pub async fn quote_catalog_version(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Uuid, Error> {
    let row: Option<Uuid> = timed(
        "quote_catalog_version",
        sqlx::query_scalar(
            "SELECT catalog_version_id FROM quote WHERE tenant_id = $1 AND quote_id = $2",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.ok_or_else(|| Error::not_found("quote", id))
}

/// Whether the quote exists (not found otherwise).
pub async fn quote_exists(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<(), Error> {
    let found: Option<i32> = timed(
        "quote_exists",
        sqlx::query_scalar("SELECT 1 FROM quote WHERE tenant_id = $1 AND quote_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    found
        .map(|_| ())
        .ok_or_else(|| Error::not_found("quote", id))
}

#[derive(sqlx::FromRow)]
struct AccountRow {
    market: String,
    segment: String,
    currency: String,
    status: String,
}

/// What a new quote takes from its customer account; a validation problem if there is none.
pub async fn customer_account_fetch_for_quote(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<AccountTerms, Error> {
    let row: Option<AccountRow> = timed(
        "customer_account_fetch_for_quote",
        sqlx::query_as("SELECT market, segment, currency, status FROM customer_account WHERE tenant_id = $1 AND customer_account_id = $2")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let r = row.ok_or_else(|| {
        Error::validation(vec![FieldError::new(
            "customer_account_id",
            "not-found",
            format!("customer account {id} does not exist"),
        )])
    })?;
    Ok(AccountTerms {
        market: r.market,
        segment: r.segment,
        currency: r.currency,
        status: r.status,
    })
}

/// A new draft quote, as written.
pub struct QuoteInsert<'a> {
    pub id: Uuid,
    pub tenant: &'a TenantId,
    pub customer_account_id: Uuid,
    pub catalog_version_id: Uuid,
    pub account: &'a AccountTerms,
    pub channel: &'a str,
    pub valid_until: NaiveDate,
    pub special_terms: Option<&'a str>,
    pub owner: &'a str,
    pub at: DateTime<Utc>,
}

pub async fn quote_insert(tx: &mut Tx, q: &QuoteInsert<'_>) -> Result<Quote, Error> {
    let row: QuoteRow = timed(
        "quote_insert",
        sqlx::query_as(&format!(
            "INSERT INTO quote (quote_id, tenant_id, customer_account_id, catalog_version_id, market, channel, segment, currency, valid_until, \
             owner, status, revision_no, price_stale, version, created_at, updated_at, updated_by, special_terms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'draft', 1, false, 1, $11, $11, $10, $12) RETURNING {QUOTE_COLUMNS}",
        ))
        .bind(q.id)
        .bind(q.tenant.as_str())
        .bind(q.customer_account_id)
        .bind(q.catalog_version_id)
        .bind(&q.account.market)
        .bind(q.channel)
        .bind(&q.account.segment)
        .bind(&q.account.currency)
        .bind(q.valid_until)
        .bind(q.owner)
        .bind(q.at)
        .bind(q.special_terms)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.into_quote()
}

/// Every change of the quote row: the status it moves to, whether its price is stale, and who
/// changed it when; the version goes up by one.
pub struct QuoteChange<'a> {
    pub id: Uuid,
    pub status: Status,
    pub price_stale: bool,
    pub at: DateTime<Utc>,
    pub by: &'a str,
}

/// The fields a change sets besides the status.
pub enum QuoteFields<'a> {
    None,
    Terms(Option<&'a str>),
    Price {
        snapshot: &'a Value,
        hash: &'a str,
    },
    Submission {
        decision: &'a Value,
        approval_instance_id: Option<Uuid>,
    },
    Acceptance,
}

/// Moves the quote (and sets the command's fields) in one UPDATE; answers with the quote as
/// written.
pub async fn quote_update(
    tx: &mut Tx,
    change: &QuoteChange<'_>,
    fields: QuoteFields<'_>,
) -> Result<Quote, Error> {
    const SET: &str = "UPDATE quote SET status = $2, price_stale = $3, version = version + 1, updated_at = $4, updated_by = $5";
    let (name, sql) = match fields {
        QuoteFields::None => ("quote_update_status", format!("{SET} WHERE quote_id = $1")),
        QuoteFields::Terms(_) => (
            "quote_update_terms",
            format!("{SET}, special_terms = $6 WHERE quote_id = $1"),
        ),
        QuoteFields::Price { .. } => (
            "quote_update_price",
            format!("{SET}, price_snapshot = $6, snapshot_hash = $7 WHERE quote_id = $1"),
        ),
        QuoteFields::Submission { .. } => (
            "quote_update_submission",
            format!("{SET}, approval_decision = $6, approval_instance_id = $7 WHERE quote_id = $1"),
        ),
        QuoteFields::Acceptance => (
            "quote_update_acceptance",
            format!("{SET}, accepted_at = $4, accepted_by = $5 WHERE quote_id = $1"),
        ),
    };
    let sql = format!("{sql} RETURNING {QUOTE_COLUMNS}");
    let q = sqlx::query_as(&sql)
        .bind(change.id)
        .bind(status_text(change.status)?)
        .bind(change.price_stale)
        .bind(change.at)
        .bind(change.by);
    let q = match fields {
        QuoteFields::None | QuoteFields::Acceptance => q,
        QuoteFields::Terms(t) => q.bind(t),
        QuoteFields::Price { snapshot, hash } => q.bind(snapshot).bind(hash),
        QuoteFields::Submission {
            decision,
            approval_instance_id,
        } => q.bind(decision).bind(approval_instance_id),
    };
    let row: QuoteRow = timed(name, q.fetch_one(&mut **tx))
        .await
        .map_err(db_error)?;
    row.into_quote()
}

/// A new line of the quote's current revision.
pub async fn quote_item_insert(
    tx: &mut Tx,
    tenant: &TenantId,
    q: &Quote,
    line_no: i32,
    configuration: &Value,
    discount: Option<Decimal>,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "quote_item_insert",
        sqlx::query("INSERT INTO quote_item (quote_id, revision_no, line_no, tenant_id, configuration, manual_discount_percent, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(q.id)
            .bind(q.revision_no)
            .bind(line_no)
            .bind(tenant.as_str())
            .bind(configuration)
            .bind(discount)
            .bind(at)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Replaces a line of the quote's current revision; `false` if there is no such line.
pub async fn quote_item_update(
    tx: &mut Tx,
    q: &Quote,
    line_no: i32,
    configuration: &Value,
    discount: Option<Decimal>,
) -> Result<bool, Error> {
    let done = timed(
        "quote_item_update",
        sqlx::query("UPDATE quote_item SET configuration = $4, manual_discount_percent = $5 WHERE quote_id = $1 AND revision_no = $2 AND line_no = $3")
            .bind(q.id)
            .bind(q.revision_no)
            .bind(line_no)
            .bind(configuration)
            .bind(discount)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a line of the quote's current revision; `false` if there is no such line.
pub async fn quote_item_delete(tx: &mut Tx, q: &Quote, line_no: i32) -> Result<bool, Error> {
    let done = timed(
        "quote_item_delete",
        sqlx::query(
            "DELETE FROM quote_item WHERE quote_id = $1 AND revision_no = $2 AND line_no = $3",
        )
        .bind(q.id)
        .bind(q.revision_no)
        .bind(line_no)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(done.rows_affected() > 0)
}

/// Freezes the quote's current revision as it stands into `quote_revision`.
pub async fn quote_revision_insert(
    tx: &mut Tx,
    tenant: &TenantId,
    q: &Quote,
    header: &Value,
    at: DateTime<Utc>,
    by: &str,
) -> Result<(), Error> {
    timed(
        "quote_revision_insert",
        sqlx::query(
            "INSERT INTO quote_revision (quote_id, revision_no, tenant_id, status, header, items, price_snapshot, snapshot_hash, approval_decision, \
             revised_at, revised_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(q.id)
        .bind(q.revision_no)
        .bind(tenant.as_str())
        .bind(status_text(q.status)?)
        .bind(header)
        .bind(serde_json::to_value(&q.items).map_err(Error::internal)?)
        .bind(&q.price_snapshot)
        .bind(&q.snapshot_hash)
        .bind(&q.approval_decision)
        .bind(at)
        .bind(by)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Copies the lines of `revision_no` into the next revision.
pub async fn quote_item_carry_forward(
    tx: &mut Tx,
    id: Uuid,
    revision_no: i32,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "quote_item_carry_forward",
        sqlx::query(
            "INSERT INTO quote_item (quote_id, revision_no, line_no, tenant_id, configuration, manual_discount_percent, created_at) \
             SELECT quote_id, revision_no + 1, line_no, tenant_id, configuration, manual_discount_percent, $3 FROM quote_item \
             WHERE quote_id = $1 AND revision_no = $2",
        )
        .bind(id)
        .bind(revision_no)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Opens the next revision in draft, without price or approval; answers with the quote as
/// written (its lines those carried forward).
pub async fn quote_open_revision(
    tx: &mut Tx,
    id: Uuid,
    at: DateTime<Utc>,
    by: &str,
) -> Result<Quote, Error> {
    let row: QuoteRow = timed(
        "quote_open_revision",
        sqlx::query_as(&format!(
            "UPDATE quote SET revision_no = revision_no + 1, status = 'draft', price_snapshot = NULL, snapshot_hash = NULL, price_stale = false, \
             approval_decision = NULL, approval_instance_id = NULL, version = version + 1, updated_at = $2, updated_by = $3 WHERE quote_id = $1 \
             RETURNING {QUOTE_COLUMNS}"
        ))
        .bind(id)
        .bind(at)
        .bind(by)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.into_quote()
}

/// A superseded revision, as it stood.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Revision {
    pub revision_no: i32,
    /// The status it had when it was superseded.
    pub status: String,
    pub header: Value,
    pub items: Value,
    pub price_snapshot: Option<Value>,
    pub snapshot_hash: Option<String>,
    pub approval_decision: Option<Value>,
    pub revised_at: DateTime<Utc>,
    pub revised_by: String,
}

/// Superseded revisions of a quote, newest first, without their snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RevisionSummary {
    pub revision_no: i32,
    pub status: String,
    pub snapshot_hash: Option<String>,
    pub revised_at: DateTime<Utc>,
    pub revised_by: String,
}

/// The superseded revisions of a quote that exists, newest first.
pub async fn quote_revision_list(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Vec<RevisionSummary>, Error> {
    quote_exists(tx, tenant, id).await?;
    timed(
        "quote_revision_list",
        sqlx::query_as("SELECT revision_no, status, snapshot_hash, revised_at, revised_by FROM quote_revision WHERE tenant_id = $1 AND quote_id = $2 ORDER BY revision_no DESC")
            .bind(tenant.as_str())
            .bind(id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

pub async fn quote_revision_fetch(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
    revision_no: i32,
) -> Result<Revision, Error> {
    let row: Option<Revision> = timed(
        "quote_revision_fetch",
        sqlx::query_as(
            "SELECT revision_no, status, header, items, price_snapshot, snapshot_hash, approval_decision, revised_at, revised_by FROM quote_revision \
             WHERE tenant_id = $1 AND quote_id = $2 AND revision_no = $3",
        )
        .bind(tenant.as_str())
        .bind(id)
        .bind(revision_no)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.ok_or_else(|| Error::not_found("quote revision", format!("{id}/{revision_no}")))
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

/// Open quotes whose validity ended before `today`, across tenants: (quote, tenant).
pub async fn quote_expiry_due(
    pool: &PgPool,
    today: NaiveDate,
    limit: i32,
) -> Result<Vec<(Uuid, String)>, Error> {
    timed(
        "quote_expiry_due",
        sqlx::query_as("SELECT quote_id, tenant_id FROM quote_expiry_due($1, $2)")
            .bind(today)
            .bind(limit)
            .fetch_all(pool),
    )
    .await
    .map_err(db_error)
}

/// Which of `ids` have a deployed version (process definitions are platform artifacts, not
/// tenant data).
pub async fn process_definition_deployed_ids(
    pool: &PgPool,
    ids: &[&str],
) -> Result<Vec<String>, Error> {
    timed(
        "process_definition_deployed_ids",
        sqlx::query_scalar(
            "SELECT DISTINCT bpmn_process_id FROM process_definition WHERE bpmn_process_id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(pool),
    )
    .await
    .map_err(db_error)
}
