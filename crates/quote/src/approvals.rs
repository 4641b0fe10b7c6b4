//! Approval in PostgreSQL: the tenant's versioned policy, submission (the policy decides, and a
//! quote that needs approval starts the `quote-approval` process in the same transaction),
//! approval tasks (the process's user tasks, decided by approvers other than the quote's owner)
//! and acceptance.
//!
//! A decision completes the process's user task and moves the quote in one transaction, so the
//! quote's status and the process cannot disagree. The process decides who is asked next, when
//! they are reminded and when the task escalates; the quote counts the approved levels of the
//! current submission against the levels the policy required.

use chrono::{DateTime, Utc};
use cpq_audit::{record, AuditEntry, CommandMeta, NewEvent};
use cpq_core::{Error, FieldError, Principal, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use cpq_workflow::instances::{self, StartRequest};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::approval::{decide, default_policy, discount_pct, Facts, Policy, Rule, Timers};
use crate::commands::{event, lock_for, quote_fetch, touch, Quote, AGGREGATE};
use crate::lifecycle::{apply, Action, Status};

/// The BPMN process id of `processes/quote-approval-v1.bpmn`.
pub const APPROVAL_PROCESS: &str = "quote-approval";

/// The tenant's current approval policy, or the built-in default (version 0).
pub async fn approval_policy_current(tx: &mut Tx, tenant: &TenantId) -> Result<Policy, Error> {
    let row: Option<Value> = timed(
        "approval_policy_current",
        sqlx::query_scalar(
            "SELECT policy FROM approval_policy WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(tenant.as_str())
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    match row {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| Error::internal(format!("stored approval policy: {e}"))),
        None => Ok(default_policy()),
    }
}

fn check_duration(field: &str, value: &str, problems: &mut Vec<FieldError>) {
    if cpq_workflow::feel::parse_duration(value).is_err() {
        problems.push(FieldError::new(
            field,
            "not-a-duration",
            format!("\"{value}\" is not an ISO 8601 duration such as PT4H or P2D"),
        ));
    }
}

/// Stores a new version of the tenant's approval policy; earlier versions stay as they were.
pub async fn approval_policy_put(
    tx: &mut Tx,
    meta: &CommandMeta,
    levels: Vec<String>,
    rules: Vec<Rule>,
    timers: Timers,
) -> Result<Policy, Error> {
    let mut problems = Vec::new();
    if levels.is_empty() {
        problems.push(FieldError::new(
            "levels",
            "required",
            "a policy names its approval levels in order",
        ));
    }
    for (i, l) in levels.iter().enumerate() {
        if l.trim().is_empty() || levels[..i].contains(l) {
            problems.push(FieldError::new(
                format!("levels[{i}]"),
                "invalid",
                "levels are non-empty and distinct",
            ));
        }
    }
    for (i, r) in rules.iter().enumerate() {
        if !levels.contains(&r.level) {
            problems.push(FieldError::new(
                format!("rules[{i}].level"),
                "unknown-level",
                format!("\"{}\" is not one of the levels", r.level),
            ));
        }
    }
    check_duration(
        "timers.reminder_after",
        &timers.reminder_after,
        &mut problems,
    );
    check_duration(
        "timers.escalate_after",
        &timers.escalate_after,
        &mut problems,
    );
    if timers.escalation_group.trim().is_empty() {
        problems.push(FieldError::new(
            "timers.escalation_group",
            "required",
            "escalated tasks go to a group",
        ));
    }
    if !problems.is_empty() {
        return Err(Error::validation(problems));
    }
    timed(
        "approval_policy_lock",
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('approval_policy:' || $1))")
            .bind(meta.tenant.as_str())
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let version: i32 = timed(
        "approval_policy_next_version",
        sqlx::query_scalar(
            "SELECT coalesce(max(version), 0) + 1 FROM approval_policy WHERE tenant_id = $1",
        )
        .bind(meta.tenant.as_str())
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let policy = Policy {
        version,
        levels,
        rules,
        timers,
    };
    let stored = serde_json::to_value(&policy).map_err(Error::internal)?;
    timed(
        "approval_policy_insert",
        sqlx::query("INSERT INTO approval_policy (tenant_id, version, policy, created_at, created_by) VALUES ($1, $2, $3, $4, $5)")
            .bind(meta.tenant.as_str())
            .bind(version)
            .bind(&stored)
            .bind(meta.occurred_at)
            .bind(&meta.actor_subject)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
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

/// The facts the policy decides on, from a price snapshot and the quote's special terms. The catalog carries no costs yet, so
/// the margin is unknown (a margin-floor rule treats unknown as below the floor).
fn facts(snapshot: &cpq_pricing::PriceSnapshot, special_terms: bool) -> Facts {
    let t = &snapshot.totals;
    Facts {
        line_discounts_pct: snapshot
            .lines
            .iter()
            .map(|l| {
                discount_pct(
                    l.one_time.list,
                    l.one_time.discount,
                    l.recurring.list,
                    l.recurring.discount,
                )
            })
            .collect(),
        overall_discount_pct: discount_pct(
            t.one_time.list,
            t.one_time.discount,
            t.recurring.list,
            t.recurring.discount,
        ),
        deal_size: t.one_time.net + t.recurring.net * Decimal::from(12),
        margin_pct: None,
        non_standard_terms: special_terms,
    }
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
    let q = quote_fetch(tx, &meta.tenant, id, true).await?;
    if q.version != expected {
        return Err(Error::PreconditionFailed {
            current: q.version.to_string(),
        });
    }
    // A draft is refused for its price, which is what the caller must fix; otherwise the
    // lifecycle says why, priced or not.
    if q.status == Status::Draft {
        return Err(Error::conflict(if q.snapshot_hash.is_some() {
            format!(
                "the quote's price is stale: its items or terms changed after it was priced; \
                 price it again (POST /v1/quotes/{id}/price), then submit"
            )
        } else {
            format!(
                "the quote has not been priced: price it (POST /v1/quotes/{id}/price), then submit"
            )
        }));
    }
    apply(q.status, Action::SubmitApprovalFree).map_err(|r| Error::conflict(r.to_string()))?;
    let snapshot: cpq_pricing::PriceSnapshot = match (&q.price_snapshot, q.price_stale) {
        (Some(s), false) => serde_json::from_value(s.clone())
            .map_err(|e| Error::internal(format!("stored snapshot: {e}")))?,
        _ => {
            return Err(Error::conflict(
                "the quote needs a current price before it is submitted",
            ))
        }
    };
    let policy = approval_policy_current(tx, &meta.tenant).await?;
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
        let mut variables = Map::new();
        variables.insert("quote_id".into(), json!(id));
        variables.insert("revision_no".into(), json!(q.revision_no));
        variables.insert("owner".into(), json!(q.owner));
        variables.insert("levels".into(), json!(decision.levels));
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
            Error::NotFound { .. } => crate::processes::not_deployed(APPROVAL_PROCESS),
            e => e,
        })?;
        Some(started.process_instance_id)
    };
    timed(
        "quote_store_submission",
        sqlx::query("UPDATE quote SET approval_decision = $2, approval_instance_id = $3 WHERE quote_id = $1")
            .bind(id)
            .bind(serde_json::to_value(&decision).map_err(Error::internal)?)
            .bind(instance)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, false).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    let payload = json!({ "quote_id": id, "revision_no": q.revision_no, "snapshot_hash": q.snapshot_hash, "policy_version": decision.policy_version, "levels": decision.levels });
    event(
        tx,
        meta,
        "quote.submit",
        "quote.submitted",
        &updated,
        payload,
    )
    .await?;
    if let Some(instance) = instance {
        record(
            tx,
            meta,
            &AuditEntry { action: "quote.request-approval", aggregate_type: AGGREGATE, aggregate_id: id, before: None, after: Some(json!({ "levels": decision.levels, "process_instance_id": instance })), reason: None },
            &[NewEvent {
                event_type: "quote.approval-requested",
                schema_version: 1,
                aggregate_type: AGGREGATE,
                aggregate_id: id,
                payload: json!({ "quote_id": id, "revision_no": q.revision_no, "levels": decision.levels, "reasons": decision.reasons, "process_instance_id": instance }),
            }],
        )
        .await?;
    }
    Ok(updated)
}

/// Ends the approval process of a quote that leaves approval-pending other than by a decision
/// (cancelled, revised, expired).
pub(crate) async fn end_approval(tx: &mut Tx, meta: &CommandMeta, q: &Quote) -> Result<(), Error> {
    if let (Status::ApprovalPending, Some(instance)) = (q.status, q.approval_instance_id) {
        instances::cancel_instance(tx, instance, meta.occurred_at).await?;
    }
    Ok(())
}

/// Records the customer's acceptance: only an approved or approval-free quote.
pub async fn accept(
    tx: &mut Tx,
    meta: &CommandMeta,
    id: Uuid,
    expected: i64,
) -> Result<Quote, Error> {
    let (q, next) = lock_for(tx, meta, id, expected, Action::Accept).await?;
    timed(
        "quote_store_acceptance",
        sqlx::query("UPDATE quote SET accepted_at = $2, accepted_by = $3 WHERE quote_id = $1")
            .bind(id)
            .bind(meta.occurred_at)
            .bind(&meta.actor_subject)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    touch(tx, meta, &q, next, false).await?;
    let updated = quote_fetch(tx, &meta.tenant, id, false).await?;
    event(tx, meta, "quote.accept", "quote.accepted", &updated, json!({ "quote_id": id, "revision_no": q.revision_no, "snapshot_hash": q.snapshot_hash, "accepted_by": meta.actor_subject })).await?;
    Ok(updated)
}

/// An open approval task as an approver sees it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ApprovalTask {
    pub task_id: Uuid,
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub level: Option<String>,
    /// `ApproveQuote`, or `ApproveEscalatedQuote` after the escalation timer fired.
    pub element_id: String,
    pub name: Option<String>,
    pub escalated: bool,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub quote_owner: String,
    pub customer_account_id: Uuid,
    pub currency: String,
    pub created_at: DateTime<Utc>,
}

const TASK_SELECT: &str = "SELECT t.user_task_id AS task_id, q.quote_id, q.revision_no, t.variables->>'level' AS level, t.element_id, t.name, \
    t.element_id = 'ApproveEscalatedQuote' AS escalated, t.assignee, t.candidate_groups, q.owner AS quote_owner, q.customer_account_id, q.currency, t.created_at \
    FROM user_task t JOIN quote q ON q.approval_instance_id = t.process_instance_id AND q.tenant_id = t.tenant_id";

/// Open approval tasks for `who`: assigned to them, or offered to one of their groups or roles.
pub async fn approval_tasks(
    tx: &mut Tx,
    who: &Principal,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ApprovalTask>, Error> {
    timed(
        "approval_task_list",
        sqlx::query_as(&format!(
            "{TASK_SELECT} WHERE t.tenant_id = $1 AND t.status = 'created' \
             AND (t.assignee = $2 OR (t.assignee IS NULL AND t.candidate_groups && $3)) \
             AND ($4::uuid IS NULL OR t.user_task_id > $4) ORDER BY t.user_task_id LIMIT $5"
        ))
        .bind(who.tenant.as_str())
        .bind(&who.subject)
        .bind(who.task_groups())
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Approved,
    Rejected,
    Returned,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Approved => "approved",
            Verdict::Rejected => "rejected",
            Verdict::Returned => "returned",
        }
    }
}

/// One approver's decision on one task, with the quote's new state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decided {
    pub task_id: Uuid,
    pub level: String,
    pub decision: Verdict,
    pub quote: Quote,
}

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
    let comment = comment
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if verdict != Verdict::Approved && comment.is_none() {
        return Err(Error::validation(vec![FieldError::new(
            "comment",
            "required",
            format!("a {} quote needs a comment for its owner", verdict.as_str()),
        )]));
    }
    let (task, _) = instances::user_task_fetch_for_update(tx, &meta.tenant, task_id).await?;
    let quote_id: Option<Uuid> = timed(
        "quote_by_approval_instance",
        sqlx::query_scalar(
            "SELECT quote_id FROM quote WHERE tenant_id = $1 AND approval_instance_id = $2",
        )
        .bind(meta.tenant.as_str())
        .bind(task.process_instance_id)
        .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let quote_id = quote_id.ok_or_else(|| Error::not_found("approval task", task_id))?;
    if task.status != "created" {
        return Err(Error::conflict(format!(
            "approval task {task_id} is already {}",
            task.status
        )));
    }
    let offered = match &task.assignee {
        Some(a) => a == &who.subject,
        None => task
            .candidate_groups
            .iter()
            .any(|g| who.task_groups().contains(g)),
    };
    if !offered {
        return Err(Error::Forbidden { detail: "this approval task is assigned to someone else, or offered to groups you are not in".into() });
    }
    let q = quote_fetch(tx, &meta.tenant, quote_id, true).await?;
    if q.owner == who.subject {
        return Err(Error::Forbidden {
            detail: "approvers cannot decide on their own quotes".into(),
        });
    }
    let level = task
        .variables
        .get("level")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let required: Vec<String> = q
        .approval_decision
        .as_ref()
        .and_then(|d| d.get("levels"))
        .and_then(|l| serde_json::from_value(l.clone()).ok())
        .unwrap_or_default();
    let approved_before: i64 = timed(
        "quote_approval_count",
        sqlx::query_scalar("SELECT count(*) FROM quote_approval WHERE quote_id = $1 AND process_instance_id = $2 AND decision = 'approved'")
            .bind(quote_id)
            .bind(task.process_instance_id)
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let action = match verdict {
        Verdict::Approved if approved_before + 1 >= required.len() as i64 => Action::ApproveFinal,
        Verdict::Approved => Action::ApproveLevel,
        Verdict::Rejected => Action::Reject,
        Verdict::Returned => Action::ReturnForRevision,
    };
    let next = apply(q.status, action).map_err(|r| Error::conflict(r.to_string()))?;
    let mut variables = Map::new();
    variables.insert("decision".into(), json!(verdict.as_str()));
    instances::complete_user_task(
        tx,
        &meta.tenant,
        task_id,
        &who.subject,
        variables,
        meta.occurred_at,
    )
    .await?;
    timed(
        "quote_approval_insert",
        sqlx::query(
            "INSERT INTO quote_approval (approval_id, tenant_id, quote_id, revision_no, level, decision, decided_by, comment, user_task_id, \
             process_instance_id, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(Uuid::now_v7())
        .bind(meta.tenant.as_str())
        .bind(quote_id)
        .bind(q.revision_no)
        .bind(&level)
        .bind(verdict.as_str())
        .bind(&who.subject)
        .bind(&comment)
        .bind(task_id)
        .bind(task.process_instance_id)
        .bind(meta.occurred_at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    // A returned quote goes back to draft for changes and needs a new price before resubmission.
    let price_stale = matches!(verdict, Verdict::Returned) || q.price_stale;
    touch(tx, meta, &q, next, price_stale).await?;
    let updated = quote_fetch(tx, &meta.tenant, quote_id, false).await?;
    let payload = json!({ "quote_id": quote_id, "revision_no": q.revision_no, "level": level, "decision": verdict.as_str(), "decided_by": who.subject, "comment": comment, "task_id": task_id });
    let event_type = match action {
        Action::ApproveFinal => Some("quote.approved"),
        Action::Reject => Some("quote.rejected"),
        Action::ReturnForRevision => Some("quote.returned"),
        _ => None,
    };
    let audit = AuditEntry {
        action: "quote.approval-decision",
        aggregate_type: AGGREGATE,
        aggregate_id: quote_id,
        before: None,
        after: Some(payload.clone()),
        reason: comment.clone(),
    };
    let events: Vec<NewEvent> = event_type
        .map(|t| NewEvent {
            event_type: t,
            schema_version: 1,
            aggregate_type: AGGREGATE,
            aggregate_id: quote_id,
            payload: payload.clone(),
        })
        .into_iter()
        .collect();
    record(tx, meta, &audit, &events).await?;
    Ok(Decided {
        task_id,
        level,
        decision: verdict,
        quote: updated,
    })
}

/// Every decision on a quote, oldest first (all revisions and submissions).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ApprovalRecord {
    pub revision_no: i32,
    pub level: String,
    pub decision: String,
    pub decided_by: String,
    pub comment: Option<String>,
    pub task_id: Uuid,
    pub decided_at: DateTime<Utc>,
}

pub async fn approval_history(
    tx: &mut Tx,
    tenant: &TenantId,
    quote_id: Uuid,
) -> Result<Vec<ApprovalRecord>, Error> {
    timed(
        "quote_approval_history",
        sqlx::query_as(
            "SELECT revision_no, level, decision, decided_by, comment, user_task_id AS task_id, decided_at FROM quote_approval \
             WHERE tenant_id = $1 AND quote_id = $2 ORDER BY decided_at, approval_id",
        )
        .bind(tenant.as_str())
        .bind(quote_id)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}
