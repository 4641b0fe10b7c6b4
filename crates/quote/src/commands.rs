//! The quote commands, one function each, in the caller's tenant transaction: lock the quote
//! ([`store::quote_fetch_for_update`], one statement with its lines), decide with
//! [`crate::model`] (the version the caller saw, the lifecycle, the command's own rules), write
//! through [`crate::store`] (one UPDATE of the quote that answers with the quote as written), and
//! audit (the audit record and its event).
//!
//! Create pins the catalog version in force; add, change and remove items validate each
//! configuration against that version; price stores the pricing engine's snapshot and hash;
//! submit lets the tenant's approval policy decide and starts the approval process in the same
//! transaction when approval is needed; accept records the customer's acceptance; cancel ends
//! any approval process. Approval tasks are [`crate::approval_tasks`]', revisions
//! [`crate::revisions`]'.

use std::future::Future;
use std::sync::Arc;

use cpq_audit::events::{
    ApprovalReason, ChargeAmounts, DomainEvent, QuoteAccepted, QuoteApprovalRequested,
    QuoteCancelled, QuoteCreated, QuoteItemAdded, QuoteItemChanged, QuoteItemRemoved, QuotePriced,
    QuoteSubmitted, QuoteTermsChanged, Totals,
};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_catalog::CompiledCatalog;
use cpq_configuration::ConfigItem;
use cpq_core::{Error, FieldError};
use cpq_db::Tx;
use cpq_pricing::price as price_items;
use cpq_workflow::instances::{self, StartRequest};
use rust_decimal::Decimal;
use serde_json::{json, Map};
use uuid::Uuid;

use crate::model::lifecycle::{apply, Action, Status};
use crate::model::policy::{decide, Policy, Rule, Timers};
use crate::model::{
    check_line, check_new_quote, facts, next_line_no, policy_problems, pricing_request,
    submittable, terms_text, transition, NewQuote, Quote, AGGREGATE,
};
use crate::processes::{not_deployed, APPROVAL_PROCESS};
use crate::store::{self, QuoteChange, QuoteFields, QuoteInsert};

/// The audit record of a quote command and its one event, with the event's payload as the
/// record's `after`.
pub(crate) async fn audit_event<E: DomainEvent>(
    tx: &mut Tx,
    meta: &CommandMeta,
    action: &'static str,
    event: &E,
) -> Result<(), Error> {
    let event = NewEvent::of(event)?;
    let audit = AuditEntry {
        action,
        aggregate_type: E::AGGREGATE,
        aggregate_id: event.aggregate_id,
        before: None,
        after: Some(event.payload.clone()),
        reason: None,
    };
    record(tx, meta, &audit, &[event]).await.map(|_| ())
}

/// The event totals of a price snapshot.
fn event_totals(t: &cpq_pricing::Totals) -> Totals {
    let amounts = |a: &cpq_pricing::ChargeAmounts| ChargeAmounts {
        list: a.list,
        discount: a.discount,
        net: a.net,
        tax: a.tax,
        gross: a.gross,
    };
    Totals {
        one_time: amounts(&t.one_time),
        recurring: amounts(&t.recurring),
    }
}

/// The change of `q` to `status` by the command's actor, now.
pub(crate) fn change<'a>(
    meta: &'a CommandMeta,
    q: &Quote,
    status: Status,
    price_stale: bool,
) -> QuoteChange<'a> {
    QuoteChange {
        id: q.id,
        status,
        price_stale,
        at: meta.occurred_at,
        by: &meta.actor_subject,
    }
}

/// Ends the approval process of a quote that leaves approval-pending other than by a decision
/// (cancelled, revised, expired).
pub(crate) async fn end_approval(tx: &mut Tx, meta: &CommandMeta, q: &Quote) -> Result<(), Error> {
    if let (Status::ApprovalPending, Some(instance)) = (q.status, q.approval_instance_id) {
        instances::cancel_instance(tx, &meta.tenant, instance, meta.occurred_at).await?;
    }
    Ok(())
}

/// Creates a draft quote for an active customer account, pinned to the catalog version in force.
pub async fn create(tx: &mut Tx, meta: &CommandMeta, input: &NewQuote) -> Result<Quote, Error> {
    let account =
        store::customer_account_fetch_for_quote(tx, &meta.tenant, input.customer_account_id)
            .await?;
    check_new_quote(input, &account, meta.occurred_at.date_naive())?;
    let version = cpq_catalog::store::catalog_active_version(tx, &meta.tenant, meta.occurred_at)
        .await?
        .ok_or_else(|| Error::conflict("no catalog version is in force: quotes need one"))?;
    let terms = terms_text(input.special_terms.as_deref())?;
    let q = store::quote_insert(
        tx,
        &QuoteInsert {
            id: Uuid::now_v7(),
            tenant: &meta.tenant,
            customer_account_id: input.customer_account_id,
            catalog_version_id: version,
            account: &account,
            channel: &input.channel,
            valid_until: input.valid_until,
            special_terms: terms.as_deref(),
            owner: &meta.actor_subject,
            at: meta.occurred_at,
        },
    )
    .await?;
    let event = QuoteCreated {
        quote_id: q.id,
        customer_account_id: q.customer_account_id,
        catalog_version_id: version,
    };
    audit_event(tx, meta, "quote.create", &event).await?;
    Ok(q)
}

/// Adds a line; its configuration must be valid in the quote's catalog version (every violation
/// reported, nothing written otherwise). A priced quote's price becomes stale. `catalog` gives
/// the compiled catalog of a version.
#[allow(clippy::too_many_arguments)]
pub async fn add_item<F, Fut>(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    catalog: F,
    config: &ConfigItem,
    discount: Option<Decimal>,
) -> Result<Quote, Error>
where
    F: FnOnce(Uuid) -> Fut,
    Fut: Future<Output = Result<Arc<CompiledCatalog>, Error>>,
{
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::EditItems)?;
    let catalog = catalog(q.catalog_version_id).await?;
    check_line(
        &q,
        &catalog,
        meta.occurred_at.date_naive(),
        config,
        discount,
    )?;
    let line = next_line_no(&q);
    let configuration = serde_json::to_value(config).map_err(Error::internal)?;
    store::quote_item_insert(
        tx,
        &meta.tenant,
        &q,
        line,
        &configuration,
        discount,
        meta.occurred_at,
    )
    .await?;
    let stale = q.snapshot_hash.is_some();
    let updated =
        store::quote_update(tx, &change(meta, &q, next, stale), QuoteFields::None).await?;
    let event = QuoteItemAdded {
        quote_id: id,
        line_no: line,
        offering: config.offering.clone(),
    };
    audit_event(tx, meta, "quote.add-item", &event).await?;
    Ok(updated)
}

/// Replaces a line's configuration and discount, validated as when it was added.
#[allow(clippy::too_many_arguments)]
pub async fn change_item<F, Fut>(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    line_no: i32,
    catalog: F,
    config: &ConfigItem,
    discount: Option<Decimal>,
) -> Result<Quote, Error>
where
    F: FnOnce(Uuid) -> Fut,
    Fut: Future<Output = Result<Arc<CompiledCatalog>, Error>>,
{
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::EditItems)?;
    if !q.items.iter().any(|i| i.line_no == line_no) {
        return Err(Error::not_found("quote line", line_no));
    }
    let catalog = catalog(q.catalog_version_id).await?;
    check_line(
        &q,
        &catalog,
        meta.occurred_at.date_naive(),
        config,
        discount,
    )?;
    let configuration = serde_json::to_value(config).map_err(Error::internal)?;
    store::quote_item_update(tx, &q, line_no, &configuration, discount).await?;
    let stale = q.snapshot_hash.is_some();
    let updated =
        store::quote_update(tx, &change(meta, &q, next, stale), QuoteFields::None).await?;
    let event = QuoteItemChanged {
        quote_id: id,
        line_no,
        offering: config.offering.clone(),
    };
    audit_event(tx, meta, "quote.change-item", &event).await?;
    Ok(updated)
}

/// Sets (or with `None` clears) the quote's special terms; like an item edit, it needs a new
/// price before submission, and the approval policy sees the terms at submission.
pub async fn set_terms(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    terms: Option<&str>,
) -> Result<Quote, Error> {
    let terms = terms_text(terms)?;
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::EditItems)?;
    let stale = q.snapshot_hash.is_some();
    let updated = store::quote_update(
        tx,
        &change(meta, &q, next, stale),
        QuoteFields::Terms(terms.as_deref()),
    )
    .await?;
    let event = QuoteTermsChanged {
        quote_id: id,
        special_terms: terms,
    };
    audit_event(tx, meta, "quote.set-terms", &event).await?;
    Ok(updated)
}

pub async fn remove_item(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    line_no: i32,
) -> Result<Quote, Error> {
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::EditItems)?;
    if !store::quote_item_delete(tx, &q, line_no).await? {
        return Err(Error::not_found("quote line", line_no));
    }
    let stale = q.snapshot_hash.is_some();
    let updated =
        store::quote_update(tx, &change(meta, &q, next, stale), QuoteFields::None).await?;
    let event = QuoteItemRemoved {
        quote_id: id,
        line_no,
    };
    audit_event(tx, meta, "quote.remove-item", &event).await?;
    Ok(updated)
}

/// Prices the current items with the quote's catalog version; stores the snapshot and its hash.
pub async fn price<F, Fut>(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    catalog: F,
) -> Result<Quote, Error>
where
    F: FnOnce(Uuid) -> Fut,
    Fut: Future<Output = Result<Arc<CompiledCatalog>, Error>>,
{
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::Price)?;
    let catalog = catalog(q.catalog_version_id).await?;
    let (ctx, items) = pricing_request(&q, &catalog, meta.occurred_at.date_naive())?;
    let snapshot = price_items(&catalog, &ctx, &items).map_err(|e| {
        Error::validation(vec![FieldError::new(e.field(), e.code(), e.to_string())])
    })?;
    let stored = serde_json::to_value(&snapshot).map_err(Error::internal)?;
    let updated = store::quote_update(
        tx,
        &change(meta, &q, next, false),
        QuoteFields::Price {
            snapshot: &stored,
            hash: &snapshot.hash,
        },
    )
    .await?;
    let event = QuotePriced {
        quote_id: id,
        snapshot_hash: snapshot.hash.clone(),
        totals: event_totals(&snapshot.totals),
    };
    audit_event(tx, meta, "quote.price", &event).await?;
    Ok(updated)
}

/// Submits a priced quote. The policy decides: an approval-free quote is submitted (and may be
/// accepted); otherwise it waits in approval-pending and the approval process starts, in this
/// transaction. The decision (policy version, levels, reasons) is stored on the quote.
pub async fn submit(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
) -> Result<Quote, Error> {
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let snapshot = submittable(&q, expected)?;
    let policy = store::approval_policy_current(tx, &meta.tenant).await?;
    let decision = decide(&policy, &facts(&snapshot, q.special_terms.is_some()));
    let action = if decision.approval_free() {
        Action::SubmitApprovalFree
    } else {
        Action::SubmitForApproval
    };
    let next = apply(q.status, action).map_err(|r| Error::conflict(r.to_string()))?;
    let instance = if decision.approval_free() {
        None
    } else {
        Some(start_approval(tx, meta, &q, &policy, &decision.levels).await?)
    };
    let stored = serde_json::to_value(&decision).map_err(Error::internal)?;
    let updated = store::quote_update(
        tx,
        &change(meta, &q, next, false),
        QuoteFields::Submission {
            decision: &stored,
            approval_instance_id: instance,
        },
    )
    .await?;
    let event = QuoteSubmitted {
        quote_id: id,
        revision_no: q.revision_no,
        snapshot_hash: q.snapshot_hash.clone().unwrap_or_default(),
        policy_version: decision.policy_version,
        levels: decision.levels.clone(),
    };
    audit_event(tx, meta, "quote.submit", &event).await?;
    if let Some(instance) = instance {
        record(
            tx,
            meta,
            &AuditEntry {
                action: "quote.request-approval",
                aggregate_type: AGGREGATE,
                aggregate_id: id,
                before: None,
                after: Some(json!({ "levels": decision.levels, "process_instance_id": instance })),
                reason: None,
            },
            &[NewEvent::of(&QuoteApprovalRequested {
                quote_id: id,
                revision_no: q.revision_no,
                levels: decision.levels.clone(),
                reasons: decision
                    .reasons
                    .iter()
                    .map(|r| ApprovalReason {
                        level: r.level.clone(),
                        rule: r.rule.clone(),
                        detail: r.detail.clone(),
                    })
                    .collect(),
                process_instance_id: instance,
            })?],
        )
        .await?;
    }
    Ok(updated)
}

/// Starts the `quote-approval` process for the levels the policy required.
async fn start_approval(
    tx: &mut Tx,
    meta: &CommandMeta,
    q: &Quote,
    policy: &Policy,
    levels: &[String],
) -> Result<Uuid, Error> {
    let mut variables = Map::new();
    variables.insert("quote_id".into(), json!(q.id));
    variables.insert("revision_no".into(), json!(q.revision_no));
    variables.insert("owner".into(), json!(q.owner));
    variables.insert("levels".into(), json!(levels));
    variables.insert("reminder_after".into(), json!(policy.timers.reminder_after));
    variables.insert("escalate_after".into(), json!(policy.timers.escalate_after));
    variables.insert(
        "escalation_group".into(),
        json!(policy.timers.escalation_group),
    );
    let started = instances::start_instance(
        tx,
        &StartRequest {
            tenant: &meta.tenant,
            bpmn_process_id: APPROVAL_PROCESS,
            product_line: None,
            release_flags: Vec::new(),
            variables,
            at: meta.occurred_at,
        },
    )
    .await
    .map_err(|e| match e {
        Error::NotFound { .. } => not_deployed(APPROVAL_PROCESS),
        e => e,
    })?;
    Ok(started.process_instance_id)
}

/// Records the customer's acceptance: only an approved or approval-free quote.
pub async fn accept(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
) -> Result<Quote, Error> {
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::Accept)?;
    let updated =
        store::quote_update(tx, &change(meta, &q, next, false), QuoteFields::Acceptance).await?;
    let event = QuoteAccepted {
        quote_id: id,
        revision_no: q.revision_no,
        snapshot_hash: q.snapshot_hash.clone().unwrap_or_default(),
        accepted_by: meta.actor_subject.clone(),
    };
    audit_event(tx, meta, "quote.accept", &event).await?;
    Ok(updated)
}

/// Cancels an open quote, with a reason kept in the audit trail.
pub async fn cancel(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
    reason: &str,
) -> Result<Quote, Error> {
    if reason.trim().is_empty() {
        return Err(Error::validation(vec![FieldError::new(
            "reason",
            "required",
            "cancelling a quote needs a reason",
        )]));
    }
    let q = store::quote_fetch_for_update(tx, &meta.tenant, id).await?;
    let next = transition(&q, expected, Action::Cancel)?;
    end_approval(tx, meta, &q).await?;
    let updated = store::quote_update(
        tx,
        &change(meta, &q, next, q.price_stale),
        QuoteFields::None,
    )
    .await?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "quote.cancel",
            aggregate_type: AGGREGATE,
            aggregate_id: id,
            before: None,
            after: Some(json!({ "status": "cancelled" })),
            reason: Some(reason.trim().to_owned()),
        },
        &[NewEvent::of(&QuoteCancelled {
            quote_id: id,
            reason: reason.trim().to_owned(),
        })?],
    )
    .await?;
    Ok(updated)
}

/// Stores a new version of the tenant's approval policy; earlier versions stay as they were.
pub async fn approval_policy_put(
    tx: &mut Tx,
    meta: &CommandMeta,
    levels: Vec<String>,
    rules: Vec<Rule>,
    timers: Timers,
) -> Result<Policy, Error> {
    let problems = policy_problems(&levels, &rules, &timers);
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }
    store::approval_policy_lock(tx, &meta.tenant).await?;
    let mut policy = Policy {
        version: 0,
        levels,
        rules,
        timers,
    };
    // The insert takes the next version and writes it into the stored policy.
    policy.version = store::approval_policy_insert(
        tx,
        &meta.tenant,
        &serde_json::to_value(&policy).map_err(Error::internal)?,
        meta.occurred_at,
        &meta.actor_subject,
    )
    .await?;
    let stored = serde_json::to_value(&policy).map_err(Error::internal)?;
    record(
        tx,
        meta,
        &AuditEntry {
            action: "approval-policy.put",
            aggregate_type: "approval-policy",
            aggregate_id: Uuid::nil(),
            before: None,
            after: Some(stored),
            reason: None,
        },
        &[],
    )
    .await?;
    Ok(policy)
}
