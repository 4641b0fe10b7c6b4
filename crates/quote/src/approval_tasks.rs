//! Approval tasks: the `quote-approval` process's user tasks, decided by approvers other than the
//! quote's owner ([`decide_task`]). Who may decide and what a decision does are
//! [`crate::model`]'s rules ([`authorise_decision`], [`verdict_action`]); this module locks,
//! writes and audits.
//!
//! A decision completes the process's user task and moves the quote in one transaction, so the
//! quote's status and the process cannot disagree. The process decides who is asked next, when
//! they are reminded and when the task escalates; the quote counts the approved levels of the
//! current submission against the levels the policy required.

use cpq_audit::events::{
    ApprovalDecision, QuoteApproved, QuoteDecision, QuoteRejected, QuoteReturned,
};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, Principal};
use cpq_db::Tx;
use cpq_workflow::instances;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::commands::change;
use crate::model::lifecycle::{apply, Action};
use crate::model::{
    authorise_decision, decision_comment, required_levels, verdict_action, Decided, Quote,
    TaskToDecide, Verdict, AGGREGATE,
};
use crate::store::{self, ApprovalInsert, QuoteFields};

/// Decides an approval task: completes the process's user task and moves the quote, in `tx`.
/// Approvers cannot decide on their own quotes; rejecting and returning need a comment.
pub async fn decide_task(
    tx: &mut Tx,
    meta: &CommandMeta,
    who: &Principal,
    task_id: Uuid,
    verdict: Verdict,
    comment: Option<String>,
) -> Result<Decided, Error> {
    let comment = decision_comment(verdict, comment)?;
    let locked = instances::user_task_fetch_for_update(tx, &meta.tenant, task_id).await?;
    let task = &locked.task;
    let q = store::quote_fetch_for_update_by_approval_instance(
        tx,
        &meta.tenant,
        task.process_instance_id,
    )
    .await?
    .ok_or_else(|| Error::not_found("approval task", task_id))?;
    authorise_decision(
        &TaskToDecide {
            task_id,
            status: &task.status,
            assignee: task.assignee.as_deref(),
            candidate_groups: &task.candidate_groups,
        },
        &who.subject,
        &who.task_groups(),
        &q.owner,
    )?;
    let level = task
        .variables
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let approved_before = store::quote_approval_count(tx, q.id, task.process_instance_id).await?;
    let action = verdict_action(verdict, approved_before, required_levels(&q).len());
    let next = apply(q.status, action).map_err(|r| Error::conflict(r.to_string()))?;
    let mut variables = Map::new();
    variables.insert("decision".into(), json!(verdict.as_str()));
    instances::complete_user_task(tx, &locked, &who.subject, variables, meta.occurred_at).await?;
    store::quote_approval_insert(
        tx,
        &ApprovalInsert {
            tenant: &meta.tenant,
            quote_id: q.id,
            revision_no: q.revision_no,
            level: &level,
            decision: verdict.as_str(),
            decided_by: &who.subject,
            comment: comment.as_deref(),
            task_id,
            process_instance_id: task.process_instance_id,
            at: meta.occurred_at,
        },
    )
    .await?;
    // A returned quote goes back to draft for changes and needs a new price before resubmission.
    let price_stale = matches!(verdict, Verdict::Returned) || q.price_stale;
    let updated =
        store::quote_update(tx, &change(meta, &q, next, price_stale), QuoteFields::None).await?;
    audit_decision(
        tx, meta, who, &q, action, verdict, &level, &comment, task_id,
    )
    .await?;
    Ok(Decided {
        task_id,
        level,
        decision: verdict,
        quote: updated,
    })
}

/// The decision's audit record, with the quote's event when the decision moved the quote to a
/// status of its own (approved, rejected, returned); an approved level in between has none.
#[allow(clippy::too_many_arguments)]
async fn audit_decision(
    tx: &mut Tx,
    meta: &CommandMeta,
    who: &Principal,
    q: &Quote,
    action: Action,
    verdict: Verdict,
    level: &str,
    comment: &Option<String>,
    task_id: Uuid,
) -> Result<(), Error> {
    let quote_id = q.id;
    let decision = QuoteDecision {
        quote_id,
        revision_no: q.revision_no,
        level: level.to_owned(),
        decision: match verdict {
            Verdict::Approved => ApprovalDecision::Approved,
            Verdict::Rejected => ApprovalDecision::Rejected,
            Verdict::Returned => ApprovalDecision::Returned,
        },
        decided_by: who.subject.clone(),
        comment: comment.clone(),
        task_id,
    };
    let payload = serde_json::to_value(&decision).map_err(Error::internal)?;
    let event = match action {
        Action::ApproveFinal => Some(NewEvent::of(&QuoteApproved(decision))?),
        Action::Reject => Some(NewEvent::of(&QuoteRejected(decision))?),
        Action::ReturnForRevision => Some(NewEvent::of(&QuoteReturned(decision))?),
        _ => None,
    };
    let audit = AuditEntry {
        action: "quote.approval-decision",
        aggregate_type: AGGREGATE,
        aggregate_id: quote_id,
        before: None,
        after: Some(payload),
        reason: comment.clone(),
    };
    let events: Vec<NewEvent> = event.into_iter().collect();
    record(tx, meta, &audit, &events).await?;
    Ok(())
}
