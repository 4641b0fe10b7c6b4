//! The simulator's own tables (`crates/sim/migrations`): requests by (system, Idempotency-Key)
//! and the callbacks owed. Every statement is named (`cpq_db::timed`: `db_query_duration_seconds`
//! by query). No decisions here: the handlers decide, this stores.

use chrono::{DateTime, Utc};
use cpq_db::timed;
use serde::Serialize;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// An execution that has not stored its answer within this long is taken as lost (the simulator
/// died mid-way) and the key may execute again.
pub const STALE_CLAIM_SECS: f64 = 120.0;

/// The right to execute a key's request, held by exactly one caller at a time.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub request_id: Uuid,
    pub transient_failures: u32,
}

/// What the table says about a key that this caller could not claim.
#[derive(Debug)]
pub enum Existing {
    /// The final answer, to replay.
    Answer { status: u16, body: Value },
    /// Another request with the key is executing.
    InProgress,
    /// The key was used with another body.
    OtherBody,
    /// The row changed between the statements (released or reset): try again.
    Gone,
}

/// The new request's row, in progress, if the key is new.
pub async fn request_insert(
    pool: &PgPool,
    system: &str,
    key: &str,
    operation: &str,
    body_hash: &[u8],
    payload: &Value,
    callback_url: Option<&str>,
) -> Result<Option<Claim>, sqlx::Error> {
    let row: Option<(Uuid,)> = timed(
        "sim_request_insert",
        sqlx::query_as(
            "INSERT INTO sim_request (system, idempotency_key, request_id, operation, body_hash, \
                                      payload, callback_url, status) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'in_progress') \
             ON CONFLICT (system, idempotency_key) DO NOTHING \
             RETURNING request_id",
        )
        .bind(system)
        .bind(key)
        .bind(Uuid::now_v7())
        .bind(operation)
        .bind(body_hash)
        .bind(payload)
        .bind(callback_url)
        .fetch_optional(pool),
    )
    .await?;
    Ok(row.map(|(request_id,)| Claim {
        request_id,
        transient_failures: 0,
    }))
}

/// The stored answer for the key with this body, counting the replay as an attempt.
pub async fn request_replay(
    pool: &PgPool,
    system: &str,
    key: &str,
    body_hash: &[u8],
) -> Result<Option<(u16, Value)>, sqlx::Error> {
    let row: Option<(i16, Value)> = timed(
        "sim_request_replay",
        sqlx::query_as(
            "UPDATE sim_request SET attempts = attempts + 1 \
             WHERE system = $1 AND idempotency_key = $2 AND body_hash = $3 \
               AND status = 'completed' \
             RETURNING response_status, response_body",
        )
        .bind(system)
        .bind(key)
        .bind(body_hash)
        .fetch_optional(pool),
    )
    .await?;
    Ok(row.map(|(s, b)| (s as u16, b)))
}

/// Claims a key that has no final answer (after a transient failure, or an execution lost with
/// a crashed simulator) for another execution.
pub async fn request_reclaim(
    pool: &PgPool,
    system: &str,
    key: &str,
    body_hash: &[u8],
) -> Result<Option<Claim>, sqlx::Error> {
    let row: Option<(Uuid, i32)> = timed(
        "sim_request_reclaim",
        sqlx::query_as(
            "UPDATE sim_request \
             SET status = 'in_progress', attempts = attempts + 1, claimed_at = now() \
             WHERE system = $1 AND idempotency_key = $2 AND body_hash = $3 \
               AND (status = 'open' \
                    OR (status = 'in_progress' \
                        AND claimed_at < now() - make_interval(secs => $4))) \
             RETURNING request_id, transient_failures",
        )
        .bind(system)
        .bind(key)
        .bind(body_hash)
        .bind(STALE_CLAIM_SECS)
        .fetch_optional(pool),
    )
    .await?;
    Ok(row.map(|(request_id, t)| Claim {
        request_id,
        transient_failures: t.max(0) as u32,
    }))
}

/// body_hash, status, response_status, response_body.
type KeyStateRow = (Vec<u8>, String, Option<i16>, Option<Value>);

/// Why the key could not be claimed or replayed.
pub async fn request_fetch(
    pool: &PgPool,
    system: &str,
    key: &str,
    body_hash: &[u8],
) -> Result<Existing, sqlx::Error> {
    let row: Option<KeyStateRow> = timed(
        "sim_request_fetch",
        sqlx::query_as(
            "SELECT body_hash, status, response_status, response_body FROM sim_request \
             WHERE system = $1 AND idempotency_key = $2",
        )
        .bind(system)
        .bind(key)
        .fetch_optional(pool),
    )
    .await?;
    Ok(match row {
        None => Existing::Gone,
        Some((hash, _, _, _)) if hash != body_hash => Existing::OtherBody,
        Some((_, status, Some(s), Some(b))) if status == "completed" => Existing::Answer {
            status: s as u16,
            body: b,
        },
        Some((_, status, _, _)) if status == "in_progress" => Existing::InProgress,
        Some(_) => Existing::Gone,
    })
}

/// How an execution ended, to store as the key's final answer.
pub struct Completion<'a> {
    pub status: u16,
    pub body: &'a Value,
    pub permanent_failure: bool,
    pub timeout: bool,
}

/// A callback the execution owes.
pub struct NewCallback<'a> {
    pub callback_id: Uuid,
    pub callback_url: &'a str,
    pub body: &'a str,
    pub dropped: bool,
    pub delay_secs: f64,
}

/// Stores the final answer, counts the execution and records the callback, in one transaction.
/// False when the claim was lost meanwhile (a reset): nothing stored.
pub async fn request_complete(
    pool: &PgPool,
    claim: Claim,
    system: &str,
    done: Completion<'_>,
    callback: Option<NewCallback<'_>>,
) -> Result<bool, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let updated = timed(
        "sim_request_complete",
        sqlx::query(
            "UPDATE sim_request \
             SET status = 'completed', executions = executions + 1, response_status = $2, \
                 response_body = $3, permanent_failures = permanent_failures + $4, \
                 timeouts = timeouts + $5, completed_at = now() \
             WHERE request_id = $1 AND status = 'in_progress'",
        )
        .bind(claim.request_id)
        .bind(done.status as i16)
        .bind(done.body)
        .bind(i32::from(done.permanent_failure))
        .bind(i32::from(done.timeout))
        .execute(&mut *tx),
    )
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    if let Some(cb) = callback {
        timed(
            "sim_callback_insert",
            sqlx::query(
                "INSERT INTO sim_callback (callback_id, request_id, system, callback_url, body, \
                                           status, due_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))",
            )
            .bind(cb.callback_id)
            .bind(claim.request_id)
            .bind(system)
            .bind(cb.callback_url)
            .bind(cb.body)
            .bind(if cb.dropped { "dropped" } else { "pending" })
            .bind(cb.delay_secs)
            .execute(&mut *tx),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Gives the key back without an answer: after a transient failure (counted) or an internal
/// error (not counted), so that a retry may execute.
pub async fn request_release(
    pool: &PgPool,
    claim: Claim,
    transient_failure: bool,
) -> Result<(), sqlx::Error> {
    timed(
        "sim_request_release",
        sqlx::query(
            "UPDATE sim_request \
             SET status = 'open', transient_failures = transient_failures + $2 \
             WHERE request_id = $1 AND status = 'in_progress'",
        )
        .bind(claim.request_id)
        .bind(i32::from(transient_failure))
        .execute(pool),
    )
    .await?;
    Ok(())
}

/// One key's record, as `GET /admin/executions` shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct KeyRecord {
    pub system: String,
    pub idempotency_key: String,
    pub request_id: Uuid,
    pub operation: String,
    pub status: String,
    pub response_status: Option<i16>,
    pub executions: i32,
    pub attempts: i32,
    pub transient_failures: i32,
    pub timeouts: i32,
    pub permanent_failures: i32,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// Keys in the order they were first seen, optionally of one system and only those executed
/// more than once.
pub async fn request_list(
    pool: &PgPool,
    system: Option<&str>,
    duplicates_only: bool,
    limit: i64,
) -> Result<Vec<KeyRecord>, sqlx::Error> {
    timed(
        "sim_request_list",
        sqlx::query_as(
            "SELECT system, idempotency_key, request_id, operation, status, response_status, \
                    executions, attempts, transient_failures, timeouts, permanent_failures, \
                    created_at, completed_at \
             FROM sim_request \
             WHERE ($1::text IS NULL OR system = $1) AND (NOT $2 OR executions > 1) \
             ORDER BY created_at, system, idempotency_key \
             LIMIT $3",
        )
        .bind(system)
        .bind(duplicates_only)
        .bind(limit)
        .fetch_all(pool),
    )
    .await
}

/// Per-system figures of `GET /admin/stats`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SystemStats {
    pub requests: i64,
    pub executions: i64,
    pub distinct_keys: i64,
    pub duplicate_executions: i64,
    pub keys_executed_more_than_once: i64,
    pub transient_failures_injected: i64,
    pub timeouts_injected: i64,
    pub permanent_failures_injected: i64,
    pub callbacks_pending: i64,
    pub callbacks_delivered: i64,
    pub callbacks_dropped: i64,
    pub callback_delivery_attempts: i64,
}

type RequestStatsRow = (String, i64, i64, i64, i64, i64, i64, i64, i64);
type CallbackStatsRow = (String, i64, i64, i64, i64);

/// Figures per system that has any request.
pub async fn stats(pool: &PgPool) -> Result<Vec<(String, SystemStats)>, sqlx::Error> {
    let requests: Vec<RequestStatsRow> = timed(
        "sim_request_stats",
        sqlx::query_as(
            "SELECT system, \
                    COALESCE(sum(attempts), 0)::int8, \
                    COALESCE(sum(executions), 0)::int8, \
                    count(*), \
                    COALESCE(sum(GREATEST(executions - 1, 0)), 0)::int8, \
                    count(*) FILTER (WHERE executions > 1), \
                    COALESCE(sum(transient_failures), 0)::int8, \
                    COALESCE(sum(timeouts), 0)::int8, \
                    COALESCE(sum(permanent_failures), 0)::int8 \
             FROM sim_request GROUP BY system",
        )
        .fetch_all(pool),
    )
    .await?;
    let callbacks: Vec<CallbackStatsRow> = timed(
        "sim_callback_stats",
        sqlx::query_as(
            "SELECT system, \
                    count(*) FILTER (WHERE status = 'pending'), \
                    count(*) FILTER (WHERE status = 'delivered'), \
                    count(*) FILTER (WHERE status = 'dropped'), \
                    COALESCE(sum(attempts), 0)::int8 \
             FROM sim_callback GROUP BY system",
        )
        .fetch_all(pool),
    )
    .await?;
    let mut out: std::collections::BTreeMap<String, SystemStats> = Default::default();
    for (system, req, exe, keys, dup, dup_keys, transient, timeouts, permanent) in requests {
        let s = out.entry(system).or_default();
        s.requests = req;
        s.executions = exe;
        s.distinct_keys = keys;
        s.duplicate_executions = dup;
        s.keys_executed_more_than_once = dup_keys;
        s.transient_failures_injected = transient;
        s.timeouts_injected = timeouts;
        s.permanent_failures_injected = permanent;
    }
    for (system, pending, delivered, dropped, attempts) in callbacks {
        let s = out.entry(system).or_default();
        s.callbacks_pending = pending;
        s.callbacks_delivered = delivered;
        s.callbacks_dropped = dropped;
        s.callback_delivery_attempts = attempts;
    }
    Ok(out.into_iter().collect())
}

/// A callback the delivery loop has leased.
#[derive(Debug, sqlx::FromRow)]
pub struct DueCallback {
    pub callback_id: Uuid,
    pub system: String,
    pub callback_url: String,
    pub body: String,
    pub attempts: i32,
}

/// Leases up to `limit` due callbacks for `lease_secs` (another simulator instance skips them;
/// a lease that runs out without an outcome makes the callback due again).
pub async fn callback_lease_due(
    pool: &PgPool,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<DueCallback>, sqlx::Error> {
    timed(
        "sim_callback_lease_due",
        sqlx::query_as(
            "UPDATE sim_callback \
             SET attempts = attempts + 1, due_at = now() + make_interval(secs => $2) \
             WHERE callback_id IN ( \
                 SELECT callback_id FROM sim_callback \
                 WHERE status = 'pending' AND due_at <= now() \
                 ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
             RETURNING callback_id, system, callback_url, body, attempts",
        )
        .bind(limit)
        .bind(lease_secs)
        .fetch_all(pool),
    )
    .await
}

pub async fn callback_mark_delivered(
    pool: &PgPool,
    callback_id: Uuid,
    http_status: u16,
) -> Result<(), sqlx::Error> {
    timed(
        "sim_callback_mark_delivered",
        sqlx::query(
            "UPDATE sim_callback \
             SET status = 'delivered', delivered_at = now(), last_status = $2, last_error = NULL \
             WHERE callback_id = $1 AND status = 'pending'",
        )
        .bind(callback_id)
        .bind(http_status as i16)
        .execute(pool),
    )
    .await?;
    Ok(())
}

/// After a failed delivery: due again after `delay_secs`.
pub async fn callback_retry_later(
    pool: &PgPool,
    callback_id: Uuid,
    delay_secs: f64,
    http_status: Option<u16>,
    error: &str,
) -> Result<(), sqlx::Error> {
    timed(
        "sim_callback_retry_later",
        sqlx::query(
            "UPDATE sim_callback \
             SET due_at = now() + make_interval(secs => $2), last_status = $3, last_error = $4 \
             WHERE callback_id = $1 AND status = 'pending'",
        )
        .bind(callback_id)
        .bind(delay_secs)
        .bind(http_status.map(|s| s as i16))
        .bind(error)
        .execute(pool),
    )
    .await?;
    Ok(())
}

/// One callback, as `GET /admin/callbacks` shows it.
#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct CallbackRecord {
    pub callback_id: Uuid,
    pub request_id: Uuid,
    pub system: String,
    pub callback_url: String,
    pub status: String,
    pub attempts: i32,
    pub due_at: DateTime<Utc>,
    pub last_status: Option<i16>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

pub async fn callback_list(
    pool: &PgPool,
    system: Option<&str>,
    status: Option<&str>,
    limit: i64,
) -> Result<Vec<CallbackRecord>, sqlx::Error> {
    timed(
        "sim_callback_list",
        sqlx::query_as(
            "SELECT callback_id, request_id, system, callback_url, status, attempts, due_at, \
                    last_status, last_error, created_at, delivered_at \
             FROM sim_callback \
             WHERE ($1::text IS NULL OR system = $1) AND ($2::text IS NULL OR status = $2) \
             ORDER BY created_at, callback_id \
             LIMIT $3",
        )
        .bind(system)
        .bind(status)
        .bind(limit)
        .fetch_all(pool),
    )
    .await
}

/// Forgets every request and callback (demos and tests).
pub async fn reset(pool: &PgPool) -> Result<(), sqlx::Error> {
    timed(
        "sim_reset",
        sqlx::query("TRUNCATE sim_callback, sim_request").execute(pool),
    )
    .await?;
    Ok(())
}

/// Readiness: the database answers.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    timed("sim_ping", sqlx::query("SELECT 1").execute(pool)).await?;
    Ok(())
}
