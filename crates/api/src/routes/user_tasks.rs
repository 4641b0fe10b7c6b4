//! `/v1/user-tasks`: native user tasks for people. A task is someone's when it is assigned to
//! them, or, while unassigned, when one of their roles is among its candidate groups.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_application::workflow::user_tasks::{AssignUserTask, CompleteUserTask, ListUserTasks};
use cpq_core::Error;
use cpq_workflow::instances::UserTask;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

#[derive(Debug, Deserialize, Serialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    #[serde(skip_serializing)]
    pub limit: Option<u32>,
    #[serde(skip_serializing)]
    pub cursor: Option<String>,
}

/// My open tasks: assigned to me, or offered to one of my roles.
#[utoipa::path(get, path = "/v1/user-tasks", tag = "workflow", security(("bearer" = [])),
    params(TaskQuery), responses((status = 200, description = "A page of open tasks")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> Result<Response, ApiError> {
    let paging = PageRequest::<Uuid>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &(&q, &caller.0.subject),
    )?;
    let list = ListUserTasks {
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, list).await?;
    let p: Page<UserTask> = paging.page(rows, |t| t.user_task_id, |t| t);
    Ok(axum::Json(p).into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    /// Who works on it; `null` hands it back to its candidate groups.
    pub assignee: Option<String>,
}

#[utoipa::path(post, path = "/v1/user-tasks/{id}/assignment", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Assign,
    responses((status = 200, description = "Assigned"), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Assign>,
) -> Result<Response, ApiError> {
    let assign = |b: Assign| AssignUserTask {
        id,
        assignee: b.assignee,
    };
    command(&state, &caller, &ctx, body, assign, |task| {
        Ok(CommandResponse::ok(
            serde_json::to_value(task).map_err(Error::internal)?,
        ))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

#[utoipa::path(post, path = "/v1/user-tasks/{id}/completion", tag = "workflow", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Complete,
    responses((status = 200, description = "Completed; the instance moved on"), (status = 403, body = Problem), (status = 409, body = Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Complete>,
) -> Result<Response, ApiError> {
    let complete = |b: Complete| CompleteUserTask {
        id,
        variables: b.variables,
    };
    command(&state, &caller, &ctx, body, complete, |status| {
        Ok(CommandResponse::ok(
            json!({ "user_task_id": id, "instance_status": status }),
        ))
    })
    .await
}
