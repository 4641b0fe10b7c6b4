//! SQL for customer accounts. Every statement is named (`customer_account_<verb>`) and timed;
//! every statement filters on the tenant explicitly, under the row-level security policy that
//! would filter anyway.

use chrono::{DateTime, Utc};
use cpq_core::{Currency, Error, TenantId};
use cpq_db::error::{db_error, violated_unique_constraint};
use cpq_db::{timed, Tx};
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::domain::{AccountStatus, CustomerAccount, Segment};

const COLUMNS: &str = "customer_account_id, tenant_id, name, external_ref, segment, market, \
    currency, status, version, created_at, created_by, updated_at, updated_by, closed_at, close_reason";

#[derive(sqlx::FromRow)]
struct Row {
    customer_account_id: Uuid,
    tenant_id: String,
    name: String,
    external_ref: Option<String>,
    segment: String,
    market: String,
    currency: String,
    status: String,
    version: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
    updated_by: String,
    closed_at: Option<DateTime<Utc>>,
    close_reason: Option<String>,
}

impl TryFrom<Row> for CustomerAccount {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self, Error> {
        let corrupt = |what: &str, v: &str| {
            Error::internal(format!(
                "customer_account {}: stored {what} \"{v}\" is not valid",
                r.customer_account_id
            ))
        };
        Ok(CustomerAccount {
            id: r.customer_account_id,
            tenant: TenantId::parse(&r.tenant_id).map_err(|_| corrupt("tenant", &r.tenant_id))?,
            segment: Segment::parse(&r.segment).ok_or_else(|| corrupt("segment", &r.segment))?,
            currency: Currency::parse(&r.currency)
                .ok_or_else(|| corrupt("currency", &r.currency))?,
            status: AccountStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            name: r.name,
            external_ref: r.external_ref,
            market: r.market,
            version: r.version,
            created_at: r.created_at,
            created_by: r.created_by,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
            closed_at: r.closed_at,
            close_reason: r.close_reason,
        })
    }
}

fn duplicate_external_ref(e: sqlx::Error, account: &CustomerAccount) -> Error {
    if violated_unique_constraint(&e) == Some("customer_account_external_ref_key") {
        Error::conflict(format!(
            "a customer account with external_ref \"{}\" already exists",
            account.external_ref.as_deref().unwrap_or_default()
        ))
    } else {
        db_error(e)
    }
}

pub async fn customer_account_insert(tx: &mut Tx, a: &CustomerAccount) -> Result<(), Error> {
    timed(
        "customer_account_insert",
        sqlx::query(&format!(
            "INSERT INTO customer_account ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(a.id)
        .bind(a.tenant.as_str())
        .bind(&a.name)
        .bind(&a.external_ref)
        .bind(a.segment.as_str())
        .bind(&a.market)
        .bind(a.currency.code())
        .bind(a.status.as_str())
        .bind(a.version)
        .bind(a.created_at)
        .bind(&a.created_by)
        .bind(a.updated_at)
        .bind(&a.updated_by)
        .bind(a.closed_at)
        .bind(&a.close_reason)
        .execute(&mut **tx),
    )
    .await
    .map_err(|e| duplicate_external_ref(e, a))?;
    Ok(())
}

async fn fetch_one(
    tx: &mut Tx,
    query: &'static str,
    sql: &str,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<CustomerAccount>, Error> {
    let row: Option<Row> = timed(
        query,
        sqlx::query_as(sql)
            .bind(tenant.as_str())
            .bind(id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.map(CustomerAccount::try_from).transpose()
}

pub async fn customer_account_fetch(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<CustomerAccount>, Error> {
    let sql = format!(
        "SELECT {COLUMNS} FROM customer_account WHERE tenant_id = $1 AND customer_account_id = $2"
    );
    fetch_one(tx, "customer_account_fetch", &sql, tenant, id).await
}

/// Locks the row for the rest of the transaction: the command path of every change.
pub async fn customer_account_fetch_for_update(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<Option<CustomerAccount>, Error> {
    let sql = format!("SELECT {COLUMNS} FROM customer_account WHERE tenant_id = $1 AND customer_account_id = $2 FOR UPDATE");
    fetch_one(tx, "customer_account_fetch_for_update", &sql, tenant, id).await
}

/// Writes `next` over the stored row, which must still be at `expected_version`.
pub async fn customer_account_update(
    tx: &mut Tx,
    next: &CustomerAccount,
    expected_version: i64,
) -> Result<(), Error> {
    let done = timed(
        "customer_account_update",
        sqlx::query(
            "UPDATE customer_account SET name = $4, external_ref = $5, segment = $6, market = $7, \
             currency = $8, status = $9, version = $10, updated_at = $11, updated_by = $12, \
             closed_at = $13, close_reason = $14 \
             WHERE tenant_id = $1 AND customer_account_id = $2 AND version = $3",
        )
        .bind(next.tenant.as_str())
        .bind(next.id)
        .bind(expected_version)
        .bind(&next.name)
        .bind(&next.external_ref)
        .bind(next.segment.as_str())
        .bind(&next.market)
        .bind(next.currency.code())
        .bind(next.status.as_str())
        .bind(next.version)
        .bind(next.updated_at)
        .bind(&next.updated_by)
        .bind(next.closed_at)
        .bind(&next.close_reason)
        .execute(&mut **tx),
    )
    .await
    .map_err(|e| duplicate_external_ref(e, next))?;
    if done.rows_affected() == 1 {
        Ok(())
    } else {
        Err(Error::internal(format!(
            "customer_account {} moved past version {expected_version} while locked",
            next.id
        )))
    }
}

/// Explicit, index-backed filters for the account list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    pub status: Option<AccountStatus>,
    /// Case-insensitive name prefix.
    pub name_prefix: Option<String>,
    pub external_ref: Option<String>,
}

fn like_prefix(prefix: &str) -> String {
    let mut escaped = String::with_capacity(prefix.len() + 1);
    for c in prefix.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped.push('%');
    escaped
}

fn list_query<'q>(
    select: &str,
    tenant: &'q TenantId,
    filter: &'q AccountFilter,
    after: Option<Uuid>,
    limit: i64,
) -> QueryBuilder<'q, Postgres> {
    let mut q: QueryBuilder<Postgres> =
        QueryBuilder::new(format!("{select} FROM customer_account WHERE tenant_id = "));
    q.push_bind(tenant.as_str());
    if let Some(status) = filter.status {
        q.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(prefix) = &filter.name_prefix {
        q.push(" AND lower(name) LIKE ")
            .push_bind(like_prefix(prefix));
    }
    if let Some(r) = &filter.external_ref {
        q.push(" AND external_ref = ").push_bind(r.as_str());
    }
    if let Some(after) = after {
        q.push(" AND customer_account_id > ").push_bind(after);
    }
    q.push(" ORDER BY customer_account_id LIMIT ")
        .push_bind(limit);
    q
}

/// One page in id order (UUIDv7: creation order), strictly after `after`.
pub async fn customer_account_list(
    tx: &mut Tx,
    tenant: &TenantId,
    filter: &AccountFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<CustomerAccount>, Error> {
    let select = format!("SELECT {COLUMNS}");
    let mut q = list_query(&select, tenant, filter, after, limit);
    let rows: Vec<Row> = timed(
        "customer_account_list",
        q.build_query_as().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    rows.into_iter().map(CustomerAccount::try_from).collect()
}

/// The plan PostgreSQL picks for [`customer_account_list`] with these arguments, as text: what
/// plan-baseline tests check.
pub async fn customer_account_list_plan(
    tx: &mut Tx,
    tenant: &TenantId,
    filter: &AccountFilter,
    after: Option<Uuid>,
    limit: i64,
) -> Result<String, Error> {
    let select = format!("EXPLAIN SELECT {COLUMNS}");
    let mut q = list_query(&select, tenant, filter, after, limit);
    let lines: Vec<String> = timed(
        "customer_account_list_explain",
        q.build_query_scalar().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn like_wildcards_in_a_prefix_are_literal() {
        assert_eq!(like_prefix("Ac_me%"), "ac\\_me\\%%");
    }
}
