//! Conversion of an accepted quote into exactly one order, in one transaction: lock the quote,
//! check it is accepted and that its price snapshot still hashes to the stored hash, create the
//! order and its items from the snapshot, mark the quote converted, write audit and events, and
//! start the `order-fulfillment` process. The `sales_order_one_per_quote` constraint makes a
//! second order impossible even if the application were wrong; a second conversion gets a 409
//! naming the order that exists.

use chrono::{DateTime, Utc};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use cpq_workflow::instances::{self, StartRequest};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::commands::{event, quote_fetch, touch};
use crate::lifecycle::{apply, Action, Status};

/// The BPMN process id of `processes/order-fulfillment-v1.bpmn`.
pub const FULFILLMENT_PROCESS: &str = "order-fulfillment";
pub const ORDER_AGGREGATE: &str = "order";

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OrderItem {
    pub line_no: i32,
    pub offering_code: String,
    pub configuration: Value,
    /// The line as priced in the quote's snapshot (amounts, adjustments, explanation).
    pub price: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Order {
    pub order_id: Uuid,
    pub quote_id: Uuid,
    pub quote_revision_no: i32,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub snapshot_hash: String,
    pub totals: Value,
    pub status: String,
    pub fulfillment_instance_id: Option<Uuid>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub items: Vec<OrderItem>,
}

fn already_converted(quote: Uuid, order: Uuid) -> Error {
    Error::ConflictWithExisting {
        detail: format!("quote {quote} is already converted into order {order}"),
        existing: format!("/v1/orders/{order}"),
    }
}

/// Converts an accepted quote into its order. `expected` is the quote version the caller saw;
/// a quote that is already converted answers with its order whatever version was expected.
pub async fn convert(
    tx: &mut Tx,
    meta: &CommandMeta,
    quote_id: Uuid,
    expected: i64,
) -> Result<Order, Error> {
    let q = quote_fetch(tx, &meta.tenant, quote_id, true).await?;
    if let (Status::Converted, Some(order)) = (q.status, q.order_id) {
        return Err(already_converted(quote_id, order));
    }
    if q.version != expected {
        return Err(Error::PreconditionFailed {
            current: q.version.to_string(),
        });
    }
    let next = apply(q.status, Action::Convert).map_err(|r| Error::conflict(r.to_string()))?;
    let (stored, hash) = match (&q.price_snapshot, &q.snapshot_hash) {
        (Some(s), Some(h)) => (s, h),
        _ => {
            return Err(Error::internal(format!(
                "accepted quote {quote_id} has no price snapshot"
            )))
        }
    };
    let snapshot: cpq_pricing::PriceSnapshot = serde_json::from_value(stored.clone())
        .map_err(|e| Error::internal(format!("stored snapshot: {e}")))?;
    let recomputed = cpq_pricing::snapshot_hash(&snapshot);
    if &recomputed != hash || &snapshot.hash != hash {
        return Err(Error::conflict(format!(
            "the price snapshot of quote {quote_id} no longer matches its hash ({hash}); the quote cannot be converted until it is revised and priced again"
        )));
    }
    let order_id = Uuid::now_v7();
    let inserted = timed(
        "sales_order_insert",
        sqlx::query(
            "INSERT INTO sales_order (order_id, tenant_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, totals, status, \
             version, created_at, created_by, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'in-fulfillment', 1, $9, $10, $9)",
        )
        .bind(order_id)
        .bind(meta.tenant.as_str())
        .bind(quote_id)
        .bind(q.revision_no)
        .bind(q.customer_account_id)
        .bind(&q.currency)
        .bind(hash)
        .bind(serde_json::to_value(&snapshot.totals).map_err(Error::internal)?)
        .bind(meta.occurred_at)
        .bind(&meta.actor_subject)
        .execute(&mut **tx),
    )
    .await;
    if let Err(e) = inserted {
        if let Some(db) = e.as_database_error() {
            if db.constraint() == Some("sales_order_one_per_quote") {
                let existing: Uuid =
                    sqlx::query_scalar("SELECT order_id FROM sales_order WHERE quote_id = $1")
                        .bind(quote_id)
                        .fetch_one(&mut **tx)
                        .await
                        .map_err(db_error)?;
                return Err(already_converted(quote_id, existing));
            }
        }
        return Err(db_error(e));
    }
    for line in &snapshot.lines {
        let item = q
            .items
            .iter()
            .find(|i| format!("{:04}", i.line_no) == line.line_id)
            .ok_or_else(|| {
                Error::internal(format!(
                    "snapshot line {} of quote {quote_id} has no item",
                    line.line_id
                ))
            })?;
        timed(
            "order_item_insert",
            sqlx::query("INSERT INTO order_item (order_id, line_no, tenant_id, offering_code, configuration, price) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(order_id)
                .bind(item.line_no)
                .bind(meta.tenant.as_str())
                .bind(&line.offering)
                .bind(&item.configuration)
                .bind(serde_json::to_value(line).map_err(Error::internal)?)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
    }
    let mut variables = Map::new();
    variables.insert("order_id".into(), json!(order_id));
    variables.insert("quote_id".into(), json!(quote_id));
    variables.insert("customer_account_id".into(), json!(q.customer_account_id));
    let started = instances::start_instance(
        tx,
        &StartRequest {
            tenant: &meta.tenant,
            bpmn_process_id: FULFILLMENT_PROCESS,
            product_line: None,
            release_flags: Vec::new(),
            variables,
            at: meta.occurred_at,
        },
    )
    .await
    .map_err(|e| match e {
        Error::NotFound { .. } => crate::processes::not_deployed(FULFILLMENT_PROCESS),
        e => e,
    })?;
    timed(
        "sales_order_set_fulfillment",
        sqlx::query("UPDATE sales_order SET fulfillment_instance_id = $2 WHERE order_id = $1")
            .bind(order_id)
            .bind(started.process_instance_id)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    timed(
        "quote_set_order",
        sqlx::query("UPDATE quote SET order_id = $2 WHERE quote_id = $1")
            .bind(quote_id)
            .bind(order_id)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, false).await?;
    let updated = quote_fetch(tx, &meta.tenant, quote_id, false).await?;
    event(tx, meta, "quote.convert", "quote.converted", &updated, json!({ "quote_id": quote_id, "revision_no": q.revision_no, "order_id": order_id, "snapshot_hash": hash }))
        .await?;
    let order = order_fetch(tx, &meta.tenant, order_id).await?;
    let payload = json!({
        "order_id": order_id, "quote_id": quote_id, "customer_account_id": q.customer_account_id, "currency": q.currency,
        "snapshot_hash": hash, "totals": order.totals, "lines": order.items.len(), "fulfillment_instance_id": started.process_instance_id,
    });
    record(
        tx,
        meta,
        &AuditEntry {
            action: "order.create",
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: order_id,
            before: None,
            after: Some(payload.clone()),
            reason: None,
        },
        &[NewEvent {
            event_type: "order.created",
            schema_version: 1,
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: order_id,
            payload,
        }],
    )
    .await?;
    Ok(order)
}

pub async fn order_fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<Order, Error> {
    let order: Option<Order> = timed(
        "sales_order_fetch",
        sqlx::query_as(
            "SELECT order_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, totals, status, fulfillment_instance_id, version, \
             created_at, created_by, updated_at FROM sales_order WHERE tenant_id = $1 AND order_id = $2",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let mut order = order.ok_or_else(|| Error::not_found("order", id))?;
    order.items = timed(
        "order_item_list",
        sqlx::query_as("SELECT line_no, offering_code, configuration, price FROM order_item WHERE order_id = $1 ORDER BY line_no").bind(id).fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(order)
}
