use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use crate::state::AppState;

/// Prometheus text exposition of every metric the process records.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let size = state.db.size();
    let idle = state.db.num_idle() as u32;
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(idle));
    metrics::gauge!("db_pool_connections", "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    match cpq_workflow::instances::active_instance_counts(&state.db).await {
        Ok(counts) => {
            for (process, version, active) in counts {
                metrics::gauge!("workflow_active_instances", "process" => process, "version" => version.to_string()).set(active as f64);
            }
        }
        Err(e) => tracing::debug!(error = %e, "active instance counts unavailable"),
    }
    state.metrics.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
