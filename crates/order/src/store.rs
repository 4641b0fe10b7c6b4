//! The named SQL of orders and of conversion, each statement through `timed` under a
//! resource-first name. Conversion reads the quote once under its row lock
//! ([`quote_fetch_for_conversion`]) and writes in one statement the order, its items and the
//! quote's converted state ([`sales_order_insert_converting_quote`]): no statement re-reads
//! what another has just written. Decisions are [`crate::model`]'s, not this module's.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

use crate::model::{status_from, Order, OrderItem, QuoteToConvert};

#[derive(sqlx::FromRow)]
struct QuoteRow {
    quote_id: Uuid,
    status: String,
    version: i64,
    revision_no: i32,
    customer_account_id: Uuid,
    currency: String,
    snapshot_hash: Option<String>,
    price_snapshot: Option<Value>,
    order_id: Option<Uuid>,
}

/// What conversion needs of the quote, with the quote's row lock (one statement: the order lines
/// take their configurations from the quote's items inside the insert).
pub async fn quote_fetch_for_conversion(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<QuoteToConvert, Error> {
    let row: Option<QuoteRow> = timed(
        "quote_fetch_for_conversion",
        sqlx::query_as(
            "SELECT quote_id, status, version, revision_no, customer_account_id, currency, snapshot_hash, price_snapshot, order_id \
             FROM quote WHERE tenant_id = $1 AND quote_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let r = row.ok_or_else(|| Error::not_found("quote", id))?;
    Ok(QuoteToConvert {
        quote_id: r.quote_id,
        status: status_from(&r.status)?,
        version: r.version,
        revision_no: r.revision_no,
        customer_account_id: r.customer_account_id,
        currency: r.currency,
        snapshot_hash: r.snapshot_hash,
        price_snapshot: r.price_snapshot,
        order_id: r.order_id,
    })
}

/// The order a conversion writes, with its lines and the quote's state afterwards.
pub struct NewOrder<'a> {
    pub order_id: Uuid,
    pub tenant: &'a TenantId,
    pub quote_id: Uuid,
    pub quote_revision_no: i32,
    pub customer_account_id: Uuid,
    pub currency: &'a str,
    pub snapshot_hash: &'a str,
    pub totals: &'a Value,
    pub status: &'a str,
    pub fulfillment_instance_id: Uuid,
    pub line_nos: Vec<i32>,
    pub offering_codes: Vec<String>,
    pub prices: Vec<Value>,
    /// The quote's status afterwards, as stored.
    pub quote_status: &'a str,
    pub at: DateTime<Utc>,
    pub actor: &'a str,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    order_id: Uuid,
    quote_id: Uuid,
    quote_revision_no: i32,
    customer_account_id: Uuid,
    currency: String,
    snapshot_hash: String,
    totals: Value,
    status: String,
    fulfillment_instance_id: Option<Uuid>,
    version: i64,
    created_at: DateTime<Utc>,
    created_by: String,
    updated_at: DateTime<Utc>,
}

impl OrderRow {
    fn with(self, items: Vec<OrderItem>) -> Order {
        Order {
            order_id: self.order_id,
            quote_id: self.quote_id,
            quote_revision_no: self.quote_revision_no,
            customer_account_id: self.customer_account_id,
            currency: self.currency,
            snapshot_hash: self.snapshot_hash,
            totals: self.totals,
            status: self.status,
            fulfillment_instance_id: self.fulfillment_instance_id,
            version: self.version,
            created_at: self.created_at,
            created_by: self.created_by,
            updated_at: self.updated_at,
            items,
        }
    }
}

const ORDER_COLUMNS: &str = "order_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, totals, status, \
     fulfillment_instance_id, version, created_at, created_by, updated_at";

/// Inserts the order, its items (one row per line through `unnest`, each with the configuration
/// of the quote's line) and marks the quote converted (status, order, version), in one
/// statement; returns the order as written. `None` when the quote already has an order
/// (`sales_order_one_per_quote`): then nothing is written and the transaction stays usable.
pub async fn sales_order_insert_converting_quote(
    tx: &mut Tx,
    o: &NewOrder<'_>,
) -> Result<Option<Order>, Error> {
    #[derive(sqlx::FromRow)]
    struct Inserted {
        #[sqlx(flatten)]
        order: OrderRow,
        items: Value,
    }
    let sql = format!(
        "WITH o AS (\
           INSERT INTO sales_order (order_id, tenant_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, totals, \
           status, fulfillment_instance_id, version, created_at, created_by, updated_at) \
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $12, $11) \
           ON CONFLICT ON CONSTRAINT sales_order_one_per_quote DO NOTHING RETURNING {ORDER_COLUMNS}), \
         i AS (\
           INSERT INTO order_item (order_id, line_no, tenant_id, offering_code, configuration, price) \
           SELECT o.order_id, l.line_no, $2, l.offering_code, qi.configuration, l.price \
           FROM o CROSS JOIN unnest($13::integer[], $14::text[], $15::jsonb[]) AS l (line_no, offering_code, price) \
           JOIN quote_item qi ON qi.quote_id = o.quote_id AND qi.revision_no = o.quote_revision_no AND qi.line_no = l.line_no \
           RETURNING line_no, offering_code, configuration, price), \
         q AS (\
           UPDATE quote SET status = $16, order_id = o.order_id, version = quote.version + 1, updated_at = $11, updated_by = $12 \
           FROM o WHERE quote.quote_id = o.quote_id) \
         SELECT o.*, (SELECT coalesce(jsonb_agg(jsonb_build_object('line_no', i.line_no, 'offering_code', i.offering_code, \
           'configuration', i.configuration, 'price', i.price) ORDER BY i.line_no), '[]') FROM i) AS items FROM o"
    );
    let inserted: Option<Inserted> = timed(
        "sales_order_insert_converting_quote",
        sqlx::query_as(&sql)
            .bind(o.order_id)
            .bind(o.tenant.as_str())
            .bind(o.quote_id)
            .bind(o.quote_revision_no)
            .bind(o.customer_account_id)
            .bind(o.currency)
            .bind(o.snapshot_hash)
            .bind(o.totals)
            .bind(o.status)
            .bind(o.fulfillment_instance_id)
            .bind(o.at)
            .bind(o.actor)
            .bind(&o.line_nos)
            .bind(&o.offering_codes)
            .bind(&o.prices)
            .bind(o.quote_status)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    inserted
        .map(|r| {
            let items = serde_json::from_value(r.items)
                .map_err(|e| Error::internal(format!("inserted order items: {e}")))?;
            Ok(r.order.with(items))
        })
        .transpose()
}

/// The order of a quote, if it has one.
pub async fn sales_order_id_for_quote(tx: &mut Tx, quote_id: Uuid) -> Result<Option<Uuid>, Error> {
    timed(
        "sales_order_id_for_quote",
        sqlx::query_scalar("SELECT order_id FROM sales_order WHERE quote_id = $1")
            .bind(quote_id)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// The order and its items.
pub async fn sales_order_fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<Order, Error> {
    let order: Option<OrderRow> = timed(
        "sales_order_fetch",
        sqlx::query_as(&format!(
            "SELECT {ORDER_COLUMNS} FROM sales_order WHERE tenant_id = $1 AND order_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let order = order.ok_or_else(|| Error::not_found("order", id))?;
    let items = order_item_list(tx, id).await?;
    Ok(order.with(items))
}

/// An order's items in line order.
async fn order_item_list(tx: &mut Tx, order_id: Uuid) -> Result<Vec<OrderItem>, Error> {
    let rows: Vec<(i32, String, Value, Value)> = timed(
        "order_item_list",
        sqlx::query_as("SELECT line_no, offering_code, configuration, price FROM order_item WHERE order_id = $1 ORDER BY line_no")
            .bind(order_id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(line_no, offering_code, configuration, price)| OrderItem {
            line_no,
            offering_code,
            configuration,
            price,
        })
        .collect())
}
