//! The `fulfillment` handler: the fulfillment process's internal jobs, run in the platform
//! through the application operations of `cpq_application::orders`, with no external call. The
//! operation and the job's completion commit in one transaction, so a job delivered twice (its
//! lease ran out) has its effect once: the second delivery finds the job no longer its own and
//! rolls back. A failure (the database away, a mis-modelled process) fails the job with a retry
//! fewer after its back-off; the last one raises an incident.

use cpq_application::orders::{
    fallout_job_variables, CompleteOrder, OpenFalloutCase, RecordTaskDone,
};
use cpq_application::workflow::jobs::CompleteJob;
use cpq_application::{Call, Services};
use cpq_config::JobTypeConfig;
use cpq_core::{Error, Principal, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed};
use cpq_workflow::instances::ActivatedJob;
use serde_json::Map;

use super::{conclude, report, Outcome};

/// Runs the job's operation and completes the job, in one transaction of the job's tenant.
async fn run(
    services: &Services,
    call: &Call,
    tenant: &TenantId,
    job_type: &str,
    job: &ActivatedJob,
) -> Result<bool, Error> {
    let mut tx = tenant::begin(&services.db, tenant)
        .await
        .map_err(db_error)?;
    let variables = job.variables.clone();
    let completion = match job_type {
        "fulfillment-task-done" => {
            report(services, &mut tx, call, RecordTaskDone { variables }).await?;
            Map::new()
        }
        "fulfillment-fallout" => {
            let open = OpenFalloutCase {
                variables,
                process_instance_id: job.process_instance_id,
                job: job.job_id,
            };
            report(services, &mut tx, call, open).await?;
            fallout_job_variables()
        }
        "fulfillment-order-complete" => {
            report(services, &mut tx, call, CompleteOrder { variables }).await?;
            Map::new()
        }
        other => {
            return Err(Error::internal(format!(
                "handler \"fulfillment\" has no job type {other}"
            )))
        }
    };
    let complete = CompleteJob {
        job: job.job_id,
        variables: completion,
    };
    match report(services, &mut tx, call, complete).await {
        Ok(()) => {}
        // The lease ran out and another delivery owns the job: roll back, its run wins.
        Err(Error::Conflict { detail }) => {
            tracing::warn!(job = %job.job_id, %detail, "internal job not completed: the job is no longer ours");
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    timed("transaction_commit", tx.commit())
        .await
        .map_err(db_error)?;
    Ok(true)
}

pub(super) async fn handle(
    services: &Services,
    worker: &Principal,
    tenant: &TenantId,
    cfg: &JobTypeConfig,
    job: ActivatedJob,
) -> Result<(), Error> {
    let principal = Principal {
        tenant: tenant.clone(),
        ..worker.clone()
    };
    let call = Call::new(principal, job.idempotency_key(), None);
    let label = match run(services, &call, tenant, &cfg.job_type, &job).await {
        Ok(true) => "completed",
        Ok(false) => return Ok(()),
        Err(e) => {
            tracing::warn!(job = %job.job_id, job_type = cfg.job_type, error = %e, "internal job failed; retrying after its back-off");
            let fail = Outcome::Fail {
                retries: (job.retries - 1).max(0),
                back_off_ms: cfg.retry_backoff_ms,
                message: format!("{}: {e}", cfg.job_type),
            };
            conclude(services, worker, tenant, &job, None, fail).await?;
            "failed"
        }
    };
    metrics::counter!("worker_jobs_handled_total", "job_type" => cfg.job_type.clone(), "outcome" => label).increment(1);
    Ok(())
}
