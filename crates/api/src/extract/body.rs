use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use cpq_core::{Error, FieldError};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::problem::ApiError;
use crate::state::AppState;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const IDEMPOTENCY_KEY_MAX: usize = 255;

/// A client-chosen key that makes a command safe to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub String);

/// A strictly parsed JSON command body, with what idempotency needs: the optional
/// `Idempotency-Key` and a fingerprint of the request (method, path, canonical JSON body), so that
/// the same key with another request is recognised whatever the whitespace or key order.
pub struct JsonBody<T> {
    pub value: T,
    pub idempotency_key: Option<IdempotencyKey>,
    pub fingerprint: [u8; 32],
    pub method: String,
    pub path: String,
}

fn malformed(detail: impl Into<String>, errors: Vec<FieldError>) -> ApiError {
    ApiError(Error::Malformed {
        detail: detail.into(),
        errors,
    })
}

fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn idempotency_key(req: &Request) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = req.headers().get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = raw.to_str().ok().map(str::trim).unwrap_or_default();
    if key.is_empty()
        || key.len() > IDEMPOTENCY_KEY_MAX
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(malformed(
            "Idempotency-Key is invalid",
            vec![FieldError::new(
                "Idempotency-Key",
                "invalid-format",
                format!("1-{IDEMPOTENCY_KEY_MAX} printable ASCII characters without spaces"),
            )],
        ));
    }
    Ok(Some(IdempotencyKey(key.to_owned())))
}

/// Turns a serde error with its path into a field problem.
fn field_problem(path: String, e: &serde_json::Error) -> FieldError {
    let message = e.to_string();
    let message = match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message,
    };
    let code = if message.starts_with("unknown field") {
        "unknown-field"
    } else if message.starts_with("missing field") {
        "required"
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        "invalid-type"
    } else {
        "invalid"
    };
    // serde_path_to_error names the offending field itself, unknown fields included.
    let field = if path == "." { String::new() } else { path };
    FieldError::new(field, code, message)
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let content_type = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !is_json(content_type) {
            return Err(malformed(
                "the body must be JSON (Content-Type: application/json)",
                Vec::new(),
            ));
        }
        let idempotency_key = idempotency_key(&req)?;
        let method = req.method().as_str().to_owned();
        let path = req.uri().path().to_owned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.into_response().status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError(Error::PayloadTooLarge {
                    limit: state.config.http.body_limit_bytes,
                })
            } else {
                malformed("the request body could not be read", Vec::new())
            }
        })?;

        let mut generic: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
            malformed(
                "the body is not valid JSON",
                vec![FieldError::new("", "invalid-json", e.to_string())],
            )
        })?;
        // JSON has one number type: `3.0` is the integer 3 wherever an integer is expected.
        integral_numbers(&mut generic);
        // Before the shape: a NUL anywhere (values or keys, at any depth) is refused by name,
        // whatever field it is in.
        super::text::refuse_nul(super::text::nul_fields(&generic)).map_err(ApiError)?;
        let value: T = serde_path_to_error::deserialize(&generic).map_err(|e| {
            let path = e.path().to_string();
            let problem = field_problem(path, e.inner());
            malformed(
                format!(
                    "the body does not match the expected shape: {}",
                    problem.detail
                ),
                vec![problem],
            )
        })?;

        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b" ");
        hasher.update(path.as_bytes());
        hasher.update(b"\n");
        hasher.update(cpq_core::canonical_json(&generic).as_bytes());
        Ok(JsonBody {
            value,
            idempotency_key,
            fingerprint: hasher.finalize().into(),
            method,
            path,
        })
    }
}

/// Rewrites numbers written with a zero fraction (`3.0`, `1e3`) as integers, so that an integer
/// field takes them as JSON Schema's `integer` does; other numbers stay as they are.
fn integral_numbers(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            if let Some(f) = n.as_f64() {
                // Exactly representable integers only (|f| < 2^53), as i64.
                if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
                    *value = Value::from(f as i64);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_numbers),
        Value::Object(map) => map.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::{integral_numbers, is_json};

    #[test]
    fn integral_floats_become_integers() {
        let mut v = serde_json::json!({ "a": 60.0, "b": [1e3, 2.5, -0.0], "c": { "d": 1e300 } });
        integral_numbers(&mut v);
        assert_eq!(
            v,
            serde_json::json!({ "a": 60, "b": [1000, 2.5, 0], "c": { "d": 1e300 } })
        );
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
    }
}
