//! The job API for workers in any language, shaped like Camunda 8's REST job endpoints:
//! activate (with a long poll), complete, fail, throw a BPMN error. Needs the `worker` role. As in
//! Camunda 8's multi-tenancy a worker serves the tenants it names (`tenant_ids`, by default its
//! token's tenant) and must be authorised for each: its own, those its token's `tenants` claim
//! lists, or every tenant with `"tenants": ["*"]` (then `"tenant_ids": ["*"]` asks for all). A job
//! of a tenant the caller is not authorised for is not found; each outcome is written in the job's
//! tenant.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use cpq_core::{Error, FieldError, Principal, Role, TenantId};
use cpq_workflow::instances::{self, ActivatedJob, JobTenants, JobWait, MAX_RETRY_BACKOFF};
use serde::Deserialize;
use serde_json::{json, Map, Value};
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
const LEASE_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
const MAX_TENANT_IDS: usize = 100;
/// `tenant_ids` entry asking for every tenant (needs the all-tenants grant).
const EVERY_TENANT: &str = "*";

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

/// The tenants an activation serves: checked in shape (422) and against the caller's grant (403,
/// naming the tenant).
fn served_tenants(caller: &Principal, named: Option<&[String]>) -> Result<JobTenants, Error> {
    let Some(named) = named else {
        return Ok(JobTenants::Only(vec![caller.tenant.clone()]));
    };
    if named.is_empty() || named.len() > MAX_TENANT_IDS {
        return Err(Error::validation(vec![FieldError::new(
            "tenant_ids",
            "out-of-range",
            format!("tenant_ids names 1 to {MAX_TENANT_IDS} tenants (or is left out: the token's tenant)"),
        )]));
    }
    if named.iter().any(|t| t == EVERY_TENANT) {
        if named.len() > 1 {
            return Err(Error::validation(vec![FieldError::new(
                "tenant_ids",
                "invalid",
                "\"*\" (every tenant) stands alone",
            )]));
        }
        if !caller.all_tenants() {
            return Err(Error::Forbidden {
                detail: "activating the jobs of every tenant needs the all-tenants grant".into(),
            });
        }
        return Ok(JobTenants::Every);
    }
    let mut errors = Vec::new();
    let mut tenants = Vec::new();
    for (i, raw) in named.iter().enumerate() {
        match TenantId::parse(raw) {
            Ok(t) => tenants.push(t),
            Err(e) => errors.push(FieldError::new(
                format!("tenant_ids[{i}]"),
                &e.code,
                e.detail,
            )),
        }
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors));
    }
    if let Some(t) = tenants.iter().find(|t| !caller.may_act_for(t)) {
        return Err(Error::Forbidden {
            detail: format!("this worker is not authorised for tenant \"{t}\""),
        });
    }
    tenants.sort();
    tenants.dedup();
    Ok(JobTenants::Only(tenants))
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
    if !LEASE_MS.contains(&a.timeout_ms) {
        errors.push(FieldError::new(
            "timeout_ms",
            "out-of-range",
            "timeout_ms is 100 to 3,600,000",
        ));
    }
    if a.request_timeout_ms > MAX_LONG_POLL.as_millis() as u64 {
        errors.push(FieldError::new(
            "request_timeout_ms",
            "out-of-range",
            format!(
                "request_timeout_ms is 0 to {} (the longest long poll)",
                MAX_LONG_POLL.as_millis()
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
    }
    let tenants = served_tenants(&caller.0, a.tenant_ids.as_deref())?;
    let lease = Duration::from_millis(a.timeout_ms);
    let wait = Duration::from_millis(a.request_timeout_ms).min(
        state
            .config
            .http
            .request_timeout()
            .saturating_sub(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let max = i32::try_from(a.max_jobs).unwrap_or(1);
    let wait = if wait.is_zero() {
        JobWait::Never
    } else {
        JobWait::Listen(tokio::time::sleep(wait))
    };
    let jobs = instances::activate_or_wait(
        &state.db,
        &tenants,
        &a.job_type,
        &a.worker,
        max,
        lease,
        wait,
    )
    .await?;
    metrics::histogram!("workflow_job_activation_seconds", "job_type" => a.job_type.clone())
        .record(started.elapsed().as_secs_f64());
    let list: Vec<Value> = jobs.into_iter().map(|j| job_json(j, &a.job_type)).collect();
    Ok(axum::Json(json!({ "jobs": list })).into_response())
}

/// Runs a job command in the job's tenant; a job of a tenant the caller is not authorised for is
/// not found, like any other tenant's resource.
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
    if !caller.0.may_act_for(&tenant) {
        return Err(Error::not_found("job", job).into());
    }
    let as_tenant = Caller(Principal { tenant, ..caller.0 });
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
    responses((status = 200, description = "Completed; the instance moved on"), (status = 404, description = "no such job in a tenant the caller is authorised for", body = Problem), (status = 409, description = "not activated", body = Problem)))]
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
    let mut errors = Vec::new();
    if body.value.retries < 0 {
        errors.push(FieldError::new(
            "retries",
            "out-of-range",
            "retries must not be negative",
        ));
    }
    if u128::from(body.value.retry_back_off_ms) > MAX_RETRY_BACKOFF.as_millis() {
        errors.push(FieldError::new(
            "retry_back_off_ms",
            "out-of-range",
            format!(
                "retry_back_off_ms is 0 to {} (seven days)",
                MAX_RETRY_BACKOFF.as_millis()
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(Error::validation(errors).into());
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
                    b.variables,
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
