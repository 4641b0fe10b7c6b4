//! Approval tasks: an approver's worklist and decisions (approve, reject, return for revision).
//! The approval policy: the tenant's versioned decision table, its versions and the current one.

use cpq_core::{Error, Role};
use cpq_db::Tx;
use cpq_quote::model::policy::{Policy, Rule, Timers};
use cpq_quote::model::{Decided, Verdict};
use cpq_quote::store::{self, ApprovalTask};
use cpq_quote::{approval_tasks, commands};
use uuid::Uuid;

use crate::{Call, Operation, Services};

const APPROVERS: &[Role] = &[Role::Approver];
/// Catalog managers own commercial policy.
const POLICY_OWNERS: &[Role] = &[Role::CatalogManager];
const POLICY_READERS: &[Role] = &[Role::CatalogManager, Role::Sales, Role::Approver];

/// One page of the caller's open approval tasks (assigned to them, or offered to one of their
/// groups), in task id order: at most `limit` after `after`.
pub struct ListApprovalTasks {
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListApprovalTasks {
    type Output = Vec<ApprovalTask>;
    const ROLES: &'static [Role] = APPROVERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Self::Output, Error> {
        store::approval_task_list(tx, &call.principal, self.after, self.limit).await
    }
}

/// The caller's decision on an approval task. Approvers cannot decide on their own quotes;
/// rejecting and returning need a comment.
pub struct DecideTask {
    pub task_id: Uuid,
    pub verdict: Verdict,
    pub comment: Option<String>,
}

impl Operation for DecideTask {
    type Output = Decided;
    const ROLES: &'static [Role] = APPROVERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Decided, Error> {
        let who = &call.principal;
        approval_tasks::decide_task(
            tx,
            &call.meta,
            who,
            self.task_id,
            self.verdict,
            self.comment,
        )
        .await
    }
}

/// Stores the next version of the tenant's approval policy.
pub struct PutApprovalPolicy {
    /// In the order approvals happen.
    pub levels: Vec<String>,
    pub rules: Vec<Rule>,
    pub timers: Timers,
}

impl Operation for PutApprovalPolicy {
    type Output = Policy;
    const ROLES: &'static [Role] = POLICY_OWNERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Policy, Error> {
        commands::approval_policy_put(tx, &call.meta, self.levels, self.rules, self.timers).await
    }
}

/// The tenant's current approval policy (version 0 is the built-in default).
pub struct FetchApprovalPolicy;

impl Operation for FetchApprovalPolicy {
    type Output = Policy;
    const ROLES: &'static [Role] = POLICY_READERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Policy, Error> {
        store::approval_policy_current(tx, &call.principal.tenant).await
    }
}
