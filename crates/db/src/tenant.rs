//! Tenant-scoped transactions. Every tenant-owned table has the row-level security policy
//! `tenant_id = current_setting('cpq.tenant_id', true)`; this sets that value for one transaction
//! (`set_config(..., true)` is transaction-local), so a pooled connection never carries a tenant
//! into the next transaction.

use cpq_core::TenantId;
use sqlx::PgPool;

use crate::{timed, Tx};

/// The custom setting the policies read.
pub const TENANT_SETTING: &str = "cpq.tenant_id";

/// Begins a transaction in which only `tenant`'s rows are visible or writable.
pub async fn begin(pool: &PgPool, tenant: &TenantId) -> Result<Tx, sqlx::Error> {
    let mut tx = timed("transaction_begin", pool.begin()).await?;
    timed(
        "tenant_scope_set",
        sqlx::query("SELECT set_config('cpq.tenant_id', $1, true)")
            .bind(tenant.as_str())
            .execute(&mut *tx),
    )
    .await?;
    Ok(tx)
}
