use axum::extract::FromRequestParts;
use axum::http::header::IF_MATCH;
use axum::http::request::Parts;
use cpq_core::{Error, FieldError};

use crate::etag::{parse_if_match, IfMatchValue};
use crate::problem::ApiError;

/// The version a change is based on, from `If-Match`. Missing, empty or `*` → 428; not an
/// entity-tag list at all, or naming two different versions → 400. Any other tag is a
/// precondition like ours: one that is not one of our versions (weak, or a tag we never issue)
/// becomes [`IfMatch::NOTHING`], which no resource is at, so the command answers 412 with the
/// current ETag, as it does for a stale version.
pub struct IfMatch(pub i64);

impl IfMatch {
    /// The version a tag that is not ours stands for: no resource is ever at version 0.
    pub const NOTHING: i64 = 0;
}

fn malformed(detail: String) -> ApiError {
    ApiError(Error::Malformed {
        errors: vec![FieldError::new(
            "If-Match",
            "invalid-format",
            detail.clone(),
        )],
        detail,
    })
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let required = |detail: &str| {
            ApiError(Error::PreconditionRequired {
                detail: detail.to_owned(),
            })
        };
        let values: Vec<&[u8]> = parts
            .headers
            .get_all(IF_MATCH)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        if values.is_empty() {
            return Err(required(
                "this change needs an If-Match header with the resource's ETag",
            ));
        }
        // Several header lines are one comma-separated list.
        let joined = values.join(&b","[..]);
        let parsed = parse_if_match(&joined).ok_or_else(|| {
            malformed(format!(
                "If-Match {} is not an entity tag list (a quoted ETag such as \"3\", from the resource's ETag header)",
                String::from_utf8_lossy(&joined)
            ))
        })?;
        match parsed {
            IfMatchValue::Any => Err(required(
                "If-Match must name the ETag the change is based on, not *",
            )),
            IfMatchValue::Empty => Err(required(
                "If-Match is empty: name the ETag the change is based on",
            )),
            IfMatchValue::Tags(tags) => {
                let mut ours: Vec<i64> = tags.into_iter().flatten().collect();
                ours.sort_unstable();
                ours.dedup();
                match ours.as_slice() {
                    [] => Ok(IfMatch(IfMatch::NOTHING)),
                    [v] => Ok(IfMatch(*v)),
                    _ => Err(malformed(
                        "If-Match names several versions; a change is based on exactly one"
                            .to_owned(),
                    )),
                }
            }
        }
    }
}
