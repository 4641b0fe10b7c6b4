//! Timers: the `timer` table (boundary and intermediate catch events of running instances) and
//! `start_timer` (timer start events of deployed definitions), and the scan that fires them.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::{create_instance, step, Scope};
use crate::bpmn::Process;
use crate::runtime::{Command, Repeat};

/// Where a timer lives. Both kinds take one path: [`due`] lists them across tenants, [`fire`]
/// locks one (skipping it when another scanner has it), lets it act and counts it, and
/// [`fire_due`] is the scan that runs both, each timer in its tenant's transaction.
#[derive(Debug, Clone, Copy)]
enum TimerKind {
    /// Timers of running instances (boundary, intermediate catch), in `timer`.
    Element,
    /// Timer start events of deployed definitions, in `start_timer`.
    Start,
}

impl TimerKind {
    /// The named statement that lists this kind's due timers: (timer, tenant).
    fn due_list(self) -> (&'static str, &'static str) {
        match self {
            TimerKind::Element => (
                "timer_due_list",
                "SELECT timer_id, tenant_id FROM timer_due_list($1)",
            ),
            TimerKind::Start => (
                "start_timer_due_list",
                "SELECT start_timer_id, tenant_id FROM start_timer_due_list($1)",
            ),
        }
    }
}

/// Timers due now, across tenants: (timer, tenant). Fire each with [`fire_timer`].
pub async fn timers_due(pool: &PgPool, limit: i32) -> Result<Vec<(Uuid, String)>, Error> {
    due(pool, TimerKind::Element, limit).await
}

/// Timer start events due now, across tenants: (start timer, tenant).
pub async fn start_timers_due(pool: &PgPool, limit: i32) -> Result<Vec<(Uuid, String)>, Error> {
    due(pool, TimerKind::Start, limit).await
}

/// Fires one due timer in its tenant's transaction; `false` when another scanner has it or it is
/// gone (its element ended).
pub async fn fire_timer(tx: &mut Tx, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    fire(tx, TimerKind::Element, timer, at).await
}

/// Fires one due start timer in its tenant's transaction: a new instance of its process version,
/// and the next occurrence for a cycle. `false` when another scanner has it.
pub async fn fire_start_timer(tx: &mut Tx, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    fire(tx, TimerKind::Start, timer, at).await
}

/// Fires every due timer (up to `limit`), each in its tenant's transaction: what the worker's
/// timer scan runs. Returns how many fired; failures are logged and retried by the next scan.
pub async fn fire_due_timers(pool: &PgPool, limit: i32) -> usize {
    fire_due(pool, limit, TimerKind::Element).await
}

/// As [`fire_due_timers`], for timer start events.
pub async fn fire_due_start_timers(pool: &PgPool, limit: i32) -> usize {
    fire_due(pool, limit, TimerKind::Start).await
}

async fn due(pool: &PgPool, kind: TimerKind, limit: i32) -> Result<Vec<(Uuid, String)>, Error> {
    let (name, sql) = kind.due_list();
    timed(name, sqlx::query_as(sql).bind(limit).fetch_all(pool))
        .await
        .map_err(db_error)
}

async fn fire(tx: &mut Tx, kind: TimerKind, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let fired = match kind {
        TimerKind::Element => element_timer_fire(tx, timer, at).await?,
        TimerKind::Start => start_timer_fire(tx, timer, at).await?,
    };
    if fired {
        metrics::counter!("workflow_timers_fired_total").increment(1);
    }
    Ok(fired)
}

async fn fire_due(pool: &PgPool, limit: i32, kind: TimerKind) -> usize {
    let due = match due(pool, kind, limit).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, ?kind, "timer scan failed");
            return 0;
        }
    };
    let mut fired = 0;
    for (timer, tenant_id) in due {
        let Ok(t) = TenantId::parse(&tenant_id) else {
            continue;
        };
        let result = async {
            let mut tx = cpq_db::tenant::begin(pool, &t).await.map_err(db_error)?;
            let done = fire(&mut tx, kind, timer, Utc::now()).await?;
            tx.commit().await.map_err(db_error)?;
            Ok::<bool, Error>(done)
        }
        .await;
        match result {
            Ok(true) => fired += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, %timer, ?kind, "firing a timer failed; the next scan retries it")
            }
        }
    }
    fired
}

/// A stored `repeat` column: how a cycle timer goes on (unreadable or absent: it does not).
fn stored_repeat(repeat: Option<Value>) -> Option<Repeat> {
    repeat.and_then(|r| serde_json::from_value(r).ok())
}

/// An element timer: deleted as it fires; the runtime schedules a cycle's next one.
async fn element_timer_fire(tx: &mut Tx, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let row: Option<(Uuid, i64, String, Option<Value>)> = timed(
        "timer_fetch_for_update",
        sqlx::query_as("SELECT process_instance_id, element_key, event_id, repeat FROM timer WHERE timer_id = $1 AND due_at <= $2 FOR UPDATE SKIP LOCKED")
            .bind(timer)
            .bind(at)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let Some((instance, element_key, event_id, repeat)) = row else {
        return Ok(false);
    };
    timed(
        "timer_delete",
        sqlx::query("DELETE FROM timer WHERE timer_id = $1")
            .bind(timer)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    step(
        tx,
        instance,
        Command::TimerFired {
            element: element_key as u64,
            timer_id: event_id,
            repeat: stored_repeat(repeat),
        },
        None,
        at,
    )
    .await?;
    Ok(true)
}

/// A start timer: a new instance of its definition, then the timer's next occurrence.
async fn start_timer_fire(tx: &mut Tx, timer: Uuid, at: DateTime<Utc>) -> Result<bool, Error> {
    let row: Option<(String, Uuid, String, Option<Value>)> = timed(
        "start_timer_fetch_for_update",
        sqlx::query_as("SELECT tenant_id, process_definition_id, event_id, repeat FROM start_timer WHERE start_timer_id = $1 AND due_at <= $2 FOR UPDATE SKIP LOCKED")
            .bind(timer)
            .bind(at)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let Some((tenant, definition_id, event_id, repeat)) = row else {
        return Ok(false);
    };
    let (bpmn_process_id, version, model): (String, i32, Value) = timed(
        "process_definition_fetch_by_id",
        sqlx::query_as("SELECT bpmn_process_id, version, model FROM process_definition WHERE process_definition_id = $1").bind(definition_id).fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let process: Process = serde_json::from_value(model)
        .map_err(|e| Error::internal(format!("stored process model: {e}")))?;
    create_instance(
        tx,
        &tenant,
        definition_id,
        &bpmn_process_id,
        version,
        &process,
        Command::StartByTimer {
            start_event: event_id,
        },
        at,
    )
    .await?;
    start_timer_reschedule_or_delete(tx, timer, stored_repeat(repeat), at).await?;
    Ok(true)
}

/// A start timer's next occurrence for a cycle with firings left; otherwise it is deleted.
async fn start_timer_reschedule_or_delete(
    tx: &mut Tx,
    timer: Uuid,
    repeat: Option<Repeat>,
    at: DateTime<Utc>,
) -> Result<(), Error> {
    // A cycle whose next occurrence is past the representable range ends here.
    let next_due =
        |r: &Repeat| at.checked_add_signed(chrono::Duration::try_milliseconds(r.interval_ms)?);
    match repeat
        .filter(|r| r.remaining != Some(0))
        .and_then(|r| Some((r, next_due(&r)?)))
    {
        Some((r, due)) => {
            let next = Repeat {
                remaining: r.remaining.map(|n| n - 1),
                interval_ms: r.interval_ms,
            };
            timed(
                "start_timer_reschedule",
                sqlx::query(
                    "UPDATE start_timer SET due_at = $2, repeat = $3 WHERE start_timer_id = $1",
                )
                .bind(timer)
                .bind(due)
                .bind(serde_json::to_value(next).map_err(Error::internal)?)
                .execute(&mut **tx),
            )
            .await
            .map_err(db_error)?;
        }
        None => {
            timed(
                "start_timer_delete",
                sqlx::query("DELETE FROM start_timer WHERE start_timer_id = $1")
                    .bind(timer)
                    .execute(&mut **tx),
            )
            .await
            .map_err(db_error)?;
        }
    }
    Ok(())
}

/// Inserts the timer a [`crate::runtime::Effect::ScheduleTimer`] asks for.
pub(super) async fn timer_insert(
    tx: &mut Tx,
    scope: &Scope<'_>,
    element: u64,
    timer_id: &str,
    due: DateTime<Utc>,
    repeat: Option<Repeat>,
) -> Result<(), Error> {
    timed(
        "timer_insert",
        sqlx::query(
            "INSERT INTO timer (timer_id, tenant_id, process_instance_id, element_key, event_id, due_at, repeat, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(Uuid::now_v7())
        .bind(scope.tenant)
        .bind(scope.instance)
        .bind(element as i64)
        .bind(timer_id)
        .bind(due)
        .bind(repeat.map(|r| serde_json::to_value(r).unwrap_or(Value::Null)))
        .bind(scope.at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Deletes the timers of the elements that ended, in one statement.
pub(super) async fn timer_delete_for_elements(
    tx: &mut Tx,
    instance: Uuid,
    elements: &[i64],
) -> Result<(), Error> {
    timed(
        "timer_delete_for_elements",
        sqlx::query("DELETE FROM timer WHERE process_instance_id = $1 AND element_key = ANY($2)")
            .bind(instance)
            .bind(elements)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Closes the timers and the message and signal subscriptions of some catch events of one
/// element instance (the other event subprocesses of a scope that an interrupting one started
/// in), in one statement.
pub(super) async fn close_waits(
    tx: &mut Tx,
    instance: Uuid,
    element: u64,
    catch_ids: &[String],
) -> Result<(), Error> {
    timed(
        "close_waits",
        sqlx::query(
            "WITH t AS (DELETE FROM timer WHERE process_instance_id = $1 AND element_key = $2 \
               AND event_id = ANY($3)), \
             m AS (DELETE FROM message_subscription WHERE process_instance_id = $1 \
               AND element_key = $2 AND catch_id = ANY($3)) \
             DELETE FROM signal_subscription WHERE process_instance_id = $1 AND element_key = $2 \
               AND catch_id = ANY($3)",
        )
        .bind(instance)
        .bind(element as i64)
        .bind(catch_ids)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
