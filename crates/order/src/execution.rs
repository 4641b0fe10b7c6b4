//! Executing an order's plan: the fulfillment process's internal jobs, one command each, in the
//! job's tenant transaction (the job completes in the same transaction, so each effect happens
//! exactly once): a task done and its dependants released ([`task_done`]), a fallout case opened
//! ([`fallout_open`]), the order completed with its assets ([`order_complete`]); and the task's
//! attempts as the worker calls its system ([`task_attempt_started`], [`task_attempt_finished`]).
//!
//! Every command locks the order's row first ([`store::sales_order_lock`]): transitions of one
//! order's tasks run one at a time, so two dependencies finishing together cannot both miss that
//! the other is done.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cpq_audit::events::{OrderCompleted, OrderInFallout, OrderTaskCompleted};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::Error;
use cpq_db::Tx;
use cpq_workflow::instances::{self, Message};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::model::execution::Fallout;
use crate::model::plan::{ready_key, TaskStatus, TASK_READY_MESSAGE};
use crate::model::ORDER_AGGREGATE;
use crate::store::{self, NewFalloutCase};

/// How long a release waits for its task's subscription (it exists already: every task's
/// subprocess starts with the process).
const READY_TTL: Duration = Duration::from_secs(24 * 3600);

/// A call to the task's system is about to be made (recorded with the call's attempt).
pub async fn task_attempt_started(
    tx: &mut Tx,
    order_id: Uuid,
    task_key: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    store::fulfillment_task_attempt_start(tx, order_id, task_key, at).await
}

/// The call's outcome: the task waits for the system's callback, and/or the call failed.
pub async fn task_attempt_finished(
    tx: &mut Tx,
    order_id: Uuid,
    task_key: &str,
    waiting_callback: bool,
    error: Option<&Value>,
) -> Result<(), Error> {
    store::fulfillment_task_attempt_finish(tx, order_id, task_key, waiting_callback, error).await
}

/// Finishes the task as `status` (completed, or skipped by a repair), makes ready the dependants
/// whose dependencies are now all done and releases each with the message
/// `fulfillment-task-ready` (correlated on its ready key); audited with `order.task-completed`.
/// Returns the released task keys; nothing happens for a task finished already.
pub async fn task_done(
    tx: &mut Tx,
    meta: &CommandMeta,
    order_id: Uuid,
    task_key: &str,
    status: TaskStatus,
) -> Result<Vec<String>, Error> {
    store::sales_order_lock(tx, &meta.tenant, order_id).await?;
    let Some(done) =
        store::fulfillment_task_finish_releasing(tx, order_id, task_key, status, meta.occurred_at)
            .await?
    else {
        return Ok(Vec::new());
    };
    for released in &done.released {
        let key = ready_key(order_id, released);
        instances::publish_message(
            tx,
            &Message {
                tenant: &meta.tenant,
                name: TASK_READY_MESSAGE,
                correlation_key: &key,
                time_to_live: READY_TTL,
                message_id: None,
                variables: Map::new(),
                at: meta.occurred_at,
            },
        )
        .await?;
    }
    let event = NewEvent::of(&OrderTaskCompleted {
        order_id,
        task_key: task_key.to_owned(),
        job_type: done.job_type,
        system: done.system,
        status: status.as_str().to_owned(),
        attempts: done.attempts,
        released: done.released.clone(),
    })?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "order.task-complete",
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: order_id,
            before: None,
            after: Some(event.payload.clone()),
            reason: None,
        },
        &[event],
    )
    .await?;
    Ok(done.released)
}

/// Opens the fallout case of a task that failed (`fallout`), by the process's fallout job
/// `job` of instance `process_instance_id`: the case records the task's system, job type and
/// attempts, the error and the request sent; the task is failed and the order in fallout;
/// audited with `order.in-fallout`. A redelivered job opens nothing twice: the case it opened is
/// returned.
pub async fn fallout_open(
    tx: &mut Tx,
    meta: &CommandMeta,
    order_id: Uuid,
    task_key: &str,
    fallout: &Fallout,
    process_instance_id: Uuid,
    job: Uuid,
) -> Result<Option<Uuid>, Error> {
    store::sales_order_lock(tx, &meta.tenant, order_id).await?;
    let opened = store::fallout_case_insert_failing_task(
        tx,
        &NewFalloutCase {
            fallout_case_id: Uuid::now_v7(),
            tenant: &meta.tenant,
            order_id,
            task_key,
            category: fallout.category.as_str(),
            error_code: fallout.error_code.as_deref(),
            last_error: &fallout.last_error,
            request: fallout.request.as_ref(),
            process_instance_id,
            opened_by_job: job,
            at: meta.occurred_at,
        },
    )
    .await?;
    let Some(opened) = opened else {
        return Ok(None);
    };
    let event = NewEvent::of(&OrderInFallout {
        order_id,
        fallout_case_id: opened.fallout_case_id,
        task_key: task_key.to_owned(),
        system: opened.system,
        category: fallout.category.as_str().to_owned(),
        error_code: fallout.error_code.clone(),
    })?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "order.fallout-open",
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: order_id,
            before: None,
            after: Some(event.payload.clone()),
            reason: None,
        },
        &[event],
    )
    .await?;
    Ok(Some(opened.fallout_case_id))
}

/// Completes the order (every plan task done or skipped): the order and its items `completed`,
/// one asset per item in the customer's installed base; audited with `order.completed`. Nothing
/// happens for an order that is not in fulfillment (completed already, or cancelled).
pub async fn order_complete(
    tx: &mut Tx,
    meta: &CommandMeta,
    order_id: Uuid,
) -> Result<Option<OrderCompleted>, Error> {
    let order = store::sales_order_lock(tx, &meta.tenant, order_id).await?;
    let Some(skipped_tasks) = store::sales_order_complete(tx, order_id, meta.occurred_at).await?
    else {
        return Ok(None);
    };
    let asset_ids =
        crate::assets::asset_insert_for_order(tx, &meta.tenant, order_id, meta.occurred_at).await?;
    let completed = OrderCompleted {
        order_id,
        customer_account_id: order.customer_account_id,
        completed_at: meta.occurred_at,
        asset_ids,
        skipped_tasks,
    };
    let event = NewEvent::of(&completed)?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "order.complete",
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: order_id,
            before: None,
            after: Some(event.payload.clone()),
            reason: None,
        },
        &[event],
    )
    .await?;
    Ok(Some(completed))
}

/// The tenant-free parts of a job's variables that name its plan task: `order_id` and
/// `task.key`. `None` for a job of another process.
pub fn task_of(variables: &Value) -> Option<(Uuid, String)> {
    let order = variables.get("order_id")?.as_str()?.parse().ok()?;
    let key = variables.get("task")?.get("key")?.as_str()?;
    Some((order, key.to_owned()))
}
