//! `/v1/user-tasks`: native user tasks for people. A task is someone's when it is assigned to
//! them, or, while unassigned, when one of their roles is among its candidate groups.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_core::{Error, Principal, Role};
use cpq_workflow::instances::{self, UserTask};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::command::{execute, read};
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody, RequestContext};
use crate::pagination::{decode_cursor, page, page_size, query_fingerprint, Page};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

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
    let limit = page_size(
        q.limit,
        state.config.http.default_page_size,
        state.config.http.max_page_size,
    )?;
    let fingerprint = query_fingerprint(&(&q, &caller.0.subject));
    let after = q
        .cursor
        .as_deref()
        .map(|c| decode_cursor::<Uuid>(c, &fingerprint))
        .transpose()?;
    let mut tx = read(&state, &caller).await?;
    let rows = instances::user_task_list(
        &mut tx,
        &caller.0.tenant,
        Some(&caller.0.subject),
        &caller.0.task_groups(),
        after,
        i64::from(limit) + 1,
    )
    .await?;
    let p: Page<UserTask> = page(rows, limit, &fingerprint, |t| t.user_task_id, |t| t);
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
    let principal = caller.0.clone();
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: Assign| {
        Box::pin(async move {
            let (task, _) = instances::user_task_fetch_for_update(tx, &meta.tenant, id).await?;
            let operator = principal.has_role(Role::Operator);
            let claiming_for_self = b.assignee.as_deref() == Some(principal.subject.as_str()) && task.assignee.is_none() && may_work_on(&principal, &task);
            let releasing_own = b.assignee.is_none() && task.assignee.as_deref() == Some(principal.subject.as_str());
            if !(operator || claiming_for_self || releasing_own) {
                return Err(Error::Forbidden { detail: "only its candidates may claim a task for themselves, its assignee release it, or an operator assign it".into() });
            }
            let t = instances::assign_user_task(tx, &meta.tenant, id, b.assignee.as_deref()).await?;
            Ok(CommandResponse::ok(serde_json::to_value(t).map_err(Error::internal)?))
        })
    })
    .await?;
    Ok(r.into_response())
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
    let principal = caller.0.clone();
    let r = execute(&state, &caller, &ctx, body, move |tx, meta, b: Complete| {
        Box::pin(async move {
            let (task, _) = instances::user_task_fetch_for_update(tx, &meta.tenant, id).await?;
            if !may_work_on(&principal, &task) {
                return Err(Error::Forbidden {
                    detail:
                        "this task is assigned to someone else, or offered to roles you do not have"
                            .into(),
                });
            }
            let status = instances::complete_user_task(
                tx,
                &meta.tenant,
                id,
                &principal.subject,
                b.variables,
                meta.occurred_at,
            )
            .await?;
            Ok(CommandResponse::ok(
                json!({ "user_task_id": id, "instance_status": status }),
            ))
        })
    })
    .await?;
    Ok(r.into_response())
}
