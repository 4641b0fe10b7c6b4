//! The customer account commands. Each runs inside the caller's tenant transaction and writes the
//! change, its audit record and its outbox event together, or returns an error and the caller
//! rolls everything back.

use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, TenantId};
use cpq_db::Tx;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::{AccountInput, AccountPatch, CustomerAccount, Stamp};
use crate::store;

pub const AGGREGATE: &str = "customer-account";
pub const EVENT_CREATED: &str = "customer-account.created";
pub const EVENT_UPDATED: &str = "customer-account.updated";
pub const EVENT_CLOSED: &str = "customer-account.closed";

fn snapshot(a: &CustomerAccount) -> Result<Value, Error> {
    serde_json::to_value(a).map_err(Error::internal)
}

fn stamp(meta: &CommandMeta) -> Stamp<'_> {
    Stamp {
        tenant: &meta.tenant,
        subject: &meta.actor_subject,
        at: meta.occurred_at,
    }
}

pub async fn fetch(tx: &mut Tx, tenant: &TenantId, id: Uuid) -> Result<CustomerAccount, Error> {
    store::customer_account_fetch(tx, tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("customer account", id))
}

/// Locks the account and checks the caller saw its current version.
async fn lock_at_version(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected_version: i64,
) -> Result<CustomerAccount, Error> {
    let current = store::customer_account_fetch_for_update(tx, &meta.tenant, id)
        .await?
        .ok_or_else(|| Error::not_found("customer account", id))?;
    if current.version != expected_version {
        return Err(Error::PreconditionFailed {
            current: current.version.to_string(),
        });
    }
    Ok(current)
}

pub async fn create(
    tx: &mut Tx,
    meta: &CommandMeta,
    input: &AccountInput,
) -> Result<CustomerAccount, Error> {
    let account = CustomerAccount::create(Uuid::now_v7(), input, &stamp(meta))?;
    store::customer_account_insert(tx, &account).await?;
    let after = snapshot(&account)?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "customer-account.create",
            aggregate_type: AGGREGATE,
            aggregate_id: account.id,
            before: None,
            after: Some(after.clone()),
            reason: None,
        },
        &[NewEvent {
            event_type: EVENT_CREATED,
            schema_version: 1,
            aggregate_type: AGGREGATE,
            aggregate_id: account.id,
            payload: json!({ "customer_account": after }),
        }],
    )
    .await?;
    Ok(account)
}

pub async fn update(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected_version: i64,
    patch: &AccountPatch,
) -> Result<CustomerAccount, Error> {
    let current = lock_at_version(tx, meta, id, expected_version).await?;
    let next = current.apply(patch, &stamp(meta))?;
    store::customer_account_update(tx, &next, current.version).await?;
    let (before, after) = (snapshot(&current)?, snapshot(&next)?);
    record(
        tx,
        meta,
        &AuditEntry {
            action: "customer-account.update",
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            before: Some(before),
            after: Some(after.clone()),
            reason: None,
        },
        &[NewEvent {
            event_type: EVENT_UPDATED,
            schema_version: 1,
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            payload: json!({ "customer_account": after, "changed_fields": current.changed_fields(&next) }),
        }],
    )
    .await?;
    Ok(next)
}

pub async fn close(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected_version: i64,
    reason: &str,
) -> Result<CustomerAccount, Error> {
    let current = lock_at_version(tx, meta, id, expected_version).await?;
    let next = current.close(reason, &stamp(meta))?;
    store::customer_account_update(tx, &next, current.version).await?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "customer-account.close",
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            before: Some(snapshot(&current)?),
            after: Some(snapshot(&next)?),
            reason: next.close_reason.clone(),
        },
        &[NewEvent {
            event_type: EVENT_CLOSED,
            schema_version: 1,
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            payload: json!({
                "customer_account_id": id,
                "version": next.version,
                "closed_at": next.closed_at,
                "reason": next.close_reason,
            }),
        }],
    )
    .await?;
    Ok(next)
}
