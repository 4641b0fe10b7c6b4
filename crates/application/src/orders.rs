//! Orders: conversion of an accepted quote into its order (decomposed into its fulfillment plan
//! in the same transaction), and reads: the order, its fulfillment plan.

use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_order::commands;
use cpq_order::model::plan::OrderPlan;
use cpq_order::model::Order;
use uuid::Uuid;

use crate::{Call, Operation, Services};

/// Sellers convert the quotes they sell.
const CONVERTERS: &[Role] = &[Role::Sales];
/// An order is read by whoever may read the quote it was made of.
const READERS: &[Role] = crate::quotes::READERS;

/// Converts the accepted quote at `expected_version` into exactly one order, decomposes it into
/// its fulfillment plan through the technical catalog of the quote's catalog version (held in
/// the catalog cache) and starts its fulfillment process. A quote already converted answers
/// with a conflict naming its order.
pub struct ConvertQuote {
    pub quote_id: Uuid,
    pub expected_version: i64,
}

impl Operation for ConvertQuote {
    type Output = Order;
    const ROLES: &'static [Role] = CONVERTERS;

    async fn run(self, services: &Services, tx: &mut Tx, call: &Call) -> Result<Order, Error> {
        let tenant = &call.principal.tenant;
        let catalog = |version| services.catalogs.compiled(&services.db, tenant, version);
        commands::convert(
            tx,
            &call.meta,
            self.quote_id,
            self.expected_version,
            catalog,
        )
        .await
    }
}

/// The order and its items.
pub struct FetchOrder(pub Uuid);

impl Operation for FetchOrder {
    type Output = Order;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Order, Error> {
        commands::order_fetch(tx, &call.principal.tenant, self.0).await
    }
}

/// The order's fulfillment plan: every task with its status, attempts, timings and
/// dependencies, in plan order.
pub struct FetchFulfillmentPlan(pub Uuid);

impl Operation for FetchFulfillmentPlan {
    type Output = OrderPlan;
    const ROLES: &'static [Role] = READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<OrderPlan, Error> {
        commands::plan_fetch(tx, &call.principal.tenant, self.0).await
    }
}
