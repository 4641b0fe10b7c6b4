//! Cross-cutting layers applied to every route: request id (set when absent, echoed back),
//! a tracing span per request (request id, method, route; tenant and subject filled in by
//! authentication), per-request timeout, duration metrics by route and status, and panics turned
//! into problem responses.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, Response, StatusCode};
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::Router;
use cpq_core::Error;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use tracing::{field::Empty, Span};

use crate::problem::{ApiError, Problem};
use crate::state::AppState;

pub const REQUEST_ID: &str = "x-request-id";

/// Request ids are UUIDv7: unique, and sortable by time in logs.
#[derive(Clone, Copy)]
struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        uuid::Uuid::now_v7()
            .to_string()
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

fn route_of<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned())
}

/// Cuts a request off after the configured time. The handler's future is dropped, which rolls
/// back its open transaction: a timed-out command leaves nothing behind.
async fn timeout(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> axum::response::Response {
    let limit = state.config.http.request_timeout();
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError(Error::Timeout {
            millis: limit.as_millis() as u64,
        })
        .into_response(),
    }
}

/// `http_request_duration_seconds{method, route, status}` and `http_requests_in_flight`.
async fn record_metrics(req: Request, next: Next) -> axum::response::Response {
    let start = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = route_of(&req);
    metrics::gauge!("http_requests_in_flight").increment(1.0);
    let response = next.run(req).await;
    metrics::gauge!("http_requests_in_flight").decrement(1.0);
    metrics::histogram!(
        "http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(start.elapsed().as_secs_f64());
    response
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response<axum::body::Body> {
    tracing::error!("handler panicked");
    Problem::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal-error",
        "Internal error",
        "an unexpected error occurred; report the x-request-id of this response",
    )
    .into_response()
}

/// Wraps `router` in the layers every route gets.
pub fn apply(router: Router, state: &AppState) -> Router {
    let request_id = HeaderName::from_static(REQUEST_ID);
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), timeout))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeUuidV7))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &axum::http::Request<_>| {
                            let request_id = req
                                .headers()
                                .get(REQUEST_ID)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default();
                            tracing::info_span!(
                                "request",
                                request_id,
                                method = %req.method(),
                                route = route_of(req),
                                tenant = Empty,
                                subject = Empty,
                            )
                        })
                        .on_request(())
                        .on_response(|res: &Response<_>, latency: Duration, _: &Span| {
                            tracing::info!(
                                status = res.status().as_u16(),
                                latency_ms = latency.as_secs_f64() * 1000.0,
                                "request finished"
                            );
                        })
                        .on_failure(()),
                )
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::custom(panic_response)),
        )
}
