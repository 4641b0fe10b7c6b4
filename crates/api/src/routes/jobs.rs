//! The job API for workers in any language, shaped like Camunda 8's REST job endpoints:
//! activate (with a long poll), complete, fail, throw a BPMN error. Needs the `worker` role; jobs
//! of every tenant are served, and each outcome is written in the job's tenant.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_core::{Error, FieldError, Role};
use cpq_workflow::instances::{self, ActivatedJob, JOB_CHANNEL};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sqlx::postgres::PgListener;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::command::execute;
use crate::extract::{ApiPath, Caller, JsonBody, RequestContext};
use crate::problem::{ApiError, Problem};
use crate::response::CommandResponse;
use crate::state::AppState;

const WORKERS: &[Role] = &[Role::Worker];
const MAX_JOBS: u32 = 200;
const MAX_LONG_POLL: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateJobs {
    pub job_type: String,
    pub worker: String,
    /// Lease: how long the jobs are this worker's before others may take them.
    pub timeout_ms: u64,
    pub max_jobs: u32,
    /// Wait up to this long for jobs when none are ready (long poll); 0 answers at once.
    #[serde(default)]
    pub request_timeout_ms: u64,
}

fn job_json(j: ActivatedJob, job_type: &str) -> Value {
    let key = j.idempotency_key();
    json!({
        "job_id": j.job_id, "job_type": job_type, "tenant": j.tenant_id, "process_instance_id": j.process_instance_id,
        "element_id": j.element_id, "retries": j.retries, "attempt": j.attempt, "custom_headers": j.headers,
        "variables": j.variables, "deadline": j.lease_deadline, "idempotency_key": key,
    })
}

#[utoipa::path(post, path = "/v1/jobs/activation", tag = "workflow", security(("bearer" = [])),
    request_body = ActivateJobs, responses((status = 200, description = "{jobs: [...]}, possibly empty"), (status = 400, body = Problem)))]
pub async fn activate(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<ActivateJobs>,
) -> Result<Response, ApiError> {
    caller.0.require_any(WORKERS)?;
    let a = body.value;
    let mut errors = Vec::new();
    if a.job_type.trim().is_empty() {
        errors.push(FieldError::new(
            "job_type",
            "required",
            "job_type must not be blank",
        ));
    }
    if a.worker.trim().is_empty() {
        errors.push(FieldError::new(
            "worker",
            "required",
            "worker must not be blank",
        ));
    }
    if !(1..=MAX_JOBS).contains(&a.max_jobs) {
        errors.push(FieldError::new(
            "max_jobs",
            "out-of-range",
            format!("max_jobs is 1 to {MAX_JOBS}"),
        ));
    }
    if !(100..=3_600_000).contains(&a.timeout_ms) {
        errors.push(FieldError::new(
            "timeout_ms",
            "out-of-range",
            "timeout_ms is 100 to 3,600,000",
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let lease = Duration::from_millis(a.timeout_ms);
    let wait = Duration::from_millis(a.request_timeout_ms)
        .min(MAX_LONG_POLL)
        .min(
            state
                .config
                .http
                .request_timeout()
                .saturating_sub(Duration::from_millis(500)),
        );
    let started = Instant::now();
    let max = i32::try_from(a.max_jobs).unwrap_or(1);
    let mut jobs = instances::activate_jobs(&state.db, &a.job_type, &a.worker, max, lease).await?;
    if jobs.is_empty() && !wait.is_zero() {
        // Wait for a NOTIFY of this job type (or the deadline), then try again.
        let mut listener = PgListener::connect_with(&state.db)
            .await
            .map_err(cpq_db::error::db_error)?;
        listener
            .listen(JOB_CHANNEL)
            .await
            .map_err(cpq_db::error::db_error)?;
        while jobs.is_empty() {
            // A job may have arrived between the first try and LISTEN.
            jobs = instances::activate_jobs(&state.db, &a.job_type, &a.worker, max, lease).await?;
            let Some(left) = wait.checked_sub(started.elapsed()) else {
                break;
            };
            if !jobs.is_empty() || left.is_zero() {
                break;
            }
            match tokio::time::timeout(left, listener.recv()).await {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => return Err(cpq_db::error::db_error(e).into()),
                Err(_) => break,
            }
        }
    }
    metrics::histogram!("workflow_job_activation_seconds", "job_type" => a.job_type.clone())
        .record(started.elapsed().as_secs_f64());
    let list: Vec<Value> = jobs.into_iter().map(|j| job_json(j, &a.job_type)).collect();
    Ok(axum::Json(json!({ "jobs": list })).into_response())
}

/// Runs a job command in the job's tenant.
async fn in_job_tenant<B, F>(
    state: &AppState,
    caller: Caller,
    ctx: &RequestContext,
    job: Uuid,
    body: JsonBody<B>,
    command: F,
) -> Result<Response, ApiError>
where
    F: for<'t> FnOnce(
        &'t mut cpq_db::Tx,
        cpq_audit::CommandMeta,
        B,
    ) -> futures::future::BoxFuture<'t, Result<CommandResponse, Error>>,
{
    caller.0.require_any(WORKERS)?;
    let tenant = instances::job_tenant(&state.db, job).await?;
    let as_tenant = Caller(cpq_core::Principal { tenant, ..caller.0 });
    Ok(execute(state, &as_tenant, ctx, body, command)
        .await?
        .into_response())
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
    responses((status = 200, description = "Completed; the instance moved on"), (status = 404, body = Problem), (status = 409, description = "not activated", body = Problem)))]
pub async fn complete(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(job): ApiPath<Uuid>,
    body: JsonBody<CompleteJob>,
) -> Result<Response, ApiError> {
    in_job_tenant(
        &state,
        caller,
        &ctx,
        job,
        body,
        move |tx, meta, b: CompleteJob| {
            Box::pin(async move {
                let status =
                    instances::complete_job(tx, job, b.variables, meta.occurred_at).await?;
                Ok(CommandResponse::ok(
                    json!({ "job_id": job, "instance_status": status }),
                ))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailJob {
    /// Retries left; 0 raises an incident.
    pub retries: i32,
    #[serde(default)]
    pub retry_back_off_ms: u64,
    pub error_message: String,
}

#[utoipa::path(post, path = "/v1/jobs/{job_id}/failure", tag = "workflow", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)), request_body = FailJob,
    responses((status = 200, description = "Recorded"), (status = 409, body = Problem)))]
pub async fn fail(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(job): ApiPath<Uuid>,
    body: JsonBody<FailJob>,
) -> Result<Response, ApiError> {
    if body.value.retries < 0 {
        return Err(Error::validation(vec![FieldError::new(
            "retries",
            "out-of-range",
            "retries must not be negative",
        )])
        .into());
    }
    in_job_tenant(
        &state,
        caller,
        &ctx,
        job,
        body,
        move |tx, meta, b: FailJob| {
            Box::pin(async move {
                instances::fail_job(
                    tx,
                    job,
                    b.retries,
                    Duration::from_millis(b.retry_back_off_ms),
                    &b.error_message,
                    meta.occurred_at,
                )
                .await?;
                Ok(CommandResponse::ok(
                    json!({ "job_id": job, "retries": b.retries }),
                ))
            })
        },
    )
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThrowJobError {
    pub error_code: String,
    #[serde(default)]
    pub error_message: String,
}

#[utoipa::path(post, path = "/v1/jobs/{job_id}/error", tag = "workflow", security(("bearer" = [])),
    params(("job_id" = Uuid, Path)), request_body = ThrowJobError,
    responses((status = 200, description = "Caught by a boundary event, or an incident"), (status = 409, body = Problem)))]
pub async fn throw_error(
    State(state): State<AppState>,
    caller: Caller,
    ctx: RequestContext,
    ApiPath(job): ApiPath<Uuid>,
    body: JsonBody<ThrowJobError>,
) -> Result<Response, ApiError> {
    in_job_tenant(
        &state,
        caller,
        &ctx,
        job,
        body,
        move |tx, meta, b: ThrowJobError| {
            Box::pin(async move {
                let status = instances::throw_error(
                    tx,
                    job,
                    &b.error_code,
                    &b.error_message,
                    meta.occurred_at,
                )
                .await?;
                Ok(CommandResponse::ok(
                    json!({ "job_id": job, "instance_status": status }),
                ))
            })
        },
    )
    .await
}
