//! `/v1/approval-tasks` (an approver's open approval tasks; approve, reject or return each with
//! a comment) and `/v1/approval-policy` (the tenant's versioned decision table).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_application::approvals::{
    DecideTask, FetchApprovalPolicy, ListApprovalTasks, PutApprovalPolicy,
};
use cpq_application::Operation;
use cpq_core::Error;
use cpq_quote::model::policy::{Rule, Timers};
use cpq_quote::model::Verdict;
use cpq_quote::store::ApprovalTask;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::{command, query};
use crate::extract::{ApiPath, ApiQuery, Caller, JsonBody, RequestContext};
use crate::pagination::{Page, PageRequest};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::routes::user_tasks::TaskQuery;
use crate::state::AppState;

/// My open approval tasks: assigned to me, or offered to one of my groups (approval levels).
#[utoipa::path(get, path = "/v1/approval-tasks", tag = "approvals", security(("bearer" = [])),
    params(TaskQuery), responses((status = 200, description = "A page of open approval tasks with their quotes")))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TaskQuery>,
) -> Result<Response, ApiError> {
    // A caller who is no approver is refused before the query is checked, as always.
    caller.0.require_any(ListApprovalTasks::ROLES)?;
    // Each approver has their own list: a cursor is only good for the caller it was made for.
    let paging = PageRequest::<Uuid>::new(
        &state.config.http,
        q.limit,
        q.cursor.as_deref(),
        &(&q, &caller.0.subject),
    )?;
    let tasks = ListApprovalTasks {
        after: paging.after,
        limit: paging.fetch(),
    };
    let rows = query(&state, &caller, tasks).await?;
    let p: Page<ApprovalTask> = paging.page(rows, |t| t.task_id, |t| t);
    Ok(axum::Json(p).into_response())
}

/// `200 OK` with `value` as the body, without an entity tag.
fn plain(value: impl Serialize) -> Result<CommandResponse, Error> {
    Ok(CommandResponse::ok(
        serde_json::to_value(value).map_err(Error::internal)?,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Required to reject or return: it tells the quote's owner why.
    pub comment: Option<String>,
}

async fn decide(
    state: AppState,
    caller: Caller,
    ctx: RequestContext,
    task_id: Uuid,
    verdict: Verdict,
    body: JsonBody<Decision>,
) -> Result<Response, ApiError> {
    let input = |b: Decision| DecideTask {
        task_id,
        verdict,
        comment: b.comment,
    };
    command(&state, &caller, &ctx, body, input, plain).await
}

#[utoipa::path(post, path = "/v1/approval-tasks/{id}/approve", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Decision,
    responses((status = 200, description = "Approved; the quote is approved after its last level"), (status = 403, description = "not offered to you, or your own quote", body = Problem), (status = 409, body = Problem)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Decision>,
) -> Result<Response, ApiError> {
    decide(state, caller, ctx, id, Verdict::Approved, body).await
}

#[utoipa::path(post, path = "/v1/approval-tasks/{id}/reject", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Decision,
    responses((status = 200, description = "Rejected; the approval ends"), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, description = "no comment", body = Problem)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Decision>,
) -> Result<Response, ApiError> {
    decide(state, caller, ctx, id, Verdict::Rejected, body).await
}

#[utoipa::path(post, path = "/v1/approval-tasks/{id}/return", tag = "approvals", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body = Decision,
    responses((status = 200, description = "Returned for revision: the quote is a draft again, to be changed, priced and resubmitted"), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn return_for_revision(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(id): ApiPath<Uuid>,
    body: JsonBody<Decision>,
) -> Result<Response, ApiError> {
    decide(state, caller, ctx, id, Verdict::Returned, body).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutPolicy {
    /// Approval levels in the order approvals happen, e.g. `["manager", "finance", "deal-desk"]`.
    pub levels: Vec<String>,
    /// `{code, level, condition: {when: line_discount_above|overall_discount_above|deal_size_above|margin_below|non_standard_terms, value}}`.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<Rule>,
    /// `{reminder_after, escalate_after, escalation_group}`; ISO 8601 durations (default P1D, P3D, `sales-director`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub timers: Timers,
}

/// A new version of the tenant's approval policy (catalog managers own commercial policy).
#[utoipa::path(put, path = "/v1/approval-policy", tag = "approvals", security(("bearer" = [])),
    request_body = PutPolicy, responses((status = 200, description = "The new version"), (status = 422, body = Problem)))]
pub async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<PutPolicy>,
) -> Result<Response, ApiError> {
    let input = |b: PutPolicy| PutApprovalPolicy {
        levels: b.levels,
        rules: b.rules,
        timers: b.timers,
    };
    command(&state, &caller, &ctx, body, input, plain).await
}

#[utoipa::path(get, path = "/v1/approval-policy", tag = "approvals", security(("bearer" = [])),
    responses((status = 200, description = "The current policy (version 0 is the built-in default)")))]
pub async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let policy = query(&state, &caller, FetchApprovalPolicy).await?;
    Ok(axum::Json(policy).into_response())
}
