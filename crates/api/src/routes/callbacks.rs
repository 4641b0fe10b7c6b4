//! `POST /v1/callbacks/{system}`: an asynchronous external system answers a worker's request.
//!
//! Systems hold no platform token: each signs the raw body with its shared secret
//! (`X-Cpq-Signature: sha256=<hex of HMAC-SHA256>`, the secrets under `[callbacks.secrets]`). The
//! handler checks the system and the signature before it reads anything, then the body, then
//! hands it to `cpq_application::workflow::callbacks` in the tenant of the request it answers. A
//! redelivered callback is answered 200 `duplicate` and changes nothing.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use cpq_application::workflow::callbacks::{
    callback_tenant, CallbackOutcome, ReceiveCallback, Received,
};
use cpq_application::Call;
use cpq_core::{Error, FieldError, Principal, Role, TenantGrant};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::{ApiPath, RequestContext};
use crate::problem::{ApiError, Problem};
use crate::state::AppState;

/// The header a system signs its callbacks with.
pub const SIGNATURE_HEADER: &str = "x-cpq-signature";

/// What a system sends (fields it adds beyond these are kept in nothing and ignored).
#[derive(Debug, Deserialize, ToSchema)]
pub struct Callback {
    pub callback_id: Uuid,
    /// The `Idempotency-Key` of the request it answers.
    pub idempotency_key: String,
    /// The system's own id for the request.
    pub request_id: Option<String>,
    /// The system that calls back; must be the one in the path when present.
    pub system: Option<String>,
    /// `succeeded` or `failed`.
    pub outcome: String,
    pub result: Option<Value>,
    pub error: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackReceipt {
    /// `accepted` (kept and passed to the waiting process) or `duplicate` (received before;
    /// nothing changed).
    pub status: String,
}

/// Checks `body` against the `sha256=<hex>` signature in `headers` with `secret`, in constant
/// time.
fn verify(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> Result<(), Error> {
    let refused = |detail: &str| {
        Error::Unauthenticated {
        detail: format!("{detail}: sign the raw body with HMAC-SHA256 and the system's secret, header X-Cpq-Signature: sha256=<hex>"),
    }
    };
    let header = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| refused("the X-Cpq-Signature header is missing"))?
        .to_str()
        .map_err(|_| refused("the X-Cpq-Signature header is not text"))?;
    let hex_digest = header
        .strip_prefix("sha256=")
        .ok_or_else(|| refused("the X-Cpq-Signature header does not start with sha256="))?;
    let digest = hex::decode(hex_digest)
        .map_err(|_| refused("the X-Cpq-Signature header's digest is not hexadecimal"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .map_err(|e| Error::internal(format!("callback secret: {e}")))?;
    mac.update(body);
    mac.verify_slice(&digest)
        .map_err(|_| refused("the signature does not match the body"))
}

/// The body as a callback: every field problem at once.
fn parse(system: &str, body: &[u8]) -> Result<(Callback, CallbackOutcome), Error> {
    let callback: Callback = serde_json::from_slice(body).map_err(|e| Error::Malformed {
        detail: format!("the callback is not the expected JSON: {e}"),
        errors: Vec::new(),
    })?;
    let mut errors = Vec::new();
    let outcome = match callback.outcome.as_str() {
        "succeeded" => Some(CallbackOutcome::Succeeded),
        "failed" => Some(CallbackOutcome::Failed),
        _ => {
            errors.push(FieldError::new(
                "outcome",
                "invalid",
                "outcome is succeeded or failed",
            ));
            None
        }
    };
    if callback.idempotency_key.trim().is_empty() {
        errors.push(FieldError::new(
            "idempotency_key",
            "required",
            "idempotency_key must not be blank",
        ));
    }
    if callback.system.as_deref().is_some_and(|s| s != system) {
        errors.push(FieldError::new(
            "system",
            "mismatch",
            format!("the callback names another system than the path's \"{system}\""),
        ));
    }
    match outcome {
        Some(outcome) if errors.is_empty() => Ok((callback, outcome)),
        _ => Err(Error::validation(errors)),
    }
}

#[utoipa::path(post, path = "/v1/callbacks/{system}", tag = "workflow",
    params(("system" = String, Path, description = "inventory, provisioning, billing, crm or notification"),
           ("X-Cpq-Signature" = String, Header, description = "sha256=<hex of HMAC-SHA256 of the raw body with the system's secret>")),
    request_body = Callback,
    responses((status = 200, description = "accepted, or duplicate (received before; nothing changed)", body = CallbackReceipt),
              (status = 401, description = "missing or wrong signature", body = Problem),
              (status = 404, description = "an unknown system, or no request with this idempotency key", body = Problem),
              (status = 422, description = "outcome, idempotency_key or system invalid", body = Problem)))]
pub async fn receive(
    State(state): State<AppState>,
    ctx: RequestContext,
    ApiPath(system): ApiPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let secret = state
        .config
        .callbacks
        .secret(&system)
        .ok_or_else(|| Error::NotFound {
            kind: "external system",
            id: system.clone(),
        })?;
    verify(secret.expose().as_bytes(), &headers, &body)?;
    let (callback, outcome) = parse(&system, &body)?;
    let tenant = callback_tenant(&state.services, &callback.idempotency_key).await?;
    let principal = Principal {
        subject: format!("external-system:{system}"),
        tenant,
        roles: [Role::Worker].into(),
        groups: Default::default(),
        grant: TenantGrant::Own,
    };
    let call = Call::new(principal, ctx.correlation_id, Some(ctx.request_id));
    let receive = ReceiveCallback {
        system,
        callback_id: callback.callback_id,
        idempotency_key: callback.idempotency_key,
        request_id: callback.request_id,
        outcome,
        result: callback.result,
        error: callback.error,
    };
    let status = match cpq_application::execute(&state.services, &call, receive).await? {
        Received::Accepted => "accepted",
        Received::Duplicate => "duplicate",
    };
    Ok((StatusCode::OK, Json(json!({ "status": status }))).into_response())
}
