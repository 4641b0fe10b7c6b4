//! What the fulfillment process's internal jobs decide from a task's variables, purely: why a
//! task fell out ([`fallout_of`]) and whether a finished task was done or skipped
//! ([`finish_of`]).

use serde_json::{json, Value};

use super::plan::TaskStatus;

/// Why a plan task fell out, as a fallout case records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FalloutCategory {
    /// The system refused the request with a business error code (a 4xx with `code`).
    BusinessFailure,
    /// Retries exhausted, or the request refused as malformed.
    TechnicalFailure,
    /// The asynchronous outcome came back failed.
    CallbackFailed,
    /// The asynchronous outcome never came.
    CallbackTimeout,
}

impl FalloutCategory {
    pub const ALL: [FalloutCategory; 4] = [
        FalloutCategory::BusinessFailure,
        FalloutCategory::TechnicalFailure,
        FalloutCategory::CallbackFailed,
        FalloutCategory::CallbackTimeout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FalloutCategory::BusinessFailure => "business-failure",
            FalloutCategory::TechnicalFailure => "technical-failure",
            FalloutCategory::CallbackFailed => "callback-failed",
            FalloutCategory::CallbackTimeout => "callback-timeout",
        }
    }

    pub fn parse(raw: &str) -> Option<FalloutCategory> {
        FalloutCategory::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

/// A task's failure as its fallout case records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallout {
    pub category: FalloutCategory,
    /// The system's business code, the HTTP status of the last technical failure, or the
    /// callback's error code.
    pub error_code: Option<String>,
    pub last_error: Value,
    /// The request sent (body and idempotency key), when the variables hold it.
    pub request: Option<Value>,
}

fn present(variables: &Value, name: &str) -> Option<Value> {
    variables.get(name).filter(|v| !v.is_null()).cloned()
}

fn text(v: &Value, name: &str) -> Option<String> {
    match v.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Why the task whose variables these are fell out: the process's `Execute` subprocess ends in
/// a BPMN error only through a business rejection (`business_error`), exhausted retries
/// (`technical_error`), a failed callback (`callback`) or the callback timer (none of them). The
/// variables are cleared when a case opens, so a retried task's next failure is read afresh.
pub fn fallout_of(variables: &Value) -> Fallout {
    if let Some(e) = present(variables, "business_error") {
        return Fallout {
            category: FalloutCategory::BusinessFailure,
            error_code: text(&e, "code"),
            request: present(&e, "request"),
            last_error: e,
        };
    }
    if let Some(e) = present(variables, "technical_error") {
        return Fallout {
            category: FalloutCategory::TechnicalFailure,
            error_code: text(&e, "status"),
            request: present(&e, "request"),
            last_error: e,
        };
    }
    let sent = present(variables, "external_idempotency_key").map(|key| {
        json!({
            "idempotency_key": key,
            "request_id": present(variables, "external_request_id"),
            "system": present(variables, "external_system"),
        })
    });
    if let Some(c) = present(variables, "callback") {
        let code = c.get("error").and_then(|e| text(e, "code"));
        return Fallout {
            category: FalloutCategory::CallbackFailed,
            error_code: code,
            last_error: c,
            request: sent,
        };
    }
    let system = present(variables, "external_system");
    Fallout {
        category: FalloutCategory::CallbackTimeout,
        error_code: None,
        last_error: json!({
            "system": system,
            "detail": "the system did not call back within the task's callback timeout",
            "request_id": present(variables, "external_request_id"),
        }),
        request: sent,
    }
}

/// The variables a fallout job completes with: the failure's traces cleared, so that the
/// retried task starts clean.
pub fn fallout_cleared() -> serde_json::Map<String, Value> {
    [
        "business_error",
        "technical_error",
        "callback",
        "external_idempotency_key",
        "external_request_id",
        "external_system",
    ]
    .into_iter()
    .map(|n| (n.to_owned(), Value::Null))
    .chain([("callback_expected".to_owned(), Value::Bool(false))])
    .collect()
}

/// How a task that reached `fulfillment-task-done` finished: skipped when the last repair of its
/// fallout said so, else completed.
pub fn finish_of(variables: &Value) -> TaskStatus {
    let action = variables
        .get("repair")
        .and_then(|r| r.get("action"))
        .and_then(Value::as_str);
    if action == Some("skip") {
        TaskStatus::Skipped
    } else {
        TaskStatus::Completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failure_is_read_in_order_business_technical_callback_timeout() {
        let business = json!({"business_error": {"code": "PORT_UNAVAILABLE", "request": {"a": 1}}, "technical_error": null});
        let f = fallout_of(&business);
        assert_eq!(f.category, FalloutCategory::BusinessFailure);
        assert_eq!(f.error_code.as_deref(), Some("PORT_UNAVAILABLE"));
        assert_eq!(f.request, Some(json!({"a": 1})));

        let technical = json!({"business_error": null, "technical_error": {"status": 503, "request": {"b": 2}}});
        let f = fallout_of(&technical);
        assert_eq!(f.category, FalloutCategory::TechnicalFailure);
        assert_eq!(f.error_code.as_deref(), Some("503"));

        let failed = json!({"callback": {"outcome": "failed", "error": {"code": "NO_CAPACITY"}}, "external_idempotency_key": "job-1"});
        let f = fallout_of(&failed);
        assert_eq!(f.category, FalloutCategory::CallbackFailed);
        assert_eq!(f.error_code.as_deref(), Some("NO_CAPACITY"));
        assert_eq!(f.request.unwrap()["idempotency_key"], "job-1");

        let missing = json!({"callback": null, "external_system": "provisioning", "external_idempotency_key": "job-2"});
        let f = fallout_of(&missing);
        assert_eq!(f.category, FalloutCategory::CallbackTimeout);
        assert_eq!(f.last_error["system"], "provisioning");
    }

    #[test]
    fn a_skip_repair_finishes_the_task_as_skipped_anything_else_as_completed() {
        assert_eq!(
            finish_of(&json!({"repair": {"action": "skip"}})),
            TaskStatus::Skipped
        );
        assert_eq!(
            finish_of(&json!({"repair": {"action": "retry"}})),
            TaskStatus::Completed
        );
        assert_eq!(finish_of(&json!({"repair": null})), TaskStatus::Completed);
        assert_eq!(finish_of(&json!({})), TaskStatus::Completed);
    }

    #[test]
    fn clearing_resets_every_failure_trace() {
        let cleared = fallout_cleared();
        for name in [
            "business_error",
            "technical_error",
            "callback",
            "external_idempotency_key",
        ] {
            assert_eq!(cleared[name], Value::Null);
        }
        assert_eq!(cleared["callback_expected"], Value::Bool(false));
    }
}
