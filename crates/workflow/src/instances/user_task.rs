//! The `user_task` table: tasks that wait for a person, created and cancelled by the runtime's
//! effects, listed, assigned and completed by people.

use chrono::{DateTime, Utc};
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{timed, Tx};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{step, Scope};
use crate::runtime::{Command, InstanceStatus};

/// A user task as its people see it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UserTask {
    pub user_task_id: Uuid,
    pub process_instance_id: Uuid,
    pub element_id: String,
    pub name: Option<String>,
    pub assignee: Option<String>,
    pub candidate_groups: Vec<String>,
    pub due_date: Option<String>,
    pub status: String,
    pub variables: Value,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<String>,
}

const USER_TASK_COLUMNS: &str = "user_task_id, process_instance_id, element_id, name, assignee, candidate_groups, due_date, status, \
    variables, created_at, completed_at, completed_by";

/// Open tasks assigned to `assignee`, or offered to any of `groups`.
pub async fn user_task_list(
    tx: &mut Tx,
    tenant: &TenantId,
    assignee: Option<&str>,
    groups: &[String],
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserTask>, Error> {
    timed(
        "user_task_list",
        sqlx::query_as(&format!(
            "SELECT {USER_TASK_COLUMNS} FROM user_task WHERE tenant_id = $1 AND status = 'created' \
             AND (($2::text IS NOT NULL AND assignee = $2) OR (assignee IS NULL AND candidate_groups && $3)) \
             AND ($4::uuid IS NULL OR user_task_id > $4) ORDER BY user_task_id LIMIT $5"
        ))
        .bind(tenant.as_str())
        .bind(assignee)
        .bind(groups)
        .bind(after)
        .bind(limit)
        .fetch_all(&mut **tx),
    )
    .await
    .map_err(db_error)
}

/// A user task read under its row lock ([`user_task_fetch_for_update`]): what the caller decides
/// on (who may act, the task's variables) and what [`assign_user_task`] and [`complete_user_task`]
/// act on, so that the task is locked once per command.
#[derive(Debug, Clone)]
pub struct LockedUserTask {
    pub task: UserTask,
    element_key: i64,
}

/// Locks the task (404 when the tenant has no such task).
pub async fn user_task_fetch_for_update(
    tx: &mut Tx,
    tenant: &TenantId,
    task: Uuid,
) -> Result<LockedUserTask, Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        task: UserTask,
        element_key: i64,
    }
    let row: Option<Row> = timed(
        "user_task_fetch_for_update",
        sqlx::query_as(&format!("SELECT {USER_TASK_COLUMNS}, element_key FROM user_task WHERE tenant_id = $1 AND user_task_id = $2 FOR UPDATE"))
            .bind(tenant.as_str())
            .bind(task)
            .fetch_optional(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    let row = row.ok_or_else(|| Error::not_found("user task", task))?;
    Ok(LockedUserTask {
        task: row.task,
        element_key: row.element_key,
    })
}

/// A conflict unless the locked task is open.
fn open(locked: &LockedUserTask) -> Result<(), Error> {
    let t = &locked.task;
    if t.status != "created" {
        return Err(Error::conflict(format!(
            "user task {} is {}",
            t.user_task_id, t.status
        )));
    }
    Ok(())
}

/// Completes an open user task, locked by [`user_task_fetch_for_update`], with the person's
/// variables; the instance moves on.
pub async fn complete_user_task(
    tx: &mut Tx,
    locked: &LockedUserTask,
    by: &str,
    variables: Map<String, Value>,
    at: DateTime<Utc>,
) -> Result<InstanceStatus, Error> {
    open(locked)?;
    let t = &locked.task;
    timed(
        "user_task_complete",
        sqlx::query("UPDATE user_task SET status = 'completed', completed_at = $2, completed_by = $3 WHERE user_task_id = $1")
            .bind(t.user_task_id)
            .bind(at)
            .bind(by)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    step(
        tx,
        t.process_instance_id,
        Command::CompleteUserTask {
            element: locked.element_key as u64,
            variables,
        },
        None,
        at,
    )
    .await
}

/// Assigns (or with `None` unassigns) an open user task, locked by
/// [`user_task_fetch_for_update`].
pub async fn assign_user_task(
    tx: &mut Tx,
    locked: LockedUserTask,
    assignee: Option<&str>,
) -> Result<UserTask, Error> {
    open(&locked)?;
    timed(
        "user_task_assign",
        sqlx::query("UPDATE user_task SET assignee = $2 WHERE user_task_id = $1")
            .bind(locked.task.user_task_id)
            .bind(assignee)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(UserTask {
        assignee: assignee.map(str::to_owned),
        ..locked.task
    })
}

/// Inserts the task a [`crate::runtime::Effect::CreateUserTask`] asks for.
#[allow(clippy::too_many_arguments)]
pub(super) async fn user_task_insert(
    tx: &mut Tx,
    scope: &Scope<'_>,
    element: u64,
    element_id: &str,
    name: &Option<String>,
    assignee: &Option<String>,
    candidate_groups: &[String],
    due_date: &Option<String>,
    variables: &Map<String, Value>,
) -> Result<(), Error> {
    timed(
        "user_task_insert",
        sqlx::query(
            "INSERT INTO user_task (user_task_id, tenant_id, process_instance_id, element_key, element_id, name, assignee, \
             candidate_groups, due_date, status, variables, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'created', $10, $11)",
        )
        .bind(Uuid::now_v7())
        .bind(scope.tenant)
        .bind(scope.instance)
        .bind(element as i64)
        .bind(element_id)
        .bind(name)
        .bind(assignee)
        .bind(candidate_groups)
        .bind(due_date)
        .bind(Value::Object(variables.clone()))
        .bind(scope.at)
        .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Cancels the open task of an element that ended otherwise.
pub(super) async fn user_task_cancel(
    tx: &mut Tx,
    instance: Uuid,
    element: u64,
) -> Result<(), Error> {
    timed(
        "user_task_cancel",
        sqlx::query("UPDATE user_task SET status = 'cancelled' WHERE process_instance_id = $1 AND element_key = $2 AND status = 'created'")
            .bind(instance)
            .bind(element as i64)
            .execute(&mut **tx),
    )
    .await
    .map_err(db_error)?;
    Ok(())
}
