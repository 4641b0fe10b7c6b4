//! Liveness, readiness, startup and diagnostics (seed part 056 section 4.4). Readiness fails when
//! PostgreSQL is unreachable or its schema is older than this binary needs; Redis down only
//! degrades it, because every Redis use falls back to PostgreSQL.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use cpq_config::JwksSource;
use cpq_core::Role;
use cpq_db::migrations::{schema_status, SchemaStatus};
use cpq_quote::processes::required_processes_missing;
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::extract::Caller;
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct HealthStatus {
    /// `live`, `started`, `ready` or `degraded`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub checks: Option<Value>,
}

/// The process is running.
#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, body = HealthStatus)))]
pub async fn live() -> Json<HealthStatus> {
    Json(HealthStatus {
        status: "live",
        checks: None,
    })
}

/// Start-up has finished: configuration validated, keys loaded, listener serving.
#[utoipa::path(get, path = "/health/startup", tag = "operations",
    responses((status = 200, body = HealthStatus), (status = 503, body = Problem)))]
pub async fn startup(State(state): State<AppState>) -> Response {
    if state.is_started() {
        Json(HealthStatus {
            status: "started",
            checks: None,
        })
        .into_response()
    } else {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-started",
            "Not started",
            "start-up has not finished",
        )
        .into_response()
    }
}

fn not_ready(detail: String) -> Response {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-ready",
        "Not ready",
        detail,
    )
    .into_response()
}

/// Whether this instance can take traffic.
#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses((status = 200, description = "Ready, or degraded but serving", body = HealthStatus),
              (status = 503, description = "Not ready: the reason is in detail", body = Problem)))]
pub async fn ready(State(state): State<AppState>) -> Response {
    let (schema, redis, processes) = tokio::join!(
        schema_status(&state.db),
        state.redis.ping(),
        required_processes_missing(&state.db)
    );
    let schema: SchemaStatus = match schema {
        Ok(s) => s,
        Err(e) => return not_ready(format!("postgresql is unreachable: {e}")),
    };
    if let Some(reason) = schema.incompatibility() {
        return not_ready(reason);
    }
    let redis_check = match &redis {
        Ok(_) => json!({ "status": "up" }),
        Err(e) => {
            json!({ "status": "down", "error": e, "impact": "caches bypassed; serving from PostgreSQL" })
        }
    };
    // A process that is not deployed leaves the instance serving (every instance shares the
    // database, so taking this one out of rotation would not help): degraded, naming it.
    let (processes_ok, processes_check) = match &processes {
        Ok(missing) if missing.is_empty() => (true, json!({ "status": "up" })),
        Ok(missing) => (
            false,
            json!({
                "status": "missing",
                "missing": missing.iter().map(|p| json!({
                    "bpmn_process_id": p.bpmn_process_id,
                    "impact": format!("cannot {}", p.needed_for),
                    "remedy": p.remedy,
                })).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => (
            false,
            json!({ "status": "unknown", "error": e.to_string() }),
        ),
    };
    Json(HealthStatus {
        status: if redis.is_ok() && processes_ok {
            "ready"
        } else {
            "degraded"
        },
        checks: Some(json!({
            "postgresql": { "status": "up", "schema_version": schema.applied, "required_schema_version": schema.required },
            "redis": redis_check,
            "processes": processes_check,
        })),
    })
    .into_response()
}

#[derive(Serialize, ToSchema)]
pub struct Dependency {
    pub name: &'static str,
    /// `up` or `down`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[schema(value_type = Object)]
    pub detail: Value,
}

#[derive(Serialize, ToSchema)]
pub struct Diagnostics {
    pub service: &'static str,
    pub version: &'static str,
    pub environment: &'static str,
    pub dependencies: Vec<Dependency>,
}

/// One entry per dependency, for operators. Needs the `operator` role.
#[utoipa::path(get, path = "/health/diagnostics", tag = "operations", security(("bearer" = [])),
    responses((status = 200, body = Diagnostics), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn diagnostics(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Diagnostics>, ApiError> {
    caller.0.require_any(&[Role::Operator])?;
    let start = Instant::now();
    let schema = schema_status(&state.db).await;
    let pg_latency = start.elapsed().as_secs_f64() * 1000.0;
    let postgresql = match schema {
        Ok(s) => Dependency {
            name: "postgresql",
            status: if s.incompatibility().is_none() {
                "up"
            } else {
                "down"
            },
            latency_ms: Some(pg_latency),
            error: s.incompatibility(),
            detail: json!({
                "host": state.config.database.host,
                "database": state.config.database.name,
                "schema_version": s.applied,
                "required_schema_version": s.required,
                "pool_size": state.db.size(),
                "pool_idle": state.db.num_idle(),
                "pool_max": state.config.database.max_connections,
            }),
        },
        Err(e) => Dependency {
            name: "postgresql",
            status: "down",
            latency_ms: None,
            error: Some(e.to_string()),
            detail: json!({ "host": state.config.database.host, "database": state.config.database.name }),
        },
    };
    let redis = match state.redis.ping().await {
        Ok(d) => Dependency {
            name: "redis",
            status: "up",
            latency_ms: Some(d.as_secs_f64() * 1000.0),
            error: None,
            detail: json!({ "target": state.redis.target() }),
        },
        Err(e) => Dependency {
            name: "redis",
            status: "down",
            latency_ms: None,
            error: Some(e),
            detail: json!({ "target": state.redis.target(), "impact": "caches bypassed; serving from PostgreSQL" }),
        },
    };
    let source = match state.verifier.source() {
        JwksSource::File(p) => format!("file:{}", p.display()),
        JwksSource::Url(u) => u.to_string(),
    };
    let jwks = Dependency {
        name: "jwks",
        status: if state.verifier.key_count() > 0 {
            "up"
        } else {
            "down"
        },
        latency_ms: None,
        error: None,
        detail: json!({ "source": source, "keys": state.verifier.key_count() }),
    };
    Ok(Json(Diagnostics {
        service: "cpq-api",
        version: env!("CARGO_PKG_VERSION"),
        environment: state.config.environment.as_str(),
        dependencies: vec![postgresql, redis, jwks],
    }))
}
