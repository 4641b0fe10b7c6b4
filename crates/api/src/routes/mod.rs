pub mod approvals;
pub mod callbacks;
pub mod catalog;
pub mod configuration;
pub mod customer_accounts;
pub mod decisions;
pub mod fallout;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod orders;
pub mod processes;
pub mod quotes;
pub mod search;
pub mod user_tasks;
pub mod workflow;

use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;

use crate::problem::Problem;

/// 404 for paths no route serves.
pub async fn fallback(uri: Uri) -> impl IntoResponse {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "Resource not found",
        format!("no resource at {}", uri.path()),
    )
}

/// 405 for a known path with a method it does not serve.
pub async fn method_not_allowed() -> impl IntoResponse {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this resource does not support that method",
    )
}
