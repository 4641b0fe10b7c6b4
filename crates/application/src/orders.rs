//! Orders: conversion of an accepted quote into its order, and reads.

use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_order::commands;
use cpq_order::model::Order;
use uuid::Uuid;

use crate::{Call, Operation, Services};

/// Sellers convert the quotes they sell.
const CONVERTERS: &[Role] = &[Role::Sales];
/// An order is read by whoever may read the quote it was made of.
const READERS: &[Role] = crate::quotes::READERS;

/// Converts the accepted quote at `expected_version` into exactly one order and starts its
/// fulfillment process. A quote already converted answers with a conflict naming its order.
pub struct ConvertQuote {
    pub quote_id: Uuid,
    pub expected_version: i64,
}

impl Operation for ConvertQuote {
    type Output = Order;
    const ROLES: &'static [Role] = CONVERTERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Order, Error> {
        commands::convert(tx, &call.meta, self.quote_id, self.expected_version).await
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
