//! Runs one job through its job type's handler ([`http`] or [`system`]): records the attempt in
//! its own committed transaction, makes the call outside any transaction, and reports the outcome
//! through the job API's own operations (complete, throw an error, fail), in the job's tenant, in
//! a new transaction that also finishes the attempt. A job of a fulfillment plan task (its
//! variables name `order_id` and `task.key`) also moves the task: running with one attempt more
//! when the attempt is recorded, waiting for its callback or failed with the error when the
//! outcome is.
//!
//! [`fulfillment`] runs the fulfillment process's internal jobs: no call; the application
//! operation and the job's completion commit together.

mod fulfillment;
mod http;
mod system;

use chrono::Utc;
use cpq_application::workflow::jobs::{CompleteJob, FailJob, ThrowJobError};
use cpq_application::{orders, Call, Operation, Services};
use cpq_config::{JobHandlerKind, JobTypeConfig};
use cpq_core::{Error, Principal, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed, Tx};
use cpq_workflow::instances::{
    external_call_attempt_finish, external_call_attempt_insert, ActivatedJob, CallOutcome,
};
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::breakers::Breakers;

/// What the external system said, as the job's outcome.
pub(crate) enum Outcome {
    Complete(Map<String, Value>),
    BusinessError {
        code: String,
        message: String,
        variables: Map<String, Value>,
    },
    Fail {
        retries: i32,
        back_off_ms: u64,
        message: String,
    },
}

async fn record_attempt(
    pool: &PgPool,
    tenant: &TenantId,
    job: &ActivatedJob,
    target: &str,
) -> Result<Uuid, Error> {
    let mut tx = tenant::begin(pool, tenant).await.map_err(db_error)?;
    let at = Utc::now();
    let id = external_call_attempt_insert(&mut tx, tenant, job, target, at).await?;
    orders::task_attempt_started(&mut tx, &job.variables, at).await?;
    timed("transaction_commit", tx.commit())
        .await
        .map_err(db_error)?;
    Ok(id)
}

/// Runs a job operation in `tx` as `call` (the runner's role check included).
async fn report<O: Operation>(
    services: &Services,
    tx: &mut Tx,
    call: &Call,
    operation: O,
) -> Result<(), Error> {
    call.principal.require_any(O::ROLES)?;
    operation.run(services, tx, call).await.map(|_| ())
}

/// The job's tenant, which `worker` must be authorised for.
fn job_tenant(worker: &Principal, job: &ActivatedJob) -> Result<TenantId, Error> {
    let tenant = TenantId::parse(&job.tenant_id)
        .map_err(|_| Error::internal(format!("job {} has tenant {}", job.job_id, job.tenant_id)))?;
    if !worker.may_act_for(&tenant) {
        return Err(Error::internal(format!(
            "job {} of tenant {tenant} was claimed for a worker not authorised for it",
            job.job_id
        )));
    }
    Ok(tenant)
}

/// Reports `outcome` for `job` as `worker` in the job's tenant, in one transaction that also
/// finishes `attempt` (when a call was made).
async fn conclude(
    services: &Services,
    worker: &Principal,
    tenant: &TenantId,
    job: &ActivatedJob,
    attempt: Option<(Uuid, CallOutcome<'_>)>,
    outcome: Outcome,
) -> Result<bool, Error> {
    let principal = Principal {
        tenant: tenant.clone(),
        ..worker.clone()
    };
    let c = &Call::new(principal, job.idempotency_key(), None);
    let mut tx = tenant::begin(&services.db, tenant)
        .await
        .map_err(db_error)?;
    if let Some((id, finished)) = attempt {
        external_call_attempt_finish(&mut tx, id, finished, c.meta.occurred_at).await?;
        let (waiting, error) = match &outcome {
            Outcome::Complete(v) => (v.get("callback_expected") == Some(&Value::Bool(true)), None),
            Outcome::BusinessError { code, message, .. } => (
                false,
                Some(serde_json::json!({ "code": code, "detail": message })),
            ),
            Outcome::Fail { message, .. } => {
                (false, Some(serde_json::json!({ "detail": message })))
            }
        };
        orders::task_attempt_finished(&mut tx, &job.variables, waiting, error.as_ref()).await?;
    }
    let id = job.job_id;
    let reported = match outcome {
        Outcome::Complete(variables) => {
            report(services, &mut tx, c, CompleteJob { job: id, variables }).await
        }
        Outcome::BusinessError {
            code,
            message,
            variables,
        } => {
            let throw = ThrowJobError {
                job: id,
                error_code: code,
                error_message: message,
                variables,
            };
            report(services, &mut tx, c, throw).await
        }
        Outcome::Fail {
            retries,
            back_off_ms,
            message,
        } => {
            let fail = FailJob {
                job: id,
                retries,
                retry_back_off_ms: back_off_ms,
                error_message: message,
            };
            report(services, &mut tx, c, fail).await
        }
    };
    match reported {
        Ok(()) => {
            timed("transaction_commit", tx.commit())
                .await
                .map_err(db_error)?;
            Ok(true)
        }
        // The lease ran out and another worker took the job: its outcome wins; ours is dropped.
        Err(Error::Conflict { detail }) => {
            tracing::warn!(job = %job.job_id, %detail, "job outcome not recorded: the job is no longer ours");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Runs one job through its job type's handler and reports its outcome as `worker`, in the
/// job's tenant.
pub async fn handle(
    services: &Services,
    http: &reqwest::Client,
    breakers: &Breakers,
    worker: &Principal,
    cfg: &JobTypeConfig,
    job: ActivatedJob,
) -> Result<(), Error> {
    let tenant = job_tenant(worker, &job)?;
    let settings = |what: &str| {
        Error::internal(format!(
            "job type {} has handler {:?} without its {what}",
            cfg.job_type, cfg.handler
        ))
    };
    match (cfg.handler, &cfg.system, &cfg.url) {
        (JobHandlerKind::Fulfillment, _, _) => {
            fulfillment::handle(services, worker, &tenant, cfg, job).await
        }
        (JobHandlerKind::System, Some(sys), Some(url)) => {
            system::handle(
                services, http, breakers, worker, &tenant, cfg, url, sys, job,
            )
            .await
        }
        (JobHandlerKind::System, _, _) => Err(settings("system settings")),
        (JobHandlerKind::Http, _, None) => Err(settings("url")),
        (JobHandlerKind::Http, _, Some(url)) => {
            let attempt = record_attempt(&services.db, &tenant, &job, url.as_str()).await?;
            let (outcome, label, status, detail) = http::call(http, cfg, url, &job).await;
            let finished = CallOutcome {
                outcome: label,
                status_code: status,
                detail: &detail,
            };
            if conclude(
                services,
                worker,
                &tenant,
                &job,
                Some((attempt, finished)),
                outcome,
            )
            .await?
            {
                metrics::counter!("worker_jobs_handled_total", "job_type" => cfg.job_type.clone(), "outcome" => label).increment(1);
            }
            Ok(())
        }
    }
}
