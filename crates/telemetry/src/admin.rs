//! The admin port of the background deployables (cpq-worker, cpq-relay, cpq-consumer): liveness,
//! readiness (database reachable, schema compatible) and Prometheus metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sqlx::PgPool;

#[derive(Clone)]
struct Admin {
    db: PgPool,
    metrics: PrometheusHandle,
}

async fn live() -> &'static str {
    "live"
}

async fn ready(State(a): State<Admin>) -> impl IntoResponse {
    match cpq_db::migrations::schema_status(&a.db).await {
        Ok(s) => match s.incompatibility() {
            None => (StatusCode::OK, "ready".to_owned()),
            Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
        },
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("postgresql is unreachable: {e}"),
        ),
    }
}

async fn metrics(State(a): State<Admin>) -> impl IntoResponse {
    a.metrics.run_upkeep();
    a.metrics.render()
}

pub fn router(db: PgPool, metrics_handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(Admin {
            db,
            metrics: metrics_handle,
        })
}
