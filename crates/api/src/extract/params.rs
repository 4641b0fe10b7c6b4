use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use cpq_core::{Error, FieldError};
use serde::de::DeserializeOwned;

use super::text::{nul_path_parameters, nul_query_parameters, refuse_nul};
use crate::problem::ApiError;

/// Query parameters; unknown parameters and bad values are a 400 problem naming them.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_nul(nul_query_parameters(parts.uri.query().unwrap_or_default()))?;
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError(Error::Malformed {
                detail: "the query string is not valid for this endpoint".to_owned(),
                errors: vec![FieldError::new("query", "invalid-parameter", e.body_text())],
            })),
        }
    }
}

/// Path parameters; a malformed id is a 400 problem, not a routing 404.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => {
                if let Ok(Path(raw)) =
                    Path::<Vec<(String, String)>>::from_request_parts(parts, state).await
                {
                    refuse_nul(nul_path_parameters(raw))?;
                }
                Ok(ApiPath(v))
            }
            Err(e) => Err(ApiError(Error::Malformed {
                detail: "a path parameter is not valid".to_owned(),
                errors: vec![FieldError::new("path", "invalid-parameter", e.body_text())],
            })),
        }
    }
}
