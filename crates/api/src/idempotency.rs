//! Durable idempotency for commands, in PostgreSQL, in the command's own transaction.
//!
//! [`begin`] inserts the key's record before the command runs. A concurrent request with the same
//! key blocks on that row's unique index until the first transaction ends: if it committed, the
//! second finds the stored response and replays it; if it rolled back, the second runs the
//! command itself. So a key executes at most once, and only a committed execution is remembered.
//! Refusals (4xx) roll back and are not stored: repeating them is harmless.

use chrono::{Duration, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;

use crate::extract::IdempotencyKey;
use crate::response::CommandResponse;

pub enum Begun {
    /// This request owns the key: run the command, then [`complete`].
    Fresh,
    /// The key was used before by the same request: send this response again.
    Replay(CommandResponse),
}

#[derive(sqlx::FromRow)]
struct Stored {
    request_hash: Vec<u8>,
    response_status: Option<i16>,
    response_headers: Option<Value>,
    response_body: Option<Value>,
    expired: bool,
}

pub struct Request<'a> {
    pub tenant: &'a TenantId,
    pub key: &'a IdempotencyKey,
    pub method: &'a str,
    pub path: &'a str,
    pub fingerprint: &'a [u8; 32],
    pub retention: Duration,
}

async fn insert(tx: &mut Tx, r: &Request<'_>) -> Result<bool, Error> {
    let now = Utc::now();
    let inserted = timed(
        "idempotency_record_insert",
        sqlx::query(
            "INSERT INTO idempotency_record (tenant_id, idempotency_key, request_method, request_path, \
             request_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (tenant_id, idempotency_key) DO NOTHING",
        )
        .bind(r.tenant.as_str())
        .bind(&r.key.0)
        .bind(r.method)
        .bind(r.path)
        .bind(&r.fingerprint[..])
        .bind(now)
        .bind(now + r.retention)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn begin(tx: &mut Tx, r: &Request<'_>) -> Result<Begun, Error> {
    if insert(tx, r).await? {
        return Ok(Begun::Fresh);
    }
    let stored: Option<Stored> = timed(
        "idempotency_record_fetch",
        sqlx::query_as(
            "SELECT request_hash, response_status, response_headers, response_body, \
             expires_at < now() AS expired \
             FROM idempotency_record WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(r.tenant.as_str())
        .bind(&r.key.0)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let Some(stored) = stored else {
        // Deleted between our insert and our read (expiry clean-up): claim it now.
        return if insert(tx, r).await? {
            Ok(Begun::Fresh)
        } else {
            Err(in_progress())
        };
    };
    if stored.expired {
        timed(
            "idempotency_record_delete_expired",
            sqlx::query("DELETE FROM idempotency_record WHERE tenant_id = $1 AND idempotency_key = $2 AND expires_at < now()")
                .bind(r.tenant.as_str())
                .bind(&r.key.0)
                .execute(&mut **tx),
        )
        .await
        .map_err(db_error)?;
        return if insert(tx, r).await? {
            Ok(Begun::Fresh)
        } else {
            Err(in_progress())
        };
    }
    if stored.request_hash != r.fingerprint[..] {
        return Err(Error::IdempotencyKeyReused);
    }
    match (stored.response_status, stored.response_body) {
        (Some(status), body) => Ok(Begun::Replay(CommandResponse::restore(
            status,
            stored.response_headers,
            body,
        )?)),
        // Only completed records are ever committed; an incomplete one means a bug.
        (None, _) => Err(in_progress()),
    }
}

fn in_progress() -> Error {
    Error::conflict("a request with this Idempotency-Key is still in progress; retry shortly")
}

pub async fn complete(
    tx: &mut Tx,
    r: &Request<'_>,
    response: &CommandResponse,
) -> Result<(), Error> {
    let (status, headers, body) = response.to_stored();
    timed(
        "idempotency_record_complete",
        sqlx::query(
            "UPDATE idempotency_record SET response_status = $3, response_headers = $4, \
             response_body = $5, completed_at = now() \
             WHERE tenant_id = $1 AND idempotency_key = $2",
        )
        .bind(r.tenant.as_str())
        .bind(&r.key.0)
        .bind(status)
        .bind(headers)
        .bind(body)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
