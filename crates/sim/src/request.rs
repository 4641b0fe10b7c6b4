//! Reading a request to a system: the `Idempotency-Key` header and the JSON body
//! `{"operation", "payload", "callback_url"}`, checked once, every problem named by its field.
//! Pure.

use cpq_core::FieldError;
use serde_json::Value;

use crate::force::{Force, MARKER_FIELD};
use crate::problem::Problem;

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";
const MAX_KEY_LEN: usize = 255;
const MAX_OPERATION_LEN: usize = 100;
const MAX_URL_LEN: usize = 2000;

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct SystemRequest {
    pub operation: String,
    pub payload: Value,
    pub callback_url: Option<url::Url>,
    /// The payload's `sim_force` marker.
    pub force: Option<Force>,
    /// SHA-256 of the body's canonical JSON: the same request, however its keys are ordered or
    /// spaced, has the same hash.
    pub body_hash: [u8; 32],
}

/// The `Idempotency-Key` header: required, 1 to 255 visible ASCII characters.
pub fn idempotency_key(value: Option<&axum::http::HeaderValue>) -> Result<String, Problem> {
    let field = |code: &str, detail: &str| {
        Problem::malformed(
            format!("{IDEMPOTENCY_KEY}: {detail}"),
            vec![FieldError::new(IDEMPOTENCY_KEY, code, detail)],
        )
    };
    let Some(value) = value else {
        return Err(field(
            "required",
            "every request needs an Idempotency-Key header, the same on every retry",
        ));
    };
    match value.to_str() {
        Ok(k)
            if !k.is_empty()
                && k.len() <= MAX_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(k.to_owned())
        }
        _ => Err(field(
            "invalid",
            "the key is 1 to 255 visible ASCII characters without spaces",
        )),
    }
}

/// Parses and checks the body. `asynchronous`: the system answers by callback, so
/// `callback_url` is required.
pub fn parse(body: &[u8], asynchronous: bool) -> Result<SystemRequest, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::malformed(format!("the body is not JSON: {e}"), Vec::new()))?;
    let Value::Object(map) = &value else {
        return Err(Problem::malformed(
            "the body must be a JSON object {\"operation\", \"payload\", \"callback_url\"}",
            Vec::new(),
        ));
    };
    let mut errors = Vec::new();
    for k in map.keys() {
        if !["operation", "payload", "callback_url"].contains(&k.as_str()) {
            errors.push(FieldError::new(
                k.as_str(),
                "unknown-field",
                format!(
                    "{k} is not a field of a request; expected operation, payload, callback_url"
                ),
            ));
        }
    }
    let operation = match map.get("operation") {
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "operation",
                "required",
                "operation is required",
            ));
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            errors.push(FieldError::new(
                "operation",
                "required",
                "operation is empty",
            ));
            None
        }
        Some(Value::String(s)) if s.len() > MAX_OPERATION_LEN => {
            errors.push(FieldError::new(
                "operation",
                "too-long",
                format!("operation is at most {MAX_OPERATION_LEN} characters"),
            ));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new(
                "operation",
                "invalid",
                "operation is a string",
            ));
            None
        }
    };
    let payload = match map.get("payload") {
        Some(Value::Object(p)) => Some(Value::Object(p.clone())),
        None | Some(Value::Null) => {
            errors.push(FieldError::new(
                "payload",
                "required",
                "payload is required (an object)",
            ));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(
                "payload",
                "invalid",
                "payload is a JSON object",
            ));
            None
        }
    };
    let force = payload
        .as_ref()
        .and_then(|p| p.get(MARKER_FIELD))
        .and_then(|m| match m {
            Value::String(s) => match Force::parse(s) {
                Ok(f) => Some(f),
                Err(detail) => {
                    errors.push(FieldError::new(
                        format!("payload.{MARKER_FIELD}"),
                        "invalid",
                        detail,
                    ));
                    None
                }
            },
            _ => {
                errors.push(FieldError::new(
                    format!("payload.{MARKER_FIELD}"),
                    "invalid",
                    "sim_force is a string, e.g. \"permanent:INVALID_ADDRESS\"",
                ));
                None
            }
        });
    let callback_url = match map.get("callback_url") {
        None | Some(Value::Null) => {
            if asynchronous {
                errors.push(FieldError::new(
                    "callback_url",
                    "required",
                    "this system answers asynchronously: callback_url is where its callback goes",
                ));
            }
            None
        }
        Some(Value::String(s)) => match url::Url::parse(s) {
            Ok(u)
                if ["http", "https"].contains(&u.scheme())
                    && u.has_host()
                    && s.len() <= MAX_URL_LEN =>
            {
                Some(u)
            }
            _ => {
                errors.push(FieldError::new(
                    "callback_url",
                    "invalid",
                    "callback_url is an absolute http or https URL",
                ));
                None
            }
        },
        Some(_) => {
            errors.push(FieldError::new(
                "callback_url",
                "invalid",
                "callback_url is a string",
            ));
            None
        }
    };
    match (operation, payload, errors.is_empty()) {
        (Some(operation), Some(payload), true) => Ok(SystemRequest {
            operation,
            payload,
            callback_url,
            force,
            body_hash: cpq_core::digest(&value),
        }),
        _ => Err(Problem::validation(errors)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn fields(p: &Problem) -> Vec<String> {
        p.errors.iter().map(|e| e.field.clone()).collect()
    }

    #[test]
    fn the_key_is_required_and_visible_ascii() {
        assert_eq!(idempotency_key(None).unwrap_err().status, 400);
        assert_eq!(
            idempotency_key(Some(&HeaderValue::from_static("a b")))
                .unwrap_err()
                .status,
            400
        );
        assert_eq!(
            idempotency_key(Some(&HeaderValue::from_static("task-1:attempt"))).unwrap(),
            "task-1:attempt"
        );
    }

    #[test]
    fn the_same_request_hashes_the_same_whatever_its_layout() {
        let a = parse(
            br#"{"operation":"reserve","payload":{"a":1,"b":[1,2]}}"#,
            false,
        )
        .unwrap();
        let b = parse(
            br#"{ "payload": { "b": [1, 2], "a": 1 }, "operation": "reserve" }"#,
            false,
        )
        .unwrap();
        assert_eq!(a.body_hash, b.body_hash);
        let c = parse(
            br#"{"operation":"reserve","payload":{"a":2,"b":[1,2]}}"#,
            false,
        )
        .unwrap();
        assert_ne!(a.body_hash, c.body_hash);
    }

    #[test]
    fn every_field_problem_is_named() {
        let p = parse(
            br#"{"payload": 3, "extra": true, "callback_url": "ftp://x"}"#,
            true,
        )
        .unwrap_err();
        assert_eq!(p.status, 422);
        let f = fields(&p);
        for name in ["operation", "payload", "extra", "callback_url"] {
            assert!(f.contains(&name.to_owned()), "{name} in {f:?}");
        }
        let p = parse(br#"{"operation":"x","payload":{}}"#, true).unwrap_err();
        assert_eq!(fields(&p), vec!["callback_url"]);
        let p = parse(
            json!({"operation":"x","payload":{"sim_force":"explode"}})
                .to_string()
                .as_bytes(),
            false,
        )
        .unwrap_err();
        assert_eq!(fields(&p), vec!["payload.sim_force"]);
    }

    #[test]
    fn unreadable_bodies_are_400() {
        assert_eq!(parse(b"{", false).unwrap_err().status, 400);
        assert_eq!(parse(b"[1]", false).unwrap_err().status, 400);
    }

    #[test]
    fn reads_the_marker() {
        let r = parse(
            br#"{"operation":"x","payload":{"sim_force":"permanent:INVALID_ADDRESS"},"callback_url":"http://127.0.0.1:1/cb"}"#,
            true,
        )
        .unwrap();
        assert_eq!(r.force, Some(Force::Permanent("INVALID_ADDRESS".into())));
        assert_eq!(r.callback_url.unwrap().as_str(), "http://127.0.0.1:1/cb");
    }
}
