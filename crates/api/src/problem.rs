//! RFC 9457 problem responses: the one place where [`cpq_core::Error`] meets HTTP.
//!
//! Each error kind has a stable `type` URI (`urn:cpq:problem:<slug>`) that clients may switch on;
//! `title` is fixed per type; `detail` is for a person; `errors` lists field problems. Internal
//! detail is logged with the request's span (request id, route, tenant) and never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cpq_core::{Error, FieldError};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Stable identifier of the error kind, e.g. `urn:cpq:problem:validation-failed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Field-level problems (validation and malformed requests).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorDoc>)]
    pub errors: Vec<FieldError>,
    /// For 412: the resource's current ETag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_etag: Option<String>,
    /// For a 409 about something that already exists: its path, e.g. `/v1/orders/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing: Option<String>,
}

/// One field problem.
#[derive(Debug, Serialize, ToSchema)]
pub struct FieldErrorDoc {
    /// Path of the field in the request, e.g. `name` or `items[2].quantity`.
    pub field: String,
    /// Stable reason code, e.g. `required`, `unknown-field`, `too-long`.
    pub code: String,
    pub detail: String,
}

/// The error type of every handler.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

/// Builds the problem for an error kind: (status, slug, title).
fn classify(e: &Error) -> (StatusCode, &'static str, &'static str) {
    match e {
        Error::NotFound { .. } => (StatusCode::NOT_FOUND, "not-found", "Resource not found"),
        Error::Malformed { .. } => (
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
        ),
        Error::Validation { .. } => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
        ),
        Error::Conflict { .. } | Error::ConflictWithExisting { .. } => (
            StatusCode::CONFLICT,
            "conflict",
            "Conflict with the current state",
        ),
        Error::PreconditionRequired { .. } => (
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            "If-Match required",
        ),
        Error::PreconditionFailed { .. } => (
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            "Resource has changed",
        ),
        Error::IdempotencyKeyReused => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
        ),
        Error::PayloadTooLarge { .. } => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
        ),
        Error::Unauthenticated { .. } => (
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Authentication required",
        ),
        Error::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
        Error::Unavailable { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Temporarily unavailable",
        ),
        Error::NotDeployed { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not-deployed",
            "Not deployed",
        ),
        Error::Timeout { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "request-timeout",
            "Request timed out",
        ),
        Error::Internal { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "Internal error",
        ),
    }
}

pub fn problem_type(slug: &str) -> String {
    format!("urn:cpq:problem:{slug}")
}

impl Problem {
    pub fn new(
        status: StatusCode,
        slug: &str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Problem {
        Problem {
            kind: problem_type(slug),
            title,
            status: status.as_u16(),
            detail: detail.into(),
            errors: Vec::new(),
            current_etag: None,
            existing: None,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = classify(&self.0);
        let mut problem = Problem::new(status, slug, title, String::new());
        let mut extra_header = None;
        problem.detail = match self.0 {
            Error::NotFound { kind, id } => format!("{kind} {id} does not exist"),
            Error::Malformed { detail, errors } => {
                problem.errors = errors;
                detail
            }
            Error::Validation { errors } => {
                let n = errors.len();
                problem.errors = errors;
                format!("{n} field{} failed validation; see errors", if n == 1 { "" } else { "s" })
            }
            Error::Conflict { detail } => detail,
            Error::ConflictWithExisting { detail, existing } => {
                problem.existing = Some(existing);
                detail
            }
            Error::PreconditionRequired { detail } => detail,
            Error::PreconditionFailed { current } => {
                let etag = crate::etag::format(&current);
                problem.current_etag = Some(etag.clone());
                format!("the resource is now at {etag}; fetch it again and retry with that If-Match")
            }
            Error::IdempotencyKeyReused => "this Idempotency-Key was used with a different request; use a new key for a new request".to_owned(),
            Error::PayloadTooLarge { limit } => format!("the request body is larger than {limit} bytes"),
            Error::Unauthenticated { detail } => {
                extra_header = Some((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                detail
            }
            Error::Forbidden { detail } => detail,
            Error::Unavailable { dependency, internal } => {
                tracing::error!(dependency, error = %internal, "dependency unavailable");
                extra_header = Some((header::RETRY_AFTER, HeaderValue::from_static("1")));
                format!("{dependency} is temporarily unavailable; retry later")
            }
            Error::NotDeployed { what, needed_for, remedy } => {
                tracing::error!(what, needed_for, remedy, "not deployed");
                // No Retry-After: this does not resolve by itself.
                format!("{what} is not deployed on this platform, so it cannot {needed_for}; an operator must {remedy}; nothing was changed")
            }
            Error::Timeout { millis } => {
                tracing::warn!(millis, "request timed out");
                extra_header = Some((header::RETRY_AFTER, HeaderValue::from_static("1")));
                format!("the request did not finish within {millis} ms and was abandoned; nothing was committed")
            }
            Error::Internal { internal } => {
                tracing::error!(error = %internal, "internal error");
                "an unexpected error occurred; report the x-request-id of this response".to_owned()
            }
        };
        let mut response = problem.into_response();
        if let Some((name, value)) = extra_header {
            response.headers_mut().insert(name, value);
        }
        response
    }
}
