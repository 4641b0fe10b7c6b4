//! Native user tasks for people, in the caller's tenant. A task is someone's when it is assigned
//! to them, or, while unassigned, when one of their roles or groups is among its candidate
//! groups. Any authenticated caller may look; what they may do depends on the task.

use cpq_core::{Error, Principal, Role};
use cpq_db::Tx;
use cpq_workflow::instances::{self, UserTask};
use cpq_workflow::runtime::InstanceStatus;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{Call, Operation, Services};

/// Tasks are offered to roles and groups: every role may ask; `run` decides per task.
const ANYONE: &[Role] = &Role::ALL;

/// Whether `p` may work on `t`.
fn may_work_on(p: &Principal, t: &UserTask) -> bool {
    match &t.assignee {
        Some(a) => a == &p.subject,
        None => t
            .candidate_groups
            .iter()
            .any(|g| p.task_groups().contains(g)),
    }
}

/// One page of the caller's open tasks (assigned to them, or offered to one of their roles or
/// groups) in id order.
pub struct ListUserTasks {
    pub after: Option<Uuid>,
    pub limit: i64,
}

impl Operation for ListUserTasks {
    type Output = Vec<UserTask>;
    const ROLES: &'static [Role] = ANYONE;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<Vec<UserTask>, Error> {
        let p = &call.principal;
        let groups = p.task_groups();
        instances::user_task_list(
            tx,
            &p.tenant,
            Some(&p.subject),
            &groups,
            self.after,
            self.limit,
        )
        .await
    }
}

/// Assigns a task (`None`: hands it back to its candidate groups). Its candidates may claim it
/// for themselves, its assignee release it, an operator assign it to anyone.
pub struct AssignUserTask {
    pub id: Uuid,
    pub assignee: Option<String>,
}

impl Operation for AssignUserTask {
    type Output = UserTask;
    const ROLES: &'static [Role] = ANYONE;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<UserTask, Error> {
        let (p, tenant) = (&call.principal, &call.meta.tenant);
        let locked = instances::user_task_fetch_for_update(tx, tenant, self.id).await?;
        let task = &locked.task;
        let me = Some(p.subject.as_str());
        let operator = p.has_role(Role::Operator);
        let claiming_for_self =
            self.assignee.as_deref() == me && task.assignee.is_none() && may_work_on(p, task);
        let releasing_own = self.assignee.is_none() && task.assignee.as_deref() == me;
        if !(operator || claiming_for_self || releasing_own) {
            return Err(Error::Forbidden {
                detail: "only its candidates may claim a task for themselves, its assignee \
                         release it, or an operator assign it"
                    .into(),
            });
        }
        instances::assign_user_task(tx, locked, self.assignee.as_deref()).await
    }
}

/// Completes a task the caller may work on, with their variables; the instance moves on.
pub struct CompleteUserTask {
    pub id: Uuid,
    pub variables: Map<String, Value>,
}

impl Operation for CompleteUserTask {
    type Output = InstanceStatus;
    const ROLES: &'static [Role] = ANYONE;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<InstanceStatus, Error> {
        let (p, tenant) = (&call.principal, &call.meta.tenant);
        let locked = instances::user_task_fetch_for_update(tx, tenant, self.id).await?;
        if !may_work_on(p, &locked.task) {
            return Err(Error::Forbidden {
                detail:
                    "this task is assigned to someone else, or offered to roles you do not have"
                        .into(),
            });
        }
        let at = call.meta.occurred_at;
        instances::complete_user_task(tx, &locked, &p.subject, self.variables, at).await
    }
}
