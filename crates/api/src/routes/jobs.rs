//! `/v1/jobs`: the job API for workers in any language, shaped like Camunda 8's REST job
//! endpoints: activate (with a long poll), complete, fail, throw a BPMN error. A worker serves the
//! tenants its token's `tenants` claim authorises; the rules (roles, tenant grants, ranges) are
//! the application's (`cpq_application::workflow::jobs`), which `cpq-worker` runs too. A job
//! command runs in the job's tenant: its idempotency record is kept there.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_application::workflow::jobs as op;
use cpq_application::Call;
use cpq_core::Error;
use cpq_workflow::instances::ActivatedJob;
use cpq_workflow::runtime::InstanceStatus;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::command;
use crate::extract::{ApiPath, Caller, JsonBody, RequestContext};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateJobs {
    pub job_type: String,
    pub worker: String,
    /// Lease, 100 to 3,600,000 ms: how long the jobs are this worker's before others may take
    /// them.
    #[schema(minimum = 100, maximum = 3_600_000)]
    pub timeout_ms: u64,
    /// 1 to 200.
    #[schema(minimum = 1, maximum = 200)]
    pub max_jobs: u32,
    /// Wait up to this long (0 to 60,000 ms, and never past the server's own request timeout)
    /// for jobs when none are ready (long poll); 0 answers at once.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 60_000)]
    pub request_timeout_ms: u64,
    /// The tenants whose jobs to activate (1 to 100), each one the caller is authorised for;
    /// `["*"]` for every tenant (only with the all-tenants grant). Default: the token's tenant.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 100)]
    pub tenant_ids: Option<Vec<String>>,
}

/// A job as a worker receives it; `custom_headers` is an object, as on Camunda's job.
fn job_json(j: ActivatedJob, job_type: &str) -> Value {
    let key = j.idempotency_key();
    json!({
        "job_id": j.job_id, "job_type": job_type, "tenant": j.tenant_id, "process_instance_id": j.process_instance_id,
        "element_id": j.element_id, "retries": j.retries, "attempt": j.attempt, "custom_headers": j.headers,
        "variables": j.variables, "deadline": j.lease_deadline, "idempotency_key": key,
    })
}

#[utoipa::path(post, path = "/v1/jobs/activation", tag = "workflow", security(("bearer" = [])),
    request_body = ActivateJobs, responses((status = 200, description = "{jobs: [...]}, possibly empty; custom_headers is an object"), (status = 400, body = Problem),
        (status = 403, description = "not a worker, or not authorised for a tenant in tenant_ids (named)", body = Problem),
        (status = 422, description = "a number out of range or a malformed tenant id, each field named", body = Problem)))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    body: JsonBody<ActivateJobs>,
) -> Result<Response, ApiError> {
    let a = body.value;
    let request = op::ActivateJobs {
        job_type: a.job_type,
        worker: a.worker,
        max_jobs: a.max_jobs,
        timeout_ms: a.timeout_ms,
        request_timeout_ms: a.request_timeout_ms,
        tenant_ids: a.tenant_ids,
    };
    // A long poll ends in time for its answer to beat the server's request timeout.
    let cap = state
        .config
        .http
        .request_timeout()
        .saturating_sub(Duration::from_millis(500));
    let call = Call::new(caller.0, ctx.correlation_id, Some(ctx.request_id));
    let waiting = op::Waiting::listen(cap);
    let jobs = op::activate_jobs(&state.services, &call, &request, waiting).await?;
    let list: Vec<Value> = jobs
        .into_iter()
        .map(|j| job_json(j, &request.job_type))
        .collect();
    Ok(axum::Json(json!({ "jobs": list })).into_response())
}

/// The caller acting in the job's tenant, where a job command runs.
async fn in_job_tenant(state: &AppState, caller: Caller, job: Uuid) -> Result<Caller, ApiError> {
    Ok(Caller(
        op::in_job_tenant(&state.services, &caller.0, job).await?,
    ))
}

fn instance_moved_on(job: Uuid) -> impl FnOnce(InstanceStatus) -> Result<CommandResponse, Error> {
    move |status| {
        Ok(CommandResponse::ok(
            json!({ "job_id": job, "instance_status": status }),
        ))
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteJob {
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

#[utoipa::path(post, path = "/v1/jobs/{job_id}/completion", tag = "workflow", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)), request_body = CompleteJob,
    responses((status = 200, description = "Completed; the instance moved on"), (status = 404, description = "no such job in a tenant the caller is authorised for", body = Problem), (status = 409, description = "not activated", body = Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(job): ApiPath<Uuid>,
    body: JsonBody<CompleteJob>,
) -> Result<Response, ApiError> {
    let caller = in_job_tenant(&state, caller, job).await?;
    let complete = |b: CompleteJob| op::CompleteJob {
        job,
        variables: b.variables,
    };
    command(
        &state,
        &caller,
        &ctx,
        body,
        complete,
        instance_moved_on(job),
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailJob {
    /// Retries left, 0 to 2,147,483,647; 0 raises an incident.
    #[schema(minimum = 0)]
    pub retries: i32,
    /// Wait before the job may be activated again, 0 to 604,800,000 ms (seven days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604_800_000)]
    pub retry_back_off_ms: u64,
    pub error_message: String,
}

#[utoipa::path(post, path = "/v1/jobs/{job_id}/failure", tag = "workflow", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)), request_body = FailJob,
    responses((status = 200, description = "Recorded"), (status = 404, description = "no such job in a tenant the caller is authorised for", body = Problem),
        (status = 409, body = Problem), (status = 422, description = "retries or retry_back_off_ms out of range", body = Problem)))]
pub async fn fail(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(job): ApiPath<Uuid>,
    body: JsonBody<FailJob>,
) -> Result<Response, ApiError> {
    let caller = in_job_tenant(&state, caller, job).await?;
    let fail = |b: FailJob| op::FailJob {
        job,
        retries: b.retries,
        retry_back_off_ms: b.retry_back_off_ms,
        error_message: b.error_message,
    };
    command(&state, &caller, &ctx, body, fail, |retries| {
        Ok(CommandResponse::ok(
            json!({ "job_id": job, "retries": retries }),
        ))
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrowJobError {
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
    /// Set at the error catch event that catches the error, as in Zeebe: local to it when it has
    /// output mappings (they decide what reaches the process), else propagated like a job's
    /// result. Dropped when nothing catches the error (an incident).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
}

#[utoipa::path(post, path = "/v1/jobs/{job_id}/error", tag = "workflow", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)), request_body = ThrowJobError,
    responses((status = 200, description = "Caught by a boundary event, or an incident"), (status = 404, description = "no such job in a tenant the caller is authorised for", body = Problem), (status = 409, body = Problem)))]
pub async fn throw_error(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(job): ApiPath<Uuid>,
    body: JsonBody<ThrowJobError>,
) -> Result<Response, ApiError> {
    let caller = in_job_tenant(&state, caller, job).await?;
    let throw = |b: ThrowJobError| op::ThrowJobError {
        job,
        error_code: b.error_code,
        error_message: b.error_message,
        variables: b.variables,
    };
    command(&state, &caller, &ctx, body, throw, instance_moved_on(job)).await
}
