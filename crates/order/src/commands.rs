//! The order commands, one function each, in the caller's tenant transaction: lock, decide
//! ([`crate::model`]), write ([`crate::store`]), audit.
//!
//! [`convert`] turns an accepted quote into exactly one order: lock the quote, check it is
//! accepted and that its price snapshot still hashes to the stored hash, decompose its lines
//! into the fulfillment plan through the technical catalog of the quote's catalog version,
//! start the `order-fulfillment` process, write the order, its items and its plan and mark the
//! quote converted, then the audit records and events of both (`order.decomposed` with
//! `order.created`). The process starts first so that
//! the order is written once, with its instance id. The `sales_order_one_per_quote` constraint
//! makes a second order impossible even if the application were wrong; a second conversion
//! gets a 409 naming the order that exists.

use std::future::Future;
use std::sync::Arc;

use cpq_audit::events::{OrderCreated, OrderDecomposed, QuoteConverted};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_catalog::CompiledCatalog;
use cpq_core::{Error, TenantId};
use cpq_db::Tx;
use cpq_workflow::instances::{self, StartRequest};
use serde_json::{json, Map};
use uuid::Uuid;

use crate::model::plan::{decompose, OrderPlan};
use crate::model::{
    already_converted, decide, line_without_item, plan_items, status_text, Order,
    FULFILLMENT_PROCESS, IN_FULFILLMENT, ORDER_AGGREGATE,
};
use crate::store::{self, NewOrder};

/// Converts an accepted quote into its order. `expected` is the quote version the caller saw;
/// a quote that is already converted answers with its order whatever version was expected.
/// `catalog` gives the compiled catalog of a version (the quote's: its technical catalog
/// decomposes the order).
pub async fn convert<F, Fut>(
    tx: &mut Tx,
    meta: &CommandMeta,
    quote_id: Uuid,
    expected: i64,
    catalog: F,
) -> Result<Order, Error>
where
    F: FnOnce(Uuid) -> Fut,
    Fut: Future<Output = Result<Arc<CompiledCatalog>, Error>>,
{
    let q = store::quote_fetch_for_conversion(tx, &meta.tenant, quote_id).await?;
    let conversion = decide(&q, expected)?;
    let catalog = catalog(q.catalog_version_id).await?;
    let plan = decompose(&plan_items(&q, &conversion.lines)?, &catalog)?;
    let order_id = Uuid::now_v7();
    let mut variables = Map::new();
    variables.insert("order_id".into(), json!(order_id));
    variables.insert("quote_id".into(), json!(quote_id));
    variables.insert("customer_account_id".into(), json!(q.customer_account_id));
    variables.insert("plan_tasks".into(), plan.process_tasks(order_id));
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
        Error::NotFound { .. } => cpq_quote::processes::not_deployed(FULFILLMENT_PROCESS),
        e => e,
    })?;
    let hash = &conversion.snapshot_hash;
    let quote_status = status_text(conversion.quote_status)?;
    let lines = &conversion.lines;
    let written = store::sales_order_insert_converting_quote(
        tx,
        &NewOrder {
            order_id,
            tenant: &meta.tenant,
            quote_id,
            quote_revision_no: q.revision_no,
            customer_account_id: q.customer_account_id,
            currency: &q.currency,
            snapshot_hash: hash,
            totals: &conversion.totals,
            status: IN_FULFILLMENT,
            fulfillment_instance_id: started.process_instance_id,
            line_nos: lines.iter().map(|l| l.line_no).collect(),
            offering_codes: lines.iter().map(|l| l.offering_code.clone()).collect(),
            prices: lines.iter().map(|l| l.price.clone()).collect(),
            quote_status: &quote_status,
            plan: &plan,
            at: meta.occurred_at,
            actor: &meta.actor_subject,
        },
    )
    .await?;
    let order = match written {
        Some(order) => order,
        None => {
            return Err(match store::sales_order_id_for_quote(tx, quote_id).await? {
                Some(existing) => already_converted(quote_id, existing),
                None => {
                    Error::internal(format!("quote {quote_id} has an order that cannot be read"))
                }
            })
        }
    };
    // Every snapshot line must have found its quote line.
    if let Some(missing) = lines
        .iter()
        .find(|l| !order.items.iter().any(|i| i.line_no == l.line_no))
    {
        return Err(line_without_item(
            quote_id,
            &format!("{:04}", missing.line_no),
        ));
    }
    let converted = NewEvent::of(&QuoteConverted {
        quote_id,
        revision_no: q.revision_no,
        order_id,
        snapshot_hash: hash.to_owned(),
    })?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "quote.convert",
            aggregate_type: cpq_quote::model::AGGREGATE,
            aggregate_id: quote_id,
            before: None,
            after: Some(converted.payload.clone()),
            reason: None,
        },
        &[converted],
    )
    .await?;
    let created = NewEvent::of(&OrderCreated {
        order_id,
        quote_id,
        customer_account_id: q.customer_account_id,
        currency: q.currency.clone(),
        snapshot_hash: hash.to_owned(),
        totals: serde_json::from_value(order.totals.clone()).map_err(Error::internal)?,
        lines: order.items.len(),
        fulfillment_instance_id: started.process_instance_id,
    })?;
    let decomposed = NewEvent::of(&OrderDecomposed {
        order_id,
        catalog_version_id: q.catalog_version_id,
        tasks: plan.tasks.len(),
        ready: plan.ready(),
        systems: plan.systems(),
        plan_hash: plan.hash()?,
    })?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "order.create",
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: order_id,
            before: None,
            after: Some(created.payload.clone()),
            reason: None,
        },
        &[created, decomposed],
    )
    .await?;
    Ok(order)
}

/// The order and its items (a query, here so that every entry point reads orders one way).
pub async fn order_fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<Order, Error> {
    store::sales_order_fetch(tx, tenant, id).await
}

/// The order's fulfillment plan with each task's status, attempts and timings.
pub async fn plan_fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<OrderPlan, Error> {
    store::fulfillment_task_list(tx, tenant, id).await
}
