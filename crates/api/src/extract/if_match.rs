use axum::extract::FromRequestParts;
use axum::http::header::IF_MATCH;
use axum::http::request::Parts;
use cpq_core::Error;

use crate::etag::parse_if_match;
use crate::problem::ApiError;

/// The version a change is based on, from `If-Match`. Missing or `*` → 428; not one of our ETags
/// → 400. Whether it is current is the command's check (stale → 412).
pub struct IfMatch(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let raw = parts.headers.get(IF_MATCH).ok_or_else(|| {
            ApiError(Error::PreconditionRequired {
                detail: "this change needs an If-Match header with the resource's ETag".to_owned(),
            })
        })?;
        let raw = raw.to_str().unwrap_or_default();
        match parse_if_match(raw) {
            Some(v) => Ok(IfMatch(v)),
            None if raw.trim() == "*" => Err(ApiError(Error::PreconditionRequired {
                detail: "If-Match must name the ETag the change is based on, not *".to_owned(),
            })),
            None => Err(ApiError(Error::Malformed {
                detail: format!("If-Match \"{raw}\" is not an ETag of this API (a quoted version such as \"3\")"),
                errors: Vec::new(),
            })),
        }
    }
}
