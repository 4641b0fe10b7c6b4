use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::middleware::REQUEST_ID;

pub const CORRELATION_ID: &str = "x-correlation-id";

/// Identifiers that tie a request to its logs, audit record and events.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// This request's id (`x-request-id`, set by the request-id layer when the client sent none).
    pub request_id: String,
    /// The business flow's id: `x-correlation-id` when the client sends one, else the request id.
    pub correlation_id: String,
}

fn header_text(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        let request_id = header_text(parts, REQUEST_ID).unwrap_or_default();
        let correlation_id =
            header_text(parts, CORRELATION_ID).unwrap_or_else(|| request_id.clone());
        Ok(RequestContext {
            request_id,
            correlation_id,
        })
    }
}
