//! Runs one job through its HTTP handler: records the attempt, makes the call, and reports the
//! outcome through the job API's own operations (complete, throw an error, fail), in the job's
//! tenant, in the transaction that finishes the attempt.

use std::time::Duration;

use chrono::Utc;
use cpq_application::workflow::jobs::{CompleteJob, FailJob, ThrowJobError};
use cpq_application::{Call, Operation, Services};
use cpq_config::JobTypeConfig;
use cpq_core::{Error, Principal, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed, Tx};
use cpq_workflow::instances::{
    external_call_attempt_finish, external_call_attempt_insert, ActivatedJob, CallOutcome,
};
use serde_json::{json, Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// What the external system said, as the job's outcome.
enum Outcome {
    Complete(Map<String, Value>),
    BusinessError {
        code: String,
        message: String,
        variables: Map<String, Value>,
    },
    Fail {
        retries: i32,
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
    let id = external_call_attempt_insert(&mut tx, tenant, job, target, Utc::now()).await?;
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

async fn call(
    http: &reqwest::Client,
    cfg: &JobTypeConfig,
    job: &ActivatedJob,
) -> (Outcome, &'static str, Option<u16>, String) {
    let body = json!({
        "job_id": job.job_id, "process_instance_id": job.process_instance_id, "element_id": job.element_id,
        "tenant": job.tenant_id, "attempt": job.attempt, "custom_headers": job.headers, "variables": job.variables,
    });
    let sent = http
        .post(cfg.url.clone())
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .header("Idempotency-Key", job.idempotency_key())
        .json(&body)
        .send()
        .await;
    let retry = (job.retries - 1).max(0);
    match sent {
        Err(e) => (
            Outcome::Fail {
                retries: retry,
                message: format!("{}: {e}", cfg.url),
            },
            "failed",
            None,
            e.to_string(),
        ),
        Ok(resp) => {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let parsed: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                let vars = parsed.as_object().cloned().unwrap_or_default();
                (
                    Outcome::Complete(vars),
                    "success",
                    Some(status.as_u16()),
                    String::new(),
                )
            } else if status.is_client_error() {
                match parsed.get("error_code").and_then(Value::as_str) {
                    Some(code) => {
                        let message = parsed
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let variables = parsed
                            .get("variables")
                            .and_then(Value::as_object)
                            .cloned()
                            .unwrap_or_default();
                        (
                            Outcome::BusinessError {
                                code: code.to_owned(),
                                message: message.clone(),
                                variables,
                            },
                            "business-error",
                            Some(status.as_u16()),
                            message,
                        )
                    }
                    None => (
                        Outcome::Fail {
                            retries: 0,
                            message: format!("{} refused the request ({status}): {text}", cfg.url),
                        },
                        "rejected",
                        Some(status.as_u16()),
                        text,
                    ),
                }
            } else {
                (
                    Outcome::Fail {
                        retries: retry,
                        message: format!("{} answered {status}", cfg.url),
                    },
                    "failed",
                    Some(status.as_u16()),
                    text,
                )
            }
        }
    }
}

/// Runs one job through the HTTP handler and reports its outcome as `worker`, in the job's
/// tenant.
pub async fn handle(
    services: &Services,
    http: &reqwest::Client,
    worker: &Principal,
    cfg: &JobTypeConfig,
    job: ActivatedJob,
) -> Result<(), Error> {
    let tenant = TenantId::parse(&job.tenant_id)
        .map_err(|_| Error::internal(format!("job {} has tenant {}", job.job_id, job.tenant_id)))?;
    if !worker.may_act_for(&tenant) {
        return Err(Error::internal(format!(
            "job {} of tenant {tenant} was claimed for a worker not authorised for it",
            job.job_id
        )));
    }
    let pool = &services.db;
    let attempt = record_attempt(pool, &tenant, &job, cfg.url.as_str()).await?;
    let (outcome, label, status, detail) = call(http, cfg, &job).await;
    let principal = Principal {
        tenant: tenant.clone(),
        ..worker.clone()
    };
    let as_job_tenant = Call::new(principal, job.idempotency_key(), None);
    let mut tx = tenant::begin(pool, &tenant).await.map_err(db_error)?;
    let finished = CallOutcome {
        outcome: label,
        status_code: status,
        detail: &detail,
    };
    external_call_attempt_finish(&mut tx, attempt, finished, as_job_tenant.meta.occurred_at)
        .await?;
    let (c, id) = (&as_job_tenant, job.job_id);
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
        Outcome::Fail { retries, message } => {
            let fail = FailJob {
                job: id,
                retries,
                retry_back_off_ms: cfg.retry_backoff_ms,
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
            metrics::counter!("worker_jobs_handled_total", "job_type" => cfg.job_type.clone(), "outcome" => label).increment(1);
            Ok(())
        }
        // The lease ran out and another worker took the job: its outcome wins; ours is dropped.
        Err(Error::Conflict { detail }) => {
            tracing::warn!(job = %job.job_id, %detail, "job outcome not recorded: the job is no longer ours");
            Ok(())
        }
        Err(e) => Err(e),
    }
}
