//! The customer account commands. Each runs inside the caller's tenant transaction and writes the
//! change, its audit record and its outbox event together, or returns an error and the caller
//! rolls everything back.

use cpq_audit::events::{
    CustomerAccountClosed, CustomerAccountCreated, CustomerAccountState, CustomerAccountUpdated,
};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, TenantId};
use cpq_db::Tx;
use serde_json::Value;
use uuid::Uuid;

use crate::domain::{AccountInput, AccountPatch, CustomerAccount, Stamp};
use crate::store;

pub const AGGREGATE: &str = "customer-account";

fn snapshot(a: &CustomerAccount) -> Result<Value, Error> {
    serde_json::to_value(a).map_err(Error::internal)
}

/// The account as its events carry it.
fn state(a: &CustomerAccount) -> CustomerAccountState {
    CustomerAccountState {
        id: a.id,
        name: a.name.clone(),
        external_ref: a.external_ref.clone(),
        segment: a.segment.as_str().to_owned(),
        market: a.market.clone(),
        currency: a.currency,
        status: a.status.as_str().to_owned(),
        version: a.version,
        created_at: a.created_at,
        created_by: a.created_by.clone(),
        updated_at: a.updated_at,
        updated_by: a.updated_by.clone(),
        closed_at: a.closed_at,
        close_reason: a.close_reason.clone(),
    }
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
        &[NewEvent::of(&CustomerAccountCreated {
            customer_account: state(&account),
        })?],
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
    let changed_fields = current.changed_fields(&next);
    record(
        tx,
        meta,
        &AuditEntry {
            action: "customer-account.update",
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            before: Some(before),
            after: Some(after),
            reason: None,
        },
        &[NewEvent::of(&CustomerAccountUpdated {
            customer_account: state(&next),
            changed_fields: changed_fields.iter().map(|f| (*f).to_owned()).collect(),
        })?],
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
        &[NewEvent::of(&CustomerAccountClosed {
            customer_account_id: id,
            version: next.version,
            closed_at: next.closed_at.unwrap_or(meta.occurred_at),
            reason: next.close_reason.clone(),
        })?],
    )
    .await?;
    Ok(next)
}
