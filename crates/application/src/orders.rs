//! Orders: conversion of an accepted quote into its order (decomposed into its fulfillment plan
//! in the same transaction), and reads: the order, its fulfillment plan.

use chrono::{DateTime, Utc};
use cpq_audit::events::OrderCompleted;
use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_order::model::execution::{fallout_cleared, fallout_of, finish_of};
use cpq_order::model::plan::OrderPlan;
use cpq_order::model::Order;
use cpq_order::{commands, execution};
use serde_json::Value;
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

// ---- Executing the plan: the fulfillment process's internal jobs (run by cpq-worker) ----------

/// Who runs the fulfillment process's internal jobs: the platform's worker.
const EXECUTORS: &[Role] = &[Role::Worker];

/// The plan task a job of the fulfillment process serves, from its variables (`order_id`,
/// `task.key`): a process that names none is mis-modelled, and the job fails to an incident.
fn task_of(variables: &Value) -> Result<(Uuid, String), Error> {
    execution::task_of(variables).ok_or_else(|| {
        Error::internal("the job's variables name no plan task (order_id and task.key)")
    })
}

/// `fulfillment-task-done`, from the job's variables: the plan task finished (completed, or
/// skipped by the repair its variables carry); its dependants whose dependencies are all done are
/// released. Returns their keys.
pub struct RecordTaskDone {
    pub variables: Value,
}

impl Operation for RecordTaskDone {
    type Output = Vec<String>;
    const ROLES: &'static [Role] = EXECUTORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Vec<String>, Error> {
        let (order, key) = task_of(&self.variables)?;
        let status = finish_of(&self.variables);
        execution::task_done(tx, &call.meta, order, &key, status).await
    }
}

/// `fulfillment-fallout`, from the job's variables: the plan task failed permanently, exhausted
/// its retries or lost its callback ([`fallout_of`]); a fallout case opens (once per job) and the
/// order is in fallout.
pub struct OpenFalloutCase {
    pub variables: Value,
    pub process_instance_id: Uuid,
    pub job: Uuid,
}

impl Operation for OpenFalloutCase {
    type Output = Option<Uuid>;
    const ROLES: &'static [Role] = EXECUTORS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Option<Uuid>, Error> {
        let (order, key) = task_of(&self.variables)?;
        let fallout = fallout_of(&self.variables);
        execution::fallout_open(
            tx,
            &call.meta,
            order,
            &key,
            &fallout,
            self.process_instance_id,
            self.job,
        )
        .await
    }
}

/// `fulfillment-order-complete`, from the job's variables (`order_id`): every plan task is done;
/// the order completes and its items become the customer's assets.
pub struct CompleteOrder {
    pub variables: Value,
}

impl Operation for CompleteOrder {
    type Output = Option<OrderCompleted>;
    const ROLES: &'static [Role] = EXECUTORS;

    async fn run(
        self,
        _: &Services,
        tx: &mut Tx,
        call: &Call,
    ) -> Result<Option<OrderCompleted>, Error> {
        let order = self
            .variables
            .get("order_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::internal("the job's variables name no order_id"))?;
        execution::order_complete(tx, &call.meta, order).await
    }
}

/// What a fallout job completes with: the failure's traces cleared, so that a retried task's next
/// failure is read afresh.
pub fn fallout_job_variables() -> serde_json::Map<String, Value> {
    fallout_cleared()
}

/// Records that the worker is about to call the system for a job of a plan task (the job's
/// variables name it: `order_id`, `task.key`); nothing for a job of another process. Runs in the
/// transaction that records the call's attempt.
pub async fn task_attempt_started(
    tx: &mut Tx,
    variables: &Value,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    match execution::task_of(variables) {
        Some((order, key)) => execution::task_attempt_started(tx, order, &key, at).await,
        None => Ok(()),
    }
}

/// Records the call's outcome for a job of a plan task: waiting for a callback, and/or failed
/// with `error`.
pub async fn task_attempt_finished(
    tx: &mut Tx,
    variables: &Value,
    waiting_callback: bool,
    error: Option<&Value>,
) -> Result<(), Error> {
    match execution::task_of(variables) {
        Some((order, key)) => {
            execution::task_attempt_finished(tx, order, &key, waiting_callback, error).await
        }
        None => Ok(()),
    }
}
