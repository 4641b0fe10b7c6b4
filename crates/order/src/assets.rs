//! The customer's installed base: one asset per fulfilled order item, made when its order
//! completes ([`asset_insert_for_order`]) and listed per customer, newest first
//! ([`asset_list_for_customer`]).
//!
//! [`Asset`], [`AssetStatus`], [`AssetFilter`] and [`AssetPage`] are pure (no I/O, no clock);
//! the two statements are named resource-first and go through `timed`, as every store's.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where an asset stands in the installed base. Completion makes assets `active`; `suspended`
/// and `terminated` are for the changes to come (suspension, disconnection orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssetStatus {
    Active,
    Suspended,
    Terminated,
}

impl AssetStatus {
    pub const ALL: [AssetStatus; 3] = [
        AssetStatus::Active,
        AssetStatus::Suspended,
        AssetStatus::Terminated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetStatus::Active => "active",
            AssetStatus::Suspended => "suspended",
            AssetStatus::Terminated => "terminated",
        }
    }

    pub fn parse(s: &str) -> Option<AssetStatus> {
        AssetStatus::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// One asset: what the customer has (an offering in its configuration) and the order item that
/// made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asset {
    pub asset_id: Uuid,
    pub customer_account_id: Uuid,
    pub offering_code: String,
    /// The order item's configuration (offering, characteristics, components), as ordered.
    pub configuration: Value,
    pub status: AssetStatus,
    /// The order, and its item (`line_no`), that made the asset.
    pub order_id: Uuid,
    pub line_no: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Filters of a customer's asset list; absent filters match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetFilter {
    pub status: Option<AssetStatus>,
    /// Exactly this offering code.
    pub offering_code: Option<String>,
}

/// One keyset page, newest first: at most `limit` assets strictly before the
/// `(created_at, asset_id)` key `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetPage {
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

#[derive(sqlx::FromRow)]
struct AssetRow {
    asset_id: Uuid,
    customer_account_id: Uuid,
    offering_code: String,
    configuration: Value,
    status: String,
    order_id: Uuid,
    line_no: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<AssetRow> for Asset {
    type Error = Error;

    fn try_from(r: AssetRow) -> Result<Asset, Error> {
        let status = AssetStatus::parse(&r.status)
            .ok_or_else(|| Error::internal(format!("asset status {:?}", r.status)))?;
        Ok(Asset {
            asset_id: r.asset_id,
            customer_account_id: r.customer_account_id,
            offering_code: r.offering_code,
            configuration: r.configuration,
            status,
            order_id: r.order_id,
            line_no: r.line_no,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// Makes the order's items the customer's assets, in one statement: one `active` asset per
/// order item that is not cancelled, with the item's offering and configuration and the order's
/// customer, created and updated `at`. Returns the assets' ids in line order.
///
/// Idempotent: an item that already has its asset (`asset_one_per_order_item`) keeps it (id,
/// status, `created_at`; `updated_at` only moves forward), so a redelivered completion returns
/// the same ids and creates nothing twice. An unknown order, or one of another tenant, has no
/// items: the answer is empty.
///
/// The ids are UUIDv7: one [`Uuid::now_v7`] for the call, its last 32 (random) bits XORed with
/// each item's line number, so they are distinct within the order, ordered by time across
/// orders, and chosen without a round trip to count the items first.
pub async fn asset_insert_for_order(
    tx: &mut Tx,
    tenant: &TenantId,
    order_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Vec<Uuid>, Error> {
    timed(
        "asset_insert_for_order",
        sqlx::query_scalar(
            "WITH made AS ( \
               INSERT INTO asset (asset_id, tenant_id, customer_account_id, offering_code, configuration, status, \
                                  order_id, line_no, created_at, updated_at) \
               SELECT (left(b.hex, 24) || lpad(to_hex(('x' || right(b.hex, 8))::bit(32)::int # oi.line_no), 8, '0'))::uuid, \
                      o.tenant_id, o.customer_account_id, oi.offering_code, oi.configuration, 'active', \
                      o.order_id, oi.line_no, $4, $4 \
                 FROM sales_order o \
                 JOIN order_item oi ON oi.order_id = o.order_id AND oi.tenant_id = o.tenant_id \
                 CROSS JOIN (SELECT replace($3::uuid::text, '-', '') AS hex) b \
                WHERE o.tenant_id = $1 AND o.order_id = $2 AND oi.status <> 'cancelled' \
                ORDER BY oi.line_no \
               ON CONFLICT (order_id, line_no) DO UPDATE SET updated_at = greatest(asset.updated_at, EXCLUDED.updated_at) \
               RETURNING asset_id, line_no) \
             SELECT asset_id FROM made ORDER BY line_no",
        )
        .bind(tenant.as_str())
        .bind(order_id)
        .bind(Uuid::now_v7())
        .bind(at)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// One page of the customer's assets, newest first (`created_at`, then id, both descending:
/// the index `asset_by_customer`), after `page.after`. Whether the customer exists is the
/// caller's question: an unknown customer simply has no assets.
pub async fn asset_list_for_customer(
    tx: &mut Tx,
    tenant: &TenantId,
    customer_account_id: Uuid,
    filter: &AssetFilter,
    page: AssetPage,
) -> Result<Vec<Asset>, Error> {
    let mut q = sqlx::QueryBuilder::<sqlx::Postgres>::new(
        "SELECT asset_id, customer_account_id, offering_code, configuration, status, order_id, line_no, \
         created_at, updated_at FROM asset WHERE tenant_id = ",
    );
    q.push_bind(tenant.as_str());
    q.push(" AND customer_account_id = ")
        .push_bind(customer_account_id);
    if let Some(s) = filter.status {
        q.push(" AND status = ").push_bind(s.as_str());
    }
    if let Some(code) = &filter.offering_code {
        q.push(" AND offering_code = ").push_bind(code.as_str());
    }
    if let Some((at, id)) = page.after {
        q.push(" AND (created_at, asset_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY created_at DESC, asset_id DESC LIMIT ")
        .push_bind(page.limit);
    let rows: Vec<AssetRow> = timed(
        "asset_list_for_customer",
        q.build_query_as().fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    rows.into_iter().map(Asset::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_from_their_text() {
        for s in AssetStatus::ALL {
            assert_eq!(AssetStatus::parse(s.as_str()), Some(s));
            assert_eq!(
                serde_json::to_value(s).ok(),
                Some(Value::String(s.as_str().into()))
            );
        }
        assert_eq!(AssetStatus::parse("Active"), None);
    }
}
