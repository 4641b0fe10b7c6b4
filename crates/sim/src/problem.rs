//! RFC 9457 problem responses, in the platform API's shape (`type` `urn:cpq:problem:<slug>`,
//! `title`, `status`, `detail`, field `errors`); a business rejection adds its `code`. Internal
//! detail (database errors) is logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cpq_core::FieldError;
use serde::Serialize;
use serde_json::Value;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

pub fn problem_type(slug: &str) -> String {
    format!("urn:cpq:problem:{slug}")
}

impl Problem {
    fn new(status: StatusCode, slug: &str, title: &'static str, detail: String) -> Problem {
        Problem {
            kind: problem_type(slug),
            title,
            status: status.as_u16(),
            detail,
            errors: Vec::new(),
        }
    }

    pub fn unknown_system(name: &str) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Resource not found",
            format!(
                "system {name} does not exist; the systems are inventory, provisioning, billing, \
                 crm and notification"
            ),
        )
    }

    /// 400: the request cannot be read (not JSON, a required header missing).
    pub fn malformed(detail: impl Into<String>, errors: Vec<FieldError>) -> Problem {
        let mut p = Problem::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail.into(),
        );
        p.errors = errors;
        p
    }

    /// 422: readable, but its values are not acceptable.
    pub fn validation(errors: Vec<FieldError>) -> Problem {
        let n = errors.len();
        let mut p = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation-failed",
            "Validation failed",
            format!(
                "{n} field{} failed validation; see errors",
                if n == 1 { "" } else { "s" }
            ),
        );
        p.errors = errors;
        p
    }

    pub fn key_reused() -> Problem {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency key reused",
            "this Idempotency-Key was used with a different request; use a new key for a new \
             request"
                .to_owned(),
        )
    }

    pub fn in_progress() -> Problem {
        Problem::new(
            StatusCode::CONFLICT,
            "request-in-progress",
            "Request in progress",
            "a request with this Idempotency-Key is being executed; retry it shortly to get its \
             answer"
                .to_owned(),
        )
    }

    pub fn system_down(system: &str) -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Temporarily unavailable",
            format!("{system} is down (simulated); nothing was stored or executed; retry later"),
        )
    }

    pub fn transient(system: &str) -> Problem {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "transient-failure",
            "Transient failure",
            format!(
                "{system} failed before executing the request (simulated); nothing was stored, \
                 retry with the same Idempotency-Key"
            ),
        )
    }

    pub fn unavailable() -> Problem {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service-unavailable",
            "Temporarily unavailable",
            "the simulator's database is unavailable; retry later".to_owned(),
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "Resource not found",
            detail.into(),
        )
    }
}

/// A business rejection as a system sends it: a problem with the system's error `code`.
pub fn business_rejection(system: &str, code: &str, request_id: uuid::Uuid) -> Value {
    serde_json::json!({
        "type": problem_type("business-rule-violated"),
        "title": "Business rule violated",
        "status": 422,
        "code": code,
        "detail": format!("{system} rejected the request: {code} (simulated)"),
        "request_id": request_id,
    })
}

/// A JSON response, as `application/problem+json` when `status` is an error.
pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = (status, bytes).into_response();
    let content_type = if status.is_client_error() || status.is_server_error() {
        PROBLEM_JSON
    } else {
        "application/json"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_value(&self).unwrap_or(Value::Null);
        let mut response = json_response(status, &body);
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::CONFLICT {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
