//! The named SQL of orders and of conversion, each statement through `timed` under a
//! resource-first name. Conversion reads the quote once under its row lock, with its lines'
//! configurations ([`quote_fetch_for_conversion`]), and writes in one statement the order, its
//! items, its fulfillment plan and the quote's converted state
//! ([`sales_order_insert_converting_quote`]): no statement re-reads what another has just
//! written. Decisions are [`crate::model`]'s, not this module's.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use uuid::Uuid;

use crate::model::plan::{FulfillmentPlan, FulfillmentTask, OrderPlan, PlannedTask, TaskStatus};
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
    catalog_version_id: Uuid,
    /// `{"<line_no>": configuration}` of the current revision.
    configurations: Value,
}

/// What conversion needs of the quote, with the quote's row lock, and its current lines'
/// configurations (decomposition reads them), in one statement.
pub async fn quote_fetch_for_conversion(
    tx: &mut Tx,
    tenant: &TenantId,
    id: Uuid,
) -> Result<QuoteToConvert, Error> {
    let row: Option<QuoteRow> = timed(
        "quote_fetch_for_conversion",
        sqlx::query_as(
            "SELECT quote_id, status, version, revision_no, customer_account_id, currency, snapshot_hash, price_snapshot, order_id, \
             catalog_version_id, (SELECT coalesce(jsonb_object_agg(qi.line_no::text, qi.configuration), '{}') FROM quote_item qi \
             WHERE qi.quote_id = quote.quote_id AND qi.revision_no = quote.revision_no) AS configurations \
             FROM quote WHERE tenant_id = $1 AND quote_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let r = row.ok_or_else(|| Error::not_found("quote", id))?;
    let configurations: BTreeMap<String, Value> = serde_json::from_value(r.configurations)
        .map_err(|e| Error::internal(format!("quote line configurations: {e}")))?;
    let configurations = configurations
        .into_iter()
        .map(|(line, c)| {
            line.parse::<i32>()
                .map(|n| (n, c))
                .map_err(|e| Error::internal(format!("quote line number {line}: {e}")))
        })
        .collect::<Result<BTreeMap<i32, Value>, Error>>()?;
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
        catalog_version_id: r.catalog_version_id,
        configurations,
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
    /// The order's fulfillment plan, written with it.
    pub plan: &'a FulfillmentPlan,
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
    completed_at: Option<DateTime<Utc>>,
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
            completed_at: self.completed_at,
            version: self.version,
            created_at: self.created_at,
            created_by: self.created_by,
            updated_at: self.updated_at,
            items,
        }
    }
}

const ORDER_COLUMNS: &str = "order_id, quote_id, quote_revision_no, customer_account_id, currency, snapshot_hash, totals, status, \
     fulfillment_instance_id, completed_at, version, created_at, created_by, updated_at";

/// A plan task as the insert reads it (`jsonb_to_recordset`): the task and its first status.
#[derive(serde::Serialize)]
struct TaskInsert<'a> {
    #[serde(flatten)]
    task: &'a PlannedTask,
    status: &'static str,
}

/// Inserts the order, its items (one row per line through `unnest`, each with the configuration
/// of the quote's line), its fulfillment plan (one row per task, from one JSON parameter) and
/// marks the quote converted (status, order, version), in one statement; returns the order as
/// written. `None` when the quote already has an order
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
           RETURNING line_no, status, offering_code, configuration, price), \
         t AS (\
           INSERT INTO fulfillment_task (order_id, task_key, tenant_id, position, line_no, item_code, spec, task_code, job_type, system, \
           depends_on, status, attempts, created_at) \
           SELECT o.order_id, p.key, $2, p.position, p.line_no, p.item_code, p.spec, p.task_code, p.job_type, p.system, p.depends_on, p.status, 0, $11 \
           FROM o CROSS JOIN jsonb_to_recordset($17::jsonb) AS p (key text, position integer, line_no integer, item_code text, spec text, \
           task_code text, job_type text, system text, depends_on text[], status text)), \
         q AS (\
           UPDATE quote SET status = $16, order_id = o.order_id, version = quote.version + 1, updated_at = $11, updated_by = $12 \
           FROM o WHERE quote.quote_id = o.quote_id) \
         SELECT o.*, (SELECT coalesce(jsonb_agg(jsonb_build_object('line_no', i.line_no, 'status', i.status, 'offering_code', i.offering_code, \
           'configuration', i.configuration, 'price', i.price) ORDER BY i.line_no), '[]') FROM i) AS items FROM o"
    );
    let tasks: Vec<TaskInsert<'_>> = o
        .plan
        .tasks
        .iter()
        .map(|task| TaskInsert {
            task,
            status: task.initial_status().as_str(),
        })
        .collect();
    let tasks = serde_json::to_value(tasks).map_err(Error::internal)?;
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
            .bind(&tasks)
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
    let rows: Vec<(i32, String, String, Value, Value)> = timed(
        "order_item_list",
        sqlx::query_as("SELECT line_no, status, offering_code, configuration, price FROM order_item WHERE order_id = $1 ORDER BY line_no")
            .bind(order_id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(
            |(line_no, status, offering_code, configuration, price)| OrderItem {
                line_no,
                status,
                offering_code,
                configuration,
                price,
            },
        )
        .collect())
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    task_key: Option<String>,
    position: Option<i32>,
    line_no: Option<i32>,
    item_code: Option<String>,
    spec: Option<String>,
    task_code: Option<String>,
    job_type: Option<String>,
    system: Option<String>,
    depends_on: Option<Vec<String>>,
    status: Option<String>,
    attempts: Option<i32>,
    created_at: Option<DateTime<Utc>>,
    started_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    last_error: Option<Value>,
}

impl TaskRow {
    /// The task, `None` for the row of an order without tasks.
    fn task(self) -> Result<Option<FulfillmentTask>, Error> {
        let Some(key) = self.task_key else {
            return Ok(None);
        };
        let missing =
            |column: &str| Error::internal(format!("fulfillment task {key}: no {column}"));
        let status = self.status.ok_or_else(|| missing("status"))?;
        Ok(Some(FulfillmentTask {
            position: self.position.ok_or_else(|| missing("position"))?,
            line_no: self.line_no,
            item_code: self.item_code,
            spec: self.spec,
            task_code: self.task_code.ok_or_else(|| missing("task_code"))?,
            job_type: self.job_type.ok_or_else(|| missing("job_type"))?,
            system: self.system,
            depends_on: self.depends_on.ok_or_else(|| missing("depends_on"))?,
            status: TaskStatus::parse(&status).ok_or_else(|| {
                Error::internal(format!("fulfillment task {key}: status {status}"))
            })?,
            attempts: self.attempts.ok_or_else(|| missing("attempts"))?,
            created_at: self.created_at.ok_or_else(|| missing("created_at"))?,
            started_at: self.started_at,
            completed_at: self.completed_at,
            last_error: self.last_error,
            key,
        }))
    }
}

/// The order's fulfillment plan, every task in plan order, in one statement (the order's row
/// with its tasks joined: no row is an unknown order, or another tenant's).
pub async fn fulfillment_task_list(
    tx: &mut Tx,
    tenant: &TenantId,
    order_id: Uuid,
) -> Result<OrderPlan, Error> {
    let rows: Vec<TaskRow> = timed(
        "fulfillment_task_list",
        sqlx::query_as(
            "SELECT t.task_key, t.position, t.line_no, t.item_code, t.spec, t.task_code, t.job_type, t.system, t.depends_on, \
             t.status, t.attempts, t.created_at, t.started_at, t.completed_at, t.last_error \
             FROM sales_order o LEFT JOIN fulfillment_task t ON t.order_id = o.order_id \
             WHERE o.tenant_id = $1 AND o.order_id = $2 ORDER BY t.position",
        )
        .bind(tenant.as_str())
        .bind(order_id)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    if rows.is_empty() {
        return Err(Error::not_found("order", order_id));
    }
    let mut tasks = Vec::with_capacity(rows.len());
    for row in rows {
        tasks.extend(row.task()?);
    }
    Ok(OrderPlan { order_id, tasks })
}

/// The job types every deployed version of process `bpmn_process_id` declares (its service
/// tasks' `zeebe:taskDefinition` types, as `cpq-workflow` stored them at deployment).
pub async fn process_definition_job_types(
    tx: &mut Tx,
    bpmn_process_id: &str,
) -> Result<BTreeSet<String>, Error> {
    let rows: Vec<Vec<String>> = timed(
        "process_definition_job_types",
        sqlx::query_scalar("SELECT job_types FROM process_definition WHERE bpmn_process_id = $1")
            .bind(bpmn_process_id)
            .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().flatten().collect())
}

// ---- Executing the plan ----------------------------------------------------------------------

/// What executing the plan reads of an order under its row lock.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrderLocked {
    pub status: String,
    pub customer_account_id: Uuid,
    pub fulfillment_instance_id: Option<Uuid>,
}

/// Locks the order's row: the plan's task transitions of one order run one at a time, so that
/// two dependencies finishing together both see each other done (the second releases).
pub async fn sales_order_lock(
    tx: &mut Tx,
    tenant: &TenantId,
    order_id: Uuid,
) -> Result<OrderLocked, Error> {
    let row: Option<OrderLocked> = timed(
        "sales_order_lock",
        sqlx::query_as(
            "SELECT status, customer_account_id, fulfillment_instance_id FROM sales_order \
             WHERE tenant_id = $1 AND order_id = $2 FOR UPDATE",
        )
        .bind(tenant.as_str())
        .bind(order_id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    row.ok_or_else(|| Error::not_found("order", order_id))
}

/// A call to the task's system is about to be made: the task runs, one attempt more, started at
/// its first attempt. Nothing for a task that is not the order's (a job of another process).
pub async fn fulfillment_task_attempt_start(
    tx: &mut Tx,
    order_id: Uuid,
    task_key: &str,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    timed(
        "fulfillment_task_attempt_start",
        sqlx::query(
            "UPDATE fulfillment_task SET status = 'running', attempts = attempts + 1, started_at = coalesce(started_at, $3) \
             WHERE order_id = $1 AND task_key = $2 AND status IN ('pending', 'ready', 'running', 'waiting-callback', 'failed')",
        )
        .bind(order_id)
        .bind(task_key)
        .bind(at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// The attempt's outcome: waiting for the system's callback, and/or its error.
pub async fn fulfillment_task_attempt_finish(
    tx: &mut Tx,
    order_id: Uuid,
    task_key: &str,
    waiting_callback: bool,
    error: Option<&Value>,
) -> Result<(), Error> {
    timed(
        "fulfillment_task_attempt_finish",
        sqlx::query(
            "UPDATE fulfillment_task SET status = CASE WHEN $3 THEN 'waiting-callback' ELSE status END, \
             last_error = coalesce($4, last_error) WHERE order_id = $1 AND task_key = $2 AND status = 'running'",
        )
        .bind(order_id)
        .bind(task_key)
        .bind(waiting_callback)
        .bind(error)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// A task finished (completed or skipped), with the dependants it made ready.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TaskFinished {
    pub job_type: String,
    pub system: Option<String>,
    pub attempts: i32,
    /// Keys of the pending dependants whose every dependency is now done, which are now ready.
    pub released: Vec<String>,
}

/// Finishes the task as `status` (completed or skipped) and makes ready, in the same statement,
/// every pending task of the order whose dependencies are now all done. `None` when the task was
/// finished already. Run under the order's lock ([`sales_order_lock`]).
pub async fn fulfillment_task_finish_releasing(
    tx: &mut Tx,
    order_id: Uuid,
    task_key: &str,
    status: TaskStatus,
    at: DateTime<Utc>,
) -> Result<Option<TaskFinished>, Error> {
    timed(
        "fulfillment_task_finish_releasing",
        sqlx::query_as(
            "WITH done AS (\
               UPDATE fulfillment_task SET status = $3, completed_at = $4, started_at = coalesce(started_at, $4) \
               WHERE order_id = $1 AND task_key = $2 AND status NOT IN ('completed', 'skipped', 'cancelled') \
               RETURNING task_key, job_type, system, attempts), \
             released AS (\
               UPDATE fulfillment_task t SET status = 'ready' FROM done \
               WHERE t.order_id = $1 AND t.status = 'pending' AND done.task_key = ANY (t.depends_on) \
               AND NOT EXISTS (SELECT 1 FROM fulfillment_task d WHERE d.order_id = $1 AND d.task_key = ANY (t.depends_on) \
                 AND d.task_key <> $2 AND d.status NOT IN ('completed', 'skipped')) \
               RETURNING t.task_key) \
             SELECT done.job_type, done.system, done.attempts, \
               (SELECT coalesce(array_agg(task_key ORDER BY task_key), '{}') FROM released) AS released FROM done",
        )
        .bind(order_id)
        .bind(task_key)
        .bind(status.as_str())
        .bind(at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// A fallout case to open.
pub struct NewFalloutCase<'a> {
    pub fallout_case_id: Uuid,
    pub tenant: &'a TenantId,
    pub order_id: Uuid,
    pub task_key: &'a str,
    pub category: &'a str,
    pub error_code: Option<&'a str>,
    pub last_error: &'a Value,
    pub request: Option<&'a Value>,
    pub process_instance_id: Uuid,
    pub opened_by_job: Uuid,
    pub at: DateTime<Utc>,
}

/// The case opened, with the task's system.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FalloutOpened {
    pub fallout_case_id: Uuid,
    pub system: Option<String>,
}

/// Opens the case (the task's job type, system and attempts copied from its row), marks the task
/// failed with the error and the order in fallout (from in-fulfillment), in one statement.
/// `None` when this job opened its case already.
pub async fn fallout_case_insert_failing_task(
    tx: &mut Tx,
    c: &NewFalloutCase<'_>,
) -> Result<Option<FalloutOpened>, Error> {
    timed(
        "fallout_case_insert_failing_task",
        sqlx::query_as(
            "WITH c AS (\
               INSERT INTO fallout_case (fallout_case_id, tenant_id, order_id, task_key, job_type, system, category, status, error_code, \
               last_error, request, attempts, process_instance_id, opened_by_job, version, created_at, updated_at) \
               SELECT $1, $2, t.order_id, t.task_key, t.job_type, t.system, $5, 'open', $6, $7, $8, t.attempts, $9, $10, 1, $11, $11 \
               FROM fulfillment_task t WHERE t.order_id = $3 AND t.task_key = $4 \
               ON CONFLICT (opened_by_job) DO NOTHING RETURNING fallout_case_id, system), \
             t AS (\
               UPDATE fulfillment_task SET status = 'failed', last_error = $7 FROM c WHERE order_id = $3 AND task_key = $4), \
             o AS (\
               UPDATE sales_order SET status = 'in-fallout', version = version + 1, updated_at = $11 FROM c \
               WHERE sales_order.order_id = $3 AND sales_order.status = 'in-fulfillment') \
             SELECT fallout_case_id, system FROM c",
        )
        .bind(c.fallout_case_id)
        .bind(c.tenant.as_str())
        .bind(c.order_id)
        .bind(c.task_key)
        .bind(c.category)
        .bind(c.error_code)
        .bind(c.last_error)
        .bind(c.request)
        .bind(c.process_instance_id)
        .bind(c.opened_by_job)
        .bind(c.at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// Completes the order and its items (from in-fulfillment); returns the keys of the tasks that
/// were skipped rather than done. `None` when the order was not in fulfillment.
pub async fn sales_order_complete(
    tx: &mut Tx,
    order_id: Uuid,
    at: DateTime<Utc>,
) -> Result<Option<Vec<String>>, Error> {
    timed(
        "sales_order_complete",
        sqlx::query_scalar(
            "WITH o AS (\
               UPDATE sales_order SET status = 'completed', completed_at = $2, version = version + 1, updated_at = $2 \
               WHERE order_id = $1 AND status = 'in-fulfillment' RETURNING order_id), \
             i AS (UPDATE order_item SET status = 'completed' FROM o WHERE order_item.order_id = o.order_id) \
             SELECT (SELECT coalesce(array_agg(task_key ORDER BY position), '{}') FROM fulfillment_task \
               WHERE order_id = $1 AND status = 'skipped') FROM o",
        )
        .bind(order_id)
        .bind(at)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)
}
