//! One request to a system, by its Idempotency-Key: claim the key (exactly one caller executes
//! it), or replay its stored answer, or refuse (another body, in progress); then execute as the
//! plan says and store the final answer with the callback it owes, in one transaction.
//!
//! An execution runs in a task of its own: a caller that hangs up (its timeout) does not cut the
//! execution short, as with a real system, which finishes the work and keeps the answer for the
//! retry. A transient failure stores no answer; a timeout stores it and answers late.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::decide::{self, Outcome};
use crate::problem::{business_rejection, json_response, Problem};
use crate::request::SystemRequest;
use crate::state::Shared;
use crate::store::{self, Claim, Completion, Existing, NewCallback};
use crate::system::System;

/// The response header marking an answer replayed from the store.
pub const REPLAYED: &str = "idempotent-replayed";

/// An answer to a request.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub replayed: bool,
    /// A simulated timeout: the answer is sent only after this long.
    pub delay: Option<Duration>,
}

impl Reply {
    fn replay(status: u16, body: Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
            replayed: true,
            delay: None,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut r = json_response(self.status, &self.body);
        if self.replayed {
            r.headers_mut()
                .insert(REPLAYED, HeaderValue::from_static("true"));
        }
        r
    }
}

fn count(system: System, answer: &'static str) {
    metrics::counter!("sim_requests_total", "system" => system.as_str(), "answer" => answer)
        .increment(1);
}

fn unavailable(what: &str, e: &sqlx::Error) -> Problem {
    tracing::error!(error = %e, "{what} failed");
    Problem::unavailable()
}

/// Claims, replays or refuses the request with `key`; executes it when claimed.
pub async fn submit(
    sim: Shared,
    system: System,
    key: String,
    req: SystemRequest,
) -> Result<Reply, Problem> {
    let (s, body_hash) = (system.as_str(), req.body_hash);
    let hash = &body_hash[..];
    let pool = &sim.pool;
    // Twice at most: a row can change state between the statements (a release, a reset).
    for _ in 0..2 {
        let claim = store::request_insert(
            pool,
            s,
            &key,
            &req.operation,
            hash,
            &req.payload,
            req.callback_url.as_ref().map(url::Url::as_str),
        )
        .await
        .map_err(|e| unavailable("sim_request_insert", &e))?;
        if let Some(claim) = claim {
            return execute(sim.clone(), system, key, claim, req).await;
        }
        if let Some((status, body)) = store::request_replay(pool, s, &key, hash)
            .await
            .map_err(|e| unavailable("sim_request_replay", &e))?
        {
            count(system, "replayed");
            return Ok(Reply::replay(status, body));
        }
        if let Some(claim) = store::request_reclaim(pool, s, &key, hash)
            .await
            .map_err(|e| unavailable("sim_request_reclaim", &e))?
        {
            return execute(sim.clone(), system, key, claim, req).await;
        }
        match store::request_fetch(pool, s, &key, hash)
            .await
            .map_err(|e| unavailable("sim_request_fetch", &e))?
        {
            Existing::Answer { status, body } => {
                count(system, "replayed");
                return Ok(Reply::replay(status, body));
            }
            Existing::InProgress => {
                count(system, "in_progress");
                return Err(Problem::in_progress());
            }
            Existing::OtherBody => {
                count(system, "key_reused");
                return Err(Problem::key_reused());
            }
            Existing::Gone => continue,
        }
    }
    count(system, "in_progress");
    Err(Problem::in_progress())
}

async fn execute(
    sim: Shared,
    system: System,
    key: String,
    claim: Claim,
    req: SystemRequest,
) -> Result<Reply, Problem> {
    let task = tokio::spawn(run_execution(sim.clone(), system, key, claim, req));
    match task.await {
        Ok(reply) => reply,
        Err(e) => {
            // A panic in the execution: give the key back so that a retry may execute.
            tracing::error!(error = %e, %system, "execution task failed");
            if let Err(e) = store::request_release(&sim.pool, claim, false).await {
                tracing::error!(error = %e, "releasing the key after a failed execution failed");
            }
            Err(Problem::unavailable())
        }
    }
}

async fn run_execution(
    sim: Shared,
    system: System,
    key: String,
    claim: Claim,
    req: SystemRequest,
) -> Result<Reply, Problem> {
    let knobs = sim.knobs(system);
    let forced = match &req.force {
        Some(marker) => Some(decide::payload_force(marker, claim.transient_failures)),
        None => sim.next_forced(system),
    };
    let plan = decide::plan(system, &knobs, forced.as_ref(), sim.draws());
    tokio::time::sleep(plan.latency).await;
    let request_id = claim.request_id;
    // The knobs may have turned asynchronous after the request was checked without a callback
    // URL: such a request is answered synchronously.
    let callback_url = req.callback_url.as_ref().filter(|_| knobs.asynchronous);
    let (status, body, callback) = match (&plan.outcome, callback_url) {
        (Outcome::Transient, _) => {
            if let Err(e) = store::request_release(&sim.pool, claim, true).await {
                return Err(unavailable("sim_request_release", &e));
            }
            count(system, "transient");
            tracing::debug!(%system, key = %key, "transient failure injected");
            return Ok(Reply {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                body: serde_json::to_value(Problem::transient(system.as_str()))
                    .unwrap_or(Value::Null),
                replayed: false,
                delay: None,
            });
        }
        (Outcome::Reject(code), _) | (Outcome::FailLater(code), None) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            business_rejection(system.as_str(), code, request_id),
            None,
        ),
        (Outcome::Succeed | Outcome::Timeout | Outcome::FailLater(_), Some(url)) => {
            let callback_id = Uuid::now_v7();
            let mut cb = json!({
                "callback_id": callback_id,
                "request_id": request_id,
                "idempotency_key": key,
                "system": system,
                "operation": req.operation,
            });
            if let Outcome::FailLater(code) = &plan.outcome {
                cb["outcome"] = json!("failed");
                cb["error"] = json!({
                    "code": code,
                    "detail": format!("{system} could not complete the request: {code} (simulated)"),
                });
            } else {
                cb["outcome"] = json!("succeeded");
                cb["result"] = system.result(&req.operation, request_id);
            }
            (
                StatusCode::ACCEPTED,
                json!({ "request_id": request_id, "status": "accepted" }),
                Some((callback_id, url.as_str(), cb.to_string())),
            )
        }
        (Outcome::Succeed | Outcome::Timeout, None) => (
            StatusCode::OK,
            json!({
                "request_id": request_id,
                "system": system,
                "operation": req.operation,
                "result": system.result(&req.operation, request_id),
            }),
            None,
        ),
    };
    let timeout = plan.outcome == Outcome::Timeout;
    let permanent = matches!(plan.outcome, Outcome::Reject(_) | Outcome::FailLater(_));
    let callback = callback
        .as_ref()
        .map(|(callback_id, url, text)| NewCallback {
            callback_id: *callback_id,
            callback_url: url,
            body: text,
            dropped: plan.drop_callback,
            delay_secs: knobs.callback_delay_ms as f64 / 1000.0,
        });
    let dropped = callback.as_ref().is_some_and(|c| c.dropped);
    let stored = store::request_complete(
        &sim.pool,
        claim,
        system.as_str(),
        Completion {
            status: status.as_u16(),
            body: &body,
            permanent_failure: permanent,
            timeout,
        },
        callback,
    )
    .await;
    match stored {
        Ok(true) => {}
        Ok(false) => {
            // The row was reset meanwhile: nothing was stored, so nothing was executed.
            count(system, "lost");
            return Err(Problem::in_progress());
        }
        Err(e) => {
            if let Err(e) = store::request_release(&sim.pool, claim, false).await {
                tracing::error!(error = %e, "releasing the key after a failed store failed");
            }
            return Err(unavailable("sim_request_complete", &e));
        }
    }
    let outcome = match &plan.outcome {
        Outcome::Succeed if status == StatusCode::ACCEPTED => "accepted",
        Outcome::Succeed => "succeeded",
        Outcome::Timeout => "timeout",
        Outcome::Reject(_) => "rejected",
        Outcome::FailLater(_) => "accepted_failing",
        Outcome::Transient => "transient",
    };
    metrics::counter!("sim_executions_total", "system" => system.as_str(), "outcome" => outcome)
        .increment(1);
    count(system, "executed");
    if dropped {
        metrics::counter!("sim_callbacks_total", "system" => system.as_str(), "result" => "dropped")
            .increment(1);
    } else if status == StatusCode::ACCEPTED {
        sim.callback_stored.notify_one();
    }
    tracing::debug!(%system, key = %key, %request_id, outcome, status = status.as_u16(), "executed");
    Ok(Reply {
        status,
        body,
        replayed: false,
        delay: timeout.then(|| Duration::from_millis(knobs.timeout_delay_ms)),
    })
}
