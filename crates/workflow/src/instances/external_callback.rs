//! The `external_callback` table: callbacks from asynchronous external systems, kept by their
//! id so that a redelivery changes nothing, and the cross-tenant lookup of the request a callback
//! answers (`external_call_tenant`, the one function that reads `external_call_attempt` without a
//! tenant: the system knows no tenant, only the idempotency key the worker sent it).

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

/// The tenant whose worker sent the request with `idempotency_key`, if any did.
pub async fn external_call_tenant(
    pool: &PgPool,
    idempotency_key: &str,
) -> Result<Option<TenantId>, Error> {
    let tenant: Option<String> = timed(
        "external_call_tenant",
        sqlx::query_scalar("SELECT external_call_tenant($1)")
            .bind(idempotency_key)
            .fetch_one(pool),
    )
    .await
    .map_err(db_error)?;
    tenant
        .map(|t| TenantId::parse(&t).map_err(|e| Error::internal(e.detail)))
        .transpose()
}

/// A callback as received, checked and attributed to its tenant.
#[derive(Debug, Clone)]
pub struct NewCallback<'a> {
    pub tenant: &'a TenantId,
    pub system: &'a str,
    pub callback_id: Uuid,
    pub idempotency_key: &'a str,
    pub request_id: Option<&'a str>,
    /// `succeeded` or `failed`.
    pub outcome: &'a str,
    pub body: &'a Value,
    pub received_at: DateTime<Utc>,
}

/// Keeps `callback`; `false` when a callback with its id from its system was kept already (a
/// redelivery, which the caller then ignores).
pub async fn external_callback_insert(
    tx: &mut Tx,
    callback: &NewCallback<'_>,
) -> Result<bool, Error> {
    let inserted = timed(
        "external_callback_insert",
        sqlx::query(
            "INSERT INTO external_callback (system, callback_id, tenant_id, idempotency_key, request_id, outcome, body, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (system, callback_id) DO NOTHING",
        )
        .bind(callback.system)
        .bind(callback.callback_id)
        .bind(callback.tenant.as_str())
        .bind(callback.idempotency_key)
        .bind(callback.request_id)
        .bind(callback.outcome)
        .bind(callback.body)
        .bind(callback.received_at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?
    .rows_affected();
    Ok(inserted == 1)
}
