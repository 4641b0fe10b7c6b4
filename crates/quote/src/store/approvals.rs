//! The approval statements of the quote's store: the tenant's policy versions, the approval
//! tasks an approver sees, and the decisions recorded on a quote.

use chrono::{DateTime, Utc};
use cpq_core::{Error, Principal, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::model::policy::{default_policy, Policy};

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

/// Takes the transaction-scoped lock on the tenant's policy versions, so that two writers cannot
/// take the same version ([`approval_policy_insert`]).
pub async fn approval_policy_lock(tx: &mut Tx, tenant: &TenantId) -> Result<(), Error> {
    timed(
        "approval_policy_lock",
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('approval_policy:' || $1))")
            .bind(tenant.as_str())
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Inserts the tenant's next policy version (under [`approval_policy_lock`]), the version
/// written into `policy` too: that version.
pub async fn approval_policy_insert(
    tx: &mut Tx,
    tenant: &TenantId,
    policy: &Value,
    at: DateTime<Utc>,
    by: &str,
) -> Result<i32, Error> {
    timed(
        "approval_policy_insert",
        sqlx::query_scalar(
            "WITH next AS (SELECT coalesce(max(version), 0) + 1 AS version FROM approval_policy WHERE tenant_id = $1) \
             INSERT INTO approval_policy (tenant_id, version, policy, created_at, created_by) \
             SELECT $1, next.version, jsonb_set($2, '{version}', to_jsonb(next.version)), $3, $4 FROM next \
             RETURNING version",
        )
        .bind(tenant.as_str())
        .bind(policy)
        .bind(at)
        .bind(by)
        .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)
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

/// Open approval tasks for `who`: assigned to them, or offered to one of their groups or roles.
pub async fn approval_task_list(
    tx: &mut Tx,
    who: &Principal,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<ApprovalTask>, Error> {
    timed(
        "approval_task_list",
        sqlx::query_as(
            "SELECT t.user_task_id AS task_id, q.quote_id, q.revision_no, t.variables->>'level' AS level, t.element_id, t.name, \
             t.element_id = 'ApproveEscalatedQuote' AS escalated, t.assignee, t.candidate_groups, q.owner AS quote_owner, q.customer_account_id, q.currency, t.created_at \
             FROM user_task t JOIN quote q ON q.approval_instance_id = t.process_instance_id AND q.tenant_id = t.tenant_id \
             WHERE t.tenant_id = $1 AND t.status = 'created' \
             AND (t.assignee = $2 OR (t.assignee IS NULL AND t.candidate_groups && $3)) \
             AND ($4::uuid IS NULL OR t.user_task_id > $4) ORDER BY t.user_task_id LIMIT $5",
        )
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

/// How many levels of the approval process `instance` have been approved.
pub async fn quote_approval_count(
    tx: &mut Tx,
    quote_id: Uuid,
    instance: Uuid,
) -> Result<i64, Error> {
    timed(
        "quote_approval_count",
        sqlx::query_scalar("SELECT count(*) FROM quote_approval WHERE quote_id = $1 AND process_instance_id = $2 AND decision = 'approved'")
            .bind(quote_id)
            .bind(instance)
            .fetch_one(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// One approver's decision, as recorded.
pub struct ApprovalInsert<'a> {
    pub tenant: &'a TenantId,
    pub quote_id: Uuid,
    pub revision_no: i32,
    pub level: &'a str,
    pub decision: &'a str,
    pub decided_by: &'a str,
    pub comment: Option<&'a str>,
    pub task_id: Uuid,
    pub process_instance_id: Uuid,
    pub at: DateTime<Utc>,
}

pub async fn quote_approval_insert(tx: &mut Tx, a: &ApprovalInsert<'_>) -> Result<(), Error> {
    timed(
        "quote_approval_insert",
        sqlx::query(
            "INSERT INTO quote_approval (approval_id, tenant_id, quote_id, revision_no, level, decision, decided_by, comment, user_task_id, \
             process_instance_id, decided_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(Uuid::now_v7())
        .bind(a.tenant.as_str())
        .bind(a.quote_id)
        .bind(a.revision_no)
        .bind(a.level)
        .bind(a.decision)
        .bind(a.decided_by)
        .bind(a.comment)
        .bind(a.task_id)
        .bind(a.process_instance_id)
        .bind(a.at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
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

pub async fn quote_approval_history(
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
