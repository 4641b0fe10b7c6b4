use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use cpq_core::{Error, Principal};

use crate::problem::ApiError;
use crate::state::AppState;

/// The authenticated caller, from `Authorization: Bearer <jwt>`. The tenant of every request
/// comes from here and only from here. Records tenant and subject on the request's span.
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| unauthenticated("missing Authorization header with a bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthenticated("the Authorization header must be \"Bearer <token>\"")
            })?;
        let principal = state.verifier.verify(token).await.map_err(|e| {
            metrics::counter!("auth_rejections_total", "reason" => reason(&e)).increment(1);
            unauthenticated(&e.to_string())
        })?;
        let span = tracing::Span::current();
        span.record("tenant", principal.tenant.as_str());
        span.record("subject", principal.subject.as_str());
        Ok(Caller(principal))
    }
}

fn unauthenticated(detail: &str) -> ApiError {
    ApiError(Error::Unauthenticated {
        detail: detail.to_owned(),
    })
}

fn reason(e: &cpq_auth::AuthError) -> &'static str {
    use cpq_auth::AuthError::*;
    match e {
        Missing => "missing",
        Malformed(_) => "malformed",
        UnknownKey => "unknown-key",
        BadSignature => "bad-signature",
        Expired => "expired",
        NotYetValid => "not-yet-valid",
        WrongIssuer => "wrong-issuer",
        WrongAudience => "wrong-audience",
        BadClaims(_) => "bad-claims",
        Keys(_) | DevTokensRefused(_) => "keys",
    }
}
