//! The job API for workers in any language (shaped like Camunda 8's REST job endpoints) and for
//! `cpq-worker`: activate (with a wait), complete, fail, throw a BPMN error. Needs the `worker`
//! role. As in Camunda 8's multi-tenancy a worker serves the tenants it names (`tenant_ids`, by
//! default its own) and must be authorised for each: its own, those its grant lists, or every
//! tenant with the all-tenants grant (then `["*"]` asks for all). A job of a tenant the caller is
//! not authorised for is not found; each outcome is written in the job's tenant
//! ([`in_job_tenant`]).

use std::future::{Future, Pending};
use std::time::{Duration, Instant};

use cpq_core::{Error, FieldError, Principal, Role, TenantId};
use cpq_db::Tx;
use cpq_workflow::instances::{self, ActivatedJob, JobTenants, JobWait, MAX_RETRY_BACKOFF};
use cpq_workflow::runtime::InstanceStatus;
use serde_json::{Map, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Call, Operation, Services};

const WORKERS: &[Role] = &[Role::Worker];
/// The most jobs one activation claims.
pub const MAX_JOBS: u32 = 200;
/// The longest an activation waits for jobs.
pub const MAX_LONG_POLL: Duration = Duration::from_secs(60);
const LEASE_MS: std::ops::RangeInclusive<u64> = 100..=3_600_000;
const MAX_TENANT_IDS: usize = 100;
/// `tenant_ids` entry asking for every tenant (needs the all-tenants grant).
pub const EVERY_TENANT: &str = "*";

/// Claim up to `max_jobs` jobs of `job_type` for `worker`.
#[derive(Debug, Clone)]
pub struct ActivateJobs {
    pub job_type: String,
    pub worker: String,
    /// 1 to [`MAX_JOBS`].
    pub max_jobs: u32,
    /// The lease, 100 to 3,600,000 ms: how long the jobs are this worker's.
    pub timeout_ms: u64,
    /// How long to wait for jobs when none are ready, 0 to [`MAX_LONG_POLL`]; 0: not at all.
    pub request_timeout_ms: u64,
    /// The tenants whose jobs to claim (1 to 100), each one the caller is authorised for;
    /// `["*"]` for every tenant. `None`: the caller's tenant.
    pub tenant_ids: Option<Vec<String>>,
}

/// How an activation waits when nothing is ready.
pub enum Waiting<'a, U> {
    /// On a LISTEN connection of its own, never longer than `cap` (the API: within its request
    /// timeout). The API's long poll.
    Listen { cap: Duration },
    /// On the process's shared wake-up for the job type; `interrupt` ends the wait early.
    /// `cpq-worker`'s loops.
    Notified { wake: &'a Notify, interrupt: U },
}

impl Waiting<'static, Pending<()>> {
    pub fn listen(cap: Duration) -> Self {
        Waiting::Listen { cap }
    }
}

impl ActivateJobs {
    /// Every field problem at once.
    fn validate(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        if self.job_type.trim().is_empty() {
            errors.push(FieldError::new(
                "job_type",
                "required",
                "job_type must not be blank",
            ));
        }
        if self.worker.trim().is_empty() {
            errors.push(FieldError::new(
                "worker",
                "required",
                "worker must not be blank",
            ));
        }
        if !(1..=MAX_JOBS).contains(&self.max_jobs) {
            errors.push(FieldError::new(
                "max_jobs",
                "out-of-range",
                format!("max_jobs is 1 to {MAX_JOBS}"),
            ));
        }
        if !LEASE_MS.contains(&self.timeout_ms) {
            errors.push(FieldError::new(
                "timeout_ms",
                "out-of-range",
                "timeout_ms is 100 to 3,600,000",
            ));
        }
        if u128::from(self.request_timeout_ms) > MAX_LONG_POLL.as_millis() {
            errors.push(FieldError::new(
                "request_timeout_ms",
                "out-of-range",
                format!(
                    "request_timeout_ms is 0 to {} (the longest long poll)",
                    MAX_LONG_POLL.as_millis()
                ),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(errors))
        }
    }
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

/// Claims jobs for the caller, waiting as `waiting` says when none are ready; empty when the wait
/// ends first. The one way jobs are activated: the API's long poll and `cpq-worker` both come
/// here.
///
/// Not an [`Operation`]: it runs outside any tenant's transaction (each claim is one statement,
/// `job_activate`, across the tenants served) and may wait between claims. It must not be
/// cancelled while it claims (see [`instances::activate_or_wait`]): callers bound the wait, not
/// the call.
pub async fn activate_jobs<U: Future<Output = ()>>(
    services: &Services,
    call: &Call,
    request: &ActivateJobs,
    waiting: Waiting<'_, U>,
) -> Result<Vec<ActivatedJob>, Error> {
    call.principal.require_any(WORKERS)?;
    request.validate()?;
    let tenants = served_tenants(&call.principal, request.tenant_ids.as_deref())?;
    let wait = Duration::from_millis(request.request_timeout_ms);
    let started = Instant::now();
    let jobs = match waiting {
        Waiting::Listen { cap } => {
            let wait = wait.min(cap);
            let wait = if wait.is_zero() {
                JobWait::Never
            } else {
                JobWait::Listen(tokio::time::sleep(wait))
            };
            claim(services, &tenants, request, wait).await?
        }
        Waiting::Notified { wake, interrupt } => {
            let until = async {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = interrupt => {}
                }
            };
            claim(services, &tenants, request, JobWait::Notified(wake, until)).await?
        }
    };
    metrics::histogram!("workflow_job_activation_seconds", "job_type" => request.job_type.clone())
        .record(started.elapsed().as_secs_f64());
    Ok(jobs)
}

async fn claim<U: Future<Output = ()>>(
    services: &Services,
    tenants: &JobTenants,
    request: &ActivateJobs,
    wait: JobWait<'_, U>,
) -> Result<Vec<ActivatedJob>, Error> {
    instances::activate_or_wait(
        &services.db,
        tenants,
        &request.job_type,
        &request.worker,
        i32::try_from(request.max_jobs).unwrap_or(1),
        Duration::from_millis(request.timeout_ms),
        wait,
    )
    .await
}

/// The caller acting in the tenant of `job`: a job command runs in its job's tenant (its
/// idempotency record too), so the tenant is found first, by one statement outside any
/// transaction (`job_tenant`). A job of a tenant the caller is not authorised for is not found,
/// like any other tenant's resource.
pub async fn in_job_tenant(
    services: &Services,
    caller: &Principal,
    job: Uuid,
) -> Result<Principal, Error> {
    caller.require_any(WORKERS)?;
    let tenant = instances::job_tenant(&services.db, job).await?;
    if !caller.may_act_for(&tenant) {
        return Err(Error::not_found("job", job));
    }
    Ok(Principal {
        tenant,
        ..caller.clone()
    })
}

/// Completes an activated job with result variables; the instance moves on. Runs in the job's
/// tenant ([`in_job_tenant`]); in another tenant the job is not found.
pub struct CompleteJob {
    pub job: Uuid,
    pub variables: Map<String, Value>,
}

impl Operation for CompleteJob {
    type Output = InstanceStatus;
    const ROLES: &'static [Role] = WORKERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<InstanceStatus, Error> {
        instances::complete_job(tx, self.job, self.variables, call.meta.occurred_at).await
    }
}

/// Fails an activated job: with retries left it is activated again after the back-off, without
/// it raises an incident. Runs in the job's tenant ([`in_job_tenant`]).
pub struct FailJob {
    pub job: Uuid,
    /// Retries left, at least 0.
    pub retries: i32,
    /// 0 to [`MAX_RETRY_BACKOFF`].
    pub retry_back_off_ms: u64,
    pub error_message: String,
}

impl FailJob {
    fn validate(&self) -> Result<(), Error> {
        let mut errors = Vec::new();
        if self.retries < 0 {
            errors.push(FieldError::new(
                "retries",
                "out-of-range",
                "retries must not be negative",
            ));
        }
        if u128::from(self.retry_back_off_ms) > MAX_RETRY_BACKOFF.as_millis() {
            errors.push(FieldError::new(
                "retry_back_off_ms",
                "out-of-range",
                format!(
                    "retry_back_off_ms is 0 to {} (seven days)",
                    MAX_RETRY_BACKOFF.as_millis()
                ),
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::validation(errors))
        }
    }
}

impl Operation for FailJob {
    /// The retries left.
    type Output = i32;
    const ROLES: &'static [Role] = WORKERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<i32, Error> {
        self.validate()?;
        let back_off = Duration::from_millis(self.retry_back_off_ms);
        let at = call.meta.occurred_at;
        instances::fail_job(
            tx,
            self.job,
            self.retries,
            back_off,
            &self.error_message,
            at,
        )
        .await?;
        Ok(self.retries)
    }
}

/// Throws a BPMN error from an activated job: a matching catch event catches it, else an
/// incident. Runs in the job's tenant ([`in_job_tenant`]).
pub struct ThrowJobError {
    pub job: Uuid,
    pub error_code: String,
    pub error_message: String,
    pub variables: Map<String, Value>,
}

impl Operation for ThrowJobError {
    type Output = InstanceStatus;
    const ROLES: &'static [Role] = WORKERS;

    async fn run(self, _: &Services, tx: &mut Tx, call: &Call) -> Result<InstanceStatus, Error> {
        let (code, message) = (&self.error_code, &self.error_message);
        let at = call.meta.occurred_at;
        instances::throw_error(tx, self.job, code, message, self.variables, at).await
    }
}
