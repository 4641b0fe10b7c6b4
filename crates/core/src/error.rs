//! The error every library returns to the application layer.
//!
//! It knows nothing about HTTP: the API maps each variant to a problem type in one place. What a
//! client may see (`detail`, field errors) is kept apart from what only operators may see
//! (`internal`), which is logged and never sent.

use serde::Serialize;

/// One problem with one input field, named by its path in the request (`name`, `items[2].qty`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    /// Stable, machine-readable reason, e.g. `required`, `too-long`, `unknown-field`.
    pub code: String,
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code: code.to_owned(),
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist for this tenant (another tenant's resource is "not found" too).
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },

    /// The request could not be read: not JSON, wrong types, unknown fields, bad parameters.
    #[error("malformed request: {detail}")]
    Malformed {
        detail: String,
        errors: Vec<FieldError>,
    },

    /// The request was readable but its values are not acceptable.
    #[error("validation failed: {} field error(s)", errors.len())]
    Validation { errors: Vec<FieldError> },

    /// The command conflicts with the resource's current state (duplicate, illegal transition).
    #[error("conflict: {detail}")]
    Conflict { detail: String },

    /// The command would create what already exists (a second order for a quote): `existing`
    /// is the path of the resource that does, so a client can go on with it.
    #[error("conflict: {detail} (existing: {existing})")]
    ConflictWithExisting { detail: String, existing: String },

    /// A change was attempted without `If-Match`.
    #[error("precondition required: {detail}")]
    PreconditionRequired { detail: String },

    /// `If-Match` named a version that is no longer current.
    #[error("precondition failed: resource is at {current}")]
    PreconditionFailed { current: String },

    /// The same idempotency key was used with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,

    /// The request body is larger than the configured limit.
    #[error("payload too large: limit is {limit} bytes")]
    PayloadTooLarge { limit: usize },

    #[error("unauthenticated: {detail}")]
    Unauthenticated { detail: String },

    #[error("forbidden: {detail}")]
    Forbidden { detail: String },

    /// A dependency the request needs is unreachable or timed out. Retrying later may work.
    #[error("{dependency} unavailable: {internal}")]
    Unavailable {
        dependency: &'static str,
        internal: String,
    },

    /// Something the platform must have deployed to serve the request is not deployed (a BPMN
    /// process). Unlike [`Error::Unavailable`] it does not resolve by itself: an operator must
    /// deploy it. `needed_for` says what cannot be done meanwhile.
    #[error("{what} is not deployed; needed to {needed_for}")]
    NotDeployed {
        what: String,
        needed_for: &'static str,
        remedy: &'static str,
    },

    /// The request took longer than the configured per-request timeout.
    #[error("request timed out after {millis} ms")]
    Timeout { millis: u64 },

    /// A bug or an unexpected state. `internal` is logged, never sent.
    #[error("internal error: {internal}")]
    Internal { internal: String },
}

impl Error {
    pub fn not_found(kind: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            kind,
            id: id.to_string(),
        }
    }

    pub fn internal(internal: impl ToString) -> Self {
        Error::Internal {
            internal: internal.to_string(),
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        Error::Validation { errors }
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Error::Conflict {
            detail: detail.into(),
        }
    }
}
