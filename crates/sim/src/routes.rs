//! The HTTP surface: the systems' request endpoint, the admin endpoints (knobs, forced outcomes,
//! executions, callbacks, stats, reset), health and metrics. Handlers read and check the request,
//! then call [`crate::execute`] or [`crate::store`]; every refusal is a problem document.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cpq_core::FieldError;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{json, Map, Value};

use crate::execute;
use crate::force::Force;
use crate::knobs::Mode;
use crate::problem::Problem;
use crate::request;
use crate::state::Shared;
use crate::store::{self, SystemStats};
use crate::system::System;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 10_000;

#[derive(Clone)]
struct App {
    sim: Shared,
    metrics: PrometheusHandle,
}

pub fn router(sim: Shared, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/systems/{system}/requests", post(submit))
        .route("/admin/systems", get(systems_list))
        .route("/admin/systems/{system}", get(system_get).put(system_put))
        .route(
            "/admin/systems/{system}/force",
            get(force_get).post(force_post).delete(force_clear),
        )
        .route("/admin/executions", get(executions))
        .route("/admin/callbacks", get(callbacks))
        .route("/admin/stats", get(stats))
        .route("/admin/reset", post(reset))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics_render))
        .fallback(unknown_route)
        .layer(middleware::from_fn(record_metrics))
        .with_state(App { sim, metrics })
}

fn system_of(name: &str) -> Result<System, Problem> {
    System::parse(name).ok_or_else(|| Problem::unknown_system(name))
}

fn database_unavailable(e: &sqlx::Error) -> Problem {
    tracing::error!(error = %e, "database unavailable");
    Problem::unavailable()
}

/// `POST /systems/{system}/requests`.
async fn submit(
    State(app): State<App>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let system = match system_of(&name) {
        Ok(s) => s,
        Err(p) => return p.into_response(),
    };
    let knobs = app.sim.knobs(system);
    if knobs.mode == Mode::Down {
        metrics::counter!("sim_requests_total", "system" => system.as_str(), "answer" => "down")
            .increment(1);
        return Problem::system_down(system.as_str()).into_response();
    }
    let checked = request::idempotency_key(headers.get(request::IDEMPOTENCY_KEY))
        .and_then(|key| request::parse(&body, knobs.asynchronous).map(|r| (key, r)));
    let (key, req) = match checked {
        Ok(c) => c,
        Err(p) => {
            metrics::counter!("sim_requests_total", "system" => system.as_str(), "answer" => "invalid")
                .increment(1);
            return p.into_response();
        }
    };
    match execute::submit(app.sim.clone(), system, key, req).await {
        Ok(reply) => {
            if let Some(delay) = reply.delay {
                // The answer is stored: a caller that gives up meanwhile gets it on its retry.
                tokio::time::sleep(delay).await;
            }
            reply.into_response()
        }
        Err(p) => p.into_response(),
    }
}

/// `GET /admin/systems`: every system's knobs.
async fn systems_list(State(app): State<App>) -> Json<Value> {
    let all: BTreeMap<&str, _> = app
        .sim
        .all_knobs()
        .into_iter()
        .map(|(s, k)| (s.as_str(), k))
        .collect();
    Json(json!({ "systems": all, "seed": app.sim.seed() }))
}

async fn system_get(State(app): State<App>, Path(name): Path<String>) -> Response {
    match system_of(&name) {
        Ok(s) => Json(app.sim.knobs(s)).into_response(),
        Err(p) => p.into_response(),
    }
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, Problem> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Problem::malformed(
            "the body must be a JSON object",
            Vec::new(),
        )),
        Err(e) => Err(Problem::malformed(
            format!("the body is not JSON: {e}"),
            Vec::new(),
        )),
    }
}

/// `PUT /admin/systems/{system}`: the fields present change, the others keep their value.
async fn system_put(State(app): State<App>, Path(name): Path<String>, body: Bytes) -> Response {
    let result = system_of(&name).and_then(|system| {
        let change = json_object(&body)?;
        let knobs = app
            .sim
            .knobs(system)
            .changed(&change)
            .map_err(Problem::validation)?;
        app.sim.set_knobs(system, knobs.clone());
        tracing::info!(%system, knobs = ?knobs, "knobs changed");
        Ok(knobs)
    });
    match result {
        Ok(k) => Json(k).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn force_get(State(app): State<App>, Path(name): Path<String>) -> Response {
    match system_of(&name) {
        Ok(s) => Json(json!({ "system": s, "queued": app.sim.forced_queue(s) })).into_response(),
        Err(p) => p.into_response(),
    }
}

/// `POST /admin/systems/{system}/force` `{"outcome": "<marker>", "count": n}`: the next n
/// executions on the system have this outcome.
async fn force_post(State(app): State<App>, Path(name): Path<String>, body: Bytes) -> Response {
    let result = system_of(&name).and_then(|system| {
        let fields = json_object(&body)?;
        let mut errors = Vec::new();
        for k in fields.keys() {
            if k != "outcome" && k != "count" {
                errors.push(FieldError::new(
                    k.as_str(),
                    "unknown-field",
                    format!("{k} is not a field; expected outcome, count"),
                ));
            }
        }
        let force = match fields.get("outcome") {
            Some(Value::String(s)) => match Force::parse(s) {
                Ok(Force::Transient(Some(_))) => {
                    errors.push(FieldError::new(
                        "outcome",
                        "invalid",
                        "transient:N applies to one request's attempts (payload marker); queue \
                         \"transient\" with a count instead",
                    ));
                    None
                }
                Ok(f) => Some(f),
                Err(detail) => {
                    errors.push(FieldError::new("outcome", "invalid", detail));
                    None
                }
            },
            None => {
                errors.push(FieldError::new(
                    "outcome",
                    "required",
                    "outcome is required",
                ));
                None
            }
            Some(_) => {
                errors.push(FieldError::new("outcome", "invalid", "outcome is a string"));
                None
            }
        };
        let count = match fields.get("count") {
            None => Some(1),
            Some(v) => match v.as_u64() {
                Some(n @ 1..=10_000) => Some(n as usize),
                _ => {
                    errors.push(FieldError::new(
                        "count",
                        "out-of-range",
                        "count is a whole number from 1 to 10000",
                    ));
                    None
                }
            },
        };
        match (force, count) {
            (Some(f), Some(n)) if errors.is_empty() => {
                tracing::info!(%system, outcome = %f, count = n, "outcome forced");
                app.sim.force(system, f, n);
                Ok(json!({ "system": system, "queued": app.sim.forced_queue(system) }))
            }
            _ => Err(Problem::validation(errors)),
        }
    });
    match result {
        Ok(v) => Json(v).into_response(),
        Err(p) => p.into_response(),
    }
}

async fn force_clear(State(app): State<App>, Path(name): Path<String>) -> Response {
    match system_of(&name) {
        Ok(s) => {
            while app.sim.next_forced(s).is_some() {}
            StatusCode::NO_CONTENT.into_response()
        }
        Err(p) => p.into_response(),
    }
}

/// The query parameters of the admin lists: only those named, each checked.
struct ListQuery {
    system: Option<System>,
    flag: bool,
    status: Option<String>,
    limit: i64,
}

fn list_query(
    params: &HashMap<String, String>,
    flag_name: &str,
    statuses: &[&str],
) -> Result<ListQuery, Problem> {
    let mut errors = Vec::new();
    let mut q = ListQuery {
        system: None,
        flag: false,
        status: None,
        limit: DEFAULT_LIMIT,
    };
    for (k, v) in params {
        match k.as_str() {
            "system" if v.is_empty() => {}
            "system" => match System::parse(v) {
                Some(s) => q.system = Some(s),
                None => errors.push(FieldError::new(
                    "system",
                    "invalid",
                    format!("{v} is not a system"),
                )),
            },
            "limit" => match v.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = n,
                _ => errors.push(FieldError::new(
                    "limit",
                    "out-of-range",
                    format!("limit is from 1 to {MAX_LIMIT}"),
                )),
            },
            "status" if !statuses.is_empty() => {
                if statuses.contains(&v.as_str()) {
                    q.status = Some(v.clone());
                } else {
                    errors.push(FieldError::new(
                        "status",
                        "invalid",
                        format!("status is one of {}", statuses.join(", ")),
                    ));
                }
            }
            name if name == flag_name && !flag_name.is_empty() => match v.as_str() {
                "true" => q.flag = true,
                "false" => q.flag = false,
                _ => errors.push(FieldError::new(
                    name,
                    "invalid",
                    format!("{name} is true or false"),
                )),
            },
            other => errors.push(FieldError::new(
                other,
                "unknown-field",
                format!("{other} is not a parameter of this list"),
            )),
        }
    }
    if errors.is_empty() {
        Ok(q)
    } else {
        Err(Problem::malformed("invalid query parameters", errors))
    }
}

/// `GET /admin/executions?system=&duplicates_only=true&limit=`: keys with their execution counts;
/// with `duplicates_only=true`, those executed more than once (empty on a correct platform).
async fn executions(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let q = match list_query(&params, "duplicates_only", &[]) {
        Ok(q) => q,
        Err(p) => return p.into_response(),
    };
    let system = q.system.map(System::as_str);
    match store::request_list(&app.sim.pool, system, q.flag, q.limit).await {
        Ok(rows) => Json(json!({ "executions": rows })).into_response(),
        Err(e) => database_unavailable(&e).into_response(),
    }
}

/// `GET /admin/callbacks?system=&status=pending|delivered|dropped&limit=`.
async fn callbacks(
    State(app): State<App>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let q = match list_query(&params, "", &["pending", "delivered", "dropped"]) {
        Ok(q) => q,
        Err(p) => return p.into_response(),
    };
    let system = q.system.map(System::as_str);
    match store::callback_list(&app.sim.pool, system, q.status.as_deref(), q.limit).await {
        Ok(rows) => Json(json!({ "callbacks": rows })).into_response(),
        Err(e) => database_unavailable(&e).into_response(),
    }
}

/// `GET /admin/stats`: per system and in total.
async fn stats(State(app): State<App>) -> Response {
    let rows = match store::stats(&app.sim.pool).await {
        Ok(r) => r,
        Err(e) => return database_unavailable(&e).into_response(),
    };
    let mut per_system: BTreeMap<&str, SystemStats> = System::ALL
        .into_iter()
        .map(|s| (s.as_str(), SystemStats::default()))
        .collect();
    let mut total = SystemStats::default();
    for (name, s) in rows {
        total.requests += s.requests;
        total.executions += s.executions;
        total.distinct_keys += s.distinct_keys;
        total.duplicate_executions += s.duplicate_executions;
        total.keys_executed_more_than_once += s.keys_executed_more_than_once;
        total.transient_failures_injected += s.transient_failures_injected;
        total.timeouts_injected += s.timeouts_injected;
        total.permanent_failures_injected += s.permanent_failures_injected;
        total.callbacks_pending += s.callbacks_pending;
        total.callbacks_delivered += s.callbacks_delivered;
        total.callbacks_dropped += s.callbacks_dropped;
        total.callback_delivery_attempts += s.callback_delivery_attempts;
        if let Some(system) = System::parse(&name) {
            per_system.insert(system.as_str(), s);
        }
    }
    Json(json!({ "systems": per_system, "total": total, "seed": app.sim.seed() })).into_response()
}

/// `POST /admin/reset`: forgets every request and callback, restores the initial knobs, empties
/// the forced queues and reseeds the generator.
async fn reset(State(app): State<App>) -> Response {
    match store::reset(&app.sim.pool).await {
        Ok(()) => {
            app.sim.reset();
            tracing::info!("simulator reset");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => database_unavailable(&e).into_response(),
    }
}

async fn live() -> &'static str {
    "live"
}

/// Ready when the database answers.
async fn ready(State(app): State<App>) -> Response {
    match store::ping(&app.sim.pool).await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the simulator's database is unreachable: {e}"),
        )
            .into_response(),
    }
}

async fn metrics_render(State(app): State<App>) -> String {
    app.metrics.run_upkeep();
    app.metrics.render()
}

async fn unknown_route() -> Response {
    Problem::not_found("no such endpoint; see docs/simulators.md").into_response()
}

/// `http_request_duration_seconds{method, route, status}`, as the API records it.
async fn record_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}
