//! The `system` handler: one request to an external business system (inventory, provisioning,
//! billing, crm, notification; `cpq-sim` in local runs and tests) per job delivery.
//!
//! `POST {url}/systems/{system}/requests` with `Idempotency-Key: job-<job id>` (the same for every
//! delivery of the job, so a retry after a timeout or a worker crash is recognised by the system
//! and executes nothing again) and `{"operation", "payload", "callback_url"}`; `payload` is the
//! job's `task` variable when it is an object, else all its variables. The attempt is recorded
//! and committed before the call; the call runs outside any transaction.
//!
//! Answers ([`classify`]): 200 with a `result` object completes the job with the result under
//! `result` (or the task header `resultVariable`) and `external_request_id`; 202 completes it with
//! `callback_expected: true` and the request's ids, for the process to wait for the callback; a
//! 4xx with a business `code` throws the BPMN error `business-failure` with the variable
//! `business_error: {system, code, detail, request_id, request}`; a 409 ("in progress") fails it
//! with its retries unchanged, to look again later; other 4xx fail it without retries (an
//! incident: the request is wrong, retrying cannot help); 5xx, 408, 429, timeouts, connection
//! errors and garbage (a 2xx that is not JSON or lacks its fields) fail it with a retry fewer
//! ([`retries_after_failure`]) after an exponential back-off with full jitter.
//!
//! Each system has one circuit breaker in the process ([`Breakers`]): while it is open, jobs are
//! not called but failed with their retries unchanged and a back-off to the end of the open
//! period (so an outage burns no retries and raises no incident); then one probe call decides.

use std::hash::{BuildHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use cpq_application::Services;
use cpq_config::{ExternalSystem, JobTypeConfig, SystemHandlerConfig};
use cpq_core::{Error, Principal, TenantId};
use cpq_workflow::instances::{ActivatedJob, CallOutcome};
use serde_json::{json, Map, Value};

use super::{conclude, record_attempt, Outcome};
use crate::breakers::Breakers;
use crate::resilience::{backoff_ms, retries_after_failure, Admission, Signal};

/// The BPMN error code of every business rejection; the system's own code travels in the
/// `business_error` variable, so that one error boundary event per task catches them all.
pub const BUSINESS_ERROR_CODE: &str = "business-failure";

/// The task header naming the BPMN error a job throws when its retries run out ([`exhausted`]).
pub const RETRIES_EXHAUSTED_HEADER: &str = "retriesExhaustedErrorCode";

/// The variable a 200's `result` is stored under unless the task header `resultVariable` names
/// another.
const RESULT_VARIABLE: &str = "result";

/// What a system's answer means for the job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// 200: executed synchronously.
    Executed {
        request_id: String,
        result: Map<String, Value>,
    },
    /// 202: accepted; the outcome comes by callback.
    Accepted { request_id: String },
    /// A business rejection: 4xx with a `code`.
    Business {
        status: u16,
        code: String,
        detail: String,
        request_id: Option<String>,
    },
    /// A 4xx without a business code: the request itself is wrong.
    Refused { status: u16, detail: String },
    /// 409: the request is executing right now (an earlier delivery's call).
    InProgress { retry_after_ms: Option<u64> },
    /// A transient failure; `kind` is the metric's outcome label.
    Transient {
        kind: &'static str,
        status: Option<u16>,
        detail: String,
        retry_after_ms: Option<u64>,
    },
}

/// What came back from the HTTP call, before it is judged.
pub(crate) enum Reply {
    Answered {
        status: u16,
        body: String,
        retry_after_ms: Option<u64>,
    },
    NoAnswer {
        timeout: bool,
        detail: String,
    },
}

fn snippet(text: &str) -> String {
    let cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        format!("{cut}...")
    } else {
        cut
    }
}

fn str_field(v: &Value, name: &str) -> Option<String> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Judges a reply (pure).
pub(crate) fn classify(system: ExternalSystem, reply: Reply) -> Answer {
    let name = system.as_str();
    let (status, body, retry_after_ms) = match reply {
        Reply::NoAnswer { timeout, detail } => {
            return Answer::Transient {
                kind: if timeout {
                    "timeout"
                } else {
                    "connection-error"
                },
                status: None,
                detail: format!("{name}: no answer: {detail}"),
                retry_after_ms: None,
            }
        }
        Reply::Answered {
            status,
            body,
            retry_after_ms,
        } => (status, body, retry_after_ms),
    };
    let parsed: Option<Value> = serde_json::from_str(&body).ok();
    let garbage = |what: String| Answer::Transient {
        kind: "garbage",
        status: Some(status),
        detail: format!("{name} answered {status} {what}; not taken as success"),
        retry_after_ms: None,
    };
    match status {
        200 | 202 => {
            let Some(v) = parsed.filter(Value::is_object) else {
                return garbage(format!(
                    "with a body that is not a JSON object: {:?}",
                    snippet(&body)
                ));
            };
            let Some(request_id) = str_field(&v, "request_id") else {
                return garbage(format!("without a request_id: {}", snippet(&body)));
            };
            if status == 202 {
                return Answer::Accepted { request_id };
            }
            match v.get("result").and_then(Value::as_object) {
                Some(result) => Answer::Executed {
                    request_id,
                    result: result.clone(),
                },
                None => garbage(format!("without a result object: {}", snippet(&body))),
            }
        }
        408 | 429 | 500..=599 => Answer::Transient {
            kind: "unavailable",
            status: Some(status),
            detail: format!(
                "{name} answered {status}: {}",
                parsed
                    .as_ref()
                    .and_then(|v| str_field(v, "detail").or_else(|| str_field(v, "title")))
                    .unwrap_or_else(|| snippet(&body))
            ),
            retry_after_ms,
        },
        400..=499 => {
            let v = parsed.unwrap_or(Value::Null);
            let detail = str_field(&v, "detail").unwrap_or_else(|| snippet(&body));
            match str_field(&v, "code") {
                Some(code) => Answer::Business {
                    status,
                    code,
                    detail,
                    request_id: str_field(&v, "request_id"),
                },
                None if status == 409 => Answer::InProgress { retry_after_ms },
                None => Answer::Refused {
                    status,
                    detail: format!("{name} refused the request ({status}): {detail}"),
                },
            }
        }
        _ => garbage(format!("an unexpected status: {}", snippet(&body))),
    }
}

/// The request's body: deterministic for a job (the same on every delivery), since the system
/// refuses a known key with another body.
fn request_body(sys: &SystemHandlerConfig, job: &ActivatedJob) -> Value {
    let payload = match job.variables.get("task") {
        Some(task @ Value::Object(_)) => task.clone(),
        _ => match &job.variables {
            Value::Object(_) => job.variables.clone(),
            _ => Value::Object(Map::new()),
        },
    };
    let mut body = json!({ "operation": sys.operation, "payload": payload });
    if let Some(url) = &sys.callback_url {
        body["callback_url"] = Value::String(url.to_string());
    }
    body
}

/// A draw in [0, 1) for the jitter: a per-process random hash of the job and its delivery.
fn jitter_draw(job: &ActivatedJob) -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    job.job_id.hash(&mut h);
    job.attempt.hash(&mut h);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How the job ends for an answer: the outcome, the attempt's recorded label, what it says of the
/// system's health, and the metric's outcome label.
struct Decision {
    outcome: Outcome,
    label: &'static str,
    signal: Signal,
    metric: &'static str,
    status: Option<u16>,
    detail: String,
}

fn decide(
    answer: Answer,
    cfg: &JobTypeConfig,
    sys: &SystemHandlerConfig,
    job: &ActivatedJob,
    request: &Value,
) -> Decision {
    let system = sys.system.as_str();
    match answer {
        Answer::Executed { request_id, result } => {
            let name = job
                .headers
                .get("resultVariable")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or(RESULT_VARIABLE);
            let mut vars = Map::new();
            vars.insert(name.to_owned(), Value::Object(result));
            vars.insert("external_request_id".into(), Value::String(request_id));
            Decision {
                outcome: Outcome::Complete(vars),
                label: "success",
                signal: Signal::Healthy,
                metric: "completed",
                status: Some(200),
                detail: String::new(),
            }
        }
        Answer::Accepted { request_id } => {
            let mut vars = Map::new();
            vars.insert("callback_expected".into(), Value::Bool(true));
            vars.insert("external_request_id".into(), Value::String(request_id));
            vars.insert("external_system".into(), Value::String(system.into()));
            vars.insert(
                "external_idempotency_key".into(),
                Value::String(job.idempotency_key()),
            );
            Decision {
                outcome: Outcome::Complete(vars),
                label: "success",
                signal: Signal::Healthy,
                metric: "accepted",
                status: Some(202),
                detail: String::new(),
            }
        }
        Answer::Business {
            status,
            code,
            detail,
            request_id,
        } => {
            let mut sent = request.clone();
            sent["idempotency_key"] = Value::String(job.idempotency_key());
            let error = json!({
                "system": system, "code": code, "detail": detail,
                "request_id": request_id, "request": sent,
            });
            let mut variables = Map::new();
            variables.insert("business_error".into(), error);
            let message = format!("{system} rejected {}: {code}: {detail}", sys.operation);
            Decision {
                outcome: Outcome::BusinessError {
                    code: BUSINESS_ERROR_CODE.into(),
                    message: message.clone(),
                    variables,
                },
                label: "business-error",
                signal: Signal::Healthy,
                metric: "business-error",
                status: Some(status),
                detail: message,
            }
        }
        Answer::Refused { status, detail } => Decision {
            outcome: exhausted(job, sys, request, Some(status), &detail).unwrap_or(Outcome::Fail {
                retries: 0,
                back_off_ms: 0,
                message: detail.clone(),
            }),
            label: "rejected",
            signal: Signal::Healthy,
            metric: "refused",
            status: Some(status),
            detail,
        },
        Answer::InProgress { retry_after_ms } => {
            let detail = format!("{system}: the request is still executing; looking again later");
            Decision {
                outcome: Outcome::Fail {
                    retries: job.retries.max(1),
                    back_off_ms: retry_after_ms
                        .unwrap_or(cfg.retry_backoff_ms)
                        .min(sys.retry_backoff_max_ms),
                    message: detail.clone(),
                },
                label: "failed",
                signal: Signal::Healthy,
                metric: "in-progress",
                status: Some(409),
                detail,
            }
        }
        Answer::Transient {
            kind,
            status,
            detail,
            retry_after_ms,
        } => {
            let failure = u32::try_from(job.attempt.max(1)).unwrap_or(1);
            let jittered = backoff_ms(
                cfg.retry_backoff_ms,
                sys.retry_backoff_max_ms,
                failure,
                jitter_draw(job),
            );
            let floor = retry_after_ms.unwrap_or(0).min(sys.retry_backoff_max_ms);
            let retries = retries_after_failure(job.retries, sys.max_retries);
            let last = (retries == 0)
                .then(|| exhausted(job, sys, request, status, &detail))
                .flatten();
            Decision {
                outcome: last.unwrap_or(Outcome::Fail {
                    retries,
                    back_off_ms: jittered.max(floor),
                    message: detail.clone(),
                }),
                label: "failed",
                signal: Signal::Failed,
                metric: kind,
                status,
                detail,
            }
        }
    }
}

/// When the job's task header `retriesExhaustedErrorCode` names a BPMN error, a failure that
/// leaves no retry (or a request refused as malformed) throws it, with the variable
/// `technical_error: {system, status, detail, attempts, request}`, for the process to handle
/// (the fulfillment process opens a fallout case); without the header it fails to an incident.
fn exhausted(
    job: &ActivatedJob,
    sys: &SystemHandlerConfig,
    request: &Value,
    status: Option<u16>,
    detail: &str,
) -> Option<Outcome> {
    let code = job
        .headers
        .get(RETRIES_EXHAUSTED_HEADER)
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())?;
    let system = sys.system.as_str();
    let mut sent = request.clone();
    sent["idempotency_key"] = Value::String(job.idempotency_key());
    let mut variables = Map::new();
    variables.insert(
        "technical_error".into(),
        json!({
            "system": system, "status": status, "detail": detail,
            "attempts": job.attempt, "request": sent,
        }),
    );
    Some(Outcome::BusinessError {
        code: code.to_owned(),
        message: format!("{system} {}: no retry left: {detail}", sys.operation),
        variables,
    })
}

fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn send(
    http: &reqwest::Client,
    target: &str,
    cfg: &JobTypeConfig,
    job: &ActivatedJob,
    body: &Value,
) -> Reply {
    let sent = http
        .post(target)
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .header("Idempotency-Key", job.idempotency_key())
        .json(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            return Reply::NoAnswer {
                timeout: e.is_timeout(),
                detail: error_chain(&e),
            }
        }
    };
    let status = resp.status().as_u16();
    let retry_after_ms = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|secs| secs.saturating_mul(1000));
    match resp.text().await {
        Ok(body) => Reply::Answered {
            status,
            body,
            retry_after_ms,
        },
        Err(e) => Reply::NoAnswer {
            timeout: e.is_timeout(),
            detail: format!("reading the {status} answer: {}", error_chain(&e)),
        },
    }
}

fn count(system: ExternalSystem, outcome: &'static str) {
    metrics::counter!("worker_system_calls_total", "system" => system.as_str(), "outcome" => outcome)
        .increment(1);
}

/// Runs one job against its system and reports the outcome.
#[allow(clippy::too_many_arguments)]
pub(super) async fn handle(
    services: &Services,
    http: &reqwest::Client,
    breakers: &Breakers,
    worker: &Principal,
    tenant: &TenantId,
    cfg: &JobTypeConfig,
    url: &url::Url,
    sys: &SystemHandlerConfig,
    job: ActivatedJob,
) -> Result<(), Error> {
    let system = sys.system;
    let admission = breakers.admit(system);
    if let Admission::Refuse { retry_in_ms } = admission {
        // Not called, so no attempt: the job waits for the breaker with its retries unchanged.
        count(system, "breaker-open");
        let fail = Outcome::Fail {
            retries: job.retries.max(1),
            back_off_ms: retry_in_ms,
            message: format!(
                "{}: circuit breaker open; not called, retrying in {retry_in_ms} ms",
                system.as_str()
            ),
        };
        conclude(services, worker, tenant, &job, None, fail).await?;
        return Ok(());
    }
    let target = format!(
        "{}/systems/{}/requests",
        url.as_str().trim_end_matches('/'),
        system.as_str()
    );
    let attempt = match record_attempt(&services.db, tenant, &job, &target).await {
        Ok(id) => id,
        Err(e) => {
            if admission == Admission::Probe {
                breakers.probe_abandoned(system);
            }
            return Err(e);
        }
    };
    let body = request_body(sys, &job);
    let started = Instant::now();
    let reply = send(http, &target, cfg, &job, &body).await;
    metrics::histogram!("worker_system_call_duration_seconds", "system" => system.as_str())
        .record(started.elapsed().as_secs_f64());
    let d = decide(classify(system, reply), cfg, sys, &job, &body);
    breakers.record(system, d.signal);
    count(system, d.metric);
    if d.signal == Signal::Failed {
        tracing::warn!(job = %job.job_id, system = system.as_str(), detail = %d.detail, "external call failed");
    }
    let finished = CallOutcome {
        outcome: d.label,
        status_code: d.status,
        detail: &d.detail,
    };
    if conclude(
        services,
        worker,
        tenant,
        &job,
        Some((attempt, finished)),
        d.outcome,
    )
    .await?
    {
        metrics::counter!("worker_jobs_handled_total", "job_type" => cfg.job_type.clone(), "outcome" => d.label).increment(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, body: &str) -> Reply {
        Reply::Answered {
            status,
            body: body.into(),
            retry_after_ms: None,
        }
    }

    const INV: ExternalSystem = ExternalSystem::Inventory;

    #[test]
    fn answers_are_judged_and_garbage_is_never_success() {
        assert_eq!(
            classify(
                INV,
                answered(
                    200,
                    r#"{"request_id":"r1","result":{"reservation_id":"RES-1"}}"#
                )
            ),
            Answer::Executed {
                request_id: "r1".into(),
                result: json!({"reservation_id": "RES-1"})
                    .as_object()
                    .unwrap()
                    .clone()
            }
        );
        assert_eq!(
            classify(
                INV,
                answered(202, r#"{"request_id":"r2","status":"accepted"}"#)
            ),
            Answer::Accepted {
                request_id: "r2".into()
            }
        );
        for (status, body) in [
            (200, "<html>ok</html>"),
            (200, r#"{"request_id":"r1"}"#),
            (200, r#"{"result":{}}"#),
            (200, "[]"),
            (202, "{}"),
            (204, ""),
        ] {
            match classify(INV, answered(status, body)) {
                Answer::Transient { kind, detail, .. } => {
                    assert_eq!(kind, "garbage");
                    assert!(detail.starts_with("inventory answered"), "{detail}");
                }
                other => panic!("{status} {body} judged {other:?}"),
            }
        }
        assert!(matches!(
            classify(INV, answered(422, r#"{"code":"NO_CAPACITY","detail":"full","request_id":"r3"}"#)),
            Answer::Business { code, request_id: Some(_), .. } if code == "NO_CAPACITY"
        ));
        assert!(matches!(
            classify(
                INV,
                answered(422, r#"{"type":"urn:cpq:problem:idempotency-key-reused"}"#)
            ),
            Answer::Refused { status: 422, .. }
        ));
        assert!(matches!(
            classify(INV, answered(409, "{}")),
            Answer::InProgress { .. }
        ));
        for status in [408, 429, 500, 503] {
            assert!(matches!(
                classify(INV, answered(status, "")),
                Answer::Transient {
                    kind: "unavailable",
                    ..
                }
            ));
        }
        assert!(matches!(
            classify(
                INV,
                Reply::NoAnswer {
                    timeout: true,
                    detail: "x".into()
                }
            ),
            Answer::Transient {
                kind: "timeout",
                ..
            }
        ));
    }
}
