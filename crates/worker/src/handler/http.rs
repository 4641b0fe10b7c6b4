//! The `http` handler: POSTs the job (its ids, attempt, custom headers and variables) to the job
//! type's URL with the job's idempotency key. 2xx completes the job with the JSON object
//! returned; 4xx with an `error_code` throws that BPMN error (with the body's `message` and
//! `variables` object, if any); other 4xx fail the job without retries (an incident); 5xx,
//! timeouts and connection errors fail it with one retry fewer after `retry_backoff_ms`.

use std::time::Duration;

use cpq_config::JobTypeConfig;
use cpq_workflow::instances::ActivatedJob;
use serde_json::{json, Value};
use url::Url;

use super::Outcome;

pub(super) async fn call(
    http: &reqwest::Client,
    cfg: &JobTypeConfig,
    url: &Url,
    job: &ActivatedJob,
) -> (Outcome, &'static str, Option<u16>, String) {
    let body = json!({
        "job_id": job.job_id, "process_instance_id": job.process_instance_id, "element_id": job.element_id,
        "tenant": job.tenant_id, "attempt": job.attempt, "custom_headers": job.headers, "variables": job.variables,
    });
    let sent = http
        .post(url.clone())
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
                back_off_ms: cfg.retry_backoff_ms,
                message: format!("{}: {e}", url),
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
                            back_off_ms: 0,
                            message: format!("{} refused the request ({status}): {text}", url),
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
                        back_off_ms: cfg.retry_backoff_ms,
                        message: format!("{} answered {status}", url),
                    },
                    "failed",
                    Some(status.as_u16()),
                    text,
                )
            }
        }
    }
}
