//! Tenant-scoped transactions. Every tenant-owned table has the row-level security policy
//! `tenant_id = current_setting('cpq.tenant_id', true)`; this sets that value for one transaction
//! (`set_config(..., true)` is transaction-local), so a pooled connection never carries a tenant
//! into the next transaction.

use cpq_core::TenantId;
use sqlx::PgPool;

use crate::{timed, Tx};

/// The custom setting the policies read.
pub const TENANT_SETTING: &str = "cpq.tenant_id";

/// Begins a transaction in which only `tenant`'s rows are visible or writable: `BEGIN` and the
/// setting in one simple query, so one round trip. The tenant id is written into the query as a
/// literal, which is safe because a [`TenantId`] holds only `a-z`, `0-9` and `-`.
pub async fn begin(pool: &PgPool, tenant: &TenantId) -> Result<Tx, sqlx::Error> {
    timed(
        "transaction_begin",
        pool.begin_with(begin_statement(tenant)),
    )
    .await
}

fn begin_statement(tenant: &TenantId) -> String {
    debug_assert!(tenant
        .as_str()
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
    format!(
        "BEGIN; SELECT set_config('{TENANT_SETTING}', '{}', true)",
        tenant.as_str()
    )
}
