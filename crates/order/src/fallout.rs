//! Fallout cases: the worklist of plan tasks that failed permanently or exhausted their retries
//! (opened by [`crate::execution`]), and their repairs.
//!
//! A case is `open` until order operations repair it, once: `retry` (the task's job runs again,
//! optionally with corrected input), `skip` (the task counts as done, its dependants proceed) or
//! `cancel-order` (the order, its items, its unfinished tasks and every open case of it are
//! cancelled, and its fulfillment process instance with them). Every repair needs a reason and
//! runs in one transaction: the order's row is locked with the case's (every transition of an
//! order's tasks and cases holds the order's lock, [`crate::execution`] takes it first too), the
//! case is checked `open`, written, audited with `order.fallout-resolved`, and the process is told
//! through the message `fallout-resolved` (correlated on the task's ready key
//! `<order id>/<task key>`, with the message id `<case id>/<action>`, so that no repair reaches
//! the process twice) or its instance is cancelled.
//!
//! Laid out like the rest of the crate, in one file: the pure part (statuses, categories, the
//! reason and input checks, [`decide`]), the named SQL (`fallout_case_*`), the commands.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cpq_audit::events::{OrderCancelled, OrderFalloutResolved};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, FieldError, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use cpq_workflow::instances::{self, Message, Publication};
use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::model::plan::{ready_key, FALLOUT_RESOLVED_MESSAGE};
use crate::model::ORDER_AGGREGATE;

// ---- The pure part ---------------------------------------------------------------------------

/// How long the repair message waits for its subscription. The fallout job opens the case and
/// moves its instance to "Wait for repair" in one transaction, so the subscription exists while
/// the case is open; the time to live only covers an instance that is still settling, and
/// bounds how long the message id is kept.
pub const REPAIR_MESSAGE_TTL: Duration = Duration::from_secs(600);

/// The longest reason a repair may give, in characters (as closing an account).
pub const REASON_MAX: usize = 500;

/// A case's statuses, as stored.
pub const STATUSES: [&str; 4] = ["open", "retried", "skipped", "cancelled"];
/// A case's categories, as stored.
pub const CATEGORIES: [&str; 4] = [
    "business-failure",
    "technical-failure",
    "callback-failed",
    "callback-timeout",
];
/// The systems a task may target (as `fulfillment_task.system`).
pub const SYSTEMS: [&str; 5] = [
    "inventory",
    "provisioning",
    "billing",
    "crm",
    "notification",
];

/// The three repairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepairAction {
    Retry,
    Skip,
    CancelOrder,
}

impl RepairAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RepairAction::Retry => "retry",
            RepairAction::Skip => "skip",
            RepairAction::CancelOrder => "cancel-order",
        }
    }

    /// The case's status afterwards.
    pub fn status(self) -> &'static str {
        match self {
            RepairAction::Retry => "retried",
            RepairAction::Skip => "skipped",
            RepairAction::CancelOrder => "cancelled",
        }
    }
}

/// A fallout case as the worklist and the case's page show it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct FalloutCase {
    pub id: Uuid,
    pub order_id: Uuid,
    /// The order's status: `in-fallout` while a case of it is open.
    pub order_status: String,
    pub task_key: String,
    /// The task's status now (`failed` while the case is open, `ready` after a retry, ...).
    pub task_status: String,
    pub job_type: String,
    pub system: Option<String>,
    /// `business-failure`, `technical-failure`, `callback-failed` or `callback-timeout`.
    pub category: String,
    /// `open`, `retried`, `skipped` or `cancelled`.
    pub status: String,
    pub error_code: Option<String>,
    pub last_error: Value,
    /// The request the worker sent (its body and idempotency key), when one was sent.
    pub request: Option<Value>,
    pub attempts: i32,
    pub process_instance_id: Uuid,
    /// `{action, reason, actor, input?}` once repaired.
    pub resolution: Option<Value>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The worklist's filters (each optional; the tenant's cases otherwise).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaseFilter {
    pub status: Option<String>,
    pub system: Option<String>,
    pub category: Option<String>,
    pub order_id: Option<Uuid>,
    /// Only cases opened before this instant (the API's `older_than`, from now).
    pub opened_before: Option<DateTime<Utc>>,
}

/// A repair as asked: the action, its reason and, for a retry, the corrected input.
#[derive(Debug, Clone, PartialEq)]
pub struct Repair {
    pub action: RepairAction,
    pub reason: String,
    pub input: Option<Value>,
}

/// The reason trimmed, or every field problem of the repair at once (422).
pub fn validate(repair: &Repair) -> Result<String, Error> {
    let mut errors = Vec::new();
    let reason = repair.reason.trim();
    if reason.is_empty() {
        errors.push(FieldError::new(
            "reason",
            "required",
            "a repair needs a reason",
        ));
    } else if reason.chars().count() > REASON_MAX {
        errors.push(FieldError::new(
            "reason",
            "too-long",
            format!("a reason has at most {REASON_MAX} characters"),
        ));
    }
    match (&repair.input, repair.action) {
        (None, _) | (Some(Value::Object(_)), RepairAction::Retry) => {}
        (Some(_), RepairAction::Retry) => errors.push(FieldError::new(
            "input",
            "invalid-type",
            "input is an object: the corrected input the task's job gets",
        )),
        (Some(_), _) => errors.push(FieldError::new(
            "input",
            "not-allowed",
            "only a retry takes corrected input",
        )),
    }
    if errors.is_empty() {
        Ok(reason.to_owned())
    } else {
        Err(Error::validation(errors))
    }
}

/// Whether `case` may be repaired now: only an open case of an order still being fulfilled.
pub fn decide(case: &FalloutCase) -> Result<(), Error> {
    if case.status != "open" {
        return Err(Error::conflict(format!(
            "fallout case {} is {} already ({}); only an open case can be repaired",
            case.id,
            case.status,
            case.resolution
                .as_ref()
                .and_then(|r| r.get("action"))
                .and_then(Value::as_str)
                .map_or_else(|| "no resolution".to_owned(), |a| format!("by {a}")),
        )));
    }
    if !matches!(case.order_status.as_str(), "in-fallout" | "in-fulfillment") {
        return Err(Error::conflict(format!(
            "order {} is {}: its fallout can no longer be repaired",
            case.order_id, case.order_status
        )));
    }
    Ok(())
}

/// What a repair records as the case's resolution.
fn resolution(repair: &Repair, reason: &str, actor: &str) -> Value {
    let mut r = json!({ "action": repair.action.as_str(), "reason": reason, "actor": actor });
    if let Some(input) = &repair.input {
        r["input"] = input.clone();
    }
    r
}

// ---- The named SQL ---------------------------------------------------------------------------

const CASE_COLUMNS: &str = "c.fallout_case_id AS id, c.order_id, o.status AS order_status, c.task_key, t.status AS task_status, \
     c.job_type, c.system, c.category, c.status, c.error_code, c.last_error, c.request, c.attempts, c.process_instance_id, \
     c.resolution, c.version, c.created_at, c.updated_at, c.resolved_at";

const CASE_FROM: &str = "FROM sales_order o JOIN fallout_case c ON c.order_id = o.order_id \
     JOIN fulfillment_task t ON t.order_id = c.order_id AND t.task_key = c.task_key";

/// One page of the tenant's cases, newest first, after the `(created_at, id)` key `after`; only
/// the filters given are in the statement (`fallout_case_worklist` serves the status filter).
pub async fn fallout_case_list(
    tx: &mut Tx,
    tenant: &TenantId,
    f: &CaseFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<FalloutCase>, Error> {
    let mut q = sqlx::QueryBuilder::new(format!(
        "SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.tenant_id = "
    ));
    q.push_bind(tenant.as_str());
    if let Some(s) = &f.status {
        q.push(" AND c.status = ").push_bind(s.as_str());
    }
    if let Some(s) = &f.system {
        q.push(" AND c.system = ").push_bind(s.as_str());
    }
    if let Some(c) = &f.category {
        q.push(" AND c.category = ").push_bind(c.as_str());
    }
    if let Some(o) = f.order_id {
        q.push(" AND c.order_id = ").push_bind(o);
    }
    if let Some(b) = f.opened_before {
        q.push(" AND c.created_at < ").push_bind(b);
    }
    if let Some((at, id)) = after {
        q.push(" AND (c.created_at, c.fallout_case_id) < (")
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY c.created_at DESC, c.fallout_case_id DESC LIMIT ")
        .push_bind(limit);
    timed("fallout_case_list", q.build_query_as().fetch_all(&mut **tx))
        .await
        .map_err(db_error)
}

/// The case with its order's and task's status; another tenant's is not found.
pub async fn fallout_case_fetch(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<FalloutCase, Error> {
    let row: Option<FalloutCase> = timed(
        "fallout_case_fetch",
        sqlx::query_as(&format!(
            "SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.tenant_id = $1 AND c.fallout_case_id = $2"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.ok_or_else(|| Error::not_found("fallout case", id))
}

/// The case as [`fallout_case_fetch`] reads it, with its order's row and its own locked (the
/// order's first: every transition of an order's tasks and cases holds that lock), and what a
/// repair needs of the task (`depends_on`) and the order (its fulfillment instance).
struct Locked {
    case: FalloutCase,
    depends_on: Vec<String>,
    fulfillment_instance_id: Option<Uuid>,
}

async fn fallout_case_lock(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<Locked, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        case: FalloutCase,
        depends_on: Vec<String>,
        fulfillment_instance_id: Option<Uuid>,
    }
    let row: Option<Row> = timed(
        "fallout_case_lock",
        sqlx::query_as(&format!(
            "SELECT {CASE_COLUMNS}, t.depends_on, o.fulfillment_instance_id {CASE_FROM} \
             WHERE c.tenant_id = $1 AND c.fallout_case_id = $2 FOR UPDATE OF o, c"
        ))
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let row = row.ok_or_else(|| Error::not_found("fallout case", id))?;
    Ok(Locked {
        case: row.case,
        depends_on: row.depends_on,
        fulfillment_instance_id: row.fulfillment_instance_id,
    })
}

/// What [`fallout_case_resolve`] changed besides the case.
#[derive(sqlx::FromRow)]
struct Resolved {
    version: i64,
    task_status: String,
    order_status: String,
}

/// Resolves an open case by a retry or a skip, in one statement: the case (status, resolution,
/// version, resolved), its task `ready` again on a retry, and the order back `in-fulfillment`
/// from `in-fallout` when no other case of it is open. `None` when the case is no longer open.
async fn fallout_case_resolve(
    tx: &mut Tx,
    case: &FalloutCase,
    action: RepairAction,
    resolution: &Value,
    at: DateTime<Utc>,
) -> Result<Option<Resolved>, Error> {
    timed(
        "fallout_case_resolve",
        sqlx::query_as(
            "WITH c AS (\
               UPDATE fallout_case SET status = $2, resolution = $3, version = version + 1, updated_at = $4, resolved_at = $4 \
               WHERE fallout_case_id = $1 AND status = 'open' RETURNING fallout_case_id, order_id, task_key, version), \
             t AS (\
               UPDATE fulfillment_task SET status = 'ready' FROM c \
               WHERE $5 AND fulfillment_task.order_id = c.order_id AND fulfillment_task.task_key = c.task_key \
               RETURNING fulfillment_task.status), \
             o AS (\
               UPDATE sales_order SET status = 'in-fulfillment', version = sales_order.version + 1, updated_at = $4 FROM c \
               WHERE sales_order.order_id = c.order_id AND sales_order.status = 'in-fallout' \
               AND NOT EXISTS (SELECT 1 FROM fallout_case f WHERE f.order_id = c.order_id AND f.status = 'open' \
                 AND f.fallout_case_id <> c.fallout_case_id) \
               RETURNING sales_order.status) \
             SELECT c.version, coalesce((SELECT status FROM t), $6) AS task_status, \
               coalesce((SELECT status FROM o), $7) AS order_status FROM c",
        )
        .bind(case.id)
        .bind(action.status())
        .bind(resolution)
        .bind(at)
        .bind(action == RepairAction::Retry)
        .bind(&case.task_status)
        .bind(&case.order_status)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// What [`sales_order_cancel_from_fallout`] cancelled.
#[derive(sqlx::FromRow)]
struct Cancelled {
    /// `[{id, task_key}]` of every case it closed, the repaired one included.
    cases: Value,
}

/// Cancels the order in one statement: the order (version + 1), its items, every open case of
/// it (the repaired one with `resolution`, the others with it naming the repaired case) and
/// every task not completed or skipped. `None` when the order is no longer being fulfilled.
async fn sales_order_cancel_from_fallout(
    tx: &mut Tx,
    case: &FalloutCase,
    resolution: &Value,
    at: DateTime<Utc>,
) -> Result<Option<Cancelled>, Error> {
    timed(
        "sales_order_cancel_from_fallout",
        sqlx::query_as(
            "WITH o AS (\
               UPDATE sales_order SET status = 'cancelled', version = version + 1, updated_at = $3 \
               WHERE order_id = $1 AND status IN ('in-fulfillment', 'in-fallout') RETURNING order_id), \
             i AS (\
               UPDATE order_item SET status = 'cancelled' FROM o \
               WHERE order_item.order_id = o.order_id AND order_item.status <> 'completed'), \
             c AS (\
               UPDATE fallout_case SET status = 'cancelled', version = fallout_case.version + 1, updated_at = $3, resolved_at = $3, \
               resolution = CASE WHEN fallout_case.fallout_case_id = $2 THEN $4 \
                 ELSE $4 || jsonb_build_object('by_fallout_case', $2::uuid) END \
               FROM o WHERE fallout_case.order_id = o.order_id AND fallout_case.status = 'open' \
               RETURNING fallout_case.fallout_case_id, fallout_case.task_key), \
             t AS (\
               UPDATE fulfillment_task SET status = 'cancelled' FROM o \
               WHERE fulfillment_task.order_id = o.order_id AND fulfillment_task.status NOT IN ('completed', 'skipped', 'cancelled')) \
             SELECT (SELECT coalesce(jsonb_agg(jsonb_build_object('id', c.fallout_case_id, 'task_key', c.task_key) \
               ORDER BY c.fallout_case_id), '[]') FROM c) AS cases FROM o",
        )
        .bind(case.order_id)
        .bind(case.id)
        .bind(at)
        .bind(resolution)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

// ---- The commands ----------------------------------------------------------------------------

/// One page of the worklist (see [`fallout_case_list`]).
pub async fn list(
    tx: &mut Tx,
    tenant: &TenantId,
    filter: &CaseFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<FalloutCase>, Error> {
    fallout_case_list(tx, tenant, filter, after, limit).await
}

/// The case.
pub async fn fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<FalloutCase, Error> {
    fallout_case_fetch(tx, tenant, id).await
}

/// What a repair answers: the case as repaired, and what became of the repair message (`None`
/// for `cancel-order`, which cancels the instance instead).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Repaired {
    pub case: FalloutCase,
    pub publication: Option<Publication>,
}

/// Repairs open case `id` of the caller's tenant: refused with 422 (no reason, input where it
/// does not belong), 404 (no such case for the tenant) or 409 (not open, or its order is no
/// longer being fulfilled) before anything is written.
pub async fn repair(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    repair: &Repair,
) -> Result<Repaired, Error> {
    let reason = validate(repair)?;
    let locked = fallout_case_lock(tx, &meta.tenant, id).await?;
    decide(&locked.case)?;
    let resolution = resolution(repair, &reason, &meta.actor_subject);
    match repair.action {
        RepairAction::Retry | RepairAction::Skip => {
            resolve(tx, meta, locked, repair, &reason, &resolution).await
        }
        RepairAction::CancelOrder => cancel_order(tx, meta, locked, &reason, &resolution).await,
    }
}

/// `order.fallout-resolved` of case `id` (of `order_id`'s task `task_key`).
fn resolved_event(
    order_id: Uuid,
    id: Uuid,
    task_key: &str,
    action: RepairAction,
    reason: &str,
) -> Result<NewEvent, Error> {
    NewEvent::of(&OrderFalloutResolved {
        order_id,
        fallout_case_id: id,
        task_key: task_key.to_owned(),
        action: action.as_str().to_owned(),
        reason: reason.to_owned(),
    })
}

/// A retry or a skip: the case resolved, the task's subprocess told through `fallout-resolved`.
async fn resolve(
    tx: &mut Tx,
    meta: &CommandMeta,
    locked: Locked,
    repair: &Repair,
    reason: &str,
    resolution: &Value,
) -> Result<Repaired, Error> {
    let Locked {
        mut case,
        depends_on,
        ..
    } = locked;
    let at = meta.occurred_at;
    let resolved = fallout_case_resolve(tx, &case, repair.action, resolution, at)
        .await?
        .ok_or_else(|| Error::conflict(format!("fallout case {} is no longer open", case.id)))?;
    let key = ready_key(case.order_id, &case.task_key);
    let mut variables = Map::new();
    let mut message_repair = json!({ "action": repair.action.as_str(), "reason": reason });
    if let Some(input) = &repair.input {
        message_repair["input"] = input.clone();
        // The retried job's payload is the `task` variable: the task with its corrected input.
        variables.insert(
            "task".into(),
            json!({
                "key": case.task_key,
                "job_type": case.job_type,
                "system": case.system,
                "depends_on": depends_on,
                "ready_key": key,
                "input": input,
            }),
        );
    }
    variables.insert("repair".into(), message_repair);
    let message_id = format!("{}/{}", case.id, repair.action.as_str());
    let publication = instances::publish_message(
        tx,
        &Message {
            tenant: &meta.tenant,
            name: FALLOUT_RESOLVED_MESSAGE,
            correlation_key: &key,
            time_to_live: REPAIR_MESSAGE_TTL,
            message_id: Some(&message_id),
            variables,
            at,
        },
    )
    .await?;
    let event = resolved_event(
        case.order_id,
        case.id,
        &case.task_key,
        repair.action,
        reason,
    )?;
    let before =
        json!({ "fallout_case_id": case.id, "status": case.status, "version": case.version });
    case.status = repair.action.status().to_owned();
    case.resolution = Some(resolution.clone());
    case.version = resolved.version;
    case.task_status = resolved.task_status;
    case.order_status = resolved.order_status;
    case.updated_at = at;
    case.resolved_at = Some(at);
    let mut after = event.payload.clone();
    after["order_status"] = json!(case.order_status);
    if let Some(input) = &repair.input {
        after["input"] = input.clone();
    }
    let action = match repair.action {
        RepairAction::Retry => "order.fallout-retry",
        _ => "order.fallout-skip",
    };
    record(
        tx,
        meta,
        &AuditEntry {
            action,
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: case.order_id,
            before: Some(before),
            after: Some(after),
            reason: Some(reason.to_owned()),
        },
        &[event],
    )
    .await?;
    Ok(Repaired {
        case,
        publication: Some(publication),
    })
}

/// Cancels the order from its fallout: the fulfillment instance cancelled (an instance that is
/// no longer active has nothing left to cancel), the order, its items, tasks and open cases
/// cancelled; audited with `order.cancelled` and one `order.fallout-resolved` per case closed.
async fn cancel_order(
    tx: &mut Tx,
    meta: &CommandMeta,
    locked: Locked,
    reason: &str,
    resolution: &Value,
) -> Result<Repaired, Error> {
    let Locked {
        mut case,
        fulfillment_instance_id,
        ..
    } = locked;
    let at = meta.occurred_at;
    let instance = fulfillment_instance_id.unwrap_or(case.process_instance_id);
    match instances::cancel_instance(tx, &meta.tenant, instance, at).await {
        Ok(_) | Err(Error::Conflict { .. }) | Err(Error::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let cancelled = sales_order_cancel_from_fallout(tx, &case, resolution, at)
        .await?
        .ok_or_else(|| {
            Error::conflict(format!(
                "order {} is no longer being fulfilled",
                case.order_id
            ))
        })?;
    let closed: Vec<(Uuid, String)> = cancelled
        .cases
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("id")?.as_str()?.parse().ok()?,
                c.get("task_key")?.as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut events = vec![NewEvent::of(&OrderCancelled {
        order_id: case.order_id,
        reason: reason.to_owned(),
        cancelled_at: at,
    })?];
    for (closed_id, task_key) in &closed {
        let action = RepairAction::CancelOrder;
        events.push(resolved_event(
            case.order_id,
            *closed_id,
            task_key,
            action,
            reason,
        )?);
    }
    let before = json!({ "fallout_case_id": case.id, "status": case.status, "order_status": case.order_status });
    let after = json!({
        "order_id": case.order_id,
        "status": "cancelled",
        "fallout_case_id": case.id,
        "fallout_cases_cancelled": closed.iter().map(|(id, _)| id).collect::<Vec<_>>(),
        "process_instance_id": instance,
    });
    record(
        tx,
        meta,
        &AuditEntry {
            action: "order.cancel",
            aggregate_type: ORDER_AGGREGATE,
            aggregate_id: case.order_id,
            before: Some(before),
            after: Some(after),
            reason: Some(reason.to_owned()),
        },
        &events,
    )
    .await?;
    case.status = RepairAction::CancelOrder.status().to_owned();
    case.resolution = Some(resolution.clone());
    case.version += 1;
    case.order_status = "cancelled".to_owned();
    if !matches!(case.task_status.as_str(), "completed" | "skipped") {
        case.task_status = "cancelled".to_owned();
    }
    case.updated_at = at;
    case.resolved_at = Some(at);
    Ok(Repaired {
        case,
        publication: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: &str, order_status: &str) -> FalloutCase {
        FalloutCase {
            id: Uuid::nil(),
            order_id: Uuid::nil(),
            order_status: order_status.into(),
            task_key: "L1/x".into(),
            task_status: "failed".into(),
            job_type: "provision-service".into(),
            system: Some("provisioning".into()),
            category: "business-failure".into(),
            status: status.into(),
            error_code: None,
            last_error: json!({}),
            request: None,
            attempts: 1,
            process_instance_id: Uuid::nil(),
            resolution: None,
            version: 1,
            created_at: DateTime::<Utc>::MIN_UTC,
            updated_at: DateTime::<Utc>::MIN_UTC,
            resolved_at: None,
        }
    }

    fn ask(action: RepairAction, reason: &str, input: Option<Value>) -> Repair {
        Repair {
            action,
            reason: reason.into(),
            input,
        }
    }

    #[test]
    fn a_reason_is_required_trimmed_and_bounded() {
        assert_eq!(
            validate(&ask(RepairAction::Skip, "  wrong port  ", None)).unwrap(),
            "wrong port"
        );
        for bad in ["", "   ", &"x".repeat(REASON_MAX + 1)] {
            assert!(matches!(
                validate(&ask(RepairAction::Retry, bad, None)),
                Err(Error::Validation { .. })
            ));
        }
        assert!(validate(&ask(RepairAction::Retry, &"é".repeat(REASON_MAX), None)).is_ok());
    }

    #[test]
    fn only_a_retry_takes_input_and_it_is_an_object() {
        let obj = Some(json!({ "port": 7 }));
        assert!(validate(&ask(RepairAction::Retry, "r", obj.clone())).is_ok());
        assert!(validate(&ask(RepairAction::Retry, "r", Some(json!(7)))).is_err());
        assert!(validate(&ask(RepairAction::Skip, "r", obj)).is_err());
    }

    #[test]
    fn only_an_open_case_of_an_order_in_fulfillment_is_repaired() {
        assert!(decide(&case("open", "in-fallout")).is_ok());
        assert!(decide(&case("open", "in-fulfillment")).is_ok());
        for (s, o) in [
            ("retried", "in-fallout"),
            ("skipped", "in-fulfillment"),
            ("cancelled", "cancelled"),
            ("open", "cancelled"),
            ("open", "completed"),
        ] {
            assert!(
                matches!(decide(&case(s, o)), Err(Error::Conflict { .. })),
                "{s} {o}"
            );
        }
    }
}
