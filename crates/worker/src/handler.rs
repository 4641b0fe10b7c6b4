use std::time::Duration;

use chrono::Utc;
use cpq_config::JobTypeConfig;
use cpq_core::{Error, TenantId};
use cpq_db::error::db_error;
use cpq_db::{tenant, timed};
use cpq_workflow::instances::{self, ActivatedJob};
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
    let id = Uuid::now_v7();
    let mut tx = tenant::begin(pool, tenant).await.map_err(db_error)?;
    timed(
        "external_call_attempt_insert",
        sqlx::query(
            "INSERT INTO external_call_attempt (attempt_id, tenant_id, job_id, attempt, target, idempotency_key, started_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(tenant.as_str())
        .bind(job.job_id)
        .bind(job.attempt)
        .bind(target)
        .bind(job.idempotency_key())
        .bind(Utc::now())
        .execute(&mut *tx),
    )
    .await
    .map_err(db_error)?;
    timed("transaction_commit", tx.commit())
        .await
        .map_err(db_error)?;
    Ok(id)
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

/// Runs one job through the HTTP handler and reports its outcome.
pub async fn handle(
    pool: &PgPool,
    http: &reqwest::Client,
    cfg: &JobTypeConfig,
    job: ActivatedJob,
) -> Result<(), Error> {
    let tenant = TenantId::parse(&job.tenant_id)
        .map_err(|_| Error::internal(format!("job {} has tenant {}", job.job_id, job.tenant_id)))?;
    let attempt = record_attempt(pool, &tenant, &job, cfg.url.as_str()).await?;
    let (outcome, label, status, detail) = call(http, cfg, &job).await;
    let at = Utc::now();
    let mut tx = tenant::begin(pool, &tenant).await.map_err(db_error)?;
    timed(
        "external_call_attempt_finish",
        sqlx::query("UPDATE external_call_attempt SET finished_at = $2, outcome = $3, status_code = $4, detail = $5 WHERE attempt_id = $1")
            .bind(attempt)
            .bind(at)
            .bind(label)
            .bind(status.map(i32::from))
            .bind(&detail)
            .execute(&mut *tx),
    )
    .await
    .map_err(db_error)?;
    let reported = match outcome {
        Outcome::Complete(vars) => instances::complete_job(&mut tx, job.job_id, vars, at)
            .await
            .map(|_| ()),
        Outcome::BusinessError {
            code,
            message,
            variables,
        } => instances::throw_error(&mut tx, job.job_id, &code, &message, variables, at)
            .await
            .map(|_| ()),
        Outcome::Fail { retries, message } => {
            instances::fail_job(
                &mut tx,
                job.job_id,
                retries,
                Duration::from_millis(cfg.retry_backoff_ms),
                &message,
                at,
            )
            .await
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
